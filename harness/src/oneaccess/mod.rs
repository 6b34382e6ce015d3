//! A mock OneAccess: Huawei's identity provider, as the SSO component sees it (protocol §6).
//!
//! It serves the OAuth 2.0 authorization-code flow over real HTTP on `127.0.0.1`, so a component under test (in
//! `harness up`, `spin up` or in-process through the harness's outbound HTTP) can use it as a tenant's OneAccess
//! domain. Everything it receives is recorded for the test to check.
//!
//! | Endpoint | Answer |
//! |---|---|
//! | `GET /api/v1/oauth2/authorize` | `302 {redirect_uri}?code=…&state=…` for the current login user (login page without one) |
//! | `POST /api/v1/oauth2/token` | `grant_type=authorization_code` or `refresh_token` → token JSON; errors as OneAccess words them |
//! | `GET /api/v1/oauth2/userinfo` | `Authorization: Bearer …` → the token's user as JSON; else `401` |
//! | `GET /api/v1/logout?redirect_url=…` | `302` to `redirect_url` |
//!
//! # Security
//!
//! The mock is for tests and local runs only: it listens on whatever address it is given, trusts every browser, and
//! keeps tokens in memory. Its log lines (`tracing`, target `harness::oneaccess`; accept and connection errors
//! `harness::mock_server`) carry only method, path and status: never a code, a token, a client secret or a query
//! string. [`Received`] holds requests exactly as sent, secrets included, for tests to inspect.
//!
//! # How to use it
//!
//! 1. Start it with the clients (the `client_id` / `client_secret` pairs of `applicationSync`) and users it knows:
//!    [`MockOneAccess::start`] on the current tokio runtime, or [`MockOneAccess::start_in_background`] on a thread
//!    of its own (for synchronous tests). The first user is logged in.
//! 2. Give the component [`MockOneAccess::base_url`] as the tenant's `domainName`.
//! 3. Drive the flow: send the browser to the component's login route, or skip the portal with
//!    [`MockOneAccess::issue_code`] (as the unified portal does, §6 step 1) and call the component's callback.
//! 4. Change the world mid-test: [`MockOneAccess::set_login_user`], [`MockOneAccess::expire_access_tokens`],
//!    [`MockOneAccess::revoke_refresh_tokens`], [`MockOneAccess::set_availability`].
//! 5. Check what the component sent: [`MockOneAccess::received`], [`MockOneAccess::token_requests`],
//!    [`MockOneAccess::logouts`], [`MockOneAccess::counts`].
//!
//! Dropping the [`MockOneAccess`] stops the server and closes its connections.
//!
//! ```
//! use harness::oneaccess::{Availability, MockClient, MockConfig, MockOneAccess, MockUser};
//! use std::io::{Read as _, Write as _};
//!
//! let mock = MockOneAccess::start_in_background(MockConfig {
//!     clients: vec![MockClient::new("app-1", "s3cret")],
//!     users: vec![MockUser::new("zhangsan", "张三")],
//! })?;
//! let code = mock.issue_code("app-1", "https://isv.example.com/callback", "zhangsan");
//!
//! // What the component does with the code (here by hand, over HTTP/1.1).
//! let body = format!("client_id=app-1&client_secret=s3cret&grant_type=authorization_code&code={code}");
//! let mut stream = std::net::TcpStream::connect(mock.base_url().trim_start_matches("http://"))?;
//! write!(
//!     stream,
//!     "POST /api/v1/oauth2/token HTTP/1.1\r\nhost: oneaccess\r\nconnection: close\r\n\
//!      content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
//!     body.len()
//! )?;
//! let mut answer = String::new();
//! stream.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 200"));
//! assert!(answer.contains(r#""token_type":"Bearer""#));
//!
//! assert_eq!(mock.counts().token_exchanges_ok, 1);
//! assert_eq!(mock.token_requests()[0][0], ("client_id".to_owned(), "app-1".to_owned()));
//! mock.set_availability(Availability::Error500); // the next calls get 500
//! # Ok::<(), anyhow::Error>(())
//! ```

mod endpoints;

use crate::mock_server::{Handler, MockServer, read_body};
use bytes::Bytes;
use endpoints::{Reply, State};
use http_body_util::Full;
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The authorize endpoint's path.
pub const AUTHORIZE_PATH: &str = "/api/v1/oauth2/authorize";
/// The token endpoint's path (code exchange and refresh).
pub const TOKEN_PATH: &str = "/api/v1/oauth2/token";
/// The userinfo endpoint's path.
pub const USERINFO_PATH: &str = "/api/v1/oauth2/userinfo";
/// The logout endpoint's path.
pub const LOGOUT_PATH: &str = "/api/v1/logout";

/// `expires_in` of access tokens until [`MockOneAccess::set_access_token_ttl_s`] changes it: 2 hours, as OneAccess.
pub const DEFAULT_ACCESS_TOKEN_TTL_S: u64 = 7200;
/// How long an authorization code may wait for its exchange.
pub const CODE_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a refresh token lives (OneAccess's default: 30 days).
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long [`Availability::Hang`] keeps a request unanswered before closing its connection.
pub const HANG_FOR: Duration = Duration::from_secs(60);
/// Largest request body read; a larger one gets `413`.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A registered OAuth client: what `applicationSync` hands the merchant (`clientId`, decrypted `clientSecret`).
///
/// `Debug` prints the secret as `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct MockClient {
    /// The client id (`client_id` of authorize and token requests).
    pub client_id: String,
    /// The client secret in plaintext (`client_secret` of token requests).
    pub client_secret: String,
}

impl MockClient {
    /// A client with this id and secret.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self { client_id: client_id.into(), client_secret: client_secret.into() }
    }
}

impl std::fmt::Debug for MockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockClient").field("client_id", &self.client_id).field("client_secret", &"[REDACTED]").finish()
    }
}

/// A OneAccess user, as the userinfo endpoint describes them.
///
/// The userinfo fields not kept here are derived: `id` and `userId` from the user name ([`MockUser::id`]),
/// `organizationName` from the organization code, `mobile` and `projectName` fixed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockUser {
    /// The login account (`userName`); unique within a mock.
    pub user_name: String,
    /// The display name (`name`).
    pub name: String,
    /// `role`: `user` or `admin` (as `authSync`).
    pub role: String,
    /// `email`.
    pub email: String,
    /// `tenant`.
    pub tenant: String,
    /// `organizationCode`.
    pub organization_code: String,
}

impl MockUser {
    /// A `user`-role member of tenant `huawei`, organization `10000`, e-mail `{user_name}@example.com`.
    pub fn new(user_name: impl Into<String>, name: impl Into<String>) -> Self {
        let user_name = user_name.into();
        Self {
            email: format!("{user_name}@example.com"),
            user_name,
            name: name.into(),
            role: "user".to_owned(),
            tenant: "huawei".to_owned(),
            organization_code: "10000".to_owned(),
        }
    }

    /// The same user with another role.
    #[must_use]
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.role = role.into();
        self
    }

    /// The same user in another tenant.
    #[must_use]
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// The user's `id` (and `userId`) in userinfo answers: a name-based UUID of the user name, 32 hex digits.
    pub fn id(&self) -> String {
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("oneaccess-user:{}", self.user_name).as_bytes())
            .simple()
            .to_string()
    }

    /// The userinfo answer for this user.
    pub fn userinfo(&self) -> serde_json::Value {
        let id = self.id();
        serde_json::json!({
            "id": id,
            "userName": self.user_name,
            "name": self.name,
            "email": self.email,
            "mobile": "13800138000",
            "role": self.role,
            "organizationName": format!("Organization {}", self.organization_code),
            "organizationCode": self.organization_code,
            "userId": id,
            "projectName": "default",
            "tenant": self.tenant,
        })
    }
}

/// What a mock knows at start.
#[derive(Clone, Debug, Default)]
pub struct MockConfig {
    /// The registered clients; the first with a given id counts.
    pub clients: Vec<MockClient>,
    /// The users; the first is the initial login user (none: the authorize endpoint shows a login page).
    pub users: Vec<MockUser>,
}

impl MockConfig {
    /// One client and one user, `zhangsan` ("张三"), logged in.
    pub fn with_client(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            clients: vec![MockClient::new(client_id, client_secret)],
            users: vec![MockUser::new("zhangsan", "张三")],
        }
    }
}

/// How the mock answers, settable at run time ([`MockOneAccess::set_availability`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Availability {
    /// Normal service.
    #[default]
    Up,
    /// Accept connections and read requests, answer nothing for [`HANG_FOR`] (60 s), then close the connection.
    Hang,
    /// Answer every request `500` with `{"error":"server_error",…}`.
    Error500,
}

/// One request as the mock received it (recorded before it is answered, whatever the answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string (still percent-encoded), if any.
    pub query: Option<String>,
    /// The headers in the order received, names lower-case; values not in UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// The body bytes (empty when the body could not be read).
    pub body: Vec<u8>,
}

impl Received {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The query's parameters, decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query.as_deref().map(|q| decode_form(q.as_bytes())).unwrap_or_default()
    }

    /// The body read as `application/x-www-form-urlencoded`, decoded, in order (whatever the content type).
    pub fn form(&self) -> Vec<(String, String)> {
        decode_form(&self.body)
    }
}

/// How many requests ended which way. `rejected` counts every 4xx answer except userinfo's 401s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Authorize requests answered with a code (302).
    pub authorize: u64,
    /// Successful `authorization_code` exchanges.
    pub token_exchanges_ok: u64,
    /// Successful `refresh_token` grants.
    pub refreshes_ok: u64,
    /// Userinfo requests answered 200.
    pub userinfo_ok: u64,
    /// Userinfo requests answered 401 (no, unknown, expired token).
    pub userinfo_401: u64,
    /// Logouts answered 302.
    pub logouts: u64,
    /// Requests answered 4xx, userinfo's 401s excepted (bad client, bad grant, bad request, unknown path, …).
    pub rejected: u64,
    /// Requests met by [`Availability::Hang`] or [`Availability::Error500`].
    pub unavailable: u64,
}

/// A running mock OneAccess. Dropping it stops the server.
pub struct MockOneAccess {
    state: Arc<Mutex<State>>,
    /// Stops the server when dropped.
    server: MockServer,
}

/// The server's name in log lines and errors (and, as `mock-oneaccess`, its thread's).
const NAME: &str = "mock OneAccess";

impl std::fmt::Debug for MockOneAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockOneAccess").field("base_url", &self.base_url()).finish_non_exhaustive()
    }
}

impl MockOneAccess {
    /// Binds `listen` (port 0: any free port) and serves on the current tokio runtime.
    ///
    /// # Errors
    /// The address cannot be bound (the cause is the `std::io::Error`).
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn`).
    pub async fn start(listen: SocketAddr, config: MockConfig) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(State::new(config)));
        let server = MockServer::start(listen, NAME, handler(&state)).await?;
        Ok(Self { state, server })
    }

    /// Serves on `127.0.0.1` (a free port) from a thread of its own with its own runtime: for synchronous tests, or
    /// to outlive the caller's runtime.
    ///
    /// # Errors
    /// The thread, its runtime or the listener cannot be created.
    pub fn start_in_background(config: MockConfig) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(State::new(config)));
        let server = MockServer::start_in_background(NAME, handler(&state))?;
        Ok(Self { state, server })
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT`: the tenant's OneAccess domain to give the component (no trailing `/`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Sets who is logged in at the browser (`None`: nobody; authorize then shows a login page). An unknown user
    /// name is added as [`MockUser::new`]`(name, name)`.
    pub fn set_login_user(&self, user_name: Option<&str>) {
        let mut state = self.state();
        if let Some(name) = user_name {
            state.ensure_user(name);
        }
        state.login_user = user_name.map(str::to_owned);
    }

    /// Adds a user (replacing one with the same user name).
    pub fn add_user(&self, user: MockUser) {
        self.state().add_user(user);
    }

    /// Registers a client (replacing one with the same id).
    pub fn add_client(&self, client: MockClient) {
        self.state().add_client(client);
    }

    /// `expires_in` of the access tokens issued from now on (0: expired at once). Tokens already issued keep theirs.
    pub fn set_access_token_ttl_s(&self, ttl: u64) {
        self.state().access_token_ttl_s = ttl;
    }

    /// Every access token issued so far stops working (userinfo answers 401); later ones work.
    pub fn expire_access_tokens(&self) {
        self.state().expire_access_tokens();
    }

    /// Every refresh token issued so far is refused (`400 invalid_grant`); later ones work.
    pub fn revoke_refresh_tokens(&self) {
        self.state().revoke_refresh_tokens();
    }

    /// Sets how the mock answers from the next request on.
    pub fn set_availability(&self, availability: Availability) {
        self.state().availability = availability;
    }

    /// Issues a code as if the unified portal had logged `user_name` in and sent the browser to `redirect_uri`
    /// (§6 step 1): single use, valid for [`CODE_TTL`], exchangeable by `client_id` only. An unknown user name is added
    /// as [`MockUser::new`]`(name, name)`. Not counted in [`Counts::authorize`].
    pub fn issue_code(&self, client_id: &str, redirect_uri: &str, user_name: &str) -> String {
        let mut state = self.state();
        state.ensure_user(user_name);
        state.issue_code(client_id, redirect_uri, user_name, Instant::now())
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state().received.clone()
    }

    /// The decoded form fields of every token request answered so far (while [`Availability::Up`]), in order,
    /// refused ones included; empty for a body that is not `application/x-www-form-urlencoded`.
    pub fn token_requests(&self) -> Vec<Vec<(String, String)>> {
        self.state().token_requests.clone()
    }

    /// The decoded `redirect_url` of every logout answered 302, in order.
    pub fn logouts(&self) -> Vec<String> {
        self.state().logouts.clone()
    }

    /// The counters so far.
    pub fn counts(&self) -> Counts {
        self.state().counts
    }

    /// Forgets the recorded requests, token requests, logouts and counters (tokens and codes stay valid).
    pub fn clear_records(&self) {
        let mut state = self.state();
        state.received.clear();
        state.token_requests.clear();
        state.logouts.clear();
        state.counts = Counts::default();
    }
}

/// The state lock; a panic elsewhere while it was held does not make the records unreadable.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn decode_form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

/// The server's request handler: [`handle`] on `state`.
fn handler(state: &Arc<Mutex<State>>) -> impl Handler {
    let state = Arc::clone(state);
    move |request| handle(Arc::clone(&state), request)
}

/// Reads the request, records it, answers it (or, in [`Availability::Hang`], closes the connection after
/// [`HANG_FOR`] without an answer).
async fn handle(
    state: Arc<Mutex<State>>,
    request: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = request.into_parts();
    let (body, too_large) = read_body(body, MAX_BODY_BYTES).await;
    let received = Received {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
    };
    let reply = {
        let mut state = lock(&state);
        state.received.push(received.clone());
        if too_large {
            state.counts.rejected += 1;
            Reply::Answer(endpoints::error(http::StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", "Request too large"))
        } else {
            state.respond(&received, Instant::now())
        }
    };
    let (method, path) = (parts.method, received.path);
    match reply {
        Reply::Answer(response) => {
            tracing::info!(%method, %path, status = response.status().as_u16(), "mock OneAccess");
            Ok(response)
        }
        Reply::Hang => {
            tracing::info!(%method, %path, "mock OneAccess: hanging");
            tokio::time::sleep(HANG_FOR).await;
            Err(std::io::Error::other("mock OneAccess hung up"))
        }
    }
}
