//! Racing lifecycle events on the same instances, through the Wasm component, with a slow and flaky backend, on
//! every store the harness offers (memory, the SQLite file store, Redis) — each also with the Spin 4.1 Redis
//! `swap` defect emulated (every compare-and-swap reports a conflict after writing).
//!
//! Per instance, the marketplace's order-sensitive calls (freeze/unfreeze) come from one task in order, while
//! renewals (two tasks), upgrades and `queryInstance` polls race them and each other. Checked after the marketplace
//! stops and the backend recovers:
//! - every call was answered `000000` (polls also `000004`);
//! - no update was lost: the record holds every renewal and upgrade, the latest expiry, the state of the last
//!   freeze/unfreeze, and after the release it is released;
//! - every event the marketplace was told `000000` about reached the backend with a `2xx`, under its stable id
//!   (computed independently from the event's identity), and no two different bodies ever shared an id;
//! - the requests really overlapped (at least two in flight at once; the compare-and-swap conflicts met are
//!   printed, and asserted for the defect runs, where every swap reports one).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use conformance::{Lifecycle, WasmEndpoint, WasmOptions, code, from_http, to_http};
use harness::kv::{RedisKv, SqliteKv};
use harness::{KvBackend, OutboundHandler};
use koogallery_core::identity::instance_id_for_order_line;
use koogallery_core::lifecycle::{InstanceRecord, Status, event_id};
use proptest::prelude::*;
use serde_json::{Value, json};
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;

const NOW: u64 = 1_700_000_000_000;
const INSTANCES: [&str; 2] = ["CSRACEA", "CSRACEB"];

/// A backend that answers after a short delay and fails a share of the attempts (deterministically per case).
struct SlowFlakyBackend {
    seed: u64,
    fail_per_mille: u64,
    attempts: AtomicUsize,
    /// Every attempt: (webhook-id, body, answered 2xx).
    log: Mutex<Vec<(String, Vec<u8>, bool)>>,
    /// When set, every attempt succeeds (the backend recovered).
    recovered: std::sync::atomic::AtomicBool,
}

impl SlowFlakyBackend {
    fn new(seed: u64, fail_per_mille: u64) -> Self {
        Self {
            seed,
            fail_per_mille,
            attempts: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            recovered: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn log(&self) -> Vec<(String, Vec<u8>, bool)> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl OutboundHandler for SlowFlakyBackend {
    async fn handle(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, ErrorCode> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst) as u64;
        let roll = (self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 40;
        tokio::time::sleep(Duration::from_millis(roll % 4)).await;
        let ok = self.recovered.load(Ordering::SeqCst) || roll % 1000 >= self.fail_per_mille;
        let id = request.headers().get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push((id, request.body().to_vec(), ok));
        let status = if ok { 200 } else { 503 };
        let mut resp = http::Response::new(Bytes::from_static(b"{}"));
        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
        Ok(resp)
    }
}

/// One generated race.
#[derive(Debug, Clone)]
struct Race {
    /// The freeze (`true`) / unfreeze (`false`) calls, in marketplace order.
    statuses: Vec<bool>,
    /// Renewal expiries (days after NOW), one renewal order each.
    renewals: Vec<u64>,
    upgrades: usize,
    polls: usize,
    fail_per_mille: u64,
    seed: u64,
}

fn race() -> impl Strategy<Value = Race> {
    (
        proptest::collection::vec(any::<bool>(), 1..6),
        proptest::collection::vec(1u64..400, 1..6),
        0usize..3,
        1usize..4,
        prop_oneof![Just(0u64), Just(300), Just(600)],
        any::<u64>(),
    )
        .prop_map(|(statuses, renewals, upgrades, polls, fail_per_mille, seed)| Race {
            statuses,
            renewals,
            upgrades,
            polls,
            fail_per_mille,
            seed,
        })
}

fn expire_text(days: u64) -> String {
    koogallery_core::wire::time::format_compact_utc(
        NOW + days * 86_400_000,
        koogallery_core::wire::time::Precision::Seconds14,
    )
}

/// The requests of one instance, per task.
fn tasks(signer: &Lifecycle, order: &str, race: &Race) -> Vec<Vec<(bool, http::Request<Bytes>)>> {
    let id = instance_id_for_order_line(order, &format!("{order}-000001"));
    let v2 = |body: Value| to_http(&signer.v2(&body, NOW));
    let statuses: Vec<_> = race
        .statuses
        .iter()
        .map(|freeze| {
            let status = if *freeze { "FREEZE" } else { "UNFREEZE" };
            (false, v2(json!({"activity":"updateInstanceStatus","instanceId":id,"status":status})))
        })
        .collect();
    let mut renew = [Vec::new(), Vec::new()];
    for (k, days) in race.renewals.iter().enumerate() {
        let body = json!({"activity":"refreshInstance","scene":"RENEWAL","orderId":format!("{order}-R{k}"),
            "orderLineId":format!("{order}-R{k}-1"),"instanceId":id,"expireTime":expire_text(*days)});
        renew[k % 2].push((false, v2(body)));
    }
    let upgrades = (0..race.upgrades)
        .map(|k| {
            let body = json!({"activity":"upgradeInstance","instanceId":id,"orderId":format!("{order}-U{k}"),
                "orderLineId":format!("{order}-U{k}-1")});
            (false, v2(body))
        })
        .collect();
    let polls = (0..race.polls).map(|_| (true, v2(json!({"activity":"queryInstance","instanceId":id})))).collect();
    let [r0, r1] = renew;
    vec![statuses, r0, r1, upgrades, polls]
}

async fn record(store: &Arc<dyn KvBackend>, order: &str) -> Option<InstanceRecord> {
    let id = instance_id_for_order_line(order, &format!("{order}-000001"));
    let bytes = store.get(&format!("live/instance/{id}")).await.ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Runs one race on a fresh endpoint over `store`; returns the number of compare-and-swap conflicts seen.
fn run(race: &Race, store: Arc<dyn KvBackend>, defect: bool) -> usize {
    let backend = Arc::new(SlowFlakyBackend::new(race.seed, race.fail_per_mille));
    let opts = WasmOptions {
        variables: vec![
            ("backend_url".into(), "http://backend.test/events".into()),
            ("backend_origin".into(), "http://backend.test".into()),
            ("backend_secret".into(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
        ],
        outbound: Some(backend.clone()),
        now_ms: NOW,
        store: Some(Arc::clone(&store)),
        spin_redis_swap_defect: defect,
        spin_sqlite_swap_upsert: false,
        isolated: false,
    };
    let ep = WasmEndpoint::new(opts).unwrap_or_else(|e| panic!("{e:#}"));
    let signer = Lifecycle::default();
    let app = ep.app();
    // Marketplace requests in flight right now, and the most at once: the proof that they overlapped.
    let in_flight = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let counters = Arc::clone(&in_flight);
    let send = move |req: http::Request<Bytes>| {
        let app = Arc::clone(&app);
        let counters = Arc::clone(&counters);
        async move {
            let now = counters.0.fetch_add(1, Ordering::SeqCst) + 1;
            counters.1.fetch_max(now, Ordering::SeqCst);
            let answer = match app.send(req).await {
                Ok(resp) => code(&from_http(resp)),
                Err(e) => format!("harness error: {e:#}"),
            };
            counters.0.fetch_sub(1, Ordering::SeqCst);
            answer
        }
    };

    // The purchases, then the race.
    for order in INSTANCES {
        let body =
            json!({"activity":"newInstance","orderId":order,"orderLineId":format!("{order}-000001"),"businessId":"b"});
        let got = ep.runtime().block_on(send(to_http(&signer.v2(&body, NOW))));
        assert_eq!(got, "000000", "newInstance {order}");
    }
    let all: Vec<_> = INSTANCES.iter().flat_map(|order| tasks(&signer, order, race)).collect();
    let answers: Vec<(bool, String)> = ep.runtime().block_on(async {
        // Every task starts at once, so their first requests are in flight together.
        let all: Vec<_> = all.into_iter().filter(|task| !task.is_empty()).collect();
        let start = Arc::new(tokio::sync::Barrier::new(all.len()));
        let handles: Vec<_> = all
            .into_iter()
            .map(|task| {
                let send = send.clone();
                let start = Arc::clone(&start);
                tokio::spawn(async move {
                    start.wait().await;
                    let mut out = Vec::new();
                    for (poll, req) in task {
                        out.push((poll, send(req).await));
                    }
                    out
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.extend(h.await.unwrap_or_default());
        }
        out
    });
    for (poll, answer) in &answers {
        let allowed: &[&str] = if *poll { &["000000", "000004"] } else { &["000000"] };
        assert!(allowed.contains(&answer.as_str()), "answer {answer} (poll: {poll}) in {race:?}");
    }

    // The backend recovers; the marketplace polls until every instance is ready, then releases them.
    backend.recovered.store(true, Ordering::SeqCst);
    for order in INSTANCES {
        let id = instance_id_for_order_line(order, &format!("{order}-000001"));
        let query = json!({"activity":"queryInstance","instanceId":id});
        let got = ep.runtime().block_on(send(to_http(&signer.v2(&query, NOW))));
        assert_eq!(got, "000000", "{order} is ready once the backend is up");
        let rec = ep.runtime().block_on(record(&store, order)).unwrap_or_else(|| panic!("record {order}"));
        assert!(rec.outbox.is_empty(), "{order}: delivered everything: {:?}", rec.outbox);
        let frozen = *race.statuses.last().unwrap_or(&false);
        assert_eq!(rec.status, if frozen { Status::Frozen } else { Status::Active }, "{order}: last status call wins");
        let latest = race.renewals.iter().max().map(|d| NOW + d * 86_400_000);
        let latest_second = latest.map(|ms| ms / 1000 * 1000);
        assert_eq!(rec.expire_ms, latest_second, "{order}: the latest expiry, whatever the order");
        for k in 0..race.renewals.len() {
            assert!(rec.applied.contains(&format!("renew/{order}-R{k}")), "{order}: renewal {k} kept");
        }
        for k in 0..race.upgrades {
            assert!(rec.applied.contains(&format!("upgrade/{order}-U{k}")), "{order}: upgrade {k} kept");
        }
        let release = json!({"activity":"releaseInstance","instanceId":id});
        assert_eq!(ep.runtime().block_on(send(to_http(&signer.v2(&release, NOW)))), "000000");
        let rec = ep.runtime().block_on(record(&store, order)).unwrap_or_else(|| panic!("record {order}"));
        assert!(rec.status.is_released() && rec.outbox.is_empty(), "{order}: released and delivered");
    }

    // Every announced event reached the backend under its own stable id; no id ever carried two bodies.
    let log = backend.log();
    let mut bodies: BTreeMap<&str, BTreeSet<&[u8]>> = BTreeMap::new();
    for (id, body, _) in &log {
        bodies.entry(id.as_str()).or_default().insert(body.as_slice());
    }
    for (id, b) in &bodies {
        assert_eq!(b.len(), 1, "event {id} was sent with {} different bodies", b.len());
    }
    let delivered: BTreeSet<&str> = log.iter().filter(|(_, _, ok)| *ok).map(|(id, _, _)| id.as_str()).collect();
    let kind_of = |id: &str| -> String {
        let body = bodies.get(id).and_then(|b| b.iter().next()).copied().unwrap_or_default();
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    for order in INSTANCES {
        let instance = instance_id_for_order_line(order, &format!("{order}-000001"));
        let mut expected = vec![event_id(&instance, "create")];
        expected.extend((0..race.renewals.len()).map(|k| event_id(&instance, &format!("renew/{order}-R{k}"))));
        expected.extend((0..race.upgrades).map(|k| event_id(&instance, &format!("upgrade/{order}-U{k}"))));
        for id in &expected {
            assert!(delivered.contains(id.as_str()), "{order}: event {id} never reached the backend");
        }
        // Freeze/unfreeze events: one per call that changed the state, in order.
        let mut frozen = false;
        let changes = race.statuses.iter().filter(|f| std::mem::replace(&mut frozen, **f) != **f).count();
        let of_instance = |id: &str| {
            bodies.get(id).and_then(|b| b.iter().next()).is_some_and(|b| {
                serde_json::from_slice::<Value>(b).is_ok_and(|v| v["data"]["instanceId"] == instance.as_str())
            })
        };
        let status_events = delivered.iter().filter(|id| of_instance(id) && kind_of(id).ends_with("frozen")).count();
        assert_eq!(status_events, changes, "{order}: one event per effective freeze/unfreeze");
        let released = delivered.iter().filter(|id| of_instance(id) && kind_of(id) == "instance.released").count();
        assert_eq!(released, 1, "{order}: the release reached the backend");
    }
    let most = in_flight.1.load(Ordering::SeqCst);
    assert!(most >= 2, "marketplace requests overlapped: at most {most} at once");
    ep.app().cas_conflicts()
}

fn temp_sqlite_store() -> (Arc<dyn KvBackend>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "koogallery-races-{}-{}",
        std::process::id(),
        NOW_COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::create_dir_all(&dir);
    let kv = SqliteKv::open(&dir.join(harness::kv::STORE_FILE_NAME), "default")
        .unwrap_or_else(|e| panic!("sqlite store: {e}"));
    (Arc::new(kv), dir)
}

static NOW_COUNTER: AtomicUsize = AtomicUsize::new(0);

fn check_on(name: &str, make: impl Fn() -> (Arc<dyn KvBackend>, Option<std::path::PathBuf>), defect: bool) {
    let conflicts = AtomicUsize::new(0);
    let cases = AtomicUsize::new(0);
    let config = ProptestConfig { cases: 4, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(r in race())| {
        let (store, dir) = make();
        conflicts.fetch_add(run(&r, store, defect), Ordering::SeqCst);
        cases.fetch_add(1, Ordering::SeqCst);
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    });
    let conflicts = conflicts.load(Ordering::SeqCst);
    println!(
        "races on {name}{}: {} cases, {conflicts} compare-and-swap conflicts retried",
        if defect { " (Spin 4.1 Redis swap defect)" } else { "" },
        cases.load(Ordering::SeqCst)
    );
    if defect {
        assert!(conflicts > 0, "with the defect every swap reports a conflict");
    }
}

#[test]
fn races_on_the_memory_store() {
    for defect in [false, true] {
        check_on("memory", || (Arc::new(harness::MemoryKv::new()) as Arc<dyn KvBackend>, None), defect);
    }
}

#[test]
fn races_on_the_sqlite_store() {
    for defect in [false, true] {
        check_on(
            "sqlite",
            || {
                let (kv, dir) = temp_sqlite_store();
                (kv, Some(dir))
            },
            defect,
        );
    }
}

#[test]
fn races_on_redis() {
    let server = match runners::RedisServer::start() {
        Ok(s) => s,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "redis-server is required in CI: {e:#}");
            println!("SKIPPED races on Redis: {e:#}");
            return;
        }
    };
    for defect in [false, true] {
        check_on(
            "redis",
            || {
                let _ = server.flush();
                (
                    Arc::new(RedisKv::new(&server.url()).unwrap_or_else(|e| panic!("redis: {e}")))
                        as Arc<dyn KvBackend>,
                    None,
                )
            },
            defect,
        );
    }
}
