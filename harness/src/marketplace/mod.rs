//! A mock Huawei KooGallery marketplace OpenAPI (protocol §8.1–8.3, §9): what the components call, as merchant,
//! to query orders, push on-demand usage and activate licenses.
//!
//! It serves real HTTP on `127.0.0.1`, checks every call the way the marketplace does (the API Gateway AK/SK
//! signature, and for usage pushes the body signature, the body's canonical form and the records), records
//! everything it receives, and fails on demand (an HTTP status, a hang, a dropped connection) so that the
//! components' retries and fallbacks can be tested.
//!
//! | Endpoint | Answer |
//! |---|---|
//! | `GET /api/mkp-openapi-public/global/v1/order/query?orderId=…[&orderLineId=…]` | `200` `resultCode` `MKT.0000` and the canned `orderInfo` (only the line asked for); unknown order or line `200` `MKT.0101` "order not found"; no `orderId` `400` `MKT.0101`; AK/SK refused `401` `MKT.0154` |
//! | `POST /api/mkp-openapi-public/global/v1/isv/usage-data` | `200` `{"error_code":"MKT.0000","error_msg":"Success"}`; AK/SK refused `401` `MKT.0154`; body signature bad or missing `400` `MKT.0102`; body or a record invalid `400` `MKT.0101` (the message names the problem); more than 1000 records `500` `MKT.9003` |
//! | `POST /api/mkp-openapi-public/global/v1/license/activate` | `200` `92020000` with `data.license_code_info`, a JSON **string**; `92020002` no license, `92020005` unknown, `92020004` not received, `92020003` already activated or released (all `200`); AK/SK refused `403` `92020001`; not JSON `400` `95000004`; not `application/json` `415` `95000003` |
//! | `POST /api/mkp-openapi-public/global/v1/license/heartbeat` | `200` `92020000` with `data` `{license_code, status, activate_time, expire_time}`; `92020005` unknown, `92020011` not activated; otherwise as activate |
//! | a known path with another method | `405`: `95000002` on license paths, `MKT.0150` on the others |
//! | `POST /_mock/fail`, `POST /_mock/clear`, `GET /_mock/received`, `GET /_mock/usage` | the control routes (below) |
//! | anything else | `404` `{"error_code":"404","error_msg":"no such endpoint"}` |
//!
//! The nine documented mock order IDs ([`koogallery_core::wire::order::MOCK_ORDER_IDS`], line `<id>-000001`) are
//! answered: `MOCKPERIODYEARNEW` with the response recorded by the official demo, byte for byte; the others with
//! made-up orders of their scenario (`MOCKONDEMAND`: `ON_DEMAND`, product `OFFI-MOCKONDEMAND`; `MOCKONDEMANDPKG`:
//! `ON_DEMAND_PKG`; `MOCKONETIMENEW`: `ONE_TIME`; the trial `TRIAL`; `…TRIALTOFORMAL`, `…UNSUBSCRIBE`, `…RENEW`,
//! `…CHANGE` those order types). Answering an unknown order `200` `MKT.0101` "order not found" is the mock's choice:
//! the documentation does not say.
//!
//! Two licenses are there from the start: [`SEED_LICENSE`] (received: product `OFFI-LICENSE`, order `CS123`,
//! amount 2, expiring `20301231235959`) and [`SEED_LICENSE_NOT_RECEIVED`]. A heartbeat reports `EXPIRED` for an
//! `ALIVE` license whose expiry has passed by the mock's clock.
//!
//! # Checks
//!
//! Every endpoint checks the AK/SK signature with the mock's own implementation ([`apig_check`]), not core's:
//! `x-sdk-date` must be signed and, by default, within 15 minutes of the mock's clock
//! ([`MarketplaceConfig::max_clock_skew`], [`MarketplaceConfig::now_ms`]). A usage push is then checked in this
//! order: the `signature`/`ts`/`nonce` headers (HMAC-SHA256 with the ISV key over `ts={ts}&nonce={nonce}&body={body}`),
//! the body (compact JSON, keys sorted at every level: checked on the bytes as sent, scalars as written), the
//! number of records (1 to 1000), each record. The marketplace deduplicates on `metering_sn`; the mock does not,
//! so tests see duplicates ([`MockMarketplace::metering_sn_counts`]).
//!
//! # Failure injection
//!
//! [`MockMarketplace::fail_next`] and [`MockMarketplace::fail_always`] make calls to one [`Endpoint`] fail as a
//! [`Failure`] says. The failure is applied once the request is read, before any check or state change: such a call
//! is recorded (with `injected: true`, its verdicts still computed for inspection) but never accepted.
//!
//! # Control routes
//!
//! For `harness marketplace` runs, where no Rust test holds the mock:
//!
//! * `POST /_mock/fail` `{"endpoint":"usage"|"order"|"activate"|"heartbeat","times":N,"status":500,"code":"MKT.0999"}`
//!   queues `times` (default 1) failures; `"hang":true` or `"close":true` instead of `status`/`code` queue a hang
//!   or a dropped connection; `"always":true` instead of `times` fails every call until cleared.
//! * `POST /_mock/clear`: no more failures (records stay).
//! * `GET /_mock/received`: `{"received":[{"endpoint","method","path","status","code","auth_ok","body_signature_ok",
//!   "records","injected"}]}`, never headers, query or body.
//! * `GET /_mock/usage`: `{"batches":[{"metering_sns":[…]}],"counts":{"<metering_sn>":n}}`.
//!
//! # Security
//!
//! For tests and local runs only: the control routes need no authentication, the mock listens on whatever address
//! it is given and keeps everything in memory. Its log lines (`tracing`, target `harness::marketplace`; accept and
//! connection errors `harness::mock_server`) carry method, path and status only: never headers, a query or a body,
//! which carry signatures, keys and buyer data. [`Received`] holds requests exactly as sent for tests to inspect;
//! [`MarketplaceConfig`]'s `Debug` redacts the SK and the ISV key.
//!
//! # How to use it
//!
//! 1. Start it with the AK/SK and ISV key the component is configured with ([`MarketplaceConfig`]; the defaults are
//!    `mock-ak`, `mock-sk`, `mock-isv-key`): [`MockMarketplace::start`] on the current tokio runtime, or
//!    [`MockMarketplace::start_in_background`] on a thread of its own. A component on a virtual clock signs with
//!    its own time: give the mock the same clock ([`MarketplaceConfig::with_clock`]) or
//!    [`MarketplaceConfig::without_date_check`].
//! 2. Give the component [`MockMarketplace::base_url`] as its OpenAPI endpoint.
//! 3. Set the scene: [`MockMarketplace::add_order`], [`MockMarketplace::add_license`],
//!    [`MockMarketplace::set_license_status`], [`MockMarketplace::fail_next`].
//! 4. Check what the component did: [`MockMarketplace::received`], [`MockMarketplace::usage_batches`],
//!    [`MockMarketplace::metering_sn_counts`], [`MockMarketplace::license`].
//!
//! Dropping the [`MockMarketplace`] stops the server and closes its connections (hanging calls included).
//!
//! ```
//! use harness::marketplace::{Endpoint, Failure, MarketplaceConfig, MockMarketplace};
//! use koogallery_core::signing::apig::{ApigRequest, ApigSigner};
//! use koogallery_core::signing::keys::SecretKey;
//! use std::io::{Read as _, Write as _};
//!
//! let mock = MockMarketplace::start_in_background(MarketplaceConfig::default())?;
//! mock.fail_next(Endpoint::QueryOrder, 1, Failure::Status { status: 503, code: "MKT.0999".into() });
//!
//! // What a component does: sign the call with its AK/SK, send it.
//! let query_order = |mock: &MockMarketplace| -> std::io::Result<String> {
//!     let url = format!("{}/api/mkp-openapi-public/global/v1/order/query?orderId=MOCKONDEMAND", mock.base_url());
//!     let mut request = ApigRequest::new("GET", url);
//!     request.headers.push(("Content-Type".into(), "application/json".into()));
//!     ApigSigner::new("mock-ak", SecretKey::new("mock-sk")).sign_at(&mut request, koogallery_now_ms());
//!     let mut head = String::from("GET /api/mkp-openapi-public/global/v1/order/query?orderId=MOCKONDEMAND HTTP/1.1\r\n");
//!     for (name, value) in &request.headers {
//!         head.push_str(&format!("{name}: {value}\r\n"));
//!     }
//!     head.push_str("connection: close\r\n\r\n");
//!     let mut stream = std::net::TcpStream::connect(mock.addr())?;
//!     stream.write_all(head.as_bytes())?;
//!     let mut answer = String::new();
//!     stream.read_to_string(&mut answer)?;
//!     Ok(answer)
//! };
//! fn koogallery_now_ms() -> u64 {
//!     std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
//! }
//!
//! let first = query_order(&mock)?;
//! assert!(first.starts_with("HTTP/1.1 503"), "{first}");
//! assert!(first.contains(r#""resultCode":"MKT.0999""#));
//! let second = query_order(&mock)?;
//! assert!(second.starts_with("HTTP/1.1 200"));
//! assert!(second.contains(r#""chargingMode":"ON_DEMAND""#));
//!
//! let received = mock.received();
//! assert_eq!((received[0].injected, received[0].status), (true, Some(503)));
//! assert_eq!(received[1].auth, Ok(()));
//! assert_eq!(received[1].code.as_deref(), Some("MKT.0000"));
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod apig_check;
mod control;
mod endpoints;
mod orders;
mod time;
mod usage_check;

use crate::mock_server::{Handler, MockServer, read_body};
use bytes::Bytes;
use endpoints::{Outcome, State};
use http_body_util::Full;
use hyper::body::Incoming;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use apig_check::DEFAULT_MAX_SKEW;
pub use usage_check::MAX_RECORDS;

/// The order-query endpoint's path.
pub const QUERY_ORDER_PATH: &str = "/api/mkp-openapi-public/global/v1/order/query";
/// The usage-push endpoint's path.
pub const USAGE_PUSH_PATH: &str = "/api/mkp-openapi-public/global/v1/isv/usage-data";
/// The license activation endpoint's path.
pub const LICENSE_ACTIVATE_PATH: &str = "/api/mkp-openapi-public/global/v1/license/activate";
/// The license heartbeat endpoint's path.
pub const LICENSE_HEARTBEAT_PATH: &str = "/api/mkp-openapi-public/global/v1/license/heartbeat";

/// [`MarketplaceConfig::ak`] by default (also `harness marketplace`'s).
pub const DEFAULT_AK: &str = "mock-ak";
/// [`MarketplaceConfig::sk`] by default.
pub const DEFAULT_SK: &str = "mock-sk";
/// [`MarketplaceConfig::isv_key`] by default.
pub const DEFAULT_ISV_KEY: &str = "mock-isv-key";

/// The received, activatable license the mock starts with.
pub const SEED_LICENSE: &str = "MOCK-LICENSE-0001";
/// A license the mock starts with whose buyer has not received it (activation: `92020004`).
pub const SEED_LICENSE_NOT_RECEIVED: &str = "MOCK-LICENSE-NOTRECEIVED";

/// Largest request body read: room for 1000 records and more, so that a too-large batch meets `MKT.9003`. A
/// larger body gets `413`.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// A clock in milliseconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// What a mock knows at start. `Debug` redacts the SK and the ISV key.
#[derive(Clone)]
pub struct MarketplaceConfig {
    /// The access key the AK/SK signature must name (`Access=`); any other is refused.
    pub ak: String,
    /// The secret key the AK/SK signature is checked with.
    pub sk: String,
    /// The basic-interface key ("ISV对接密钥") usage pushes' `signature` header is checked with.
    pub isv_key: String,
    /// The mock's clock (for `X-Sdk-Date` and license times); `None`: the system clock. Lets a test whose component
    /// runs on a virtual clock share that clock.
    pub now_ms: Option<Clock>,
    /// How far `X-Sdk-Date` may be from the clock, either way; `None`: not checked. Default
    /// [`DEFAULT_MAX_SKEW`] (15 minutes, as the API Gateway).
    pub max_clock_skew: Option<Duration>,
}

impl Default for MarketplaceConfig {
    /// [`DEFAULT_AK`], [`DEFAULT_SK`], [`DEFAULT_ISV_KEY`], the system clock, 15 minutes' skew.
    fn default() -> Self {
        Self::new(DEFAULT_AK, DEFAULT_SK, DEFAULT_ISV_KEY)
    }
}

impl MarketplaceConfig {
    /// These keys, the system clock, 15 minutes' skew.
    pub fn new(ak: impl Into<String>, sk: impl Into<String>, isv_key: impl Into<String>) -> Self {
        Self {
            ak: ak.into(),
            sk: sk.into(),
            isv_key: isv_key.into(),
            now_ms: None,
            max_clock_skew: Some(DEFAULT_MAX_SKEW),
        }
    }

    /// The same, on the clock `now_ms` (e.g. `move || clock.now_ms()` of a [`crate::VirtualClock`]).
    #[must_use]
    pub fn with_clock(mut self, now_ms: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.now_ms = Some(Arc::new(now_ms));
        self
    }

    /// The same, with the clock stopped at `ms` (for known-answer vectors, whose dates are in the past).
    #[must_use]
    pub fn pinned_at(self, ms: u64) -> Self {
        self.with_clock(move || ms)
    }

    /// The same, accepting any `X-Sdk-Date` (still signed and well-formed).
    #[must_use]
    pub fn without_date_check(mut self) -> Self {
        self.max_clock_skew = None;
        self
    }

    /// The time now by the mock's clock.
    fn now(&self) -> u64 {
        match &self.now_ms {
            Some(clock) => clock(),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

impl std::fmt::Debug for MarketplaceConfig {
    /// Prints the SK and the ISV key as `[REDACTED]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketplaceConfig")
            .field("ak", &self.ak)
            .field("sk", &"[REDACTED]")
            .field("isv_key", &"[REDACTED]")
            .field("now_ms", &self.now_ms.as_ref().map_or("system clock", |_| "custom clock"))
            .field("max_clock_skew", &self.max_clock_skew)
            .finish()
    }
}

/// The mock's endpoints: what failures target and what [`Received`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// `GET …/order/query`.
    QueryOrder,
    /// `POST …/isv/usage-data`.
    UsagePush,
    /// `POST …/license/activate`.
    LicenseActivate,
    /// `POST …/license/heartbeat`.
    LicenseHeartbeat,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 4] =
        [Endpoint::QueryOrder, Endpoint::UsagePush, Endpoint::LicenseActivate, Endpoint::LicenseHeartbeat];

    /// Its path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::QueryOrder => QUERY_ORDER_PATH,
            Endpoint::UsagePush => USAGE_PUSH_PATH,
            Endpoint::LicenseActivate => LICENSE_ACTIVATE_PATH,
            Endpoint::LicenseHeartbeat => LICENSE_HEARTBEAT_PATH,
        }
    }

    /// Its short name in the control routes: `order`, `usage`, `activate`, `heartbeat`.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::QueryOrder => "order",
            Endpoint::UsagePush => "usage",
            Endpoint::LicenseActivate => "activate",
            Endpoint::LicenseHeartbeat => "heartbeat",
        }
    }

    /// The endpoint of a short name ([`Endpoint::name`]).
    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The endpoint at `path` (exact).
    pub fn from_path(path: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }

    /// Whether its answers are `error_code`/`error_msg` of the license API (`9…` codes).
    fn is_license(self) -> bool {
        matches!(self, Endpoint::LicenseActivate | Endpoint::LicenseHeartbeat)
    }
}

/// How an injected failure answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Answer this HTTP status with this code in the endpoint's own body shape (usage and license:
    /// `error_code`/`error_msg`; order: `resultCode`/`resultMsg`), the message `injected failure`.
    Status {
        /// The HTTP status (an invalid one answers `500`).
        status: u16,
        /// The code in the body.
        code: String,
    },
    /// Accept the connection and never answer (hold it until the mock is dropped): for client timeouts.
    Hang,
    /// Close the connection without an answer: for network errors.
    Close,
}

/// One request to a known endpoint as the mock received it, with its verdicts and answer.
#[derive(Clone, Debug)]
pub struct Received {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string (still percent-encoded); empty if none.
    pub query: String,
    /// The headers as received (`Authorization` and the usage signature included).
    pub headers: http::HeaderMap,
    /// The body bytes (empty when it could not be read).
    pub body: Bytes,
    /// The `Access` of the `Authorization` header, if it could be parsed.
    pub ak: Option<String>,
    /// The AK/SK verdict (computed also for injected failures and wrong methods); the error says why.
    pub auth: Result<(), String>,
    /// Usage pushes: the body signature's verdict. `None` for the other endpoints.
    pub body_signature: Option<Result<(), String>>,
    /// Usage pushes: the number of `usage_records`, if the body is JSON with such an array.
    pub record_count: Option<usize>,
    /// The HTTP status answered; `None` for [`Failure::Hang`] and [`Failure::Close`].
    pub status: Option<u16>,
    /// The code answered (`MKT.…`, `9…`); `None` without an answer.
    pub code: Option<String>,
    /// The message answered (for `MKT.0101`: what was wrong); `None` without an answer.
    pub message: Option<String>,
    /// Whether an injected [`Failure`] answered it.
    pub injected: bool,
}

impl Received {
    /// The value of header `name` (case-insensitive), if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON (`None`: empty or not JSON).
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// One accepted usage push (`MKT.0000`).
#[derive(Clone, Debug, PartialEq)]
pub struct UsageBatch {
    /// Its records as sent, in order.
    pub records: Vec<serde_json::Value>,
    /// Their `metering_sn`s, in the same order.
    pub metering_sns: Vec<String>,
}

/// What a license is: set by a test with [`MockMarketplace::add_license`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenseSpec {
    /// `product_id` of the activation answer.
    pub product_id: String,
    /// `order_id` of the activation answer.
    pub order_id: String,
    /// `amount` (licensed quantity) of the activation answer.
    pub amount: i64,
    /// Expiry, `yyyyMMddHHmmss` (UTC).
    pub expire_time: String,
    /// Whether the buyer has received the license; activation before that is refused (`92020004`).
    pub received: bool,
}

/// A license and what happened to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct License {
    /// The license code.
    pub code: String,
    /// What it is.
    pub spec: LicenseSpec,
    /// Whether it has been activated.
    pub activated: bool,
    /// When it was activated (`yyyyMMddHHmmss`, the mock's clock).
    pub activate_time: Option<String>,
    /// The `real_effect_time` of the activation, if given.
    pub real_effect_time: Option<String>,
    /// `ALIVE` unless set otherwise ([`MockMarketplace::set_license_status`]); a heartbeat reports `EXPIRED` for
    /// an `ALIVE` license past its expiry.
    pub status: String,
    /// Heartbeats answered `92020000`.
    pub heartbeats: u64,
}

/// A running mock marketplace. Dropping it stops the server.
pub struct MockMarketplace {
    shared: Arc<Shared>,
    /// Stops the server when dropped.
    server: MockServer,
}

/// The server's name in log lines and errors (and, as `mock-marketplace`, its thread's).
const NAME: &str = "mock marketplace";

/// What the server tasks and the [`MockMarketplace`] share.
struct Shared {
    config: MarketplaceConfig,
    state: Mutex<State>,
}

impl Shared {
    fn new(config: MarketplaceConfig) -> Arc<Self> {
        Arc::new(Self { config, state: Mutex::new(State::new()) })
    }

    /// The state; a panic elsewhere while the lock was held does not make it unreadable.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MockMarketplace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockMarketplace").field("base_url", &self.base_url()).finish_non_exhaustive()
    }
}

impl MockMarketplace {
    /// Binds `listen` (port 0: any free port) and serves on the current tokio runtime.
    ///
    /// # Errors
    /// The address cannot be bound (the cause is the `std::io::Error`).
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn`).
    pub async fn start(listen: SocketAddr, config: MarketplaceConfig) -> anyhow::Result<Self> {
        let shared = Shared::new(config);
        let server = MockServer::start(listen, NAME, handler(&shared)).await?;
        Ok(Self { shared, server })
    }

    /// Serves on `127.0.0.1` (a free port) from a thread of its own with its own runtime: for synchronous tests, or
    /// to outlive the caller's runtime.
    ///
    /// # Errors
    /// The thread, its runtime or the listener cannot be created.
    pub fn start_in_background(config: MarketplaceConfig) -> anyhow::Result<Self> {
        let shared = Shared::new(config);
        let server = MockServer::start_in_background(NAME, handler(&shared))?;
        Ok(Self { shared, server })
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT` (no trailing `/`): the OpenAPI endpoint to give the component.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The next `times` calls to `endpoint` fail as `failure` says, after the failures already queued for it.
    pub fn fail_next(&self, endpoint: Endpoint, times: usize, failure: Failure) {
        self.shared.state().fail_next(endpoint, times, failure);
    }

    /// The next `times` calls to `endpoint` (after those already queued) are answered normally: queued before
    /// failures, it scripts "the first batch goes through, then an outage".
    pub fn pass_next(&self, endpoint: Endpoint, times: usize) {
        self.shared.state().pass_next(endpoint, times);
    }

    /// Every call to `endpoint` fails as `failure` says (once the queued ones are spent), until
    /// [`MockMarketplace::clear_failures`].
    pub fn fail_always(&self, endpoint: Endpoint, failure: Failure) {
        self.shared.state().fail_always(endpoint, failure);
    }

    /// No more injected failures, on any endpoint.
    pub fn clear_failures(&self) {
        self.shared.state().clear_failures();
    }

    /// Every request to a known endpoint so far (since [`MockMarketplace::clear_records`]), in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.state().received.clone()
    }

    /// The accepted usage pushes so far, in order.
    pub fn usage_batches(&self) -> Vec<UsageBatch> {
        self.shared.state().batches.clone()
    }

    /// How many accepted records carried each `metering_sn` (a push accepted twice counts 2: the marketplace would
    /// have deduplicated it).
    pub fn metering_sn_counts(&self) -> BTreeMap<String, usize> {
        self.shared.state().sn_counts.clone()
    }

    /// Forgets the received requests, the accepted pushes and the `metering_sn` counts (orders, licenses and
    /// failures stay).
    pub fn clear_records(&self) {
        let mut state = self.shared.state();
        state.received.clear();
        state.batches.clear();
        state.sn_counts.clear();
    }

    /// Adds the order `order_id`, or replaces it (the canned ones too): `order_info` is the `orderInfo` object the
    /// query answers with.
    pub fn add_order(&self, order_id: impl Into<String>, order_info: serde_json::Value) {
        self.shared.state().orders.insert(order_id.into(), order_info);
    }

    /// Adds the license `code`, not activated and `ALIVE`, or replaces it.
    pub fn add_license(&self, code: impl Into<String>, spec: LicenseSpec) {
        self.shared.state().add_license(code.into(), spec);
    }

    /// Sets the status (`ALIVE`, `EXPIRED`, `RELEASED`, …) heartbeats report for `code`; `false` if unknown. A
    /// `RELEASED` license cannot be activated.
    pub fn set_license_status(&self, code: &str, status: &str) -> bool {
        match self.shared.state().licenses.get_mut(code) {
            Some(license) => {
                license.status = status.to_owned();
                true
            }
            None => false,
        }
    }

    /// The license `code` as it stands.
    pub fn license(&self, code: &str) -> Option<License> {
        self.shared.state().licenses.get(code).cloned()
    }
}

/// The server's request handler: [`handle`] on `shared`.
fn handler(shared: &Arc<Shared>) -> impl Handler {
    let shared = Arc::clone(shared);
    move |request| handle(Arc::clone(&shared), request)
}

/// Reads the request and answers it, hangs, or drops the connection, as [`State::respond`] decides.
async fn handle(
    shared: Arc<Shared>,
    request: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = request.into_parts();
    let (body, too_large) = read_body(body, MAX_BODY_BYTES).await;
    let now_ms = shared.config.now();
    let outcome = shared.state().respond(&shared.config, &parts, body, too_large, now_ms);
    let (method, path) = (&parts.method, parts.uri.path());
    match outcome {
        Outcome::Answer { status, body } => {
            tracing::info!(target: "harness::marketplace", %method, %path, status = status.as_u16(), "mock marketplace");
            let mut response = http::Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json;charset=UTF-8"));
            Ok(response)
        }
        Outcome::Hang => {
            tracing::info!(target: "harness::marketplace", %method, %path, "mock marketplace: hanging (injected)");
            std::future::pending().await
        }
        Outcome::Close => {
            tracing::info!(target: "harness::marketplace", %method, %path, "mock marketplace: closing (injected)");
            Err(std::io::Error::other("mock marketplace: injected close"))
        }
    }
}
