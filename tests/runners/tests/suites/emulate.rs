//! `harness emulate` (every rule; V1 included; the kit rules run in `kit_emulate.rs`) against each runner on
//! its default store and on Redis, on the real clock.

use emulator::{EmulateOptions, Status};
use runners::{RedisServer, Runner, RunnerKind, RunnerOptions, Store};

use super::{AK, exclusive, runner_kinds};

async fn emulate_on(kind: RunnerKind, store: Store) {
    let opts = RunnerOptions {
        variables: vec![("access_keys".into(), AK.into())],
        store: store.clone(),
        ..Default::default()
    };
    let runner =
        Runner::start(kind, opts).await.unwrap_or_else(|e| panic!("{} on {}: {e:#}", kind.name(), store.name()));
    let report = emulator::run(EmulateOptions {
        url: format!("{}/produce", runner.origin()),
        key: AK.into(),
        v1: true,
        progress: false,
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("emulate: {e:#}"));
    assert!(
        report.passed(),
        "{} on {}: {}\n{}\nrunner log:\n{}",
        kind.name(),
        store.name(),
        report.summary(),
        report.table(),
        runner.log_tail()
    );
    assert!(report.count(Status::Pass) >= 40, "{}", report.summary());
    eprintln!("emulate on {} with {}: {} ({} requests)", kind.name(), store.name(), report.summary(), report.requests);
}

#[tokio::test(flavor = "multi_thread")]
async fn emulate_passes_every_rule_on_each_runners_default_store() {
    let _one = exclusive().await;
    for kind in runner_kinds("emulate") {
        emulate_on(kind, Store::RunnerDefault).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn emulate_passes_every_rule_on_redis() {
    let _one = exclusive().await;
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e:#}"));
    for kind in runner_kinds("emulate on Redis") {
        redis.flush().unwrap_or_else(|e| panic!("{e:#}"));
        emulate_on(kind, Store::Redis(redis.url())).await;
    }
}
