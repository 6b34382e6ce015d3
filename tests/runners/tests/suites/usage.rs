//! On-demand usage end to end over real sockets: the `usage` component in a real runner process (`harness up`, and
//! `spin up` when present, each on its default store) pushing to two mock marketplace OpenAPIs
//! ([`MockMarketplace`], primary and fallback) on their own ports, with the manifest's own
//! `allowed_outbound_hosts` (`http://127.0.0.1:*` among them: no variable widens it here).
//!
//! It proves, on each runner:
//!
//! * 120 records posted to `POST /usage/records` reach the marketplace in batches of at most 100, each
//!   `metering_sn` the component answered exactly once and nothing else; `GET /usage/status` then shows 0 pending
//!   and 120 sent;
//! * an outage (the primary answers 503, the fallback drops the connection) keeps new records pending with the last
//!   error and one failure in a row; once the marketplace is back, `POST /usage/flush` pushes them, and the same
//!   records submitted again get the same `metering_sn`s, status `sent`, and are not pushed again;
//! * a refusal (`400` `MKT.0101`) of a one-record batch parks it, shown by `GET /usage/status` with its code; `POST /usage/requeue`
//!   sends it;
//! * every call the mocks received was signed with the right AK/SK (the API Gateway signature, with the mock's
//!   ±15 min date check: the runners run on the real clock) and carried a valid body signature;
//! * without `openapi_ak` the component answers 500 `not configured: set openapi_ak`, while `produce` keeps working.
//!
//! Each phase's time is printed per runner. Needs the components built for `wasm32-wasip2` and
//! `target/release/harness`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::marketplace::{Endpoint, Failure, MarketplaceConfig, MockMarketplace};
use koogallery_core::ports::system_now_ms;
use koogallery_core::wire::time::format_sdk_date;
use runners::{Runner, RunnerKind, RunnerOptions};
use serde_json::{Value, json};

use super::{AK, call, exclusive, runner_kinds};

const OPENAPI_AK: &str = "usage-e2e-ak";
const OPENAPI_SK: &str = "usage-e2e-sk-0123456789";
const ADMIN_TOKEN: &str = "usage-e2e-admin-token-0123456789";
/// The marketplace's batch limit.
const MAX_BATCH: usize = 100;

/// A mock marketplace expecting the suite's keys, checking `X-Sdk-Date` against the real clock (the default).
fn marketplace() -> MockMarketplace {
    // The basic-interface key (body signature) is the first of `access_keys`: the suite's AK.
    MockMarketplace::start_in_background(MarketplaceConfig::new(OPENAPI_AK, OPENAPI_SK, AK))
        .unwrap_or_else(|e| panic!("mock marketplace: {e:#}"))
}

/// Options for a runner with these variables (besides `access_keys` and `admin_token`).
fn options(extra: &[(&str, &str)]) -> RunnerOptions {
    let mut variables =
        vec![("access_keys".to_owned(), AK.to_owned()), ("admin_token".to_owned(), ADMIN_TOKEN.to_owned())];
    variables.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    RunnerOptions { variables, ..Default::default() }
}

/// Record `n` of the `prefix` series: an hour of metering that ended a second ago (real clock).
fn record(prefix: &str, n: usize) -> Value {
    let now = system_now_ms();
    json!({
        "record_id": format!("{prefix}-{n}"),
        "instance_id": format!("instance-{}", n % 7),
        "begin_time": format_sdk_date(now - 3_600_000),
        "end_time": format_sdk_date(now - 1_000),
        "usage_value": if n.is_multiple_of(2) { json!(format!("{}.5", n + 1)) } else { json!(n + 1) },
    })
}

fn records(prefix: &str, count: usize) -> Vec<Value> {
    (0..count).map(|n| record(prefix, n)).collect()
}

/// The `metering_sn`s of an answer's `records`.
fn sns(answer: &Value) -> BTreeSet<String> {
    answer["records"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["metering_sn"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// An answer for a failure message: `records` replaced by their statuses' counts (120 records are unreadable).
fn brief(answer: &Value) -> Value {
    let mut brief = answer.clone();
    if answer["records"].is_array() {
        brief["records"] = json!(states(answer));
    }
    brief
}

/// How many of an answer's `records` have each `status`.
fn states(answer: &Value) -> BTreeMap<String, usize> {
    answer["records"].as_array().into_iter().flatten().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r["status"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
        m
    })
}

/// One suite run on one runner: the runner and both mocks.
struct World {
    runner: Runner,
    primary: MockMarketplace,
    fallback: MockMarketplace,
    where_: &'static str,
}

impl World {
    /// `method path` with the admin bearer and `body`; the status and the JSON answer (`{"raw": …}` if not JSON).
    async fn send(runner: &Runner, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let where_ = runner.kind().name();
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .header("content-type", "application/json")
            .body(Bytes::from(body.map(Value::to_string).unwrap_or_default()))
            .unwrap_or_else(|e| panic!("request: {e}"));
        let response = runner
            .send(request)
            .await
            .unwrap_or_else(|e| panic!("{where_}: {method} {path}: {e:#}\n{}", runner.log_tail()));
        let json = serde_json::from_slice(response.body())
            .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(response.body())}));
        (response.status().as_u16(), json)
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        Self::send(&self.runner, method, path, body).await
    }

    /// `POST /usage/records`, which must answer 200.
    async fn submit(&self, records: &[Value]) -> Value {
        let (status, answer) = self.call("POST", "/usage/records", Some(&json!({ "records": records }))).await;
        assert_eq!(status, 200, "{}: POST /usage/records: {}\n{}", self.where_, brief(&answer), self.context());
        answer
    }

    /// `GET /usage/status`, which must answer 200.
    async fn status(&self) -> Value {
        let (status, answer) = self.call("GET", "/usage/status", None).await;
        assert_eq!(status, 200, "{}: GET /usage/status: {answer}\n{}", self.where_, self.context());
        answer
    }

    /// How often each `metering_sn` was accepted, by either mock.
    fn accepted(&self) -> BTreeMap<String, usize> {
        let mut all = self.primary.metering_sn_counts();
        for (sn, n) in self.fallback.metering_sn_counts() {
            *all.entry(sn).or_default() += n;
        }
        all
    }

    /// Calls received by either mock.
    fn received_count(&self) -> usize {
        self.primary.received().len() + self.fallback.received().len()
    }

    /// What the mocks saw, and the runner's last lines, for failure messages.
    fn context(&self) -> String {
        let seen = |mock: &MockMarketplace| -> Vec<String> {
            mock.received()
                .iter()
                .map(|r| {
                    format!(
                        "{} {} records={:?} status={:?} code={:?} injected={} auth={:?} body_signature={:?}",
                        r.method, r.path, r.record_count, r.status, r.code, r.injected, r.auth, r.body_signature
                    )
                })
                .collect()
        };
        format!(
            "primary saw: {:?}\nfallback saw: {:?}\nrunner log tail:\n{}",
            seen(&self.primary),
            seen(&self.fallback),
            self.runner.log_tail()
        )
    }

    /// Every call either mock received was a usage push, signed with the right AK/SK and body key (verdicts are
    /// computed for injected failures too).
    fn assert_all_signed(&self) {
        let where_ = self.where_;
        for (name, mock) in [("primary", &self.primary), ("fallback", &self.fallback)] {
            for r in mock.received() {
                assert_eq!(r.endpoint, Endpoint::UsagePush, "{where_}: {name} received {} {}", r.method, r.path);
                assert_eq!(r.auth, Ok(()), "{where_}: {name}: AK/SK signature refused\n{}", self.context());
                assert_eq!(
                    r.body_signature,
                    Some(Ok(())),
                    "{where_}: {name}: body signature refused\n{}",
                    self.context()
                );
            }
        }
    }
}

/// 1. 120 records: pushed in batches of at most 100, each once.
async fn bulk(w: &World) {
    let where_ = w.where_;
    let answer = w.submit(&records("bulk", 120)).await;
    let sent = sns(&answer);
    let shown = brief(&answer);
    assert_eq!(sent.len(), 120, "{where_}: each record has its own metering_sn: {shown}");
    assert_eq!(answer["queued"], 120, "{where_}: {shown}");
    assert_eq!(answer["push"]["sent"], 120, "{where_}: {shown}\n{}", w.context());
    let batches = w.primary.usage_batches();
    let sizes: Vec<usize> = batches.iter().map(|b| b.metering_sns.len()).collect();
    assert!(sizes.iter().all(|n| (1..=MAX_BATCH).contains(n)), "{where_}: batch sizes {sizes:?}");
    assert_eq!(sizes.len(), 2, "{where_}: 120 records in two batches: {sizes:?}");
    let accepted = w.accepted();
    assert_eq!(accepted.keys().cloned().collect::<BTreeSet<_>>(), sent, "{where_}: every metering_sn, nothing else");
    assert!(accepted.values().all(|n| *n == 1), "{where_}: a record accepted twice: {accepted:?}");
    assert!(w.fallback.received().is_empty(), "{where_}: the fallback was called while the primary answered");
    let status = w.status().await;
    assert_eq!((status["pending"].as_u64(), status["sent"].as_u64()), (Some(0), Some(120)), "{where_}: {status}");
    assert_eq!(
        (status["failed"].as_u64(), status["failures_in_a_row"].as_u64()),
        (Some(0), Some(0)),
        "{where_}: {status}"
    );
    w.assert_all_signed();
}

/// 2. An outage: records stay pending; flushed once the marketplace is back; a resubmission is not pushed again.
async fn outage(w: &World) {
    let where_ = w.where_;
    w.primary.fail_always(Endpoint::UsagePush, Failure::Status { status: 503, code: "MKT.0999".into() });
    w.fallback.fail_always(Endpoint::UsagePush, Failure::Close);
    let batch = records("outage", 30);
    let first = w.submit(&batch).await;
    let outage_sns = sns(&first);
    let shown = brief(&first);
    assert_eq!(outage_sns.len(), 30, "{where_}: {shown}");
    assert_eq!(first["push"]["sent"], 0, "{where_}: {shown}");
    assert!(
        first["push"]["error"].as_str().is_some_and(|e| e.contains("503") && e.contains("MKT.0999")),
        "{where_}: the push's error: {shown}"
    );
    let during = w.status().await;
    assert_eq!((during["pending"].as_u64(), during["sent"].as_u64()), (Some(30), Some(120)), "{where_}: {during}");
    assert_eq!(during["failures_in_a_row"], 1, "{where_}: {during}");
    let reason = during["last_error"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("503") && reason.contains("fallback"), "{where_}: last error {during}");
    assert_eq!(w.fallback.received().len(), 1, "{where_}: the fallback was tried once\n{}", w.context());
    assert!(w.accepted().keys().all(|sn| !outage_sns.contains(sn)), "{where_}: accepted during the outage");

    w.primary.clear_failures();
    w.fallback.clear_failures();
    let (status, flushed) = w.call("POST", "/usage/flush", None).await;
    assert_eq!(status, 200, "{where_}: POST /usage/flush: {flushed}");
    assert_eq!(
        (flushed["push"]["sent"].as_u64(), flushed["pending"].as_u64()),
        (Some(30), Some(0)),
        "{where_}: {flushed}"
    );
    let accepted = w.accepted();
    assert!(outage_sns.iter().all(|sn| accepted.get(sn) == Some(&1)), "{where_}: after the flush: {accepted:?}");

    let calls = w.received_count();
    let again = w.submit(&batch).await;
    let shown = brief(&again);
    assert_eq!(sns(&again), outage_sns, "{where_}: the same records got other metering_sns: {shown}");
    assert_eq!(again["queued"], 0, "{where_}: {shown}");
    assert_eq!(states(&again), BTreeMap::from([("sent".to_owned(), 30)]), "{where_}: {shown}");
    assert_eq!(w.received_count(), calls, "{where_}: a resubmission was pushed again\n{}", w.context());
    let after = w.status().await;
    assert_eq!((after["pending"].as_u64(), after["sent"].as_u64()), (Some(0), Some(150)), "{where_}: {after}");
    assert_eq!(after["failures_in_a_row"], 0, "{where_}: {after}");
}

/// 3. A refusal of a batch of one parks it (a larger batch would be split first); requeue sends it.
async fn refusal(w: &World) {
    let where_ = w.where_;
    let fallback_calls = w.fallback.received().len();
    w.primary.fail_next(Endpoint::UsagePush, 1, Failure::Status { status: 400, code: "MKT.0101".into() });
    let answer = w.submit(&records("refused", 1)).await;
    let refused_sns = sns(&answer);
    assert_eq!(answer["push"]["parked"], 1, "{where_}: {}\n{}", brief(&answer), w.context());
    assert_eq!(w.fallback.received().len(), fallback_calls, "{where_}: a 4xx is an answer: no fallback");
    let status = w.status().await;
    assert_eq!((status["pending"].as_u64(), status["failed"].as_u64()), (Some(0), Some(1)), "{where_}: {status}");
    assert_eq!(status["parked"][0]["code"], "MKT.0101", "{where_}: {status}");
    assert_eq!(status["parked"][0]["status"], 400, "{where_}: {status}");
    let parked: BTreeSet<String> = status["parked"][0]["metering_sns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    assert_eq!(parked, refused_sns, "{where_}: the parked batch's records: {status}");
    assert!(w.accepted().keys().all(|sn| !refused_sns.contains(sn)), "{where_}: a parked record was accepted");

    let (code, requeued) = w.call("POST", "/usage/requeue", None).await;
    assert_eq!(
        (code, requeued["requeued"].as_u64(), requeued["push"]["sent"].as_u64()),
        (200, Some(1), Some(1)),
        "{where_}: {requeued}\n{}",
        w.context()
    );
    let accepted = w.accepted();
    assert!(refused_sns.iter().all(|sn| accepted.get(sn) == Some(&1)), "{where_}: after the requeue: {accepted:?}");
    let status = w.status().await;
    assert_eq!(
        (status["pending"].as_u64(), status["failed"].as_u64(), status["sent"].as_u64()),
        (Some(0), Some(0), Some(151)),
        "{where_}: {status}"
    );
}

/// 4. Without `openapi_ak`: 500 not configured, produce unaffected.
async fn not_configured(kind: RunnerKind) -> Duration {
    let where_ = kind.name();
    let runner = Runner::start(kind, options(&[])).await.unwrap_or_else(|e| panic!("{where_}: {e:#}"));
    let started = Instant::now();
    for _ in 0..2 {
        let (status, answer) = World::send(&runner, "GET", "/usage/status", None).await;
        assert_eq!(status, 500, "{where_}: unconfigured /usage/status: {answer}\n{}", runner.log_tail());
        assert_eq!(
            answer,
            json!({"error": "not_configured", "message": "not configured: set openapi_ak"}),
            "{where_}: unconfigured /usage/status"
        );
    }
    let new = json!({"activity":"newInstance","orderId":"CSUSAGE","orderLineId":"CSUSAGE-000001","businessId":"b1"});
    let created = call(&runner, &new).await;
    assert_eq!(created["resultCode"], "000000", "{where_}: produce beside an unconfigured usage: {created}");
    let took = started.elapsed();
    drop(runner);
    took
}

/// The whole flow against `kind`.
async fn usage_on(kind: RunnerKind) {
    let where_ = kind.name();
    let (primary, fallback) = (marketplace(), marketplace());
    let opts = options(&[
        ("openapi_endpoint", &primary.base_url()),
        ("openapi_fallback_endpoint", &fallback.base_url()),
        ("openapi_ak", OPENAPI_AK),
        ("openapi_sk", OPENAPI_SK),
    ]);
    let started = Instant::now();
    let runner = Runner::start(kind, opts).await.unwrap_or_else(|e| panic!("{where_}: {e:#}"));
    let start_took = started.elapsed();
    let w = World { runner, primary, fallback, where_ };

    let mut phases = Vec::new();
    let t = Instant::now();
    bulk(&w).await;
    phases.push(("120 records", t.elapsed()));
    let t = Instant::now();
    outage(&w).await;
    phases.push(("outage+flush+resubmit", t.elapsed()));
    let t = Instant::now();
    refusal(&w).await;
    phases.push(("refusal+requeue", t.elapsed()));

    let accepted = w.accepted();
    assert_eq!(accepted.len(), 151, "{where_}: distinct records accepted");
    assert!(accepted.values().all(|n| *n == 1), "{where_}: a record accepted twice: {accepted:?}");
    w.assert_all_signed();
    drop(w);

    let unconfigured = not_configured(kind).await;
    phases.push(("not configured", unconfigured));
    eprintln!("{where_}: usage runner start {start_took:?}; phases {phases:?}; total {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_pushes_batches_survives_an_outage_parks_refusals_and_reports_not_configured() {
    let _one = exclusive().await;
    for kind in runner_kinds("usage") {
        usage_on(kind).await;
    }
}
