//! The usage component natively, against a scripted marketplace: intake rules, numbering, batching, retries,
//! parking, status. (The Wasm component against the harness's mock marketplace: `tests/tests/usage_wasm.rs`.)

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};

use serde_json::{Value, json};

use super::*;
use crate::ports::{MemoryStore, OsRandom, OutboundError, OutboundReply};
use crate::signing::apig;
use crate::signing::window::TimestampWindow;
use crate::wire::time::format_sdk_date;

/// 2024-03-06T02:00:00Z.
const NOW: u64 = 1_709_690_400_000;
const TOKEN: &str = "admin-token-for-tests";

struct TestClock(Cell<u64>);

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

/// A marketplace that answers from a script (then `MKT.0000`) and checks both signatures of every push.
#[derive(Default)]
struct Marketplace {
    script: RefCell<VecDeque<Result<OutboundReply, OutboundError>>>,
    /// Every push that reached it: URL and records.
    pushes: RefCell<Vec<(String, Vec<Value>)>>,
    /// Accepted `metering_sn`s and how often.
    accepted: RefCell<BTreeMap<String, usize>>,
    /// A batch with a record of this instance is refused as a whole (`500 MKT.9001`), as the marketplace refuses a
    /// batch naming an unknown instance.
    unknown_instance: RefCell<Option<String>>,
}

impl Marketplace {
    fn then(&self, reply: Result<OutboundReply, OutboundError>) {
        self.script.borrow_mut().push_back(reply);
    }
    fn status(&self, status: u16, code: &str) {
        let body = json!({"error_code": code, "error_msg": "scripted"}).to_string().into_bytes();
        self.then(Ok(OutboundReply { status, body }));
    }
    fn accepted_sns(&self) -> Vec<String> {
        self.accepted.borrow().keys().cloned().collect()
    }
}

impl Backend for Marketplace {
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        _timeout_ms: u64,
    ) -> Result<OutboundReply, OutboundError> {
        let req = apig::ApigRequest {
            method: "POST".into(),
            url: url.into(),
            headers: headers.to_vec(),
            body: body.to_vec(),
        };
        let sk = |ak: &str| (ak == "ak").then(|| SecretKey::new("sk"));
        assert_eq!(
            apig::verify(&req, sk, NOW, TimestampWindow { window_ms: u64::MAX / 4, ..Default::default() }),
            Ok("ak".into())
        );
        let keys = KeyRing::single(SecretKey::new("isv-key"));
        let h = |n: &str| req.header(n).unwrap_or("").to_owned();
        let window = TimestampWindow { window_ms: u64::MAX / 4, ..Default::default() };
        assert!(
            crate::signing::usage::verify(&keys, &h("ts"), &h("nonce"), &h("signature"), body, NOW, window).is_ok()
        );
        let parsed: Value = serde_json::from_slice(body).expect("JSON body");
        assert_eq!(crate::signing::canonical_json::sorted_compact(&parsed), body, "sent as signed: sorted, compact");
        let records = parsed["usage_records"].as_array().cloned().unwrap_or_default();
        assert!(records.len() <= 100);
        self.pushes.borrow_mut().push((url.to_owned(), records.clone()));
        let unknown = self.unknown_instance.borrow().clone();
        let refused = unknown.is_some_and(|u| records.iter().any(|r| r["instance_id"] == u.as_str()));
        let reply = if refused {
            Some(Ok(OutboundReply {
                status: 500,
                body: br#"{"error_code":"MKT.9001","error_msg":"Instance ID not found"}"#.to_vec(),
            }))
        } else {
            self.script.borrow_mut().pop_front()
        };
        let reply = reply.unwrap_or_else(|| {
            Ok(OutboundReply { status: 200, body: br#"{"error_code":"MKT.0000","error_msg":"Success"}"#.to_vec() })
        });
        if matches!(&reply, Ok(r) if r.status == 200) {
            for r in &records {
                *self.accepted.borrow_mut().entry(r["metering_sn"].as_str().unwrap_or("").to_owned()).or_default() += 1;
            }
        }
        reply
    }
}

struct World {
    store: MemoryStore,
    market: Marketplace,
    clock: TestClock,
    cfg: UsageConfig,
}

impl World {
    fn new() -> Self {
        let vars = [
            ("access_keys", "isv-key"),
            ("admin_token", TOKEN),
            ("openapi_ak", "ak"),
            ("openapi_sk", "sk"),
            ("openapi_endpoint", "https://primary.example"),
            ("openapi_fallback_endpoint", "https://fallback.example"),
        ];
        let cfg = UsageConfig::from_variables(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()))
            .expect("config");
        Self { store: MemoryStore::default(), market: Marketplace::default(), clock: TestClock(Cell::new(NOW)), cfg }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let req = Inbound {
            method: method.into(),
            path: path.into(),
            headers: vec![("authorization".into(), format!("Bearer {TOKEN}"))],
            body: if body.is_null() { Vec::new() } else { body.to_string().into_bytes() },
            ..Inbound::default()
        };
        let ctx = Ctx { store: &self.store, backend: &self.market, clock: &self.clock, random: &OsRandom };
        let answer = pollster::block_on(handle(&req, Ok(&self.cfg), &ctx));
        (answer.response.status, serde_json::from_slice(&answer.response.body).unwrap_or(Value::Null))
    }

    fn submit(&self, records: Vec<Value>) -> (u16, Value) {
        self.call("POST", "/usage/records", json!({ "records": records }))
    }

    fn status(&self) -> Value {
        self.call("GET", "/usage/status", Value::Null).1
    }
}

fn record(n: usize) -> Value {
    json!({
        "record_id": format!("r-{n}"),
        "instance_id": format!("inst-{}", n % 7),
        "begin_time": format_sdk_date(NOW - 3_600_000),
        "end_time": format_sdk_date(NOW - 1_000),
        "usage_value": format!("{}.25", n + 1),
    })
}

fn sns(answer: &Value) -> Vec<String> {
    let mut sns: Vec<String> = answer["records"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["metering_sn"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    sns.sort();
    sns
}

#[test]
fn records_are_pushed_in_batches_of_at_most_100_once_each() {
    let w = World::new();
    let (status, answer) = w.submit((0..250).map(record).collect());
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["accepted"].as_u64(), answer["queued"].as_u64()), (Some(250), Some(250)));
    assert_eq!(answer["push"]["sent"], 250);
    let sizes: Vec<usize> = w.market.pushes.borrow().iter().map(|(_, r)| r.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(w.market.accepted_sns(), sns(&answer));
    assert!(w.market.accepted.borrow().values().all(|n| *n == 1));
    // Submitted again: same numbers, nothing queued or pushed.
    let (status, again) = w.submit((0..250).map(record).collect());
    assert_eq!((status, again["queued"].as_u64()), (200, Some(0)));
    assert_eq!(sns(&again), sns(&answer));
    assert!(again["records"].as_array().is_some_and(|r| r.iter().all(|r| r["status"] == "sent")));
    assert_eq!(w.market.pushes.borrow().len(), 3);
    let status = w.status();
    assert_eq!(
        (status["pending"].as_u64(), status["sent"].as_u64(), status["failed"].as_u64()),
        (Some(0), Some(250), Some(0))
    );
}

#[test]
fn metering_sn_is_stable_and_derived_from_record_id_or_content() {
    let w = World::new();
    let mut a = record(1);
    let (_, first) = w.submit(vec![a.clone()]);
    a["usage_value"] = json!("2.2500"); // same number written differently: same record
    let (status, second) = w.submit(vec![a.clone()]);
    assert_eq!(status, 200);
    assert_eq!(sns(&first), sns(&second));
    // Without record_id, the content decides; a number is read as its text.
    let mut b = record(2);
    b.as_object_mut().map(|o| o.remove("record_id"));
    b["usage_value"] = json!(3.25);
    let (_, one) = w.submit(vec![b.clone()]);
    let (_, two) = w.submit(vec![b.clone()]);
    assert_eq!(sns(&one), sns(&two));
    assert_ne!(sns(&one), sns(&first));
    b["usage_value"] = json!("3.5");
    let (_, other) = w.submit(vec![b]);
    assert_ne!(sns(&other), sns(&one));
    assert_eq!(w.market.accepted.borrow().len(), 3);
}

#[test]
fn a_bad_record_refuses_the_whole_submission_naming_each() {
    let w = World::new();
    let mut records: Vec<Value> = (0..5).map(record).collect();
    records[1]["usage_value"] = json!("0");
    records[2]["begin_time"] = json!("2024-03-06 01:00:00");
    records[3]["begin_time"] = json!(format_sdk_date(NOW - 22 * 86_400_000));
    records[3]["end_time"] = json!(format_sdk_date(NOW - 22 * 86_400_000 + 1_000));
    records[4].as_object_mut().map(|o| o.remove("record_id"));
    records[4]["end_time"] = json!(format_sdk_date(NOW - 7_200_000));
    records.push(json!({"record_id": "x", "instance_id": "i", "begin_time": "20240306T010000Z", "end_time": "20240306T015959Z", "usage_value": "1.23456"}));
    records.push(json!({"record_id": "y", "instance_id": "i", "begin_time": "20240306T010000Z", "end_time": "20240306T015959Z", "usage_value": "1", "usage": 1}));
    let (status, answer) = w.submit(records);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid_records");
    let listed: Vec<(u64, Option<&str>, &str)> = answer["records"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (p["index"].as_u64().unwrap_or(99), p["record_id"].as_str(), p["reason"].as_str().unwrap_or(""))
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(listed.iter().map(|(i, _, _)| *i).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    assert_eq!(listed[0].1, Some("r-1"));
    assert_eq!(listed[3].1, None, "no record_id: named by index");
    assert!(listed[0].2.contains("greater than 0"), "{}", listed[0].2);
    assert!(listed[1].2.contains("begin_time"), "{}", listed[1].2);
    assert!(listed[2].2.contains("21 days"), "{}", listed[2].2);
    assert!(listed[3].2.contains("end_time is before begin_time"), "{}", listed[3].2);
    assert!(listed[4].2.contains("4 decimal"), "{}", listed[4].2);
    assert!(listed[5].2.contains("unknown field usage"), "{}", listed[5].2);
    assert!(w.store.snapshot().keys().all(|k| !k.starts_with("usage/")), "nothing stored");
    assert!(w.market.pushes.borrow().is_empty());
    for body in [json!({}), json!({"records": []}), json!({"records": "x"}), json!([1])] {
        assert_eq!(w.call("POST", "/usage/records", body).0, 400);
    }
}

#[test]
fn a_record_id_with_different_content_is_a_conflict() {
    let w = World::new();
    assert_eq!(w.submit(vec![record(1)]).0, 200);
    let mut changed = record(1);
    changed["usage_value"] = json!("99");
    let (status, answer) = w.submit(vec![record(2), changed.clone()]);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["records"][0]["record_id"], "r-1");
    assert_eq!(answer["records"][0]["index"], 1);
    let (status, answer) = w.submit(vec![record(3), record(3), changed, record(1)]);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["records"][0]["index"], 3, "{answer}");
    assert_eq!(w.market.accepted.borrow().len(), 1, "nothing of the refused submissions was pushed");
}

#[test]
fn a_released_instance_is_refused_and_an_unknown_one_accepted() {
    let w = World::new();
    let released = json!({"v": 1, "instanceId": "gone", "test": false, "orderId": "o", "orderLineId": "l",
        "status": {"state": "released", "at_ms": NOW - 7_200_000}, "createdMs": NOW - 99, "updatedMs": NOW - 10});
    let parsed: crate::lifecycle::InstanceRecord = serde_json::from_value(released.clone()).expect("a record");
    assert!(parsed.status.is_released());
    let key = crate::produce::instance_key(false, "gone");
    pollster::block_on(w.store.set(&key, released.to_string().as_bytes())).expect("set");
    let mut r = record(1);
    r["instance_id"] = json!("gone");
    let (status, answer) = w.submit(vec![record(2), r]);
    assert_eq!(status, 400);
    assert_eq!(answer["records"][0]["reason"], "instance_id was released before begin_time");
    assert_eq!(w.submit(vec![record(2)]).0, 200);
    // Usage from before the release is still billable.
    let mut before = record(3);
    before["instance_id"] = json!("gone");
    before["begin_time"] = json!(format_sdk_date(NOW - 10_800_000));
    before["end_time"] = json!(format_sdk_date(NOW - 9_000_000));
    assert_eq!(w.submit(vec![before]).0, 200);
}

#[test]
fn an_outage_backs_off_then_the_fallback_and_later_requests_finish_the_job() {
    let w = World::new();
    // First batch accepted, then primary and fallback both down.
    w.market.status(200, "MKT.0000");
    w.market.then(Err(OutboundError::Transport("connection refused".into())));
    w.market.status(503, "MKT.0999");
    let (status, answer) = w.submit((0..250).map(record).collect());
    assert_eq!(status, 200);
    assert_eq!(answer["push"]["sent"], 100);
    let urls: Vec<String> = w.market.pushes.borrow().iter().map(|(u, _)| u.clone()).collect();
    assert!(
        urls[1].starts_with("https://primary.example/") && urls[2].starts_with("https://fallback.example/"),
        "{urls:?}"
    );
    let status = w.status();
    assert_eq!(status["pending"], 150);
    assert_eq!(status["failures_in_a_row"], 1);
    assert_eq!(status["next_try_in_s"], 5);
    assert!(status["last_error"]["reason"].as_str().is_some_and(|r| r.contains("HTTP 503 MKT.0999")), "{status}");
    // A resubmission during the back-off: no push.
    let (_, again) = w.submit((0..250).map(record).collect());
    assert_eq!(again["push"]["skipped"], "backing_off");
    assert_eq!(w.market.pushes.borrow().len(), 3);
    // After the back-off any request pushes the rest.
    w.clock.0.set(NOW + 5_000);
    let status = w.status();
    assert_eq!((status["pending"].as_u64(), status["sent"].as_u64()), (Some(0), Some(250)), "{status}");
    assert_eq!(w.market.accepted_sns(), sns(&again));
    assert!(w.market.accepted.borrow().values().all(|n| *n == 1));
}

#[test]
fn a_refused_batch_is_split_until_the_refused_record_is_parked_alone() {
    let w = World::new();
    *w.market.unknown_instance.borrow_mut() = Some("inst-bad".to_owned());
    let mut records: Vec<Value> = (0..120).map(record).collect();
    records[37]["instance_id"] = json!("inst-bad");
    let (_, answer) = w.submit(records.clone());
    assert_eq!((answer["push"]["parked"].as_u64(), answer["push"]["sent"].as_u64()), (Some(1), Some(119)), "{answer}");
    let status = w.status();
    assert_eq!((status["pending"].as_u64(), status["failed"].as_u64()), (Some(0), Some(1)));
    assert_eq!(status["parked"][0]["code"], "MKT.9001");
    assert_eq!(status["parked"][0]["status"], 500);
    assert_eq!(
        status["parked"][0]["metering_sns"][0].as_str(),
        sns(&answer)
            .iter()
            .find(|sn| { answer["records"][37]["metering_sn"].as_str() == Some(sn.as_str()) })
            .map(String::as_str)
    );
    assert_eq!(status["failures_in_a_row"], 0, "a refusal is not retried");
    let (_, resubmitted) = w.submit(vec![records[37].clone()]);
    assert_eq!(resubmitted["records"][0]["status"], "parked");
    // Once the instance is known at the marketplace, an operator requeues it.
    *w.market.unknown_instance.borrow_mut() = None;
    let (status, requeued) = w.call("POST", "/usage/requeue", Value::Null);
    assert_eq!((status, requeued["requeued"].as_u64(), requeued["push"]["sent"].as_u64()), (200, Some(1), Some(1)));
    let after = w.status();
    assert_eq!(
        (after["pending"].as_u64(), after["failed"].as_u64(), after["sent"].as_u64()),
        (Some(0), Some(0), Some(120))
    );
    assert!(w.market.accepted.borrow().values().all(|n| *n == 1));
}

#[test]
fn a_refusal_of_the_credentials_or_the_body_key_is_not_parked_but_backs_off() {
    for (status, code) in [(400, "MKT.0102"), (401, "MKT.0154"), (403, ""), (404, "")] {
        let w = World::new();
        w.market.status(status, code); // a 4xx is an answer: the fallback is not tried
        let (_, answer) = w.submit((0..30).map(record).collect());
        assert_eq!(
            (answer["push"]["parked"].as_u64(), answer["push"]["sent"].as_u64()),
            (Some(0), Some(0)),
            "{answer}"
        );
        let st = w.status();
        assert_eq!(
            (st["pending"].as_u64(), st["failed"].as_u64(), st["failures_in_a_row"].as_u64()),
            (Some(30), Some(0), Some(1))
        );
        assert!(st["last_error"]["reason"].as_str().is_some_and(|r| r.contains("check openapi_ak")), "{st}");
        // Fixed: the next push after the back-off sends them all.
        w.clock.0.set(NOW + 5_000);
        assert_eq!(w.status()["sent"], 30);
    }
}

#[test]
fn records_that_became_too_old_are_parked_not_sent() {
    let w = World::new();
    w.market.then(Err(OutboundError::Timeout));
    w.market.then(Err(OutboundError::Timeout));
    w.submit(vec![record(1)]);
    w.clock.0.set(NOW + 21 * 86_400_000);
    let status = w.status();
    assert_eq!((status["pending"].as_u64(), status["failed"].as_u64()), (Some(0), Some(1)), "{status}");
    assert!(status["parked"][0]["reason"].as_str().is_some_and(|r| r.contains("21 days")));
    assert_eq!(w.market.pushes.borrow().len(), 2, "never sent stale");
}

#[test]
fn flush_ignores_the_back_off_and_a_held_lease_blocks_a_second_pusher() {
    let w = World::new();
    w.market.then(Err(OutboundError::Timeout));
    w.market.then(Err(OutboundError::Timeout));
    w.submit(vec![record(1)]);
    let (status, flushed) = w.call("POST", "/usage/flush", Value::Null);
    assert_eq!((status, flushed["push"]["sent"].as_u64(), flushed["pending"].as_u64()), (200, Some(1), Some(0)));
    // A lease held by another request: nobody else pushes until it expires.
    w.market.then(Err(OutboundError::Timeout));
    w.market.then(Err(OutboundError::Timeout));
    w.submit(vec![record(2)]);
    let lease = json!({"lease": {"token": "other", "until_ms": NOW + 60_000}, "failures": 0, "next_try_ms": 0, "sent": 1, "batches": 1});
    pollster::block_on(w.store.set(outbox::STATE_KEY, lease.to_string().as_bytes())).expect("set");
    let (_, flushed) = w.call("POST", "/usage/flush", Value::Null);
    assert_eq!(flushed["push"]["skipped"], "another_push_running");
    assert_eq!(w.status()["pushing"], true);
    w.clock.0.set(NOW + 60_001);
    assert_eq!(w.call("POST", "/usage/flush", Value::Null).1["push"]["sent"], 1);
}

#[test]
fn every_route_needs_the_bearer_and_unconfigured_names_the_variable() {
    let w = World::new();
    let ctx = Ctx { store: &w.store, backend: &w.market, clock: &w.clock, random: &OsRandom };
    for (method, path) in
        [("POST", "/usage/records"), ("POST", "/usage/flush"), ("GET", "/usage/status"), ("POST", "/usage/requeue")]
    {
        for auth in [None, Some("Bearer wrong"), Some(TOKEN)] {
            let req = Inbound {
                method: method.into(),
                path: path.into(),
                headers: auth.map(|a| vec![("authorization".into(), a.to_owned())]).unwrap_or_default(),
                ..Inbound::default()
            };
            let answer = pollster::block_on(handle(&req, Ok(&w.cfg), &ctx));
            assert_eq!(answer.response.status, 401, "{method} {path} {auth:?}");
            assert_eq!(answer.response.header("www-authenticate"), Some("Bearer"));
            assert!(
                !answer.summary.contains("wrong") && !String::from_utf8_lossy(&answer.response.body).contains(TOKEN)
            );
        }
    }
    assert_eq!(w.call("GET", "/usage/records", Value::Null).0, 405);
    assert_eq!(w.call("GET", "/usage/nothing", Value::Null).0, 404);
    let req = Inbound { method: "GET".into(), path: "/usage/status".into(), ..Inbound::default() };
    let missing = ConfigError::Missing("openapi_ak");
    let answer = pollster::block_on(handle(&req, Err(&missing), &ctx));
    assert_eq!(answer.response.status, 500);
    assert!(String::from_utf8_lossy(&answer.response.body).contains("not configured: set openapi_ak"));
}

#[test]
fn configuration_names_what_is_missing() {
    let only_keys = |n: &str| (n == "access_keys").then(|| "k".to_owned());
    assert_eq!(UsageConfig::from_variables(only_keys).err(), Some(ConfigError::Missing("openapi_ak")));
    let no_token = |n: &str| matches!(n, "access_keys" | "openapi_ak" | "openapi_sk").then(|| "k".to_owned());
    assert_eq!(UsageConfig::from_variables(no_token).err(), Some(ConfigError::Missing("admin_token")));
    assert_eq!(UsageConfig::from_variables(|_| None).err(), Some(ConfigError::Missing("access_keys")));
}

#[test]
fn the_pending_list_decides_between_racing_contents() {
    let w = World::new();
    let ctx = Ctx { store: &w.store, backend: &w.market, clock: &w.clock, random: &OsRandom };
    let entry = |sn: &str, hash: &str| outbox::PendingEntry { sn: sn.into(), hash: hash.into(), at_ms: NOW };
    let first = pollster::block_on(outbox::enqueue(&ctx, vec![entry("a", "h1"), entry("b", "h2")]));
    assert_eq!(first, Ok(vec![]));
    // A racing submission with other content under "a": refused as a whole, "c" not listed either.
    let racing = pollster::block_on(outbox::enqueue(&ctx, vec![entry("c", "h3"), entry("a", "other")]));
    assert_eq!(racing, Ok(vec!["a".to_owned()]));
    let listed: Vec<String> =
        pollster::block_on(outbox::pending(&w.store)).expect("pending").into_iter().map(|e| e.sn).collect();
    assert_eq!(listed, ["a", "b"]);
    // The same content again changes nothing.
    assert_eq!(pollster::block_on(outbox::enqueue(&ctx, vec![entry("a", "h1")])), Ok(vec![]));
    assert_eq!(pollster::block_on(outbox::pending(&w.store)).map(|p| p.len()), Ok(2));
}

#[test]
fn a_listed_record_whose_submission_died_is_parked_visibly_not_dropped() {
    let w = World::new();
    let ctx = Ctx { store: &w.store, backend: &w.market, clock: &w.clock, random: &OsRandom };
    // A submission listed "ghost" and died before storing it (it was never acknowledged).
    let ghost = outbox::PendingEntry { sn: "ghost".into(), hash: "h".into(), at_ms: NOW };
    pollster::block_on(outbox::enqueue(&ctx, vec![ghost.clone()])).expect("listed");
    w.submit(vec![record(1)]);
    assert_eq!(w.status()["pending"], 1, "young: left for its submission to finish");
    // Its backend submits again within the grace: the entry takes the later time, so it is not taken as abandoned.
    w.clock.0.set(NOW + 9 * 60_000);
    let refreshed = outbox::PendingEntry { at_ms: NOW + 9 * 60_000, ..ghost.clone() };
    pollster::block_on(outbox::enqueue(&ctx, vec![refreshed])).expect("refreshed");
    w.clock.0.set(NOW + 11 * 60_000);
    assert_eq!(w.status()["pending"], 1);
    // Still missing long after: parked with the reason, for an operator.
    w.clock.0.set(NOW + 20 * 60_000);
    let status = w.status();
    assert_eq!((status["pending"].as_u64(), status["failed"].as_u64()), (Some(0), Some(1)), "{status}");
    assert!(status["parked"][0]["reason"].as_str().is_some_and(|r| r.contains("submission never finished")));
}

#[test]
fn values_are_numbered_by_their_number_and_fields_are_clean() {
    let w = World::new();
    let mut a = record(1);
    a.as_object_mut().map(|o| o.remove("record_id"));
    let mut b = a.clone();
    a["usage_value"] = json!("012.50");
    b["usage_value"] = json!("12.5");
    assert_eq!(sns(&w.submit(vec![a]).1), sns(&w.submit(vec![b]).1));
    let mut bad = vec![record(2), record(3), record(4)];
    bad[0]["instance_id"] = json!("inst\nx");
    bad[1]["end_time"] = json!(format_sdk_date(NOW + 3_600_000));
    bad[2]["record_id"] = json!("r\u{0}");
    let (status, answer) = w.submit(bad);
    assert_eq!(status, 400);
    let reasons: Vec<&str> =
        answer["records"].as_array().into_iter().flatten().filter_map(|p| p["reason"].as_str()).collect();
    assert_eq!(
        reasons,
        [
            "instance_id must not contain control characters",
            "end_time is in the future",
            "record_id must not contain control characters"
        ]
    );
}
