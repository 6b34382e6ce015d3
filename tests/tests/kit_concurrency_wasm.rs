//! Concurrent kit syncs for one tenant through the Wasm components, in forward mode with a slow backend: duplicate
//! tenant adds race each other and the user and department syncs of the same tenant race them all. Every answer is
//! `000000`, no update is lost (every user and department is in the one record), and the backend gets exactly one
//! event per effective change — with the requests shown to overlap. Also with Spin 4.1's Redis `swap` defect
//! emulated (every compare-and-swap reports a conflict after writing), and with Spin 4.1's SQLite upsert on a missing
//! key emulated (two first writes could both succeed).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use conformance::{Endpoint, WasmEndpoint, WasmOptions, code, to_http};
use harness::OutboundHandler;
use koogallery_core::marketplace::{Marketplace, fresh_nonce};
use serde_json::{Value, json};
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;

const KIT_KEY: &str = "kit-key-for-the-concurrency-test";
const USERS: usize = 20;
const DUPLICATES: usize = 16;

/// A backend that takes 20 ms per event and records what it got.
#[derive(Default)]
struct SlowBackend {
    events: Mutex<Vec<(String, Value)>>,
}

#[async_trait::async_trait]
impl OutboundHandler for SlowBackend {
    async fn handle(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, ErrorCode> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let id = request.headers().get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body: Value = serde_json::from_slice(request.body()).unwrap_or_default();
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push((id, body));
        Ok(http::Response::new(Bytes::new()))
    }
}

fn kit_body(extra: Value) -> Value {
    let mut body = json!({"instanceId":"i-race","tenantId":"t-race","testFlag":0,"timeStamp":"20231114221320000"});
    if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), extra) {
        map.extend(extra);
    }
    body
}

fn run(spin_redis_swap_defect: bool, spin_sqlite_swap_upsert: bool) {
    let backend = Arc::new(SlowBackend::default());
    let opts = WasmOptions {
        variables: vec![
            ("kit_access_keys".into(), KIT_KEY.into()),
            ("backend_url".into(), "http://backend.test/events".into()),
            ("backend_origin".into(), "http://backend.test".into()),
            ("backend_secret".into(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
        ],
        outbound: Some(backend.clone()),
        spin_redis_swap_defect,
        spin_sqlite_swap_upsert,
        ..WasmOptions::default()
    };
    let ep = WasmEndpoint::new(opts).unwrap_or_else(|e| panic!("{e:#}"));
    let mp = Marketplace::from_key(KIT_KEY).unwrap_or_else(|| panic!("key"));
    let now = ep.now();
    let mut requests = Vec::new();
    for _ in 0..DUPLICATES {
        let body = kit_body(
            json!({"orderId":"o","tenantCode":"race","name":"Race Ltd","domainName":"race.example.com","flag":1}),
        );
        requests.push(("/produceAPI/v2/tenantSync", body));
    }
    for u in 0..USERS {
        let body = kit_body(json!({"appId":"app-1","currentSyncTime":"x","flag":1,"userList":[{
            "userName":format!("user{u}"),"name":format!("User {u}"),"orgCode":"d1","role":"user","enable":"true"}]}));
        requests.push(("/produceAPI/v2/authSync", body));
    }
    for d in ["d1", "d2"] {
        for _ in 0..3 {
            let body = kit_body(json!({"orgCode":d,"orgName":format!("Dept {d}"),"parentCode":"","flag":1}));
            requests.push(("/produceAPI/v2/singleOrgSync", body));
        }
    }
    let signed: Vec<_> = requests
        .iter()
        .map(|(path, body)| to_http(&mp.kit(path, body.to_string().as_bytes(), now, &fresh_nonce())))
        .collect();
    let (answers, max_in_flight) = ep.send_concurrently(signed);
    for answer in &answers {
        assert_eq!(code(answer), "000000");
    }
    assert!(max_in_flight > 1, "the requests overlapped (at most {max_in_flight} in flight)");

    // No lost update: one record holds the tenant, every user and both departments, and nothing waits.
    let stored = ep.value("kit/live/tenant/i-race/t-race").unwrap_or_default();
    let record: Value = serde_json::from_slice(&stored).unwrap_or_default();
    assert_eq!(record["tenant"]["name"], "Race Ltd");
    let users = record["users"]["app-1"].as_object().map(|m| m.len()).unwrap_or(0);
    assert_eq!(users, USERS, "every user's sync kept");
    let orgs: BTreeSet<&str> =
        record["orgs"].as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
    assert_eq!(orgs, BTreeSet::from(["d1", "d2"]));
    assert_eq!(record["outbox"], json!([]), "every event delivered");

    // Exactly one event per effective change, each with its own id.
    let events = backend.events.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (_, body) in &events {
        *kinds.entry(body["type"].as_str().unwrap_or("").to_owned()).or_default() += 1;
    }
    let want = BTreeMap::from([
        ("org.created".to_owned(), 2),
        ("tenant.created".to_owned(), 1),
        ("user.created".to_owned(), USERS),
    ]);
    assert_eq!(kinds, want);
    let ids: BTreeSet<&str> = events.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "no id shared by two events");
    eprintln!(
        "kit concurrency (redis defect={spin_redis_swap_defect}, sqlite upsert={spin_sqlite_swap_upsert}): {} requests, up to {max_in_flight} in flight",
        requests.len()
    );
}

#[test]
fn concurrent_syncs_of_one_tenant_lose_nothing_and_send_each_change_once() {
    run(false, false);
}

#[test]
fn concurrent_syncs_converge_with_spin_redis_swap_defect() {
    run(true, false);
}

/// Every request starts before the tenant's record exists, so they all race to create it: on Spin 4.1's SQLite store
/// (a swap from "absent" is an upsert) only the request that wins the creation claim may write it first.
#[test]
fn concurrent_first_syncs_converge_with_spin_sqlite_swap_upsert() {
    run(false, true);
}
