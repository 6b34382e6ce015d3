//! Per-activity cost of the production interface, natively (no Wasm): verify, parse, apply, store, serialise, sign.
//! Compare with the same requests through the Wasm component (`harness bench`).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::cell::Cell;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use koogallery_core::http::Inbound;
use koogallery_core::marketplace::Marketplace;
use koogallery_core::ports::MemoryStore;
use koogallery_core::ports::{Clock, NoBackend, OsRandom};
use koogallery_core::produce::{Ctx, ProduceConfig, handle};
use koogallery_core::signing::keys::KeyRing;

const AK: &str = "1234567890abcdef1234567890abcdef";
const NOW: u64 = 1_700_000_000_000;

struct Fixed;
impl Clock for Fixed {
    fn now_ms(&self) -> u64 {
        NOW
    }
}

fn bench(c: &mut Criterion) {
    let keys = KeyRing::parse_list(AK).expect("key");
    let cfg = ProduceConfig::new(keys.clone());
    let mp = Marketplace::new(keys);
    let store = MemoryStore::new();
    let ctx = Ctx { store: &store, backend: &NoBackend, clock: &Fixed, random: &OsRandom };
    let counter = Cell::new(0u64);
    let next = || {
        counter.set(counter.get() + 1);
        counter.get()
    };
    let v2 = |body: String| -> Inbound { mp.v2("/produce", body.as_bytes(), NOW, &format!("{:064X}", next())) };
    let run = |req: Inbound| pollster::block_on(handle(&req, &cfg, &ctx));

    let created = run(v2(
        r#"{"activity":"newInstance","businessId":"b","orderId":"CSB","orderLineId":"CSB-000001","testFlag":"0"}"#
            .into(),
    ));
    let body: serde_json::Value = serde_json::from_slice(&created.response.body).expect("json");
    let id = body["instanceId"].as_str().expect("instanceId").to_owned();

    let mut group = c.benchmark_group("produce_native");
    let mut case = |name: &str, body: &dyn Fn(u64) -> String| {
        group.bench_function(name, |b| b.iter_batched(|| v2(body(next())), run, BatchSize::SmallInput));
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
            run,
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
