//! The mock OneAccess over real HTTP: the code flow, its refusals, refresh, userinfo, logout and unavailability.

#[path = "common/mock_client.rs"]
mod mock_client;

use harness::oneaccess::{Availability, MockClient, MockConfig, MockOneAccess, MockUser};
use mock_client::Answer;
use std::net::SocketAddr;
use std::time::Duration;

const CLIENT: &str = "app-1";
const SECRET: &str = "s3cret";
const CALLBACK: &str = "https://isv.example.com/sso/callback";

/// OneAccess's error answers.
trait AssertError {
    /// Asserts an OAuth error answer.
    fn assert_error(&self, status: u16, error: &str, description: &str);
}

impl AssertError for Answer {
    fn assert_error(&self, status: u16, error: &str, description: &str) {
        assert_eq!(self.status, status, "body: {}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type"), "application/json;charset=UTF-8");
        assert_eq!(self.json(), serde_json::json!({ "error": error, "error_description": description }));
    }
}

/// Sends one request on a fresh HTTP/1.1 connection.
async fn send(mock: &MockOneAccess, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    mock_client::send(mock.addr(), method, target, headers, body).await
}

fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

async fn token(mock: &MockOneAccess, fields: &[(&str, &str)]) -> Answer {
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    send(mock, "POST", "/api/v1/oauth2/token", &headers, &form(fields)).await
}

async fn exchange(mock: &MockOneAccess, code: &str, secret: &str, redirect_uri: Option<&str>) -> Answer {
    let mut fields = vec![("client_id", CLIENT), ("client_secret", secret), ("code", code)];
    fields.push(("grant_type", "authorization_code"));
    if let Some(uri) = redirect_uri {
        fields.push(("redirect_uri", uri));
    }
    token(mock, &fields).await
}

async fn refresh(mock: &MockOneAccess, refresh_token: &str) -> Answer {
    let fields = [
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("refresh_token", refresh_token),
        ("grant_type", "refresh_token"),
    ];
    token(mock, &fields).await
}

async fn userinfo(mock: &MockOneAccess, access_token: &str) -> Answer {
    let auth = format!("Bearer {access_token}");
    let headers = [("authorization", auth.as_str()), ("accept", "application/json")];
    send(mock, "GET", "/api/v1/oauth2/userinfo", &headers, "").await
}

fn authorize_target(client_id: &str, redirect_uri: &str, state: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", "get_user_info"),
    ]);
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    format!("/api/v1/oauth2/authorize?{}", query.finish())
}

fn config() -> MockConfig {
    MockConfig {
        clients: vec![MockClient::new(CLIENT, SECRET), MockClient::new("app-2", "other")],
        users: vec![MockUser::new("zhangsan", "张三").with_role("admin"), MockUser::new("lisi", "李四")],
    }
}

async fn start() -> MockOneAccess {
    MockOneAccess::start(SocketAddr::from(([127, 0, 0, 1], 0)), config()).await.expect("starts")
}

/// The query parameters of a `Location`.
fn location_query(location: &str) -> Vec<(String, String)> {
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn oneaccess_full_code_flow() {
    let mock = start().await;
    assert!(mock.base_url().starts_with("http://127.0.0.1:"));

    let answer = send(&mock, "GET", &authorize_target(CLIENT, CALLBACK, Some("st a/te")), &[], "").await;
    assert_eq!(answer.status, 302);
    let location = answer.header("location").to_owned();
    assert!(location.starts_with(&format!("{CALLBACK}?code=")), "{location}");
    assert!(location.ends_with("&state=st%20a%2Fte"), "{location}");
    let query = location_query(&location);
    let code = param(&query, "code").expect("a code").to_owned();
    assert_eq!(param(&query, "state"), Some("st a/te"));

    let answer = exchange(&mock, &code, SECRET, Some(CALLBACK)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "application/json;charset=UTF-8");
    let tokens = answer.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 7200);
    assert_eq!(tokens["scope"], "get_user_info");
    let access_token = tokens["access_token"].as_str().expect("access_token");
    assert!(tokens["refresh_token"].as_str().is_some_and(|t| !t.is_empty()));

    let answer = userinfo(&mock, access_token).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "application/json;charset=UTF-8");
    let user = answer.json();
    let expected = MockUser::new("zhangsan", "张三").with_role("admin");
    assert_eq!(user, expected.userinfo());
    assert_eq!(user["userName"], "zhangsan");
    assert_eq!(user["name"], "张三");
    assert_eq!(user["role"], "admin");
    assert_eq!(user["id"], expected.id());
    for field in [
        "id",
        "userName",
        "name",
        "email",
        "mobile",
        "role",
        "organizationName",
        "organizationCode",
        "userId",
        "projectName",
        "tenant",
    ] {
        assert!(user[field].is_string(), "{field}");
    }

    let counts = mock.counts();
    assert_eq!((counts.authorize, counts.token_exchanges_ok, counts.userinfo_ok), (1, 1, 1));
    assert_eq!((counts.rejected, counts.userinfo_401), (0, 0));
    let sent = &mock.token_requests()[0];
    assert!(sent.contains(&("client_secret".to_owned(), SECRET.to_owned())));
    assert!(sent.contains(&("redirect_uri".to_owned(), CALLBACK.to_owned())));
    let received = mock.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[1].method, "POST");
    assert_eq!(received[1].path, "/api/v1/oauth2/token");
    assert_eq!(received[1].header("Content-Type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(received[2].header("authorization"), Some(format!("Bearer {access_token}").as_str()));
    assert_eq!(param(&received[0].query_pairs(), "scope"), Some("get_user_info"));
}

#[tokio::test]
async fn oneaccess_authorize_follows_the_login_user_and_redirect_query() {
    let mock = start().await;
    mock.set_login_user(Some("lisi"));
    let answer =
        send(&mock, "GET", &authorize_target(CLIENT, "https://isv.example.com/cb?tenant=t1", None), &[], "").await;
    assert_eq!(answer.status, 302);
    let location = answer.header("location").to_owned();
    assert!(location.starts_with("https://isv.example.com/cb?tenant=t1&code="), "{location}");
    assert!(!location.contains("state="), "no state sent, none returned: {location}");
    let code = param(&location_query(&location), "code").expect("a code").to_owned();
    let tokens = exchange(&mock, &code, SECRET, None).await.json();
    let user = userinfo(&mock, tokens["access_token"].as_str().expect("a token")).await.json();
    assert_eq!(user["userName"], "lisi");

    mock.set_login_user(None);
    let answer = send(&mock, "GET", &authorize_target(CLIENT, CALLBACK, Some("s")), &[], "").await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("content-type").starts_with("text/html"));
    assert_eq!(mock.counts().authorize, 1);
}

#[tokio::test]
async fn oneaccess_authorize_refusals() {
    let mock = start().await;
    let answer = send(&mock, "GET", &authorize_target("nobody", CALLBACK, Some("s")), &[], "").await;
    answer.assert_error(400, "invalid_client", "Bad client credentials");
    let target = authorize_target(CLIENT, CALLBACK, None).replace("response_type=code", "response_type=token");
    let answer = send(&mock, "GET", &target, &[], "").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "unsupported_response_type");
    let answer = send(&mock, "GET", "/api/v1/oauth2/authorize?response_type=code&client_id=app-1", &[], "").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "invalid_request");
    let answer = send(&mock, "GET", "/api/v1/oauth2/nothing", &[], "").await;
    assert_eq!(answer.status, 404);
    let answer = send(&mock, "DELETE", "/api/v1/oauth2/token", &[], "").await;
    assert_eq!(answer.status, 405);
    assert_eq!(mock.counts().rejected, 5);
    assert_eq!(mock.counts().authorize, 0);
}

#[tokio::test]
async fn oneaccess_code_is_single_use() {
    let mock = start().await;
    let code = mock.issue_code(CLIENT, CALLBACK, "zhangsan");
    assert_eq!(exchange(&mock, &code, SECRET, Some(CALLBACK)).await.status, 200);
    exchange(&mock, &code, SECRET, Some(CALLBACK)).await.assert_error(
        400,
        "invalid_grant",
        "Invalid authorization code",
    );
    exchange(&mock, "made-up", SECRET, None).await.assert_error(400, "invalid_grant", "Invalid authorization code");
    let counts = mock.counts();
    assert_eq!((counts.token_exchanges_ok, counts.rejected, counts.authorize), (1, 2, 0));
    assert_eq!(mock.token_requests().len(), 3);
}

#[tokio::test]
async fn oneaccess_wrong_client_secret_is_401_and_keeps_the_code() {
    let mock = start().await;
    let code = mock.issue_code(CLIENT, CALLBACK, "zhangsan");
    exchange(&mock, &code, "wrong", Some(CALLBACK)).await.assert_error(401, "invalid_client", "Bad client credentials");
    let fields = [
        ("client_id", "unknown"),
        ("client_secret", SECRET),
        ("code", code.as_str()),
        ("grant_type", "authorization_code"),
    ];
    token(&mock, &fields).await.assert_error(401, "invalid_client", "Bad client credentials");
    // Not authenticated, so the code was not looked at: it still works.
    assert_eq!(exchange(&mock, &code, SECRET, Some(CALLBACK)).await.status, 200);
}

#[tokio::test]
async fn oneaccess_code_of_another_client_is_refused() {
    let mock = start().await;
    let code = mock.issue_code("app-2", CALLBACK, "zhangsan");
    exchange(&mock, &code, SECRET, None).await.assert_error(400, "invalid_grant", "Invalid authorization code");
}

#[tokio::test]
async fn oneaccess_redirect_uri_mismatch_consumes_the_code() {
    let mock = start().await;
    let code = mock.issue_code(CLIENT, CALLBACK, "zhangsan");
    exchange(&mock, &code, SECRET, Some("https://evil.example.com/cb")).await.assert_error(
        400,
        "invalid_grant",
        "Redirect URI mismatch",
    );
    exchange(&mock, &code, SECRET, Some(CALLBACK)).await.assert_error(
        400,
        "invalid_grant",
        "Invalid authorization code",
    );
}

#[tokio::test]
async fn oneaccess_token_request_shape_refusals() {
    let mock = start().await;
    let code = mock.issue_code(CLIENT, CALLBACK, "zhangsan");
    let json = format!(r#"{{"client_id":"{CLIENT}","client_secret":"{SECRET}","code":"{code}"}}"#);
    let answer = send(&mock, "POST", "/api/v1/oauth2/token", &[("content-type", "application/json")], &json).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "invalid_request");
    let fields = [("client_id", CLIENT), ("client_secret", SECRET), ("grant_type", "password")];
    let answer = token(&mock, &fields).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "unsupported_grant_type");
    assert_eq!(mock.token_requests()[0], Vec::new(), "a JSON body is not read as a form");
    // The code was never presented in a form: it still works.
    let headers = [("content-type", "application/x-www-form-urlencoded; charset=UTF-8")];
    let body = form(&[
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("code", code.as_str()),
        ("grant_type", "authorization_code"),
    ]);
    assert_eq!(send(&mock, "POST", "/api/v1/oauth2/token", &headers, &body).await.status, 200);
}

#[tokio::test]
async fn oneaccess_refresh_then_revoked() {
    let mock = start().await;
    let code = mock.issue_code(CLIENT, CALLBACK, "lisi");
    let tokens = exchange(&mock, &code, SECRET, None).await.json();
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token").to_owned();

    mock.set_access_token_ttl_s(60);
    let answer = refresh(&mock, &refresh_token).await;
    assert_eq!(answer.status, 200);
    let renewed = answer.json();
    assert_eq!(renewed["token_type"], "Bearer");
    assert_eq!(renewed["expires_in"], 60);
    assert_eq!(renewed["refresh_token"], refresh_token.as_str());
    assert_ne!(renewed["access_token"], tokens["access_token"]);
    let user = userinfo(&mock, renewed["access_token"].as_str().expect("a token")).await.json();
    assert_eq!(user["userName"], "lisi");

    refresh(&mock, "unknown").await.assert_error(400, "invalid_grant", "Invalid refresh token");
    mock.revoke_refresh_tokens();
    refresh(&mock, &refresh_token).await.assert_error(400, "invalid_grant", "Invalid refresh token");
    let counts = mock.counts();
    assert_eq!((counts.refreshes_ok, counts.rejected), (1, 2));
    let sent = &mock.token_requests()[1];
    assert!(sent.contains(&("grant_type".to_owned(), "refresh_token".to_owned())));
    assert!(sent.contains(&("refresh_token".to_owned(), refresh_token.clone())));
}

#[tokio::test]
async fn oneaccess_userinfo_401_after_expiry() {
    let mock = start().await;
    let code = mock.issue_code(CLIENT, CALLBACK, "zhangsan");
    let tokens = exchange(&mock, &code, SECRET, None).await.json();
    let access_token = tokens["access_token"].as_str().expect("a token");
    assert_eq!(userinfo(&mock, access_token).await.status, 200);

    mock.expire_access_tokens();
    let answer = userinfo(&mock, access_token).await;
    answer.assert_error(401, "unauthorized", "Full authentication is required to access this resource");
    assert!(answer.header("www-authenticate").starts_with("Bearer"));
    send(&mock, "GET", "/api/v1/oauth2/userinfo", &[], "").await.assert_error(
        401,
        "unauthorized",
        "Full authentication is required to access this resource",
    );

    // A refresh gives a working token again; a TTL of 0 gives one that is expired at once.
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");
    let renewed = refresh(&mock, refresh_token).await.json();
    assert_eq!(userinfo(&mock, renewed["access_token"].as_str().expect("a token")).await.status, 200);
    mock.set_access_token_ttl_s(0);
    let instant = refresh(&mock, refresh_token).await.json();
    assert_eq!(instant["expires_in"], 0);
    assert_eq!(userinfo(&mock, instant["access_token"].as_str().expect("a token")).await.status, 401);

    let counts = mock.counts();
    assert_eq!((counts.userinfo_ok, counts.userinfo_401, counts.rejected), (2, 3, 0));
}

#[tokio::test]
async fn oneaccess_logout_redirects_and_is_recorded() {
    let mock = start().await;
    // A line break cannot stand in a `Location`: the mock refuses rather than sending a broken redirect.
    let answer = send(&mock, "GET", "/api/v1/logout?redirect_url=https%3A%2F%2Fisv.example.com%2F%0Ax", &[], "").await;
    assert_eq!(answer.status, 400);
    let back = "https://isv.example.com/bye?x=1&y=2";
    let target =
        format!("/api/v1/logout?redirect_url={}", form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>());
    let answer = send(&mock, "GET", &target, &[], "").await;
    assert_eq!(answer.status, 302);
    assert_eq!(answer.header("location"), back);
    assert_eq!(mock.logouts(), [back]);
    assert_eq!(send(&mock, "GET", "/api/v1/logout", &[], "").await.status, 400);
    let counts = mock.counts();
    assert_eq!((counts.logouts, counts.rejected), (1, 2));
}

#[tokio::test]
async fn oneaccess_hang_times_the_client_out_and_error500_answers() {
    let mock = start().await;
    mock.set_availability(Availability::Hang);
    let target = authorize_target(CLIENT, CALLBACK, Some("s"));
    let hung = tokio::time::timeout(Duration::from_millis(500), send(&mock, "GET", &target, &[], "")).await;
    assert!(hung.is_err(), "the mock answered while hanging");
    assert_eq!(mock.received().len(), 1, "the request was read and recorded");

    mock.set_availability(Availability::Error500);
    send(&mock, "GET", &target, &[], "").await.assert_error(500, "server_error", "Internal Server Error");

    mock.set_availability(Availability::Up);
    assert_eq!(send(&mock, "GET", &target, &[], "").await.status, 302);
    let counts = mock.counts();
    assert_eq!((counts.unavailable, counts.authorize), (2, 1));
}

#[test]
fn oneaccess_background_server_for_sync_tests_stops_on_drop() {
    use std::io::{Read as _, Write as _};
    let mock = MockOneAccess::start_in_background(MockConfig::with_client(CLIENT, SECRET)).expect("starts");
    let addr = mock.addr();
    let mut stream = std::net::TcpStream::connect(addr).expect("connects");
    let target = authorize_target(CLIENT, CALLBACK, Some("x"));
    write!(stream, "GET {target} HTTP/1.1\r\nhost: oneaccess\r\nconnection: close\r\n\r\n").expect("writes");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("reads");
    assert!(answer.starts_with("HTTP/1.1 302"), "{answer}");
    assert!(answer.contains(&format!("location: {CALLBACK}?code=")), "{answer}");
    assert_eq!(mock.counts().authorize, 1);
    assert_eq!(mock.received()[0].query_pairs()[1], ("client_id".to_owned(), CLIENT.to_owned()));

    drop(mock);
    let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(refused.is_err(), "still listening after drop");
}

#[tokio::test]
async fn oneaccess_stops_when_dropped() {
    let mock = start().await;
    let addr = mock.addr();
    drop(mock);
    // The abort takes effect when the runtime next polls the task.
    let mut stopped = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stopped, "still listening after drop");
}
