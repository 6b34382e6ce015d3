//! State is portable between the runners: `harness up` and `spin up` keep the `default` store in the same SQLite
//! file, `<state dir>/sqlite_key_value.db`, in Spin's layout (`crates/key-value-spin`), so one continues where the
//! other stopped, in both directions, and both can even serve one state directory at once.

use std::path::PathBuf;

use bytes::Bytes;
use koogallery_core::marketplace::{Marketplace, fresh_nonce};
use koogallery_core::ports::system_now_ms;
use runners::{Runner, RunnerKind, RunnerOptions, StateDump, spin_or_skip};
use serde_json::{Value, json};

use super::{AK, call, exclusive};

/// A state directory that runners use in turn (they leave it in place), removed on drop unless
/// `KEEP_RUNNER_STATE` is set.
struct SharedDir(PathBuf);

impl SharedDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("koogallery-portable-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Self(dir)
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_RUNNER_STATE").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Starts `kind` on the shared state directory, with its own default store (no runtime config).
async fn start(kind: RunnerKind, dir: &SharedDir) -> Runner {
    let opts = RunnerOptions {
        variables: vec![("access_keys".into(), AK.into())],
        state_dir: Some(dir.0.clone()),
        ..Default::default()
    };
    Runner::start(kind, opts).await.unwrap_or_else(|e| panic!("{e:#}"))
}

/// A V2 request signed once (URI with timestamp and nonce, body), so it can be sent again as a replay.
struct Signed(String, Bytes);

impl Signed {
    fn new(body: &Value) -> Self {
        let body = body.to_string();
        let mp = Marketplace::from_key(AK).unwrap_or_else(|| panic!("key"));
        let query = mp.v2_query("", body.as_bytes(), &system_now_ms().to_string(), &fresh_nonce());
        Self(format!("/produce?{query}"), Bytes::from(body))
    }

    async fn send(&self, runner: &Runner) -> Value {
        let request = http::Request::post(self.0.as_str())
            .header("content-type", "application/json")
            .body(self.1.clone())
            .unwrap_or_else(|e| panic!("request: {e}"));
        let response = runner.send(request).await.unwrap_or_else(|e| panic!("{}: {e:#}", runner.kind().name()));
        serde_json::from_slice(response.body()).unwrap_or_default()
    }
}

fn new_instance(line: &str, business: &str) -> Value {
    json!({"activity":"newInstance","orderId":"CSPORTABLE","orderLineId":line,"businessId":business})
}

fn instance_records(state: &StateDump) -> usize {
    state.0.keys().filter(|k| k.starts_with("live/instance/")).count()
}

/// The replay-cache counters (V2 nonces): `increment` results, which must be in Spin's SQLite encoding whichever
/// runner wrote them.
fn nonce_counters(state: &StateDump) -> Vec<&[u8]> {
    state.0.iter().filter(|(k, _)| k.starts_with("nonce/") && *k != "nonce/sweep").map(|(_, v)| v.as_slice()).collect()
}

/// Instances created through `from` are found through `to` after `from` stopped, on the same state directory.
async fn state_moves(from: RunnerKind, to: RunnerKind) {
    let dir = SharedDir::new(&from.name().replace(' ', "-"));
    let first = start(from, &dir).await;
    let mut ids = Vec::new();
    for line in ["CSPORTABLE-000001", "CSPORTABLE-000002"] {
        let created = call(&first, &new_instance(line, "b1")).await;
        assert_eq!(created["resultCode"], "000000", "{}: {created}", from.name());
        ids.push(created["instanceId"].clone());
    }
    let query_once = Signed::new(&json!({"activity":"queryInstance","instanceId":ids[0]}));
    assert_eq!(query_once.send(&first).await["resultCode"], "000000");
    let state = first.stop().await.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(instance_records(&state), 2, "{} left both instances", from.name());
    let counters = nonce_counters(&state);
    assert!(!counters.is_empty(), "every signed request left a replay-cache counter");
    for counter in counters {
        assert_eq!(counter, 1i64.to_le_bytes(), "{}: a counter is an i64's 8 little-endian bytes", from.name());
    }

    let second = start(to, &dir).await;
    for id in &ids {
        let found = call(&second, &json!({"activity":"queryInstance","instanceId":id})).await;
        assert_eq!(found["resultCode"], "000000", "{} finds what {} created: {found}", to.name(), from.name());
        assert_eq!(&found["info"][0]["instanceId"], id);
    }
    let again = call(&second, &new_instance("CSPORTABLE-000001", "b2")).await;
    assert_eq!(again["resultCode"], "000000", "{again}");
    assert_eq!(again["instanceId"], ids[0], "a repeated newInstance on {} answers the same instance", to.name());
    let replayed = query_once.send(&second).await;
    assert_eq!(replayed["resultCode"], "000001", "{} knows the nonce {} saw: {replayed}", to.name(), from.name());
    let state = second.stop().await.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(instance_records(&state), 2, "no instance was created twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_continues_where_the_harness_stopped() {
    let _one = exclusive().await;
    if spin_or_skip("state from harness up to spin up").is_none() {
        return;
    }
    state_moves(RunnerKind::Harness, RunnerKind::Spin).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_harness_continues_where_spin_stopped() {
    let _one = exclusive().await;
    if spin_or_skip("state from spin up to harness up").is_none() {
        return;
    }
    state_moves(RunnerKind::Spin, RunnerKind::Harness).await;
}

/// Two processes on one state directory at once (SQLite locks per transaction): the harness and Spin, or two
/// harnesses without Spin. A second `up` on a state directory in use is not refused.
#[tokio::test(flavor = "multi_thread")]
async fn two_runners_serve_one_state_directory_at_once() {
    let _one = exclusive().await;
    let other = if spin_or_skip("harness up and spin up on one state directory").is_some() {
        RunnerKind::Spin
    } else {
        RunnerKind::Harness
    };
    let dir = SharedDir::new("both");
    let harness = start(RunnerKind::Harness, &dir).await;
    let second = start(other, &dir).await;

    let created = call(&harness, &new_instance("CSPORTABLE-000003", "b1")).await;
    assert_eq!(created["resultCode"], "000000", "{created}");
    let retried = call(&second, &new_instance("CSPORTABLE-000003", "b2")).await;
    assert_eq!(retried["instanceId"], created["instanceId"], "{} finds the instance at once", other.name());
    let release = json!({"activity":"releaseInstance","instanceId":created["instanceId"]});
    assert_eq!(call(&second, &release).await["resultCode"], "000000");
    let query = json!({"activity":"queryInstance","instanceId":created["instanceId"]});
    let after = call(&harness, &query).await;
    assert_eq!(after["resultCode"], "000003", "released through {}: {after}", other.name());

    let state = second.snapshot().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(state, harness.snapshot().unwrap_or_else(|e| panic!("{e:#}")), "one store");
    drop(second);
    drop(harness);
}
