//! License products end to end over real sockets: the `license` component in a real runner process (`harness up`,
//! and `spin up` when present, each on its default store) with a mock marketplace OpenAPI ([`MockMarketplace`]) on
//! its own port as `openapi_endpoint` (no fallback), and the manifest's own `allowed_outbound_hosts`.
//!
//! It proves, on each runner:
//!
//! * `POST /license/activate` of [`SEED_LICENSE`] answers 200 with the license, the mock verified the AK/SK
//!   signature (with its ±15 min date check: the runners run on the real clock) and marks the code activated; a
//!   second activation answers 409 `already_activated` (`92020003`), an unknown code 404 `license_not_found`;
//!   `POST /license/heartbeat` answers 200 `ALIVE`;
//! * the callbacks at `POST /license`, V2 signed as KooGallery signs them: an expiry update answers `000000`, and
//!   again `000000` without changing the record; FREEZE `000000`; a status change of an unknown license `000003`;
//!   a body changed after signing `000001`; release `000000`, and an UNFREEZE after it `000000` that leaves the
//!   record `released`; every answer carries a `Body-Sign` that verifies with the runner's access key;
//! * `produce` on the same runner, with the same OpenAPI variables, answers a V2 `newInstance` for `MOCKONDEMAND` with
//!   the instance keyed on `orderId` + `productId`, after one AK/SK-signed order query the mock verified;
//! * without `openapi_ak` the proxy answers 500 `not configured: set openapi_ak` while the callbacks still answer.
//!
//! Each phase's time is printed per runner. Needs the `license` component built for `wasm32-wasip2` and
//! `target/release/harness`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::marketplace::{Endpoint, MarketplaceConfig, MockMarketplace, SEED_LICENSE};
use koogallery_core::identity::instance_id_for_on_demand;
use koogallery_core::marketplace::{Marketplace, fresh_nonce};
use koogallery_core::ports::system_now_ms;
use koogallery_core::signing::body_sign;
use koogallery_core::signing::keys::SecretKey;
use runners::{Runner, RunnerKind, RunnerOptions};
use serde_json::{Value, json};

use super::{AK, exclusive, runner_kinds};

const OPENAPI_AK: &str = "license-e2e-ak";
const OPENAPI_SK: &str = "license-e2e-sk-0123456789";
/// The license's record in the runner's store.
const RECORD: &str = "live/license/MOCK-LICENSE-0001";

/// A mock marketplace expecting the suite's keys, checking `X-Sdk-Date` against the real clock (the default).
fn marketplace() -> MockMarketplace {
    MockMarketplace::start_in_background(MarketplaceConfig::new(OPENAPI_AK, OPENAPI_SK, AK))
        .unwrap_or_else(|e| panic!("mock marketplace: {e:#}"))
}

/// Options for a runner with these variables (besides `access_keys`).
fn options(extra: &[(&str, &str)]) -> RunnerOptions {
    let mut variables = vec![("access_keys".to_owned(), AK.to_owned())];
    variables.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    RunnerOptions { variables, ..Default::default() }
}

/// `POST path` as the seller's software sends it; the status and the JSON answer (`{"raw": …}` if not JSON).
async fn software(runner: &Runner, path: &str, body: &Value) -> (u16, Value) {
    let where_ = runner.kind().name();
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .unwrap_or_else(|e| panic!("request: {e}"));
    let response =
        runner.send(request).await.unwrap_or_else(|e| panic!("{where_}: POST {path}: {e:#}\n{}", runner.log_tail()));
    let json = serde_json::from_slice(response.body())
        .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(response.body())}));
    (response.status().as_u16(), json)
}

/// A V2 request as KooGallery sends it to `path` (query signature over `signed`, signed now with [`AK`]), carrying
/// `sent` as its body (the same bytes unless a test tampers with them). Answers the JSON answer after checking it is
/// 200, Body-Signed with [`AK`] and has a `resultCode`.
async fn signed_call(runner: &Runner, path: &str, signed: &Value, sent: &Value) -> Value {
    let where_ = runner.kind().name();
    let market = Marketplace::from_key(AK).unwrap_or_else(|| panic!("key"));
    let inbound = market.v2(path, signed.to_string().as_bytes(), system_now_ms(), &fresh_nonce());
    let mut request = http::Request::post(format!("{}?{}", inbound.path, inbound.query));
    for (name, value) in &inbound.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request.body(Bytes::from(sent.to_string())).unwrap_or_else(|e| panic!("request: {e}"));
    let response =
        runner.send(request).await.unwrap_or_else(|e| panic!("{where_}: POST {path}: {e:#}\n{}", runner.log_tail()));
    let body = response.body();
    let shown = String::from_utf8_lossy(body);
    assert_eq!(response.status(), 200, "{where_}: {path} {sent}: {shown}\n{}", runner.log_tail());
    let expected = body_sign::header_value(&SecretKey::new(AK), body);
    let got = response.headers().get("body-sign").and_then(|v| v.to_str().ok());
    assert_eq!(got, Some(expected.as_str()), "{where_}: {path} {sent}: the answer's Body-Sign: {shown}");
    let answer: Value = serde_json::from_slice(body).unwrap_or_default();
    assert!(answer["resultCode"].is_string(), "{where_}: {path} {sent}: no resultCode: {shown}");
    answer
}

/// A license callback (see [`signed_call`]); its `resultCode`.
async fn callback_as(runner: &Runner, signed: &Value, sent: &Value) -> String {
    signed_call(runner, "/license", signed, sent).await["resultCode"].as_str().unwrap_or_default().to_owned()
}

/// A callback signed over its own body.
async fn callback(runner: &Runner, body: &Value) -> String {
    callback_as(runner, body, body).await
}

/// The license's record in the runner's store now (`Null` when absent).
fn record(runner: &Runner) -> Value {
    runner.snapshot().unwrap_or_else(|e| panic!("{}: store: {e:#}", runner.kind().name())).json(RECORD)
}

/// What the mock saw, and the runner's last lines, for failure messages.
fn context(runner: &Runner, mock: &MockMarketplace) -> String {
    let seen: Vec<String> = mock
        .received()
        .iter()
        .map(|r| format!("{} {} status={:?} code={:?} auth={:?}", r.method, r.path, r.status, r.code, r.auth))
        .collect();
    format!("mock saw: {seen:?}\nrunner log tail:\n{}", runner.log_tail())
}

/// 1. Activation and heartbeat through the proxy, AK/SK signed.
async fn proxy(runner: &Runner, mock: &MockMarketplace) {
    let where_ = runner.kind().name();
    let (status, answer) = software(runner, "/license/activate", &json!({"license": SEED_LICENSE})).await;
    assert_eq!(status, 200, "{where_}: activate: {answer}\n{}", context(runner, mock));
    assert_eq!(
        (answer["ok"].as_bool(), answer["license"]["status"].as_str(), answer["license"]["order_id"].as_str()),
        (Some(true), Some("ALIVE"), Some("CS123")),
        "{where_}: activate: {answer}"
    );
    let received = mock.received();
    assert_eq!(received.len(), 1, "{where_}: one call to the marketplace\n{}", context(runner, mock));
    assert_eq!(received[0].endpoint, Endpoint::LicenseActivate, "{where_}: {}", received[0].path);
    assert_eq!(received[0].auth, Ok(()), "{where_}: the mock refused the AK/SK signature");
    assert_eq!(received[0].ak.as_deref(), Some(OPENAPI_AK), "{where_}: the Access of the signature");
    assert!(mock.license(SEED_LICENSE).is_some_and(|l| l.activated), "{where_}: the mock did not activate it");
    assert_eq!(record(runner)["state"], "alive", "{where_}: recorded after activation");

    let (status, answer) = software(runner, "/license/activate", &json!({"license": SEED_LICENSE})).await;
    assert_eq!(
        (status, answer["error"].as_str(), answer["code"].as_str()),
        (409, Some("already_activated"), Some("92020003")),
        "{where_}: activated again: {answer}"
    );
    let (status, answer) = software(runner, "/license/activate", &json!({"license": "MOCK-LICENSE-UNKNOWN"})).await;
    assert_eq!(
        (status, answer["error"].as_str(), answer["code"].as_str()),
        (404, Some("license_not_found"), Some("92020005")),
        "{where_}: unknown code: {answer}"
    );
    let (status, answer) = software(runner, "/license/heartbeat", &json!({"license": SEED_LICENSE})).await;
    assert_eq!(status, 200, "{where_}: heartbeat: {answer}\n{}", context(runner, mock));
    assert_eq!(answer["license"]["status"], "ALIVE", "{where_}: heartbeat: {answer}");
    assert_eq!(mock.license(SEED_LICENSE).map(|l| l.heartbeats), Some(1), "{where_}: heartbeats the mock answered");
    let received = mock.received();
    assert_eq!(received.len(), 4, "{where_}: {}", context(runner, mock));
    assert!(received.iter().all(|r| r.auth == Ok(()) && !r.injected), "{where_}: {}", context(runner, mock));
}

/// 2. The marketplace's callbacks, each answered and Body-Signed; the record follows them.
async fn callbacks(runner: &Runner) {
    let where_ = runner.kind().name();
    let unknown = json!({"license": "MOCK-LICENSE-UNKNOWN", "status": "FREEZE"});
    assert_eq!(callback(runner, &unknown).await, "000003", "{where_}: status of an unknown license");

    let update =
        json!({"license": SEED_LICENSE, "expireTime": "20310101000000000", "orderId": "CS124", "scene": "RENEWAL"});
    assert_eq!(callback(runner, &update).await, "000000", "{where_}: expiry update\n{}", runner.log_tail());
    let once = record(runner);
    assert_eq!(once["expire_ms"], 1_924_992_000_000u64, "{where_}: record after the expiry update: {once}");
    assert_eq!(callback(runner, &update).await, "000000", "{where_}: the expiry update again");
    assert_eq!(record(runner), once, "{where_}: a repeated callback changes nothing");

    let freeze = json!({"license": SEED_LICENSE, "status": "FREEZE"});
    assert_eq!(callback(runner, &freeze).await, "000000", "{where_}: FREEZE");
    let frozen = record(runner);
    assert_eq!(frozen["state"], "frozen", "{where_}: {frozen}");

    let unfreeze = json!({"license": SEED_LICENSE, "status": "UNFREEZE"});
    assert_eq!(callback_as(runner, &freeze, &unfreeze).await, "000001", "{where_}: a body changed after signing");
    assert_eq!(record(runner), frozen, "{where_}: a refused callback changes nothing");

    assert_eq!(callback(runner, &json!({"license": SEED_LICENSE})).await, "000000", "{where_}: release");
    assert_eq!(callback(runner, &unfreeze).await, "000000", "{where_}: UNFREEZE after release");
    let released = record(runner);
    assert_eq!(released["state"], "released", "{where_}: release is terminal: {released}");
}

/// 3. Query order from `produce` on the same runner: the on-demand line is keyed on its product.
///
/// Same OpenAPI variables, and the manifest's `allowed_outbound_hosts` for `produce`.
async fn produce_reads_the_order(runner: &Runner, mock: &MockMarketplace) {
    let where_ = runner.kind().name();
    let before = mock.received().len();
    let new_instance = json!({"activity": "newInstance", "orderId": "MOCKONDEMAND",
        "orderLineId": "MOCKONDEMAND-000001", "businessId": "b1", "testFlag": "0"});
    let answer = signed_call(runner, "/produce", &new_instance, &new_instance).await;
    assert_eq!(answer["resultCode"], "000000", "{where_}: newInstance: {answer}\n{}", context(runner, mock));
    let expected = instance_id_for_on_demand("MOCKONDEMAND", "OFFI-MOCKONDEMAND");
    assert_eq!(answer["instanceId"].as_str(), Some(expected.as_str()), "{where_}: keyed on orderId + productId");
    let received = mock.received();
    assert_eq!(received.len(), before + 1, "{where_}: one order query\n{}", context(runner, mock));
    let query = &received[before];
    assert_eq!(query.endpoint, Endpoint::QueryOrder, "{where_}: {}", query.path);
    assert_eq!(query.auth, Ok(()), "{where_}: the mock refused the query's AK/SK signature");
    assert_eq!(query.query, "orderId=MOCKONDEMAND&orderLineId=MOCKONDEMAND-000001", "{where_}");
}

/// 4. Without `openapi_ak`: the proxy is not configured, the callbacks still work.
async fn not_configured(kind: RunnerKind) -> Duration {
    let where_ = kind.name();
    let runner = Runner::start(kind, options(&[])).await.unwrap_or_else(|e| panic!("{where_}: {e:#}"));
    let started = Instant::now();
    let (status, answer) = software(&runner, "/license/activate", &json!({"license": SEED_LICENSE})).await;
    assert_eq!(
        (status, answer["error"].as_str(), answer["message"].as_str()),
        (500, Some("not_configured"), Some("not configured: set openapi_ak")),
        "{where_}: unconfigured /license/activate: {answer}\n{}",
        runner.log_tail()
    );
    let release = json!({"license": "MOCK-LICENSE-0002"});
    assert_eq!(callback(&runner, &release).await, "000000", "{where_}: a callback beside an unconfigured proxy");
    let took = started.elapsed();
    drop(runner);
    took
}

/// The whole flow against `kind`.
async fn license_on(kind: RunnerKind) {
    let where_ = kind.name();
    let mock = marketplace();
    let opts = options(&[
        ("openapi_endpoint", &mock.base_url()),
        ("openapi_fallback_endpoint", "none"),
        ("openapi_ak", OPENAPI_AK),
        ("openapi_sk", OPENAPI_SK),
    ]);
    let started = Instant::now();
    let runner = Runner::start(kind, opts).await.unwrap_or_else(|e| panic!("{where_}: {e:#}"));
    let start_took = started.elapsed();

    let mut phases = Vec::new();
    let t = Instant::now();
    proxy(&runner, &mock).await;
    phases.push(("activate+heartbeat", t.elapsed()));
    let t = Instant::now();
    callbacks(&runner).await;
    phases.push(("callbacks", t.elapsed()));
    assert_eq!(mock.received().len(), 4, "{where_}: callbacks do not call the marketplace");
    let t = Instant::now();
    produce_reads_the_order(&runner, &mock).await;
    phases.push(("produce query order", t.elapsed()));
    drop(runner);

    let unconfigured = not_configured(kind).await;
    phases.push(("not configured", unconfigured));
    eprintln!("{where_}: license runner start {start_took:?}; phases {phases:?}; total {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn license_activates_through_the_proxy_answers_signed_callbacks_and_reports_not_configured() {
    let _one = exclusive().await;
    for kind in runner_kinds("license") {
        license_on(kind).await;
    }
}
