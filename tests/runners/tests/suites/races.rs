//! Racing lifecycle events on one instance over HTTP, on each runner and store, with a slow backend: renewals from
//! several connections at once, `queryInstance` polls and a freeze/unfreeze sequence, all overlapping while
//! each request waits for the backend. On Spin's own SQLite store compare-and-swap is correct; on Redis this Spin
//! build reports every swap as a conflict (ARCHITECTURE.md, "Two runners"), so this also proves the components'
//! write-token check against the real defect. Afterwards no update is lost and every event reached the backend
//! once per id with one body.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use runners::{RedisServer, RunnerKind, Store};
use serde_json::{Value, json};

use super::backend::forward_runner;
use super::{call, exclusive, runner_kinds};

const RENEWALS: u64 = 8;
const POLLS: usize = 6;

async fn race_on(kind: RunnerKind, store: Store) {
    let is_spin_on_redis = matches!((kind, &store), (RunnerKind::Spin, Store::Redis(_)));
    let (backend, runner, server, where_) = forward_runner(kind, store, true, &[]).await;
    let new = json!({"activity":"newInstance","orderId":"CSRACE","orderLineId":"CSRACE-000001","businessId":"b1"});
    let created = call(&runner, &new).await;
    assert_eq!(created["resultCode"], "000000", "{where_}: {created}");
    let id = created["instanceId"].as_str().unwrap_or_default().to_owned();

    // Slow backend from now on: every request holds its connection while the others change the record.
    backend.delay_ms.store(40, Ordering::SeqCst);
    let now_s = koogallery_core::ports::system_now_ms() / 1000;
    let expiry = |k: u64| now_s * 1000 + (k * 7 % RENEWALS + 1) * 86_400_000;
    let stamp = |ms: u64| {
        koogallery_core::wire::time::format_compact_utc(ms, koogallery_core::wire::time::Precision::Seconds14)
    };
    let spans = std::sync::Mutex::new(Vec::new());
    let timed = |body: Value| {
        let (runner, spans) = (&runner, &spans);
        async move {
            let start = std::time::Instant::now();
            let code = call(runner, &body).await["resultCode"].clone();
            spans.lock().unwrap_or_else(|e| e.into_inner()).push((start, std::time::Instant::now()));
            code
        }
    };
    let renewals = (0..RENEWALS).map(|k| {
        timed(json!({"activity":"refreshInstance","scene":"RENEWAL","orderId":format!("R{k}"),
            "orderLineId":format!("R{k}-1"),"instanceId":id,"expireTime":stamp(expiry(k))}))
    });
    let polls = (0..POLLS).map(|_| timed(json!({"activity":"queryInstance","instanceId":id})));
    let statuses = async {
        let mut codes = Vec::new();
        for status in ["FREEZE", "UNFREEZE", "FREEZE"] {
            codes.push(timed(json!({"activity":"updateInstanceStatus","instanceId":id,"status":status})).await);
        }
        codes
    };
    let (renewed, polled, statused) =
        tokio::join!(futures::future::join_all(renewals), futures::future::join_all(polls), statuses);
    assert!(renewed.iter().chain(&statused).all(|c| c == "000000"), "{where_}: {renewed:?} {statused:?}");
    assert!(polled.iter().all(|c| c == "000000" || c == "000004"), "{where_}: {polled:?}");
    // The requests were in flight together (each holding while the slow backend answered).
    let spans = spans.into_inner().unwrap_or_else(|e| e.into_inner());
    let overlap = spans.iter().map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count()).max().unwrap_or(0);
    assert!(overlap >= 4, "{where_}: requests overlapped ({overlap} at once)");

    backend.delay_ms.store(0, Ordering::SeqCst);
    let ready = call(&runner, &json!({"activity":"queryInstance","instanceId":id})).await;
    assert_eq!(ready["resultCode"], "000000", "{where_}: {ready}");
    let state_log = runner.log();
    let state = runner.stop().await.unwrap_or_else(|e| panic!("{where_}: read state: {e:#}"));
    let record = state.json(&format!("live/instance/{id}"));
    assert_eq!(record["status"]["state"], "frozen", "{where_}: the last status call wins: {record}");
    assert_eq!(record["expireMs"], json!((0..RENEWALS).map(expiry).max()), "{where_}: latest expiry");
    let applied: BTreeSet<&str> =
        record["applied"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    for k in 0..RENEWALS {
        assert!(applied.contains(format!("renew/R{k}").as_str()), "{where_}: renewal R{k} lost: {record}");
    }
    assert_eq!(record["outbox"], json!([]), "{where_}: {record}");

    let attempts = backend.attempts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut bodies: BTreeMap<&str, BTreeSet<&[u8]>> = BTreeMap::new();
    for a in &attempts {
        bodies.entry(a.id.as_str()).or_default().insert(a.body.as_slice());
        assert!(a.signature_ok, "{where_}: webhook signature");
    }
    assert!(bodies.values().all(|b| b.len() == 1), "{where_}: an id was sent with two bodies");
    let kinds: Vec<String> = bodies
        .values()
        .filter_map(|b| b.iter().next())
        .filter_map(|b| serde_json::from_slice::<Value>(b).ok()?["type"].as_str().map(str::to_owned))
        .collect();
    let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
    assert_eq!(count("instance.renewed"), RENEWALS as usize, "{where_}: one event per renewal: {kinds:?}");
    assert_eq!((count("instance.frozen"), count("instance.unfrozen")), (2, 1), "{where_}: {kinds:?}");
    server.abort();
    let log = state_log;
    let conflicts: u64 = log
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("cas_conflicts="))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    if is_spin_on_redis {
        assert!(conflicts > 0, "{where_}: Spin 4.1 reports every Redis swap as a conflict; the log shows none");
    }
    eprintln!(
        "races on {where_}: {} requests, up to {overlap} at once, {} webhook attempts for {} events, {conflicts} \
         compare-and-swap conflicts retried",
        1 + RENEWALS as usize + POLLS + 3 + 1,
        attempts.len(),
        bodies.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_events_lose_nothing_on_each_runners_default_store() {
    let _one = exclusive().await;
    for kind in runner_kinds("races") {
        race_on(kind, Store::RunnerDefault).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_events_lose_nothing_on_redis() {
    let _one = exclusive().await;
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e:#}"));
    for kind in runner_kinds("races on Redis") {
        redis.flush().unwrap_or_else(|e| panic!("{e:#}"));
        race_on(kind, Store::Redis(redis.url())).await;
    }
}
