//! What the usage component costs per request, against the harness's mock marketplace OpenAPI
//! (`harness::marketplace::MockMarketplace`, which verifies the AK/SK and body signatures of every push) on
//! `127.0.0.1`, two ways side by side in one run:
//!
//! - **native core**: `koogallery_core::usage::handle` with a memory store and a native `Backend` over hyper (a
//!   new connection per call, as wasmtime-wasi-http's outbound client makes);
//! - **wasm component**: the `usage` component in-process through the harness (instances reused as Spin 4 does),
//!   calling the mock over real HTTP through the harness's outbound.
//!
//! Three measurements:
//!
//! - `usage/submit_100`: `POST /usage/records` with 100 new records (record ids unique per iteration): checked,
//!   numbered, stored, then pushed to the mock as one batch of 100 (sorted JSON, body signature, AK/SK);
//! - `usage/status`: `GET /usage/status` with nothing pending (the push check finds nothing, then the status read);
//! - `usage/resubmit_100`: the same 100 records submitted again: all known, nothing queued, no push.
//!
//! Each iteration's answer is checked after the clock stops (and for a submission, that the mock accepted its 100
//! `metering_sn`s; the mock's records are then cleared). At the end a Markdown table of medians and 90th
//! percentiles (per-request times recorded by the bench itself, warm-up included) and what the component adds
//! goes to stderr.
//!
//! `cargo bench -p conformance --bench usage` (needs the component built:
//! `cargo build --profile wasm --target wasm32-wasip2 -p usage …`, as `scripts/bench` does).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conformance::{WasmEndpoint, WasmOptions, to_http};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main};
use harness::App;
use harness::marketplace::{MarketplaceConfig, MockMarketplace};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use koogallery_core::http::Inbound;
use koogallery_core::ports::{Backend, FixedClock, MemoryStore, OsRandom, OutboundError, OutboundReply};
use koogallery_core::produce::Ctx;
use koogallery_core::usage::{self, UsageConfig};
use koogallery_core::wire::time::format_sdk_date;
use serde_json::{Value, json};

/// The wall clock of both the native core and the component (the harness pins the component's clock).
const NOW: u64 = 1_700_000_000_000;
const OPENAPI_AK: &str = "bench-usage-ak";
const OPENAPI_SK: &str = "bench-usage-sk-0123456789abcdef";
const ADMIN: &str = "bench-usage-admin-token";
const RECORDS: usize = 100;

fn variables(endpoint: &str) -> Vec<(String, String)> {
    vec![
        ("openapi_endpoint".to_owned(), endpoint.to_owned()),
        // Never the real marketplace, whatever happens to the mock.
        ("openapi_fallback_endpoint".to_owned(), "none".to_owned()),
        ("openapi_ak".to_owned(), OPENAPI_AK.to_owned()),
        ("openapi_sk".to_owned(), OPENAPI_SK.to_owned()),
        ("admin_token".to_owned(), ADMIN.to_owned()),
    ]
}

fn request(method: &str, path: &str, body: Vec<u8>) -> Inbound {
    Inbound {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        headers: vec![
            ("authorization".into(), format!("Bearer {ADMIN}")),
            ("content-type".into(), "application/json".into()),
        ],
        body,
    }
}

/// `POST /usage/records` with 100 hourly records `{prefix}-0` … `{prefix}-99` over 11 instances, begun an hour
/// before [`NOW`].
fn submission(prefix: &str) -> Inbound {
    let records: Vec<Value> = (0..RECORDS)
        .map(|n| {
            json!({
                "record_id": format!("{prefix}-{n}"),
                "instance_id": format!("instance-{}", n % 11),
                "begin_time": format_sdk_date(NOW - 3_600_000),
                "end_time": format_sdk_date(NOW - 1_000),
                "usage_value": format!("{}.5", n + 1),
            })
        })
        .collect();
    request("POST", "/usage/records", json!({ "records": records }).to_string().into_bytes())
}

// ---------------------------------------------------------------------------------------------------------------
// The native `Backend`: hyper over tokio, one connection per call.

struct HyperBackend;

impl Backend for HyperBackend {
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<OutboundReply, OutboundError> {
        let transport = |e: &dyn std::fmt::Display| OutboundError::Transport(e.to_string());
        let uri: http::Uri = url.parse().map_err(|e| transport(&e))?;
        let authority = uri.authority().ok_or_else(|| transport(&"no authority"))?.as_str().to_owned();
        let mut builder = http::Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(http::header::HOST, authority.as_str());
        for (k, v) in headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let outgoing = builder.body(Full::new(Bytes::copy_from_slice(body))).map_err(|e| transport(&e))?;
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(&authority).await?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let response = sender.send_request(outgoing).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes().to_vec();
            Ok::<_, anyhow::Error>(OutboundReply { status, body })
        };
        match tokio::time::timeout(Duration::from_millis(timeout_ms), exchange).await {
            Err(_) => Err(OutboundError::Timeout),
            Ok(Err(e)) => Err(transport(&e)),
            Ok(Ok(reply)) => Ok(reply),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The two paths.

type NativeCtx<'a> = Ctx<'a, MemoryStore, HyperBackend, FixedClock, OsRandom>;

/// Answers `req` natively; status and JSON body.
fn native(rt: &tokio::runtime::Runtime, req: &Inbound, cfg: &UsageConfig, ctx: &NativeCtx<'_>) -> (u16, Vec<u8>) {
    let answer = rt.block_on(usage::handle(req, Ok(cfg), ctx));
    (answer.response.status, answer.response.body)
}

/// Answers `req` through the component; status and JSON body.
fn wasm(rt: &tokio::runtime::Runtime, app: &App, req: http::Request<Bytes>) -> (u16, Vec<u8>) {
    let response = rt.block_on(app.send(req)).unwrap_or_else(|e| panic!("harness: {e:#}"));
    (response.status().as_u16(), response.into_body().to_vec())
}

fn parse((status, body): (u16, Vec<u8>)) -> Value {
    let value: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&body)}));
    assert_eq!(status, 200, "{value}");
    value
}

/// A submission of 100 new records was stored, queued and pushed as one batch, which the mock accepted.
fn check_submitted(answer: Value, mock: &MockMarketplace) {
    let n = RECORDS as u64;
    assert_eq!(
        (answer["queued"].as_u64(), answer["push"]["sent"].as_u64(), answer["push"]["batches"].as_u64()),
        (Some(n), Some(n), Some(1)),
        "{answer}"
    );
    let accepted = mock.metering_sn_counts();
    assert!(accepted.len() == RECORDS && accepted.values().all(|c| *c == 1), "mock accepted {accepted:?}");
}

/// A resubmission was recognised in full: nothing queued, nothing to push.
fn check_resubmitted(answer: &Value) {
    assert_eq!(answer["accepted"].as_u64(), Some(RECORDS as u64), "{answer}");
    assert_eq!(answer["queued"].as_u64(), Some(0), "{answer}");
    assert_eq!(answer["push"]["skipped"], "nothing_pending", "{answer}");
}

fn check_status(answer: &Value) {
    assert_eq!((answer["pending"].as_u64(), answer["failed"].as_u64()), (Some(0), Some(0)), "{answer}");
}

// ---------------------------------------------------------------------------------------------------------------
// Per-request times, for the summary table.

#[derive(Default)]
struct Samples(RefCell<BTreeMap<(&'static str, &'static str), Vec<Duration>>>);

impl Samples {
    fn add(&self, case: &'static str, path: &'static str, d: Duration) {
        self.0.borrow_mut().entry((case, path)).or_default().push(d);
    }

    /// The `q` quantile (0..=1) of the times recorded for `path` in `case`.
    fn quantile(&self, case: &'static str, path: &'static str, q: f64) -> Option<Duration> {
        let mut v = self.0.borrow().get(&(case, path))?.clone();
        v.sort_unstable();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v.get(i).copied()
    }
}

const SUBMIT: &str = "usage/submit_100";
const STATUS: &str = "usage/status";
const RESUBMIT: &str = "usage/resubmit_100";
const NATIVE: &str = "native core";
const WASM: &str = "wasm component";

fn bench(c: &mut Criterion) {
    // The component runs on a virtual clock: the mock does not compare X-Sdk-Date (or `ts`) with its own.
    let config = MarketplaceConfig::new(OPENAPI_AK, OPENAPI_SK, conformance::AK).without_date_check();
    let mock = MockMarketplace::start_in_background(config).unwrap_or_else(|e| panic!("mock marketplace: {e:#}"));
    let vars = variables(&mock.base_url());

    let ep = WasmEndpoint::new(WasmOptions { variables: vars.clone(), now_ms: NOW, ..WasmOptions::default() })
        .unwrap_or_else(|e| panic!("{e:#}"));
    let app: Arc<App> = ep.app();
    let rt = ep.runtime();

    let cfg = UsageConfig::from_variables(|k| {
        if k == "access_keys" {
            return Some(conformance::AK.to_owned());
        }
        vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let store = MemoryStore::new();
    let clock = FixedClock(NOW);
    let ctx = Ctx { store: &store, backend: &HyperBackend, clock: &clock, random: &OsRandom };
    let seq = Cell::new(0u64);
    let fresh = || {
        seq.set(seq.get() + 1);
        submission(&format!("meter-{}", seq.get()))
    };

    // Both paths answer as expected before anything is timed; the records resubmitted below are sent (and pushed)
    // once on each path here.
    let again = submission("again");
    check_submitted(parse(native(rt, &again, &cfg, &ctx)), &mock);
    mock.clear_records();
    check_submitted(parse(wasm(rt, &app, to_http(&again))), &mock);
    for r in mock.received() {
        assert!(r.auth.is_ok() && r.body_signature.as_ref().is_some_and(Result::is_ok), "{r:?}");
    }
    mock.clear_records();
    let status = request("GET", "/usage/status", vec![]);
    check_status(&parse(native(rt, &status, &cfg, &ctx)));
    check_status(&parse(wasm(rt, &app, to_http(&status))));

    let samples = Samples::default();

    // 1. 100 new records, pushed as one batch.
    let mut group = c.benchmark_group(SUBMIT);
    group.sampling_mode(SamplingMode::Flat);
    bench_path(&mut group, &samples, SUBMIT, NATIVE, || {
        let req = fresh();
        let (answer, took) = stopwatch(|| native(rt, &req, &cfg, &ctx));
        check_submitted(parse(answer), &mock);
        mock.clear_records();
        took
    });
    bench_path(&mut group, &samples, SUBMIT, WASM, || {
        let req = to_http(&fresh());
        let (answer, took) = stopwatch(|| wasm(rt, &app, req));
        check_submitted(parse(answer), &mock);
        mock.clear_records();
        took
    });
    group.finish();

    // 2. The status, nothing pending.
    let mut group = c.benchmark_group(STATUS);
    group.sampling_mode(SamplingMode::Flat);
    bench_path(&mut group, &samples, STATUS, NATIVE, || {
        let (answer, took) = stopwatch(|| native(rt, &status, &cfg, &ctx));
        check_status(&parse(answer));
        took
    });
    bench_path(&mut group, &samples, STATUS, WASM, || {
        let req = to_http(&status);
        let (answer, took) = stopwatch(|| wasm(rt, &app, req));
        check_status(&parse(answer));
        took
    });
    group.finish();

    // 3. The same 100 records again: all known, no push.
    let mut group = c.benchmark_group(RESUBMIT);
    group.sampling_mode(SamplingMode::Flat);
    bench_path(&mut group, &samples, RESUBMIT, NATIVE, || {
        let (answer, took) = stopwatch(|| native(rt, &again, &cfg, &ctx));
        check_resubmitted(&parse(answer));
        took
    });
    bench_path(&mut group, &samples, RESUBMIT, WASM, || {
        let req = to_http(&again);
        let (answer, took) = stopwatch(|| wasm(rt, &app, req));
        check_resubmitted(&parse(answer));
        took
    });
    group.finish();

    assert!(mock.received().is_empty(), "a status read or a resubmission pushed");
    summary(&samples);
}

/// Benchmarks `path` in `group` (the summary's `case`): `one` makes its request and returns the time it measured,
/// which is both summed for criterion and recorded for the summary.
fn bench_path(
    group: &mut BenchmarkGroup<'_, WallTime>,
    samples: &Samples,
    case: &'static str,
    path: &'static str,
    mut one: impl FnMut() -> Duration,
) {
    group.bench_function(path, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let took = one();
                samples.add(case, path, took);
                total += took;
            }
            total
        });
    });
}

/// Runs `f`, returning its result (checked by the caller, after the clock stopped) and how long it took.
fn stopwatch<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let result = f();
    (result, start.elapsed())
}

/// The medians (and 90th percentiles) natively and through the component, and what the component adds, as a
/// Markdown table on stderr.
fn summary(samples: &Samples) {
    let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
    let cell = |case: &'static str, path: &'static str| match (
        samples.quantile(case, path, 0.5),
        samples.quantile(case, path, 0.9),
    ) {
        (Some(median), Some(p90)) => format!("{} ({})", us(median), us(p90)),
        _ => "-".to_owned(),
    };
    let added = |case: &'static str| match (samples.quantile(case, NATIVE, 0.5), samples.quantile(case, WASM, 0.5)) {
        (Some(native), Some(wasm)) => format!(
            "{:+.0} µs (×{:.1})",
            (wasm.as_secs_f64() - native.as_secs_f64()) * 1e6,
            wasm.as_secs_f64() / native.as_secs_f64()
        ),
        _ => "-".to_owned(),
    };
    eprintln!();
    eprintln!("| case | native core, median (p90) | wasm component, median (p90) | the component adds (median) |");
    eprintln!("|---|---|---|---|");
    for case in [SUBMIT, STATUS, RESUBMIT] {
        eprintln!("| {case} | {} | {} | {} |", cell(case, NATIVE), cell(case, WASM), added(case));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
