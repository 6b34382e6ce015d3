//! `harness emulate` with every kit rule against the real kit components, on each runner's default store and on
//! Redis: V2 and V1 syncs, kit bodies at the production URL, the refusals, and, with the runner in forward mode
//! against the emulator's own webhook receiver, exactly one event per effective change.
//!
//! The merchant RSA key pair is the test-only one of `tests/fixtures` (the kit cassettes use it too).

use emulator::{EmulateOptions, RULES};
use runners::{RedisServer, Runner, RunnerKind, RunnerOptions, Store};

use super::backend::SECRET;
use super::{AK, KIT_KEY, exclusive, free_port, key_pair, runner_kinds};

async fn kit_emulate_on(kind: RunnerKind, store: Store, keys: &(&str, &str)) {
    let port = free_port();
    let variables = [
        ("access_keys", AK),
        ("kit_access_keys", KIT_KEY),
        ("rsa_private_key", keys.0),
        ("backend_url", &format!("http://127.0.0.1:{port}/events")),
        ("backend_origin", &format!("http://127.0.0.1:{port}")),
        ("backend_secret", SECRET),
    ];
    let opts = RunnerOptions {
        variables: variables.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        store: store.clone(),
        ..Default::default()
    };
    let where_ = format!("{} on {}", kind.name(), store.name());
    let runner = Runner::start(kind, opts).await.unwrap_or_else(|e| panic!("{where_}: {e:#}"));
    // The kit address as the production URL, then as the bare origin (`/produceAPI/v2/<name>` at the root).
    for kit_url in [format!("{}/produce", runner.origin()), runner.origin().to_owned()] {
        let report = emulator::run(EmulateOptions {
            url: format!("{}/produce", runner.origin()),
            key: AK.into(),
            v1: true,
            kit_url: Some(kit_url.clone()),
            kit_key: Some(KIT_KEY.into()),
            kit_rsa_public_key: Some(keys.1.to_owned()),
            backend_listen: Some(format!("127.0.0.1:{port}")),
            backend_secret: Some(SECRET.into()),
            progress: false,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("emulate: {e:#}"));
        let not_passed: Vec<String> = report.not_passed();
        assert!(
            not_passed.is_empty(),
            "{where_}, kit URL {kit_url}: {}\n{}\n{}\nrunner log:\n{}",
            report.summary(),
            not_passed.join("\n"),
            report.table(),
            runner.log_tail()
        );
        let kit_rules = RULES.iter().filter(|r| r.id.starts_with("kit.")).count();
        assert!(kit_rules >= 17, "{kit_rules} kit rules");
        eprintln!("kit emulate on {where_}, kit URL {kit_url}: {} ({} kit rules)", report.summary(), kit_rules);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kit_rule_passes_on_each_runners_default_store() {
    let _one = exclusive().await;
    let keys = key_pair();
    for kind in runner_kinds("kit emulate") {
        kit_emulate_on(kind, Store::RunnerDefault, &keys).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kit_rule_passes_on_redis() {
    let _one = exclusive().await;
    let keys = key_pair();
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e:#}"));
    for kind in runner_kinds("kit emulate on Redis") {
        redis.flush().unwrap_or_else(|e| panic!("{e:#}"));
        kit_emulate_on(kind, Store::Redis(redis.url()), &keys).await;
    }
}
