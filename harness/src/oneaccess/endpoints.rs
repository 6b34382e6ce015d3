//! The mock's state and its four endpoints, as a synchronous function of the state, the request and the time.
//!
//! Error answers use OneAccess's (Spring Security OAuth's) words: `invalid_client` / "Bad client credentials",
//! `invalid_grant` / "Invalid authorization code", "Invalid refresh token", "Redirect URI mismatch", and for
//! userinfo `unauthorized` / "Full authentication is required to access this resource".

use super::{
    AUTHORIZE_PATH, Availability, CODE_TTL, Counts, DEFAULT_ACCESS_TOKEN_TTL_S, LOGOUT_PATH, MockClient, MockConfig,
    MockUser, REFRESH_TOKEN_TTL, Received, TOKEN_PATH, USERINFO_PATH, decode_form,
};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::Full;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The content type of every JSON answer, as OneAccess sends it.
pub(super) const JSON: &str = "application/json;charset=UTF-8";

/// Characters left as they are in the `state` put into a redirect: RFC 3986's unreserved ones.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What a request gets.
pub(super) enum Reply {
    /// An answer.
    Answer(http::Response<Full<Bytes>>),
    /// No answer ([`Availability::Hang`]).
    Hang,
}

/// An authorization code waiting for its exchange.
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    user_name: String,
    expires_at: Instant,
}

/// An issued access or refresh token. `expires_at` `None`: never (a lifetime past what `Instant` holds).
struct TokenGrant {
    client_id: String,
    user_name: String,
    expires_at: Option<Instant>,
    revoked: bool,
}

impl TokenGrant {
    fn usable(&self, now: Instant) -> bool {
        !self.revoked && self.expires_at.is_none_or(|at| now < at)
    }
}

/// Everything the mock knows and has seen.
pub(super) struct State {
    clients: Vec<MockClient>,
    users: Vec<MockUser>,
    pub(super) login_user: Option<String>,
    pub(super) access_token_ttl_s: u64,
    pub(super) availability: Availability,
    codes: HashMap<String, CodeGrant>,
    access_tokens: HashMap<String, TokenGrant>,
    refresh_tokens: HashMap<String, TokenGrant>,
    pub(super) received: Vec<Received>,
    pub(super) token_requests: Vec<Vec<(String, String)>>,
    pub(super) logouts: Vec<String>,
    pub(super) counts: Counts,
}

impl State {
    pub(super) fn new(config: MockConfig) -> Self {
        let mut state = Self {
            clients: Vec::new(),
            users: Vec::new(),
            login_user: config.users.first().map(|u| u.user_name.clone()),
            access_token_ttl_s: DEFAULT_ACCESS_TOKEN_TTL_S,
            availability: Availability::Up,
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            received: Vec::new(),
            token_requests: Vec::new(),
            logouts: Vec::new(),
            counts: Counts::default(),
        };
        // The first of duplicates counts.
        for client in config.clients {
            if state.client(&client.client_id).is_none() {
                state.clients.push(client);
            }
        }
        for user in config.users {
            if state.user(&user.user_name).is_none() {
                state.users.push(user);
            }
        }
        state
    }

    fn client(&self, client_id: &str) -> Option<&MockClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    fn user(&self, user_name: &str) -> Option<&MockUser> {
        self.users.iter().find(|u| u.user_name == user_name)
    }

    pub(super) fn add_client(&mut self, client: MockClient) {
        self.clients.retain(|c| c.client_id != client.client_id);
        self.clients.push(client);
    }

    pub(super) fn add_user(&mut self, user: MockUser) {
        self.users.retain(|u| u.user_name != user.user_name);
        self.users.push(user);
    }

    pub(super) fn ensure_user(&mut self, user_name: &str) {
        if self.user(user_name).is_none() {
            self.users.push(MockUser::new(user_name, user_name));
        }
    }

    pub(super) fn expire_access_tokens(&mut self) {
        self.access_tokens.values_mut().for_each(|t| t.revoked = true);
    }

    pub(super) fn revoke_refresh_tokens(&mut self) {
        self.refresh_tokens.values_mut().for_each(|t| t.revoked = true);
    }

    pub(super) fn issue_code(&mut self, client_id: &str, redirect_uri: &str, user_name: &str, now: Instant) -> String {
        self.codes.retain(|_, grant| now < grant.expires_at);
        let code = uuid::Uuid::new_v4().simple().to_string();
        let grant = CodeGrant {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            user_name: user_name.to_owned(),
            // A code's lifetime is minutes: `now + CODE_TTL` cannot overflow an `Instant` in practice.
            expires_at: now.checked_add(CODE_TTL).unwrap_or(now),
        };
        self.codes.insert(code.clone(), grant);
        code
    }

    /// Answers one request; the caller has recorded it already.
    pub(super) fn respond(&mut self, request: &Received, now: Instant) -> Reply {
        match self.availability {
            Availability::Up => {}
            Availability::Hang => {
                self.counts.unavailable += 1;
                return Reply::Hang;
            }
            Availability::Error500 => {
                self.counts.unavailable += 1;
                return Reply::Answer(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "Internal Server Error",
                ));
            }
        }
        let method = request.method.as_str();
        let path = request.path.as_str();
        let response = match path {
            AUTHORIZE_PATH if method == Method::GET => self.authorize(&request.query_pairs(), now),
            TOKEN_PATH if method == Method::POST => self.token(request, now),
            USERINFO_PATH if method == Method::GET => self.userinfo(request, now),
            LOGOUT_PATH if method == Method::GET => self.logout(&request.query_pairs()),
            AUTHORIZE_PATH | USERINFO_PATH | LOGOUT_PATH => method_not_allowed(method, "GET"),
            TOKEN_PATH => method_not_allowed(method, "POST"),
            _ => error(StatusCode::NOT_FOUND, "not_found", "No such endpoint"),
        };
        let userinfo_401 = path == USERINFO_PATH && response.status() == StatusCode::UNAUTHORIZED;
        if response.status().is_client_error() && !userinfo_401 {
            self.counts.rejected += 1;
        }
        Reply::Answer(response)
    }

    /// `GET /api/v1/oauth2/authorize`: a code for the login user, sent back to `redirect_uri` with `state`.
    fn authorize(&mut self, query: &[(String, String)], now: Instant) -> http::Response<Full<Bytes>> {
        let client_id = first(query, "client_id").unwrap_or_default();
        if self.client(client_id).is_none() {
            return error(StatusCode::BAD_REQUEST, "invalid_client", "Bad client credentials");
        }
        match first(query, "response_type") {
            Some("code") => {}
            other => {
                let shown = other.unwrap_or_default();
                return error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_response_type",
                    &format!("Unsupported response types: [{shown}]"),
                );
            }
        }
        let Some(redirect_uri) = first(query, "redirect_uri").filter(|r| !r.is_empty()) else {
            return error(StatusCode::BAD_REQUEST, "invalid_request", "A redirect_uri must be supplied.");
        };
        let Some(user_name) = self.login_user.clone() else {
            return login_page();
        };
        let code = self.issue_code(client_id, redirect_uri, &user_name, now);
        let location = redirect_with_code(redirect_uri, &code, first(query, "state"));
        let Ok(location) = HeaderValue::from_str(&location) else {
            self.codes.remove(&code);
            return error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid redirect_uri");
        };
        self.counts.authorize += 1;
        redirect(location)
    }

    /// `POST /api/v1/oauth2/token`: the client's credentials, then the grant.
    fn token(&mut self, request: &Received, now: Instant) -> http::Response<Full<Bytes>> {
        let is_form = request.header("content-type").is_some_and(|ct| {
            ct.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
        let fields = if is_form { decode_form(&request.body) } else { Vec::new() };
        self.token_requests.push(fields.clone());
        if !is_form {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Content type must be application/x-www-form-urlencoded",
            );
        }
        let client_id = first(&fields, "client_id").unwrap_or_default();
        let authenticated = self
            .client(client_id)
            .is_some_and(|c| first(&fields, "client_secret").is_some_and(|s| constant_time_eq(s, &c.client_secret)));
        if !authenticated {
            return error(StatusCode::UNAUTHORIZED, "invalid_client", "Bad client credentials");
        }
        match first(&fields, "grant_type") {
            Some("authorization_code") => self.exchange_code(client_id, &fields, now),
            Some("refresh_token") => self.refresh(client_id, &fields, now),
            Some(other) => {
                error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &format!("Unsupported grant type: {other}"))
            }
            None => error(StatusCode::BAD_REQUEST, "invalid_request", "Missing grant type"),
        }
    }

    /// `grant_type=authorization_code`. A known code is consumed by this presentation, whatever follows.
    fn exchange_code(
        &mut self,
        client_id: &str,
        fields: &[(String, String)],
        now: Instant,
    ) -> http::Response<Full<Bytes>> {
        let Some(code) = first(fields, "code") else {
            return error(StatusCode::BAD_REQUEST, "invalid_request", "An authorization code must be supplied.");
        };
        let Some(grant) = self.codes.remove(code) else {
            return invalid_grant("Invalid authorization code");
        };
        if now >= grant.expires_at || grant.client_id != client_id {
            return invalid_grant("Invalid authorization code");
        }
        if first(fields, "redirect_uri").is_some_and(|r| r != grant.redirect_uri) {
            return invalid_grant("Redirect URI mismatch");
        }
        let refresh_token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        self.refresh_tokens.insert(
            refresh_token.clone(),
            TokenGrant {
                client_id: client_id.to_owned(),
                user_name: grant.user_name.clone(),
                expires_at: now.checked_add(REFRESH_TOKEN_TTL),
                revoked: false,
            },
        );
        self.counts.token_exchanges_ok += 1;
        self.token_answer(client_id, &grant.user_name, &refresh_token, now)
    }

    /// `grant_type=refresh_token`: a new access token, the same refresh token.
    fn refresh(&mut self, client_id: &str, fields: &[(String, String)], now: Instant) -> http::Response<Full<Bytes>> {
        let user_name = first(fields, "refresh_token")
            .and_then(|token| self.refresh_tokens.get(token))
            .filter(|grant| grant.usable(now) && grant.client_id == client_id)
            .map(|grant| grant.user_name.clone());
        let (Some(user_name), Some(refresh_token)) = (user_name, first(fields, "refresh_token")) else {
            return invalid_grant("Invalid refresh token");
        };
        self.counts.refreshes_ok += 1;
        self.token_answer(client_id, &user_name, refresh_token, now)
    }

    /// Issues an access token and answers with it.
    fn token_answer(
        &mut self,
        client_id: &str,
        user_name: &str,
        refresh_token: &str,
        now: Instant,
    ) -> http::Response<Full<Bytes>> {
        let ttl = self.access_token_ttl_s;
        let access_token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        self.access_tokens.insert(
            access_token.clone(),
            TokenGrant {
                client_id: client_id.to_owned(),
                user_name: user_name.to_owned(),
                expires_at: now.checked_add(Duration::from_secs(ttl)),
                revoked: false,
            },
        );
        let body = serde_json::json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": "get_user_info",
            "refresh_token": refresh_token,
        });
        let mut response = json(StatusCode::OK, &body);
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }

    /// `GET /api/v1/oauth2/userinfo` with `Authorization: Bearer {access_token}`.
    fn userinfo(&mut self, request: &Received, now: Instant) -> http::Response<Full<Bytes>> {
        let user = request
            .header("authorization")
            .and_then(bearer_token)
            .and_then(|token| self.access_tokens.get(token))
            .filter(|grant| grant.usable(now))
            .and_then(|grant| self.user(&grant.user_name));
        match user.map(MockUser::userinfo) {
            Some(info) => {
                self.counts.userinfo_ok += 1;
                json(StatusCode::OK, &info)
            }
            None => {
                self.counts.userinfo_401 += 1;
                let description = "Full authentication is required to access this resource";
                let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized", description);
                let challenge = format!(
                    r#"Bearer realm="oauth2-resource", error="unauthorized", error_description="{description}""#
                );
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
        }
    }

    /// `GET /api/v1/logout?redirect_url=…`: back to the merchant. The login user stays logged in.
    fn logout(&mut self, query: &[(String, String)]) -> http::Response<Full<Bytes>> {
        let Some(url) = first(query, "redirect_url").filter(|u| !u.is_empty()) else {
            return error(StatusCode::BAD_REQUEST, "invalid_request", "A redirect_url must be supplied.");
        };
        let Ok(location) = HeaderValue::from_str(url) else {
            return error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid redirect_url");
        };
        self.logouts.push(url.to_owned());
        self.counts.logouts += 1;
        redirect(location)
    }
}

/// The first value of parameter `name`.
fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares two secrets without an early exit on the first difference.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `redirect_uri` with `code` and (if sent) `state` added to its query, before any fragment.
pub(super) fn redirect_with_code(redirect_uri: &str, code: &str, state: Option<&str>) -> String {
    let (base, fragment) = match redirect_uri.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (redirect_uri, None),
    };
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    let mut location = format!("{base}{separator}code={code}");
    if let Some(state) = state {
        location.push_str("&state=");
        location.extend(utf8_percent_encode(state, QUERY_VALUE));
    }
    if let Some(fragment) = fragment {
        location.push('#');
        location.push_str(fragment);
    }
    location
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json(status: StatusCode, body: &serde_json::Value) -> http::Response<Full<Bytes>> {
    response(status, JSON, Bytes::from(body.to_string()))
}

/// `{"error": …, "error_description": …}` with `status`.
pub(super) fn error(status: StatusCode, error: &str, description: &str) -> http::Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": error, "error_description": description }))
}

fn invalid_grant(description: &str) -> http::Response<Full<Bytes>> {
    error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn method_not_allowed(method: &str, allowed: &'static str) -> http::Response<Full<Bytes>> {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("Request method '{method}' not supported"),
    );
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

fn redirect(location: HeaderValue) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    response.headers_mut().insert(header::LOCATION, location);
    response
}

/// What the browser sees when nobody is logged in.
fn login_page() -> http::Response<Full<Bytes>> {
    let page = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>OneAccess (mock)</title></head>\n\
                <body><h1>OneAccess (mock)</h1><p>Nobody is logged in. Set a login user on the mock \
                (<code>set_login_user</code>) and retry.</p></body></html>\n";
    response(StatusCode::OK, "text/html;charset=UTF-8", Bytes::from_static(page.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oneaccess_redirect_adds_code_and_encoded_state() {
        assert_eq!(
            redirect_with_code("https://isv.example.com/cb", "c1", Some("test")),
            "https://isv.example.com/cb?code=c1&state=test"
        );
        assert_eq!(
            redirect_with_code("https://isv.example.com/cb?x=1", "c1", None),
            "https://isv.example.com/cb?x=1&code=c1"
        );
        assert_eq!(redirect_with_code("https://isv.example.com/cb?", "c1", None), "https://isv.example.com/cb?code=c1");
        assert_eq!(
            redirect_with_code("https://isv.example.com/cb#top", "c1", Some("a b&c=d/é")),
            "https://isv.example.com/cb?code=c1&state=a%20b%26c%3Dd%2F%C3%A9#top"
        );
    }

    #[test]
    fn oneaccess_bearer_and_secret_helpers() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert!(constant_time_eq("s3cret", "s3cret"));
        assert!(!constant_time_eq("s3cret", "s3creT"));
        assert!(!constant_time_eq("s3cret", "s3cre"));
    }

    #[test]
    fn oneaccess_expired_code_is_refused_and_consumed() {
        let mut state = State::new(MockConfig::with_client("app", "secret"));
        let issued = Instant::now();
        let code = state.issue_code("app", "https://isv.example.com/cb", "zhangsan", issued);
        let later = issued + CODE_TTL;
        let fields = vec![("code".to_owned(), code.clone())];
        assert_eq!(state.exchange_code("app", &fields, later).status(), StatusCode::BAD_REQUEST);
        assert!(!state.codes.contains_key(&code));
    }
}
