//! Shared helpers for the harness integration tests: the probe app, a tiny upstream HTTP server, raw HTTP.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use bytes::Bytes;
use harness::{App, AppBuilder};
use http_body_util::{BodyExt, Full};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The harness crate directory.
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The probe test manifest.
pub fn manifest() -> PathBuf {
    crate_dir().join("tests/data/spin.toml")
}

/// The built probe component; fails with the build command if it is missing.
pub fn probe_wasm() -> PathBuf {
    let p = crate_dir().join("../target/wasm32-wasip2/release/probe.wasm");
    assert!(
        p.is_file(),
        "{} is missing: build the test component first with\n    cargo build --release --target wasm32-wasip2 -p probe",
        p.display()
    );
    p
}

/// The probe app's builder: `api_key` set, `default` store in memory, no process environment.
pub fn builder() -> AppBuilder {
    probe_wasm();
    AppBuilder::from_manifest(manifest())
        .variable("api_key", "test-key")
        .env_vars(Vec::<(String, String)>::new())
        .kv_memory()
}

/// Builds the default probe app.
pub async fn app() -> App {
    builder().build().await.expect("probe app builds")
}

/// Sends `method path` with `body`; returns status and body text.
pub async fn call(app: &App, method: &str, path: &str, body: &str) -> (u16, String) {
    let req = http::Request::builder().method(method).uri(path).body(Bytes::from(body.to_owned())).expect("request");
    let resp = app.send(req).await.expect("an answer");
    (resp.status().as_u16(), String::from_utf8_lossy(resp.body()).into_owned())
}

/// `GET path`.
pub async fn get(app: &App, path: &str) -> (u16, String) {
    call(app, "GET", path, "").await
}

/// Percent-encodes a URL for a query parameter.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A local upstream: answers every request with `200 upstream saw <method> <path>` and counts requests.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests served so far.
    pub hits: Arc<AtomicUsize>,
}

impl Upstream {
    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Starts an [`Upstream`] on a free port in the current runtime.
pub async fn upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let text = format!("upstream saw {} {}", req.method(), req.uri().path());
                        let _ = req.into_body().collect().await;
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(text))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream { addr, hits }
}

/// A free local TCP port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("harness-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A one-shot HTTP/1.1 request over a raw socket: `(status, headers text, body)`, a chunked body decoded (streamed
/// responses without a `content-length` come chunked, as from Spin).
pub async fn raw_http(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(request.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunked = head.lines().any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Ok((status, head.to_owned(), body))
}

/// The payload of a chunked body (`<hex size>\r\n<data>\r\n`… `0\r\n\r\n`); stops at anything malformed.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// `GET path` over HTTP with `Connection: close`.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String, String)> {
    raw_http(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")).await
}
