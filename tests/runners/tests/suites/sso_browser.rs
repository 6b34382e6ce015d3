//! Single sign-on end to end in a real headless browser (Debian's Chromium driven through chromedriver), against
//! the `sso` component in a real runner process (`harness up`, and `spin up` when present) and the mock OneAccess
//! on its own port.
//!
//! It proves, on each runner's default store, that after the kit syncs (tenantSync with the mock as the tenant's
//! `domainName`, applicationSync with an RSA-encrypted client secret, authSync authorising one user):
//!
//! * a browser sent to `/sso/login?tenant=<code>` follows the real redirects (component → OneAccess authorize →
//!   component callback → app URL) and lands logged in: `/sso/me` shows the authorised user, tenant, application
//!   and role; OneAccess saw one code exchange carrying the decrypted client secret and the configured callback;
//!   the session cookie is HttpOnly, and holds neither the access token nor the client secret;
//! * `/sso/logout` goes through OneAccess's logout back to the app URL, and the session is gone (`no_session`);
//! * a revoke (authSync flag 3) ends a live session at its next use (`session_ended`);
//! * a OneAccess user that authSync never authorised is refused (`user_not_authorised`, 403) and gets no session;
//! * an unknown tenant is refused (`unknown_tenant`) without sending the browser to any identity provider.
//!
//! Each browser login round trip is timed and printed. Needs `/usr/bin/chromium` and `/usr/bin/chromedriver`
//! (`scripts/test` installs both), the components built for `wasm32-wasip2` and `target/release/harness`.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fantoccini::{Client, ClientBuilder, Locator};
use harness::oneaccess::{MockClient, MockConfig, MockOneAccess, MockUser};
use hyper_util::client::legacy::connect::HttpConnector;
use koogallery_core::crypto::rsa_secret::{OaepVariant, SystemRng, encrypt_client_secret};
use koogallery_core::marketplace::{Marketplace, fresh_nonce, v1_time_stamp};
use koogallery_core::ports::system_now_ms;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use runners::{HttpClient, Runner, RunnerKind, RunnerOptions};
use serde_json::{Value, json};

use super::{AK, KIT_KEY, exclusive, free_port, key_pair, runner_kinds};

/// The session secret given to the component (test-only, ≥ 32 characters).
const SESSION_SECRET: &str = "sso-browser-test-session-secret-0123456789abcdef";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTANCE: &str = "inst-sso-browser";
const TENANT_ID: &str = "t-sso";
const TENANT_CODE: &str = "sso-co";
const APP_ID: &str = "app-sso";
const CLIENT_ID: &str = "oa-client-1";
const SESSION_COOKIE: &str = "koogallery_sso";
const STATE_COOKIE: &str = "koogallery_sso_state";

/// The OneAccess client secret in plaintext (the test-only fixture's).
fn client_secret_plaintext() -> String {
    let fixture: Value = serde_json::from_str(include_str!("../../../fixtures/kit_client_secret.json"))
        .unwrap_or_else(|e| panic!("kit_client_secret.json: {e}"));
    fixture["plaintext"].as_str().unwrap_or_else(|| panic!("kit_client_secret.json has no plaintext")).to_owned()
}

/// What one runner is set up with.
struct Setup {
    origin: String,
    callback: String,
    app_url: String,
    plaintext: String,
}

/// Sends a kit V2 sync signed now with [`KIT_KEY`] and checks that it answers `000000`.
async fn kit_sync(runner: &Runner, sync: &str, body: &Value) {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|e| panic!("{sync} body: {e}"));
    let mp = Marketplace::from_key(KIT_KEY).unwrap_or_else(|| panic!("kit key"));
    let inbound = mp.kit(&format!("/produceAPI/v2/{sync}"), &bytes, system_now_ms(), &fresh_nonce());
    let uri =
        if inbound.query.is_empty() { inbound.path.clone() } else { format!("{}?{}", inbound.path, inbound.query) };
    let mut request = http::Request::builder().method(inbound.method.as_str()).uri(uri);
    for (name, value) in &inbound.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request.body(Bytes::from(inbound.body)).unwrap_or_else(|e| panic!("{sync} request: {e}"));
    let where_ = runner.kind().name();
    let response = runner.send(request).await.unwrap_or_else(|e| panic!("{where_}: {sync}: {e:#}"));
    let answer: Value = serde_json::from_slice(response.body()).unwrap_or_default();
    assert_eq!(
        answer["resultCode"],
        "000000",
        "{where_}: {sync} answered {} {}\nrunner log:\n{}",
        response.status(),
        String::from_utf8_lossy(response.body()),
        runner.log_tail()
    );
}

/// authSync for zhangsan alone: `flag` 1 authorises, 3 revokes.
fn auth_sync_body(flag: u8) -> Value {
    let now = system_now_ms();
    json!({
        "instanceId": INSTANCE, "tenantId": TENANT_ID, "appId": APP_ID, "flag": flag, "testFlag": 0,
        "timeStamp": v1_time_stamp(now), "currentSyncTime": v1_time_stamp(now),
        "userList": [{"userName": "zhangsan", "name": "张三", "orgCode": "10000", "role": "admin", "enable": "true"}],
    })
}

/// The three kit syncs: the tenant (OneAccess at `domain`), its application (client `oa-client-1`, the client
/// secret RSA-OAEP encrypted for the merchant's public key) and zhangsan's authorisation as admin.
async fn kit_setup(runner: &Runner, domain: &str, plaintext: &str) {
    let now = system_now_ms();
    kit_sync(
        runner,
        "tenantSync",
        &json!({
            "instanceId": INSTANCE, "orderId": "order-sso-browser", "tenantId": TENANT_ID, "tenantCode": TENANT_CODE,
            "name": "SSO 测试公司", "domainName": domain, "flag": 1, "testFlag": 0, "timeStamp": v1_time_stamp(now),
        }),
    )
    .await;
    let mut rng = SystemRng::new().unwrap_or_else(|e| panic!("randomness: {e}"));
    let ciphertext = encrypt_client_secret(key_pair().1, plaintext, OaepVariant::Sha256Mgf1Sha256, &mut rng)
        .unwrap_or_else(|e| panic!("encrypt the client secret: {e}"));
    kit_sync(
        runner,
        "applicationSync",
        &json!({
            "instanceId": INSTANCE, "tenantId": TENANT_ID, "appId": APP_ID, "clientId": CLIENT_ID,
            "clientSecret": ciphertext, "flag": 1, "testFlag": 0, "timeStamp": v1_time_stamp(now),
        }),
    )
    .await;
    kit_sync(runner, "authSync", &auth_sync_body(1)).await;
}

/// chromedriver and the headless Chromium it starts, with a fresh profile directory. Dropping it (also when a
/// test fails) ends the WebDriver process group, Chromium included, and removes the profile.
struct Browser {
    driver: Child,
    profile: PathBuf,
    client: Option<Client>,
}

impl Browser {
    async fn start() -> Self {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(Path::new(tool).is_file(), "{tool} is missing: apt-get install chromium chromium-driver");
        }
        let profile = std::env::temp_dir().join(format!(
            "koogallery-sso-browser-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&profile).unwrap_or_else(|e| panic!("profile dir {}: {e}", profile.display()));
        let port = free_port();
        let log = std::fs::File::create(profile.with_extension("chromedriver.log"))
            .unwrap_or_else(|e| panic!("chromedriver log: {e}"));
        let stderr = log.try_clone().unwrap_or_else(|e| panic!("chromedriver log: {e}"));
        // A process group of its own, so Drop can end chromedriver and every Chromium process it started.
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let mut browser = Self { driver, profile, client: None };
        let webdriver = format!("http://127.0.0.1:{port}");
        browser.wait_ready(&webdriver).await;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", format!("--user-data-dir={}", browser.profile.display()),
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|e| panic!("WebDriver session on {webdriver}: {e}\n{}", browser.driver_log()));
        browser.client = Some(client);
        browser
    }

    /// Polls chromedriver's `/status` until it reports ready.
    async fn wait_ready(&mut self, webdriver: &str) {
        let http = HttpClient::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.driver.try_wait().ok().flatten() {
                panic!("chromedriver exited ({status}):\n{}", self.driver_log());
            }
            let probe = http::Request::get("/status").body(Bytes::new()).unwrap_or_else(|e| panic!("request: {e}"));
            if let Ok(r) = http.send(webdriver, probe).await {
                let status: Value = serde_json::from_slice(r.body()).unwrap_or_default();
                if r.status() == http::StatusCode::OK && status["value"]["ready"] == true {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver not ready after 20 s:\n{}", self.driver_log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn driver_log(&self) -> String {
        std::fs::read_to_string(self.profile.with_extension("chromedriver.log")).unwrap_or_default()
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap_or_else(|| panic!("no WebDriver session"))
    }

    /// Opens `url` (following every redirect) and returns where the browser ended up and how long it took.
    async fn open(&self, url: &str) -> (String, Duration) {
        let started = Instant::now();
        self.client().goto(url).await.unwrap_or_else(|e| panic!("browser: open {url}: {e}"));
        let took = started.elapsed();
        let at = self.client().current_url().await.unwrap_or_else(|e| panic!("browser: current URL: {e}"));
        (at.to_string(), took)
    }

    /// Reloads the page.
    async fn reload(&self) {
        self.client().refresh().await.unwrap_or_else(|e| panic!("browser: reload: {e}"));
    }

    /// The text of the page: the JSON document Chromium shows in its `<pre>`, else the body's text.
    async fn page_text(&self) -> String {
        let script = "const p = document.querySelector('body > pre'); \
                      return p ? p.textContent : (document.body ? document.body.innerText : '');";
        let text = self.client().execute(script, Vec::new()).await.unwrap_or_else(|e| panic!("browser: text: {e}"));
        text.as_str().unwrap_or_default().to_owned()
    }

    /// The page as JSON (`Null` if it is not).
    async fn page_json(&self) -> Value {
        serde_json::from_str(&self.page_text().await).unwrap_or(Value::Null)
    }

    /// The text of the failure page's `<code id="error">`.
    async fn error_code(&self) -> String {
        match self.client().find(Locator::Id("error")).await {
            Ok(element) => element.text().await.unwrap_or_else(|e| panic!("browser: #error text: {e}")),
            Err(e) => panic!("browser: no #error on the page ({e}); the page says:\n{}", self.page_text().await),
        }
    }

    /// `fetch(path)` from the current page, with the browser's own cookies: (status, body text).
    async fn fetch(&self, path: &str) -> (u16, String) {
        let script = "const [path, done] = arguments; \
                      fetch(path, {headers: {accept: 'application/json'}, credentials: 'same-origin'}) \
                        .then(r => r.text().then(t => done([r.status, t]))) \
                        .catch(e => done([0, String(e)]));";
        let answer = self
            .client()
            .execute_async(script, vec![json!(path)])
            .await
            .unwrap_or_else(|e| panic!("browser: fetch {path}: {e}"));
        let status = answer[0].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0);
        (status, answer[1].as_str().unwrap_or_default().to_owned())
    }

    /// The browser's cookies for the current page, as `(name, value, http_only, secure)`.
    async fn cookies(&self) -> Vec<(String, String, bool, bool)> {
        let all = self.client().get_all_cookies().await.unwrap_or_else(|e| panic!("browser: cookies: {e}"));
        all.iter()
            .map(|c| (c.name().to_owned(), c.value().to_owned(), c.http_only() == Some(true), c.secure() == Some(true)))
            .collect()
    }

    /// Ends the WebDriver session (Chromium quits); Drop still ends the processes and removes the profile.
    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.client = None;
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            let group = Pid::from_raw(pid);
            let _ = killpg(group, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && self.driver.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            // Whatever of the group is left (Chromium's helpers outlive chromedriver's SIGTERM).
            let _ = killpg(group, Signal::SIGKILL);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Chromium may still be writing its profile for a moment after the signal.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.profile).is_ok() || !self.profile.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if std::env::var_os("KEEP_RUNNER_STATE").is_none() {
            let _ = std::fs::remove_file(self.profile.with_extension("chromedriver.log"));
        }
    }
}

/// The `Authorization: Bearer` tokens the component sent to the mock's userinfo endpoint: the access tokens.
fn access_tokens_seen(mock: &MockOneAccess) -> Vec<String> {
    mock.received()
        .iter()
        .filter(|r| r.path == harness::oneaccess::USERINFO_PATH)
        .filter_map(|r| r.header("authorization").map(|a| a.trim_start_matches("Bearer ").trim().to_owned()))
        .collect()
}

/// What the runner said last, for failure messages.
fn context(runner: &Runner, mock: &MockOneAccess) -> String {
    let seen: Vec<String> = mock.received().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    format!("mock OneAccess saw: {seen:?}\nrunner log tail:\n{}", runner.log_tail())
}

/// Checks that the browser shows `/sso/me` for zhangsan in tenant t-sso and app app-sso.
async fn assert_logged_in(browser: &Browser, s: &Setup, at: &str, runner: &Runner, mock: &MockOneAccess) {
    let page = browser.page_text().await;
    let where_ = runner.kind().name();
    assert_eq!(
        at,
        s.app_url,
        "{where_}: the login did not land on the app URL; page:\n{page}\n{}",
        context(runner, mock)
    );
    let me: Value = serde_json::from_str(&page).unwrap_or(Value::Null);
    let expected = json!({
        "userName": "zhangsan", "name": "张三", "tenantId": TENANT_ID, "appId": APP_ID, "role": "admin",
        "instanceId": INSTANCE,
    });
    assert_eq!(me, expected, "{where_}: /sso/me after login; page:\n{page}\n{}", context(runner, mock));
}

/// Drives the whole flow in a browser against `kind`.
async fn sso_in_a_browser_on(kind: RunnerKind) {
    let where_ = kind.name();
    let plaintext = client_secret_plaintext();
    let mock = MockOneAccess::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        MockConfig {
            clients: vec![MockClient::new(CLIENT_ID, plaintext.clone())],
            users: vec![MockUser::new("zhangsan", "张三"), MockUser::new("lisi", "李四")],
        },
    )
    .await
    .unwrap_or_else(|e| panic!("mock OneAccess: {e:#}"));
    mock.set_login_user(Some("zhangsan"));

    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let s =
        Setup { callback: format!("{origin}/sso/callback"), app_url: format!("{origin}/sso/me"), origin, plaintext };
    let variables = [
        ("access_keys", AK),
        ("kit_access_keys", KIT_KEY),
        ("rsa_private_key", key_pair().0),
        ("sso_redirect_uri", &s.callback),
        ("sso_app_url", &s.app_url),
        ("sso_session_secret", SESSION_SECRET),
        ("oneaccess_hosts", "http://127.0.0.1:*"),
    ];
    let opts = RunnerOptions {
        variables: variables.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        port: Some(port),
        ..Default::default()
    };
    let runner = Runner::start(kind, opts).await.unwrap_or_else(|e| panic!("{where_}: {e:#}"));
    assert_eq!(runner.origin(), s.origin);
    kit_setup(&runner, &mock.base_url(), &s.plaintext).await;

    let browser = Browser::start().await;
    let mut logins = Vec::new();

    // 1. Login through the real redirects.
    let (at, took) = browser.open(&format!("{}/sso/login?tenant={TENANT_CODE}", s.origin)).await;
    logins.push(took);
    assert_logged_in(&browser, &s, &at, &runner, &mock).await;
    let counts = mock.counts();
    assert_eq!(
        (counts.authorize, counts.token_exchanges_ok),
        (1, 1),
        "{where_}: {counts:?}\n{}",
        context(&runner, &mock)
    );
    let exchanges: Vec<Vec<(String, String)>> = mock
        .token_requests()
        .into_iter()
        .filter(|f| f.iter().any(|(k, v)| k == "grant_type" && v == "authorization_code"))
        .collect();
    assert_eq!(exchanges.len(), 1, "{where_}: code exchanges: {}", exchanges.len());
    let field = |name: &str| exchanges[0].iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(field("client_id").as_deref(), Some(CLIENT_ID), "{where_}: client_id of the code exchange");
    assert!(
        field("client_secret").as_deref() == Some(s.plaintext.as_str()),
        "{where_}: the code exchange's client_secret is not the decrypted plaintext"
    );
    assert_eq!(
        field("redirect_uri").as_deref(),
        Some(s.callback.as_str()),
        "{where_}: redirect_uri of the code exchange"
    );
    assert!(field("code").is_some_and(|c| !c.is_empty()), "{where_}: no code in the exchange");
    let tokens = access_tokens_seen(&mock);
    assert!(!tokens.is_empty(), "{where_}: the component never called userinfo\n{}", context(&runner, &mock));
    let cookies = browser.cookies().await;
    let names: Vec<&str> = cookies.iter().map(|c| c.0.as_str()).collect();
    let Some((_, value, http_only, secure)) = cookies.iter().find(|c| c.0 == SESSION_COOKIE) else {
        panic!("{where_}: no {SESSION_COOKIE} cookie in the browser (it has {names:?})")
    };
    assert!(*http_only, "{where_}: {SESSION_COOKIE} is not HttpOnly");
    assert!(!*secure, "{where_}: {SESSION_COOKIE} is Secure on http://127.0.0.1 (the browser would not send it)");
    assert!(!value.is_empty(), "{where_}: {SESSION_COOKIE} is empty");
    for secret in tokens.iter().chain([&s.plaintext]) {
        assert!(
            !value.contains(secret.as_str()),
            "{where_}: {SESSION_COOKIE} carries the access token or client secret"
        );
    }
    assert!(!names.contains(&STATE_COOKIE), "{where_}: the single-use {STATE_COOKIE} cookie outlived the callback");
    let (status, body) = browser.fetch("/sso/me").await;
    assert_eq!(status, 200, "{where_}: /sso/me from the page: {body}");
    eprintln!("{where_}: browser login round trip (login → OneAccess → callback → app) in {took:?}");

    // 2. Logout: through OneAccess's logout, back to the app URL, without a session.
    let (at, took) = browser.open(&format!("{}/sso/logout", s.origin)).await;
    let page = browser.page_text().await;
    assert_eq!(
        at,
        s.app_url,
        "{where_}: logout did not come back to the app URL; page:\n{page}\n{}",
        context(&runner, &mock)
    );
    assert_eq!(browser.page_json().await["error"], "no_session", "{where_}: /sso/me after logout: {page}");
    assert_eq!(mock.logouts(), vec![s.app_url.clone()], "{where_}: OneAccess logouts");
    let (status, body) = browser.fetch("/sso/me").await;
    assert_eq!(status, 401, "{where_}: /sso/me after logout: {body}");
    assert!(
        !browser.cookies().await.iter().any(|c| c.0 == SESSION_COOKIE),
        "{where_}: {SESSION_COOKIE} still in the browser after logout"
    );
    eprintln!("{where_}: browser logout round trip in {took:?}");

    // 3. A revoke ends a live session: log in again (by tenant id), then authSync flag 3.
    let (at, took) = browser.open(&format!("{}/sso/login?tenant={TENANT_ID}", s.origin)).await;
    logins.push(took);
    assert_logged_in(&browser, &s, &at, &runner, &mock).await;
    assert_eq!(mock.counts().token_exchanges_ok, 2, "{where_}: {:?}", mock.counts());
    kit_sync(&runner, "authSync", &auth_sync_body(3)).await;
    browser.reload().await;
    let page = browser.page_text().await;
    assert_eq!(
        browser.page_json().await["error"],
        "session_ended",
        "{where_}: /sso/me after the revoke; page:\n{page}\n{}",
        context(&runner, &mock)
    );
    let (status, body) = browser.fetch("/sso/me").await;
    assert_eq!(status, 401, "{where_}: /sso/me after the revoke: {body}");
    eprintln!("{where_}: browser login round trip (by tenant id) in {took:?}");

    // 4. Someone authSync never authorised.
    mock.set_login_user(Some("lisi"));
    let before = mock.counts();
    let (at, took) = browser.open(&format!("{}/sso/login?tenant={TENANT_CODE}", s.origin)).await;
    logins.push(took);
    let page = browser.page_text().await;
    assert!(at.starts_with(&s.callback), "{where_}: lisi ended at {at}; page:\n{page}\n{}", context(&runner, &mock));
    assert_eq!(
        browser.error_code().await,
        "user_not_authorised",
        "{where_}: lisi's login; page:\n{page}\n{}",
        context(&runner, &mock)
    );
    let after = mock.counts();
    assert_eq!(after.token_exchanges_ok, before.token_exchanges_ok + 1, "{where_}: lisi's code was exchanged once");
    assert!(
        runner.log().contains("403 user_not_authorised"),
        "{where_}: the runner log does not show the 403:\n{}",
        runner.log_tail()
    );
    let (status, body) = browser.fetch("/sso/me").await;
    assert_eq!(status, 401, "{where_}: /sso/me after lisi's refused login: {body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap_or_default()["error"], "no_session", "{where_}: {body}");
    assert!(!browser.cookies().await.iter().any(|c| c.0 == SESSION_COOKIE), "{where_}: lisi got a session cookie");
    refused_over_http(&runner, &mock, &s).await;
    eprintln!("{where_}: browser login round trip refused (user_not_authorised) in {took:?}");

    // 5. An unknown tenant: refused at once, the browser never sent to an identity provider.
    let seen = mock.received().len();
    let counts = mock.counts();
    let (at, _) = browser.open(&format!("{}/sso/login?tenant=nope", s.origin)).await;
    let page = browser.page_text().await;
    assert!(at.starts_with(&s.origin), "{where_}: an unknown tenant sent the browser to {at}");
    assert_eq!(browser.error_code().await, "unknown_tenant", "{where_}: page:\n{page}");
    assert_eq!(mock.counts().authorize, counts.authorize, "{where_}: authorize was called for an unknown tenant");
    assert_eq!(mock.received().len(), seen, "{where_}: the mock OneAccess was contacted for an unknown tenant");

    browser.close().await;
    let millis: Vec<u128> = logins.iter().map(Duration::as_millis).collect();
    eprintln!("{where_}: browser login round trips (ms): {millis:?}");
    drop(runner);
}

/// The user_not_authorised refusal, as a plain HTTP client sees it: the status the browser cannot read.
async fn refused_over_http(runner: &Runner, mock: &MockOneAccess, s: &Setup) {
    let where_ = runner.kind().name();
    let get = |uri: &str, cookie: Option<&str>| {
        let mut r = http::Request::get(uri);
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        r.body(Bytes::new()).unwrap_or_else(|e| panic!("request: {e}"))
    };
    let login = runner
        .send(get(&format!("/sso/login?tenant={TENANT_CODE}"), None))
        .await
        .unwrap_or_else(|e| panic!("{where_}: /sso/login: {e:#}"));
    assert_eq!(login.status(), 302, "{where_}: /sso/login: {}", String::from_utf8_lossy(login.body()));
    let header = |r: &http::Response<Bytes>, name: &str| -> Vec<String> {
        r.headers().get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    };
    let location = header(&login, "location").into_iter().next().unwrap_or_default();
    let authorize = location.strip_prefix(&mock.base_url()).unwrap_or_else(|| {
        panic!("{where_}: /sso/login sent the browser to {location}, not to the tenant's OneAccess")
    });
    let state_cookie = header(&login, "set-cookie")
        .into_iter()
        .find(|c| c.starts_with(&format!("{STATE_COOKIE}=")))
        .and_then(|c| c.split(';').next().map(str::to_owned))
        .unwrap_or_else(|| panic!("{where_}: /sso/login set no {STATE_COOKIE} cookie"));
    let idp = HttpClient::new()
        .send(&mock.base_url(), get(authorize, None))
        .await
        .unwrap_or_else(|e| panic!("mock authorize: {e:#}"));
    let back = header(&idp, "location").into_iter().next().unwrap_or_default();
    let callback = back
        .strip_prefix(&s.origin)
        .unwrap_or_else(|| panic!("{where_}: the mock sent the browser to {back}"))
        .to_owned();
    let refused =
        runner.send(get(&callback, Some(&state_cookie))).await.unwrap_or_else(|e| panic!("{where_}: callback: {e:#}"));
    let body = String::from_utf8_lossy(refused.body()).into_owned();
    assert_eq!(refused.status(), 403, "{where_}: lisi's callback: {body}\n{}", runner.log_tail());
    assert!(body.contains("<code id=\"error\">user_not_authorised</code>"), "{where_}: lisi's callback page: {body}");
    assert!(
        !header(&refused, "set-cookie").iter().any(|c| c.starts_with(&format!("{SESSION_COOKIE}="))),
        "{where_}: the refusal set a session cookie"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sso_login_logout_revoke_and_refusals_in_a_headless_browser() {
    let _one = exclusive().await;
    for kind in runner_kinds("sso in a browser") {
        sso_in_a_browser_on(kind).await;
    }
}
