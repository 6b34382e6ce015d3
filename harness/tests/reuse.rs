//! Instance reuse as Spin 4 does it, proved through the `probe` component: instances serve many requests and several
//! at once, up to the limits; 1/1 isolates requests; a trap ends the instance and every request on it; a spinning
//! guest times out; bodies stream both ways through `harness up`.
//!
//! Build the probe first: `cargo build --release --target wasm32-wasip2 -p probe`.

mod common;

use bytes::Bytes;
use common::{builder, get};
use harness::App;
use http_body_util::BodyExt as _;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// `instance=<id> …` → the id.
fn instance_of(body: &str) -> String {
    body.split_whitespace().find_map(|w| w.strip_prefix("instance=")).unwrap_or_default().to_owned()
}

/// The number after `<name>=` in a probe answer.
fn field(body: &str, name: &str) -> u64 {
    body.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {body:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_one_instance_serves_many_requests_up_to_the_reuse_count() {
    // A long idle timeout, so a slow machine pausing between two requests does not end the instance.
    let idle = Duration::from_secs(60);
    let app = builder().idle_instance_timeout(idle).build().await.expect("app");
    let mut seen = Vec::new();
    for _ in 0..20 {
        let (status, body) = get(&app, "/probe/instance").await;
        assert_eq!(status, 200);
        seen.push((instance_of(&body), field(&body, "served")));
    }
    let ids: BTreeSet<&String> = seen.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 1, "sequential requests within the idle timeout reuse one instance: {seen:?}");
    let served: Vec<u64> = seen.iter().map(|(_, n)| *n).collect();
    assert_eq!(served, (1..=20).collect::<Vec<_>>(), "the guest's statics survive between requests");
    assert_eq!(app.instantiations(), 1);

    // With a reuse count of 5, 20 requests need 4 instances, each serving exactly 5.
    let app = builder().max_instance_reuse_count(5).idle_instance_timeout(idle).build().await.expect("app");
    let mut per_instance: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..20 {
        let body = get(&app, "/probe/instance").await.1;
        let n = field(&body, "served");
        per_instance.insert(instance_of(&body), n);
    }
    assert_eq!(per_instance.len(), 4, "{per_instance:?}");
    assert!(per_instance.values().all(|n| *n == 5), "{per_instance:?}");
    assert_eq!(app.instantiations(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn reuse_one_by_one_gives_every_request_a_fresh_instance() {
    let app = builder().max_instance_reuse_count(1).max_instance_concurrent_reuse_count(1).build().await.expect("app");
    let mut ids = BTreeSet::new();
    for _ in 0..10 {
        let body = get(&app, "/probe/instance").await.1;
        assert_eq!(field(&body, "served"), 1, "no state carried over: {body}");
        ids.insert(instance_of(&body));
    }
    assert_eq!(ids.len(), 10);
    assert_eq!(app.instantiations(), 10);
}

/// Sends `GET path` `n` times at once; the answers' bodies, in any order.
async fn concurrently(app: &App, path: &str, n: usize) -> Vec<String> {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (app, path, start) = (app.clone(), path.to_owned(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                get(&app, &path).await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, 200, "{body}");
        out.push(body);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_overlap_on_one_instance_and_never_beyond_the_concurrency_limit() {
    // An instance exists (warm), then 12 requests that each await a 1 s timer arrive 25 ms apart: the warm instance
    // accepts each while it is available, so several are in flight on it at once. (A burst at the same instant may
    // instead start several instances: a worker is not available while it accepts a request — in Spin too.)
    let app = builder().build().await.expect("app");
    let warm = instance_of(&get(&app, "/probe/instance").await.1);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move { get(&app, "/probe/sleep?ms=1000").await }));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut on_warm = Vec::new();
    for t in tasks {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, 200, "{body}");
        if instance_of(&body) == warm {
            on_warm.push(field(&body, "max_in_flight"));
        }
    }
    let most = on_warm.iter().copied().max().unwrap_or(0);
    assert!(most > 1, "requests overlapped on the warm instance: {on_warm:?}");

    // 40 at once with at most 4 per instance: no instance ever has more than 4 in flight, so at least 10 instances.
    let app = builder().max_instance_concurrent_reuse_count(4).build().await.expect("app");
    let answers = concurrently(&app, "/probe/sleep?ms=300", 40).await;
    let most = answers.iter().map(|b| field(b, "max_in_flight")).max().unwrap_or(0);
    assert!(most <= 4, "the limit of 4 held: {answers:?}");
    let ids: BTreeSet<String> = answers.iter().map(|b| instance_of(b)).collect();
    assert!(ids.len() >= 10, "40 requests at 4 per instance need 10 instances: {ids:?}");
    assert!(app.instantiations() >= ids.len(), "every instance counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trap_fails_every_request_on_its_instance_and_the_next_request_gets_a_fresh_one() {
    let app = builder().build().await.expect("app");
    let first = instance_of(&get(&app, "/probe/instance").await.1);

    // A request in flight on the same instance (it awaits a timer) when another one traps there.
    let sleeper = {
        let app = app.clone();
        tokio::spawn(async move {
            let req = http::Request::get("/probe/sleep?ms=2000").body(Bytes::new()).expect("req");
            app.send(req).await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let trap = app.send(http::Request::get("/probe/trap").body(Bytes::new()).expect("req")).await;
    let trap = trap.expect_err("a trap is no answer");
    assert!(format!("{trap:#}").contains("probe"), "{trap:#}");
    let sleeper = sleeper.await.expect("task");
    assert!(sleeper.is_err(), "the request sharing the trapped instance failed too: {sleeper:?}");
    // The instance is counted as it is dropped, just after its requests failed.
    for _ in 0..100 {
        if app.failed_instances() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.failed_instances(), 1);

    let (status, body) = get(&app, "/probe/instance").await;
    assert_eq!(status, 200);
    assert_ne!(instance_of(&body), first, "a fresh instance after the trap");
    assert_eq!(field(&body, "served"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guest_spinning_the_cpu_times_out_and_the_app_keeps_serving() {
    let app = builder().request_timeout(Duration::from_millis(700)).build().await.expect("app");
    let spinning = {
        let app = app.clone();
        tokio::spawn(async move { app.send(http::Request::get("/probe/spin").body(Bytes::new()).expect("req")).await })
    };
    // While it spins, other requests are served (by another instance): epoch interruption makes it yield.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let body = get(&app, "/probe/instance").await.1;
    assert_eq!(field(&body, "served"), 1, "served by a fresh instance while the other spins: {body}");
    let spun = spinning.await.expect("task").expect_err("a spinning guest gets no answer");
    assert!(format!("{spun:#}").contains("timed out"), "{spun:#}");
    // A bounded spin answers.
    assert_eq!(get(&app, "/probe/spin?ms=50").await, (200, "spun".to_owned()));
}

fn harness_body(bytes: Bytes) -> wasmtime_wasi_http::WasiBody {
    http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_response_streams_before_the_guest_has_finished_it() {
    let app = builder().build().await.expect("app");
    let served = app
        .serve_streaming(
            http::Request::get("/probe/stream?gate=open").body(harness_body(Bytes::new())).expect("req"),
            "127.0.0.1:1".parse().expect("addr"),
        )
        .await
        .expect("the head comes before the body is complete");
    let mut body = served.response.into_body();
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("the first chunk arrives while the guest still waits for the gate")
        .expect("a frame")
        .expect("data");
    assert_eq!(first.into_data().expect("data"), Bytes::from_static(b"first\n"));
    // Only now is the gate opened; a runner that buffered the whole body would never have given us `first`.
    assert_eq!(common::call(&app, "POST", "/probe/kv/set?key=open", "1").await.0, 200);
    let rest = tokio::time::timeout(Duration::from_secs(10), body.collect()).await.expect("rest").expect("body");
    assert_eq!(rest.to_bytes(), Bytes::from_static(b"second\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_response_cut_short_by_a_trap_on_its_instance_fails_instead_of_ending_normally() {
    let app = builder().idle_instance_timeout(Duration::from_secs(60)).build().await.expect("app");
    let warm = instance_of(&get(&app, "/probe/instance").await.1);
    let served = app
        .serve_streaming(
            http::Request::get("/probe/stream?gate=never").body(harness_body(Bytes::new())).expect("req"),
            "127.0.0.1:1".parse().expect("addr"),
        )
        .await
        .expect("head");
    let mut body = served.response.into_body();
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame()).await.expect("first").expect("frame");
    assert_eq!(first.expect("data").into_data().expect("data"), Bytes::from_static(b"first\n"));
    // The streaming request already has its head, so the warm instance is free to take the trap.
    let trap = app.send(http::Request::get("/probe/trap").body(Bytes::new()).expect("req")).await;
    assert!(trap.is_err());
    let rest = tokio::time::timeout(Duration::from_secs(10), body.collect()).await.expect("the stream ends");
    assert!(rest.is_err(), "a truncated body must not look complete");
    assert_ne!(instance_of(&get(&app, "/probe/instance").await.1), warm);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_instance_gives_its_slot_to_a_request_that_needs_one() {
    // One slot for the whole engine, instances kept 60 s when idle: the second component's request gets the slot
    // from the first component's idle instance at once instead of waiting out its idle timeout.
    let app = builder().max_concurrency(1).idle_instance_timeout(Duration::from_secs(60)).build().await.expect("app");
    assert_eq!(get(&app, "/probe/instance").await.0, 200);
    let other = tokio::time::timeout(Duration::from_secs(10), get(&app, "/probe/deep/instance")).await;
    assert_eq!(other.expect("served without waiting for the idle timeout").0, 200);
    assert_eq!(get(&app, "/probe/instance").await.0, 200);
    assert_eq!(app.instantiations(), 3);
}

/// `harness up` on a free port with the probe app and a memory store; killed on drop.
struct Up(std::process::Child, std::net::SocketAddr);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn harness_up() -> Up {
    use std::io::BufRead as _;
    common::probe_wasm();
    let dir = common::temp_dir("reuse-up");
    let rc = dir.join("runtime-config.toml");
    std::fs::write(&rc, "[key_value_store.default]\ntype = \"memory\"\n[key_value_store.extra]\ntype = \"memory\"\n")
        .expect("rc");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["up", "--listen", "127.0.0.1:0", "--variable", "api_key=k", "-f"])
        .arg(common::manifest())
        .arg("--runtime-config-file")
        .arg(&rc)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn harness up");
    // Owned by `Up` at once, so a failed start still kills and reaps the child.
    let mut up = Up(child, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let stdout = up.0.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if let Some(addr) = line.expect("line").strip_prefix("Serving http://") {
            up.1 = addr.parse().expect("address");
            std::thread::spawn(move || for _ in lines {});
            return up;
        }
    }
    panic!("harness up exited before serving");
}

/// Reads from `stream` until the bytes read so far contain `needle` (at most 10 s); returns everything read.
async fn read_until(stream: &mut tokio::net::TcpStream, seen: &mut Vec<u8>, needle: &str) {
    use tokio::io::AsyncReadExt as _;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(seen).contains(needle) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{needle:?} never came; got {:?}", String::from_utf8_lossy(seen)))
            .expect("read");
        assert!(n > 0, "connection closed before {needle:?}; got {:?}", String::from_utf8_lossy(seen));
        seen.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_and_response_bodies_stream_through_harness_up() {
    use tokio::io::AsyncWriteExt as _;
    let up = harness_up();
    let mut s = tokio::net::TcpStream::connect(up.1).await.expect("connect");
    let head = format!(
        "POST /probe/stream-echo HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        up.1
    );
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(b"5\r\nhello\r\n").await.expect("chunk 1");
    let mut seen = Vec::new();
    // The guest saw the first chunk and its answer about it reached us while the request body is still open:
    // neither body was buffered whole.
    read_until(&mut s, &mut seen, "got 5").await;
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&seen));
    s.write_all(b"3\r\nabc\r\n0\r\n\r\n").await.expect("chunk 2 and end");
    read_until(&mut s, &mut seen, "done").await;
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("got 3"), "{text}");
}
