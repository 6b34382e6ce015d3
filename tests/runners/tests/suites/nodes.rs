//! Two nodes, `harness up` and `spin up`, on one Redis: an instance created through one is served, retried and
//! released through the other, as several Spin nodes behind a load balancer share it.

use runners::{RedisServer, Runner, RunnerKind, RunnerOptions, Store, spin_or_skip};
use serde_json::json;

use super::{AK, call, exclusive};

#[tokio::test(flavor = "multi_thread")]
async fn harness_and_spin_nodes_share_instances_through_redis() {
    let _one = exclusive().await;
    if spin_or_skip("two nodes on Redis").is_none() {
        return;
    }
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e:#}"));
    let opts = || RunnerOptions {
        variables: vec![("access_keys".into(), AK.into())],
        store: Store::Redis(redis.url()),
        ..Default::default()
    };
    let harness = Runner::start(RunnerKind::Harness, opts()).await.unwrap_or_else(|e| panic!("{e:#}"));
    let spin = Runner::start(RunnerKind::Spin, opts()).await.unwrap_or_else(|e| panic!("{e:#}"));

    let new = |business: &str| json!({"activity":"newInstance","orderId":"CSNODES","orderLineId":"CSNODES-000001","businessId":business});
    let created = call(&harness, &new("b1")).await;
    assert_eq!(created["resultCode"], "000000", "{created}");
    let retried = call(&spin, &new("b2")).await;
    assert_eq!(retried["instanceId"], created["instanceId"], "the retry on the other node finds the instance");
    let id = created["instanceId"].clone();

    let query = json!({"activity":"queryInstance","instanceId":id});
    let on_spin = call(&spin, &query).await;
    assert_eq!(on_spin["resultCode"], "000000", "{on_spin}");
    assert_eq!(on_spin["info"][0]["instanceId"], id);

    let release = json!({"activity":"releaseInstance","instanceId":id});
    assert_eq!(call(&spin, &release).await["resultCode"], "000000");
    let after = call(&harness, &query).await;
    assert_eq!(after["resultCode"], "000003", "released on spin, so the harness no longer knows it: {after}");

    let state = spin.snapshot().unwrap_or_else(|e| panic!("{e:#}"));
    let instance_keys = state.0.keys().filter(|k| k.starts_with("live/instance/")).count();
    assert_eq!(instance_keys, 1, "one record for both nodes");
}
