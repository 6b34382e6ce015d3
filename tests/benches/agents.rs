//! What the Agents-gateway front costs per request, against a mock OpenAI-compatible model server
//! (`harness::upstream::MockUpstream`, model `gpt-mock`) on `127.0.0.1`, three ways side by side in one run:
//!
//! - **direct**: a hyper client straight to the mock (what an un-fronted model server costs): a new connection per
//!   request (as the component's outbound and the native path below make: the baseline), and, for JSON only, one
//!   keep-alive connection reused (what connection set-up costs). Not for streams: the mock does not set
//!   `TCP_NODELAY`, so on a reused connection its first event waits behind the head for the client's delayed ACK
//!   (~40 ms), a property of the mock's sockets rather than of any front;
//! - **native core**: `koogallery_core::agents::handle` with a native `Upstream` over hyper (a new connection per
//!   request, as wasmtime-wasi-http's outbound client does), a memory store, the JWT verified and the ledger written;
//! - **wasm component**: the `agents` component in-process through the harness (instances reused as Spin 4 does),
//!   calling the mock over real HTTP through the harness's outbound.
//!
//! Two measurements:
//!
//! - `agents_json`: a JSON chat completion, whole answer read (the gateway reads it whole to guarantee `usage`);
//! - `agents_stream_first_chunk`: a `"stream": true` chat completion, timed up to the first body chunk only (the
//!   rest is drained untimed before the next request). The mock sends its first event with the head and the next
//!   ones [`CHUNK_DELAY`] apart; `gpt-mock`'s JSON answers are never delayed, whatever the chunk delay.
//!
//! At the end a Markdown table of medians and 90th percentiles (per-request times recorded by the bench itself,
//! warm-up included) and the latency each front adds over the direct new-connection call goes to stderr.
//!
//! `cargo bench -p conformance --bench agents` (needs the components built:
//! `cargo build --profile wasm --target wasm32-wasip2 -p agents -p produce -p sso …`, as `scripts/bench` does).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conformance::{WasmEndpoint, WasmOptions, to_http};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main};
use harness::App;
use harness::upstream::{CHAT_COMPLETIONS_PATH, MockUpstream, UpstreamConfig};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use koogallery_core::agents::{self, AgentsConfig, Answer};
use koogallery_core::http::Inbound;
use koogallery_core::ports::{
    ChunkSink, ChunkSource, FixedClock, MemoryStore, OsRandom, OutboundError, SinkClosed, Upstream, UpstreamHead,
    UpstreamRequest, VecSink,
};
use koogallery_core::produce::Ctx;
use koogallery_core::signing::agents_jwt;
use koogallery_core::signing::keys::SecretKey;

/// The wall clock of both the native core and the component (the harness pins the component's clock).
const NOW: u64 = 1_700_000_000_000;
const BENCH_AK: &str = "bench-agents-ak";
const BENCH_SK: &str = "bench-agents-sk-0123456789abcdef";
/// The pause between two events of a streamed answer.
const CHUNK_DELAY: Duration = Duration::from_millis(1);
const JSON_BODY: &str =
    r#"{"model":"gpt-mock","messages":[{"role":"user","content":"say three words please"}],"max_tokens":3}"#;
const STREAM_BODY: &str = r#"{"model":"gpt-mock","messages":[{"role":"user","content":"say three words please"}],"max_tokens":3,"stream":true}"#;

fn variables(upstream: &str) -> Vec<(String, String)> {
    vec![
        ("agents_keys".to_owned(), format!("{BENCH_AK}:{BENCH_SK}")),
        ("agents_upstream".to_owned(), upstream.to_owned()),
    ]
}

/// A gateway request to `/agents/v1/chat/completions` with a valid JWT and its own request id.
fn gateway_request(token: &str, body: &str, request_id: u64) -> Inbound {
    Inbound {
        method: "POST".into(),
        path: format!("/agents{CHAT_COMPLETIONS_PATH}"),
        query: String::new(),
        headers: vec![
            ("authorization".into(), format!("Bearer {token}")),
            ("content-type".into(), "application/json".into()),
            ("x-request-id".into(), format!("bench-{request_id}")),
            ("x-customer-id".into(), "bench-customer".into()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The native `Upstream`: hyper over tokio, one connection per request.

async fn connect(authority: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A POST of `body` to `path` on `authority`.
fn post(authority: &str, path: &str, body: &[u8]) -> http::Request<Full<Bytes>> {
    http::Request::post(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request")
}

struct HyperUpstream;

struct HyperBody(Incoming);

impl ChunkSource for HyperBody {
    async fn next_chunk(&mut self, timeout_ms: u64) -> Result<Option<Vec<u8>>, OutboundError> {
        loop {
            match tokio::time::timeout(Duration::from_millis(timeout_ms), self.0.frame()).await {
                Err(_) => return Err(OutboundError::Timeout),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => return Err(OutboundError::Transport(e.to_string())),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Ok(Some(data.to_vec()));
                    }
                }
            }
        }
    }
}

impl Upstream for HyperUpstream {
    type Body = HyperBody;

    async fn open(&self, request: &UpstreamRequest, timeout_ms: u64) -> Result<UpstreamHead<HyperBody>, OutboundError> {
        let transport = |e: &dyn std::fmt::Display| OutboundError::Transport(e.to_string());
        let uri: http::Uri = request.url.parse().map_err(|e| transport(&e))?;
        let authority = uri.authority().ok_or_else(|| transport(&"no authority"))?.as_str().to_owned();
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(http::header::HOST, authority.as_str());
        for (k, v) in &request.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let outgoing = builder.body(Full::new(Bytes::from(request.body.clone()))).map_err(|e| transport(&e))?;
        let exchange = async {
            let mut sender = connect(&authority).await?;
            Ok::<_, anyhow::Error>(sender.send_request(outgoing).await?)
        };
        match tokio::time::timeout(Duration::from_millis(timeout_ms), exchange).await {
            Err(_) => Err(OutboundError::Timeout),
            Ok(Err(e)) => Err(transport(&e)),
            Ok(Ok(response)) => {
                let headers = response
                    .headers()
                    .iter()
                    .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
                    .collect();
                Ok(UpstreamHead { status: response.status().as_u16(), headers, body: HyperBody(response.into_body()) })
            }
        }
    }
}

/// A sink that notes when the first chunk was written.
#[derive(Default)]
struct FirstChunkSink {
    first: Option<Instant>,
    aborted: bool,
}

impl ChunkSink for FirstChunkSink {
    async fn send(&mut self, _chunk: Vec<u8>, _timeout_ms: u64) -> Result<(), SinkClosed> {
        if self.first.is_none() {
            self.first = Some(Instant::now());
        }
        Ok(())
    }

    fn abort(&mut self) {
        self.aborted = true;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The three paths.

type NativeCtx<'a> = Ctx<'a, MemoryStore, HyperUpstream, FixedClock, OsRandom>;

/// The whole answer: status, `x-usage-status`, body.
async fn native_json(req: &Inbound, cfg: &AgentsConfig, ctx: &NativeCtx<'_>) -> (u16, String, Vec<u8>) {
    match agents::handle(req, Ok(cfg), ctx).await {
        Answer::Complete { response, .. } => {
            let usage = response.header("x-usage-status").unwrap_or_default().to_owned();
            (response.status, usage, response.body)
        }
        Answer::Stream(relay) => panic!("a JSON answer was streamed (status {})", relay.head.status),
    }
}

/// Sends `req` through the component and returns the response with its body still streaming.
async fn wasm_streaming(app: &App, req: &Inbound) -> http::Response<wasmtime_wasi_http::WasiBody> {
    let request = to_http(req).map(|b| Full::new(b).map_err(|never| match never {}).boxed_unsync());
    app.serve_streaming(request, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap_or_else(|e| panic!("harness: {e:#}"))
        .response
}

/// The first non-empty data frame of `body`.
async fn first_data<B>(body: &mut B) -> Bytes
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    return data;
                }
            }
            Some(Err(e)) => panic!("body failed before its first chunk: {e:?}"),
            None => panic!("body ended before its first chunk"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Per-request times, for the summary table.

#[derive(Default)]
struct Samples(RefCell<BTreeMap<(&'static str, &'static str), Vec<Duration>>>);

impl Samples {
    fn add(&self, group: &'static str, path: &'static str, d: Duration) {
        self.0.borrow_mut().entry((group, path)).or_default().push(d);
    }

    /// The `q` quantile (0..=1) of the times recorded for `path` in `group`.
    fn quantile(&self, group: &'static str, path: &'static str, q: f64) -> Option<Duration> {
        let mut v = self.0.borrow().get(&(group, path))?.clone();
        v.sort_unstable();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v.get(i).copied()
    }
}

const JSON: &str = "agents_json";
const FIRST: &str = "agents_stream_first_chunk";
const DIRECT_NEW: &str = "direct (new connection)";
const DIRECT_KEEP: &str = "direct (keep-alive)";
const NATIVE: &str = "native core";
const WASM: &str = "wasm component";

fn bench(c: &mut Criterion) {
    let mock = MockUpstream::start_in_background(UpstreamConfig { api_key: None, chunk_delay: CHUNK_DELAY })
        .unwrap_or_else(|e| panic!("mock upstream: {e:#}"));
    let authority = mock.addr().to_string();
    let vars = variables(&mock.base_url());
    let cfg = AgentsConfig::from_variables(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    let token = agents_jwt::sign(BENCH_AK, &SecretKey::new(BENCH_SK), NOW, NOW + 3_600_000);
    // What the gateway sends upstream for a stream (with `stream_options.include_usage`): the direct calls send the
    // same, so the mock does the same work on every path.
    let stream_upstream_body =
        agents::ask_for_stream_usage("POST", CHAT_COMPLETIONS_PATH, STREAM_BODY.as_bytes()).expect("amended");

    let ep = WasmEndpoint::new(WasmOptions { variables: vars.clone(), now_ms: NOW, ..WasmOptions::default() })
        .unwrap_or_else(|e| panic!("{e:#}"));
    let app: Arc<App> = ep.app();
    let rt = ep.runtime();

    let store = MemoryStore::new();
    let clock = FixedClock(NOW);
    let ctx = Ctx { store: &store, backend: &HyperUpstream, clock: &clock, random: &OsRandom };
    let mut seq = 0u64;
    let mut next_id = move || {
        seq += 1;
        seq
    };

    // Every path answers as expected before anything is timed.
    let direct = rt.block_on(async {
        let mut s = connect(&authority).await.expect("connect");
        let r = s.send_request(post(&authority, CHAT_COMPLETIONS_PATH, JSON_BODY.as_bytes())).await.expect("send");
        (r.status().as_u16(), r.into_body().collect().await.expect("body").to_bytes())
    });
    assert_eq!(direct.0, 200, "{}", String::from_utf8_lossy(&direct.1));
    let (status, usage, body) = rt.block_on(native_json(&gateway_request(&token, JSON_BODY, next_id()), &cfg, &ctx));
    assert_eq!((status, usage.as_str()), (200, "reported"), "{}", String::from_utf8_lossy(&body));
    let wasm = rt.block_on(app.send(to_http(&gateway_request(&token, JSON_BODY, next_id())))).expect("wasm");
    assert_eq!(wasm.status(), 200, "{}", String::from_utf8_lossy(wasm.body()));
    assert_eq!(wasm.headers().get("x-usage-status").and_then(|v| v.to_str().ok()), Some("reported"));
    assert!(String::from_utf8_lossy(wasm.body()).contains(r#""usage""#));
    let native_stream = rt.block_on(async {
        match agents::handle(&gateway_request(&token, STREAM_BODY, next_id()), Ok(&cfg), &ctx).await {
            Answer::Stream(relay) => {
                assert_eq!(relay.head.status, 200);
                let mut sink = VecSink::default();
                relay.run(&mut sink, &store, &clock).await;
                assert!(!sink.aborted);
                sink.chunks.concat()
            }
            Answer::Complete { response, .. } => panic!("not streamed: {}", response.status),
        }
    });
    let native_stream = String::from_utf8_lossy(&native_stream).into_owned();
    assert!(native_stream.contains(r#""usage":{"#) && native_stream.contains("[DONE]"), "{native_stream}");
    let (wasm_frames, wasm_stream) = rt.block_on(async {
        let response = wasm_streaming(&app, &gateway_request(&token, STREAM_BODY, next_id())).await;
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut frames = 0;
        let mut all = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("stream frame").into_data() {
                frames += 1;
                all.extend_from_slice(&data);
            }
        }
        (frames, String::from_utf8_lossy(&all).into_owned())
    });
    assert!(wasm_stream.contains(r#""usage":{"#) && wasm_stream.contains("[DONE]"), "{wasm_stream}");
    assert!(wasm_frames > 1, "the component's stream came in one frame: buffered, not streamed");
    let received = mock.received();
    assert!(received.iter().filter(|r| r.include_usage_requested).count() >= 2, "include_usage was not added");
    mock.clear_records();

    let samples = Samples::default();
    let mut keep_alive = rt.block_on(connect(&authority)).expect("connect");

    // 1. A JSON request, whole answer.
    let mut group = c.benchmark_group(JSON);
    group.sampling_mode(SamplingMode::Flat);
    bench_path(&mut group, &samples, &mock, JSON, DIRECT_NEW, || {
        let request = post(&authority, CHAT_COMPLETIONS_PATH, JSON_BODY.as_bytes());
        // The body is dropped after the clock stops.
        stopwatch(|| {
            rt.block_on(async {
                let mut s = connect(&authority).await.expect("connect");
                s.send_request(request).await.expect("send").into_body().collect().await.expect("body")
            })
        })
        .1
    });
    bench_path(&mut group, &samples, &mock, JSON, DIRECT_KEEP, || {
        let request = post(&authority, CHAT_COMPLETIONS_PATH, JSON_BODY.as_bytes());
        stopwatch(|| {
            rt.block_on(async {
                keep_alive.ready().await.expect("connection reusable");
                keep_alive.send_request(request).await.expect("send").into_body().collect().await.expect("body")
            })
        })
        .1
    });
    bench_path(&mut group, &samples, &mock, JSON, NATIVE, || {
        let request = gateway_request(&token, JSON_BODY, next_id());
        let (answer, took) = stopwatch(|| rt.block_on(native_json(&request, &cfg, &ctx)));
        assert_eq!(answer.0, 200);
        took
    });
    bench_path(&mut group, &samples, &mock, JSON, WASM, || {
        let request = to_http(&gateway_request(&token, JSON_BODY, next_id()));
        let (answer, took) = stopwatch(|| rt.block_on(app.send(request)).expect("wasm"));
        assert_eq!(answer.status(), 200);
        took
    });
    group.finish();

    // 2. A streamed request, up to its first body chunk; the rest is drained untimed.
    let mut group = c.benchmark_group(FIRST);
    group.sampling_mode(SamplingMode::Flat);
    bench_path(&mut group, &samples, &mock, FIRST, DIRECT_NEW, || {
        let request = post(&authority, CHAT_COMPLETIONS_PATH, &stream_upstream_body);
        rt.block_on(async {
            let start = Instant::now();
            let mut s = connect(&authority).await.expect("connect");
            let mut body = s.send_request(request).await.expect("send").into_body();
            first_data(&mut body).await;
            let took = start.elapsed();
            body.collect().await.expect("rest");
            took
        })
    });
    bench_path(&mut group, &samples, &mock, FIRST, NATIVE, || {
        let request = gateway_request(&token, STREAM_BODY, next_id());
        rt.block_on(async {
            let start = Instant::now();
            let Answer::Stream(relay) = agents::handle(&request, Ok(&cfg), &ctx).await else {
                panic!("not streamed");
            };
            // The head is ready here; the relay writes the body (the sink notes the first chunk) to its end.
            let mut sink = FirstChunkSink::default();
            relay.run(&mut sink, &store, &clock).await;
            assert!(!sink.aborted);
            sink.first.expect("a first chunk").duration_since(start)
        })
    });
    bench_path(&mut group, &samples, &mock, FIRST, WASM, || {
        let request = gateway_request(&token, STREAM_BODY, next_id());
        rt.block_on(async {
            let start = Instant::now();
            let mut body = wasm_streaming(&app, &request).await.into_body();
            first_data(&mut body).await;
            let took = start.elapsed();
            body.collect().await.expect("rest");
            took
        })
    });
    group.finish();

    summary(&samples);
}

/// Benchmarks `path` in `group` (the summary's `case`): each iteration clears the mock's records, then `one` makes
/// its request and returns the time it measured, which is both summed for criterion and recorded for the summary.
fn bench_path(
    group: &mut BenchmarkGroup<'_, WallTime>,
    samples: &Samples,
    mock: &MockUpstream,
    case: &'static str,
    path: &'static str,
    mut one: impl FnMut() -> Duration,
) {
    group.bench_function(path, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                mock.clear_records();
                let took = one();
                samples.add(case, path, took);
                total += took;
            }
            total
        });
    });
}

/// Runs `f`, returning its result (dropped by the caller, after the clock stopped) and how long it took.
fn stopwatch<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let result = f();
    (result, start.elapsed())
}

/// The medians (and 90th percentiles) and what each front adds over the direct new-connection call, as a Markdown
/// table on stderr.
fn summary(samples: &Samples) {
    let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
    let cell = |path: &'static str, group: &'static str| match (
        samples.quantile(group, path, 0.5),
        samples.quantile(group, path, 0.9),
    ) {
        (Some(median), Some(p90)) => format!("{} ({})", us(median), us(p90)),
        _ => "-".to_owned(),
    };
    let added = |path: &'static str, group: &'static str| match (
        samples.quantile(group, path, 0.5),
        samples.quantile(group, DIRECT_NEW, 0.5),
    ) {
        _ if path == DIRECT_NEW => "(baseline)".to_owned(),
        (Some(d), Some(base)) => format!("{:+.0} µs", (d.as_secs_f64() - base.as_secs_f64()) * 1e6),
        _ => "-".to_owned(),
    };
    eprintln!();
    eprintln!(
        "| path | JSON request, median (p90) | added vs direct | first stream chunk, median (p90) | added vs direct |"
    );
    eprintln!("|---|---|---|---|---|");
    for path in [DIRECT_NEW, DIRECT_KEEP, NATIVE, WASM] {
        eprintln!(
            "| {path} | {} | {} | {} | {} |",
            cell(path, JSON),
            added(path, JSON),
            cell(path, FIRST),
            added(path, FIRST)
        );
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
