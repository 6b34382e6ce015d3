//! The `usage` component through the harness (wasmtime) against the harness's mock marketplace OpenAPI over real
//! HTTP. The mock verifies every push with its own implementation of the AK/SK canonical request and of the body
//! signature, and counts each `metering_sn` it accepted; the assertions compare what the component answered with
//! what the mock received.

use std::collections::{BTreeMap, BTreeSet};

use conformance::{Endpoint as _, WasmEndpoint, WasmOptions};
use harness::marketplace::{Endpoint, Failure, MarketplaceConfig, MockMarketplace};
use koogallery_core::http::{Inbound, Outbound};
use koogallery_core::wire::time::format_sdk_date;
use serde_json::{Value, json};

const OPENAPI_AK: &str = "seller-ak";
const OPENAPI_SK: &str = "seller-sk-0123456789";
/// The basic-interface key: `conformance`'s default `access_keys`.
const ISV_KEY: &str = conformance::AK;
const ADMIN: &str = "admin-token-for-usage";

struct World {
    ep: WasmEndpoint,
    primary: MockMarketplace,
    fallback: MockMarketplace,
}

fn mock() -> MockMarketplace {
    // The component runs on a virtual clock: the mock does not compare X-Sdk-Date with its own.
    let config = MarketplaceConfig { max_clock_skew: None, ..MarketplaceConfig::new(OPENAPI_AK, OPENAPI_SK, ISV_KEY) };
    MockMarketplace::start_in_background(config).unwrap_or_else(|e| panic!("mock marketplace: {e:#}"))
}

impl World {
    fn new() -> Self {
        Self::with(&[])
    }

    fn with(extra: &[(&str, &str)]) -> Self {
        let (primary, fallback) = (mock(), mock());
        let mut variables: Vec<(String, String)> = vec![
            ("openapi_endpoint".into(), primary.base_url()),
            ("openapi_fallback_endpoint".into(), fallback.base_url()),
            ("openapi_ak".into(), OPENAPI_AK.into()),
            ("openapi_sk".into(), OPENAPI_SK.into()),
            ("admin_token".into(), ADMIN.into()),
        ];
        for (k, v) in extra {
            variables.retain(|(name, _)| name != k);
            variables.push(((*k).to_owned(), (*v).to_owned()));
        }
        let ep = WasmEndpoint::new(WasmOptions { variables, ..Default::default() }).unwrap_or_else(|e| panic!("{e:#}"));
        Self { ep, primary, fallback }
    }

    fn request(method: &str, path: &str, body: Option<&Value>) -> Inbound {
        Inbound {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: vec![
                ("authorization".into(), format!("Bearer {ADMIN}")),
                ("content-type".into(), "application/json".into()),
            ],
            body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let out: Outbound = self.ep.send(&Self::request(method, path, body));
        let json =
            serde_json::from_slice(&out.body).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&out.body)}));
        (out.status, json)
    }

    fn submit(&self, records: &[Value]) -> (u16, Value) {
        self.call("POST", "/usage/records", Some(&json!({ "records": records })))
    }

    fn status(&self) -> Value {
        self.call("GET", "/usage/status", None).1
    }

    /// How often each `metering_sn` was accepted, by either endpoint.
    fn accepted(&self) -> BTreeMap<String, usize> {
        let mut all = self.primary.metering_sn_counts();
        for (sn, n) in self.fallback.metering_sn_counts() {
            *all.entry(sn).or_default() += n;
        }
        all
    }

    fn batch_sizes(&self) -> Vec<usize> {
        self.primary
            .usage_batches()
            .iter()
            .chain(self.fallback.usage_batches().iter())
            .map(|b| b.metering_sns.len())
            .collect()
    }

    fn usage_keys(&self) -> Vec<String> {
        self.ep.keys().into_iter().filter(|k| k.starts_with("usage/")).collect()
    }
}

/// Record `n` of a seller's hourly metering, begun an hour before the component's clock.
fn record(ep: &WasmEndpoint, n: usize) -> Value {
    let now = ep.now();
    json!({
        "record_id": format!("meter-{n}"),
        "instance_id": format!("instance-{}", n % 11),
        "begin_time": format_sdk_date(now - 3_600_000),
        "end_time": format_sdk_date(now - 1_000),
        "usage_value": if n.is_multiple_of(2) { json!(format!("{}.5", n + 1)) } else { json!(n + 1) },
    })
}

fn sns(answer: &Value) -> BTreeSet<String> {
    answer["records"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["metering_sn"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[test]
fn two_hundred_fifty_records_twice_with_an_outage_reach_the_marketplace_exactly_once() {
    let w = World::new();
    let records: Vec<Value> = (0..250).map(|n| record(&w.ep, n)).collect();
    // The marketplace takes the first batch, then goes down: the primary answers 503, the fallback drops the
    // connection.
    w.primary.pass_next(Endpoint::UsagePush, 1);
    w.primary.fail_next(Endpoint::UsagePush, 1, Failure::Status { status: 503, code: "MKT.0999".into() });
    w.fallback.fail_always(Endpoint::UsagePush, Failure::Close);
    let (status, first) = w.submit(&records);
    assert_eq!(status, 200, "{first}");
    assert_eq!(sns(&first).len(), 250, "each record has its own metering_sn");
    assert_eq!(first["push"]["sent"], 100);
    assert!(first["push"]["error"].as_str().is_some_and(|e| e.contains("HTTP 503 MKT.0999")), "{first}");
    let during = w.status();
    assert_eq!((during["pending"].as_u64(), during["sent"].as_u64()), (Some(150), Some(100)), "{during}");
    assert_eq!(during["failures_in_a_row"], 1);
    assert!(during["last_error"]["reason"].as_str().is_some_and(|r| r.contains("fallback")), "{during}");
    assert_eq!(w.fallback.received().len(), 1, "the fallback was tried once for the failed batch");

    // The marketplace is back; the backend submits the same 250 again (it never saw an answer, say): same numbers,
    // nothing queued twice, and the back-off still holds.
    w.primary.clear_failures();
    w.fallback.clear_failures();
    let (status, second) = w.submit(&records);
    assert_eq!(status, 200, "{second}");
    assert_eq!(sns(&second), sns(&first));
    assert_eq!(second["queued"], 0);
    let states: BTreeMap<String, usize> =
        second["records"].as_array().into_iter().flatten().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r["status"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
            m
        });
    assert_eq!(states, BTreeMap::from([("pending".to_owned(), 150), ("sent".to_owned(), 100)]));
    assert_eq!(second["push"]["skipped"], "backing_off");

    // Five seconds later any request pushes the rest.
    w.ep.set_now(w.ep.now() + 5_000);
    let after = w.status();
    assert_eq!(
        (after["pending"].as_u64(), after["sent"].as_u64(), after["failed"].as_u64()),
        (Some(0), Some(250), Some(0)),
        "{after}"
    );
    let accepted = w.accepted();
    assert_eq!(accepted.keys().cloned().collect::<BTreeSet<_>>(), sns(&first), "every metering_sn, nothing else");
    assert!(accepted.values().all(|n| *n == 1), "none twice: {accepted:?}");
    assert!(w.batch_sizes().iter().all(|n| (1..=100).contains(n)), "{:?}", w.batch_sizes());
    // Every call the mocks answered was correctly signed (the injected failures aside).
    for r in w.primary.received().iter().chain(w.fallback.received().iter()).filter(|r| !r.injected) {
        assert!(r.auth.is_ok() && r.body_signature.as_ref().is_none_or(Result::is_ok), "{r:?}");
    }
}

#[test]
fn a_network_error_goes_to_the_fallback_at_once() {
    let w = World::new();
    w.primary.fail_next(Endpoint::UsagePush, 1, Failure::Close);
    let records: Vec<Value> = (0..3).map(|n| record(&w.ep, n)).collect();
    let (_, answer) = w.submit(&records);
    assert_eq!(answer["push"]["sent"], 3, "{answer}");
    assert_eq!(w.fallback.metering_sn_counts().len(), 3);
    assert!(w.primary.metering_sn_counts().is_empty());
}

#[test]
fn bad_records_are_refused_by_name_and_nothing_is_stored() {
    let w = World::new();
    let now = w.ep.now();
    let mut records: Vec<Value> = (0..4).map(|n| record(&w.ep, n)).collect();
    records[1]["usage_value"] = json!(-2);
    records[2]["begin_time"] = json!(format_sdk_date(now - 30 * 86_400_000));
    records[3].as_object_mut().map(|o| o.remove("record_id"));
    records[3]["end_time"] = json!("20240101");
    let (status, answer) = w.submit(&records);
    assert_eq!(status, 400, "{answer}");
    let named: Vec<(Value, Value)> = answer["records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["index"].clone(), p["record_id"].clone()))
        .collect();
    assert_eq!(named, [(json!(1), json!("meter-1")), (json!(2), json!("meter-2")), (json!(3), Value::Null)]);
    assert!(answer["records"][2]["reason"].as_str().is_some_and(|r| r.contains("end_time")), "{answer}");
    assert!(w.usage_keys().is_empty(), "{:?}", w.usage_keys());
    assert!(w.primary.received().is_empty() && w.fallback.received().is_empty());
}

#[test]
fn refused_batches_are_split_until_each_refused_record_is_parked_alone_then_requeued() {
    let w = World::new();
    w.primary.fail_always(Endpoint::UsagePush, Failure::Status { status: 400, code: "MKT.0101".into() });
    let records: Vec<Value> = (0..30).map(|n| record(&w.ep, n)).collect();
    let (_, answer) = w.submit(&records);
    assert_eq!(answer["push"]["parked"], 30, "{answer}");
    assert!(w.fallback.received().is_empty(), "a 4xx is an answer: no fallback");
    let sizes: Vec<usize> = w.primary.received().iter().filter_map(|r| r.record_count).collect();
    assert_eq!(sizes[..3], [30, 15, 7], "halved until alone: {sizes:?}");
    let status = w.status();
    assert_eq!((status["pending"].as_u64(), status["failed"].as_u64()), (Some(0), Some(30)), "{status}");
    let parked = status["parked"].as_array().cloned().unwrap_or_default();
    assert_eq!(parked.len(), 30);
    assert!(parked.iter().all(|b| b["records"] == 1 && b["code"] == "MKT.0101" && b["status"] == 400), "{status}");
    // No retry by itself, however much later.
    let calls = w.primary.received().len();
    w.ep.set_now(w.ep.now() + 3_600_000);
    assert_eq!(w.status()["failed"], 30);
    assert_eq!(w.primary.received().len(), calls);
    w.primary.clear_failures();
    let (status, requeued) = w.call("POST", "/usage/requeue", None);
    assert_eq!(
        (status, requeued["requeued"].as_u64(), requeued["push"]["sent"].as_u64()),
        (200, Some(30), Some(30)),
        "{requeued}"
    );
    assert_eq!(w.accepted().len(), 30);
    assert_eq!(w.status()["failed"], 0);
}

#[test]
fn a_wrong_secret_key_or_body_key_is_refused_by_the_mock_and_backs_off_without_parking() {
    let w = World::with(&[("openapi_sk", "not-the-secret"), ("openapi_fallback_endpoint", "none")]);
    let (_, answer) = w.submit(&[record(&w.ep, 1)]);
    assert_eq!((answer["push"]["parked"].as_u64(), answer["push"]["sent"].as_u64()), (Some(0), Some(0)), "{answer}");
    let status = w.status();
    assert_eq!((status["pending"].as_u64(), status["failures_in_a_row"].as_u64()), (Some(1), Some(1)), "{status}");
    assert!(status["last_error"]["reason"].as_str().is_some_and(|r| r.contains("MKT.0154")), "{status}");
    assert!(w.primary.received()[0].auth.is_err());

    let w = World::with(&[("access_keys", "another-basic-interface-key"), ("openapi_fallback_endpoint", "none")]);
    let (_, answer) = w.submit(&[record(&w.ep, 1)]);
    assert_eq!(answer["push"]["parked"], 0, "{answer}");
    let status = w.status();
    assert!(status["last_error"]["reason"].as_str().is_some_and(|r| r.contains("MKT.0102")), "{status}");
    let received = &w.primary.received()[0];
    assert!(received.auth.is_ok() && received.body_signature.as_ref().is_some_and(Result::is_err), "{received:?}");
}

#[test]
fn concurrent_flushes_push_each_record_once() {
    let w = World::new();
    w.primary.fail_always(Endpoint::UsagePush, Failure::Status { status: 503, code: "MKT.0999".into() });
    w.fallback.fail_always(Endpoint::UsagePush, Failure::Status { status: 503, code: "MKT.0999".into() });
    let records: Vec<Value> = (0..250).map(|n| record(&w.ep, n)).collect();
    let (_, answer) = w.submit(&records);
    assert_eq!(answer["push"]["sent"], 0);
    w.primary.clear_failures();
    w.fallback.clear_failures();
    let flush = World::request("POST", "/usage/flush", None);
    let requests = (0..8).map(|_| conformance::to_http(&flush)).collect();
    let (answers, overlap) = w.ep.send_concurrently(requests);
    assert!(overlap > 1, "the flushes overlapped ({overlap} at once)");
    let sent: u64 = answers
        .iter()
        .map(|a| serde_json::from_slice::<Value>(&a.body).ok().and_then(|v| v["push"]["sent"].as_u64()).unwrap_or(0))
        .sum();
    assert_eq!(sent, 250);
    let accepted = w.accepted();
    assert_eq!(accepted.len(), 250);
    assert!(accepted.values().all(|n| *n == 1), "a record pushed twice: {accepted:?}");
}

#[test]
fn without_openapi_credentials_it_answers_not_configured() {
    let w = World::with(&[("openapi_ak", ""), ("openapi_sk", "")]);
    let (status, answer) = w.call("GET", "/usage/status", None);
    assert_eq!(status, 500);
    assert_eq!(answer["message"], "not configured: set openapi_ak");
    let (status, _) = w.call("GET", "/usage/status", None);
    assert_eq!(status, 500);
    let unauthenticated = Inbound { headers: vec![], ..World::request("GET", "/usage/status", None) };
    let w = World::new();
    assert_eq!(w.ep.send(&unauthenticated).status, 401);
}
