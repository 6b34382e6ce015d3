//! Per-activity cost of the production interface through the Wasm component in-process (harness, wasmtime), with
//! the same requests as core's native `produce` benchmark: group `produce_wasm` with instances reused as Spin 4
//! reuses them, group `produce_wasm_isolated` with a fresh instance per request (reuse 1/1), for comparison.
//!
//! `cargo bench -p conformance --bench produce_wasm`
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::cell::Cell;

use conformance::{Endpoint, Lifecycle, WasmEndpoint, WasmOptions, json};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use koogallery_core::http::Inbound;

fn bench(c: &mut Criterion) {
    activities(c, "produce_wasm", false);
    activities(c, "produce_wasm_isolated", true);
}

/// Every activity (with reuse) or the two the README compares (isolated).
fn activities(c: &mut Criterion, group_name: &str, isolated: bool) {
    let ep = WasmEndpoint::new(WasmOptions { isolated, ..WasmOptions::default() }).unwrap_or_else(|e| panic!("{e:#}"));
    let signer = Lifecycle::default();
    let now = ep.now();
    let counter = Cell::new(0u64);
    let next = || {
        counter.set(counter.get() + 1);
        counter.get()
    };
    let created = ep.send(&signer.v2(
        &serde_json::json!({"activity":"newInstance","businessId":"b","orderId":"CSB","orderLineId":"CSB-000001","testFlag":"0"}),
        now,
    ));
    let id = json(&created)["instanceId"].as_str().unwrap_or("").to_owned();
    let v2 = |body: String| -> Inbound {
        let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        signer.v2(&value, now)
    };

    let mut group = c.benchmark_group(group_name);
    let mut case = |name: &str, body: &dyn Fn(u64) -> String| {
        if isolated && name != "newInstance_retry" {
            return;
        }
        group.bench_function(name, |b| b.iter_batched(|| v2(body(next())), |req| ep.send(&req), BatchSize::SmallInput));
    };
    case("newInstance_new_order", &|n| {
        format!(
            r#"{{"activity":"newInstance","businessId":"b{n}","orderId":"CS{n}","orderLineId":"CS{n}-000001","testFlag":"0"}}"#
        )
    });
    case("newInstance_retry", &|n| {
        format!(
            r#"{{"activity":"newInstance","businessId":"b{n}","orderId":"CSB","orderLineId":"CSB-000001","testFlag":"0"}}"#
        )
    });
    case("queryInstance", &|_| format!(r#"{{"activity":"queryInstance","instanceId":"{id}","testFlag":"0"}}"#));
    case("refreshInstance", &|n| {
        format!(
            r#"{{"activity":"refreshInstance","expireTime":"20301124023618","instanceId":"{id}","orderId":"R{n}","orderLineId":"R{n}-1","scene":"RENEWAL","testFlag":"0"}}"#
        )
    });
    case("updateInstanceStatus", &|n| {
        let status = if n % 2 == 0 { "FREEZE" } else { "UNFREEZE" };
        format!(r#"{{"activity":"updateInstanceStatus","instanceId":"{id}","status":"{status}","testFlag":"0"}}"#)
    });
    case("releaseInstance_unknown", &|n| {
        format!(r#"{{"activity":"releaseInstance","instanceId":"x{n}","testFlag":"0"}}"#)
    });
    group.bench_function("rejected_bad_signature", |b| {
        b.iter_batched(
            || {
                let mut req = v2(format!(r#"{{"activity":"queryInstance","instanceId":"{id}"}}"#));
                req.body[2] ^= 1;
                req
            },
            |req| ep.send(&req),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
