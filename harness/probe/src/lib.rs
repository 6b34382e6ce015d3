//! `probe`: the harness's test component.
//!
//! It exists only to exercise the host surface the harness provides (the same one Spin provides):
//! `spin:key-value@3.0.0`, `spin:variables@3.0.0`, `wasi:http/client@0.3.0` outbound calls, the WASI wall clock
//! and the `spin-*` request headers. Every answer is plain text so the harness tests can assert on it without a
//! JSON dependency in the guest.
//!
//! The probe dispatches on `spin-path-info` (the part of the path after the matched wildcard route), so the same
//! component can be mounted under several routes:
//!
//! | path info | what it does | answer |
//! |---|---|---|
//! | `/kv/get?key=K[&label=L]` | `Store::get` | 200 value, 404 `missing` |
//! | `/kv/set?key=K[&label=L]` | `Store::set` with the request body | 200 `ok` |
//! | `/kv/delete?key=K` | `Store::delete` | 200 `ok` |
//! | `/kv/exists?key=K` | `Store::exists` | 200 `true` / `false` |
//! | `/kv/keys[?label=L]` | `Store::get_keys` | 200 sorted keys, one per line |
//! | `/kv/open?label=L` | `Store::open` only | 200 `opened` |
//! | `/kv/incr?key=K` | get, parse as integer (missing = 0), add one, set | 200 new value |
//! | `/wkv/open?label=L` | `wasi:keyvalue/store` `open` only | 200 `opened` |
//! | `/wkv/get?key=K` | `bucket.get` | 200 value, 404 `missing` |
//! | `/wkv/set?key=K` | `bucket.set` with the request body | 200 `ok` |
//! | `/wkv/keys` | `bucket.list-keys(none)` | 200 sorted keys, one per line, then `cursor=<c or none>` |
//! | `/wkv/increment?key=K&delta=D` | `wasi:keyvalue/atomics` `increment` | 200 new value |
//! | `/wkv/swap?key=K[&interfere=V]` | `cas.new`, then (with `interfere`) `bucket.set(K, V)`, then `swap` with the body | 200 `swapped was=<current>`, 409 `cas-failed current=<fresh current>` |
//! | `/var?name=N` | `variables::get` | 200 value |
//! | `/out?url=U[&method=M]` | outbound request (body forwarded) | 200 `status=<code>\n<body>` |
//! | `/time` | `SystemTime::now()` | 200 milliseconds since the epoch |
//! | `/headers` | echo the `spin-*` request headers | 200 `name: value` lines, sorted |
//! | `/echo` | echo the body; `x-echo-<name>` request headers come back as `<name>` response headers, the raw query as `x-query`, the method as `x-method` | 200 |
//! | `/instance` | report this instance | 200 `instance=<random id> served=<requests this instance has seen, this one included>` |
//! | `/sleep?ms=N` | await a timer for N ms, counting requests in flight on this instance | 200 `instance=<id> max_in_flight=<most requests at once on this instance so far>` |
//! | `/trap` | panic (a trap): fails every request then in flight on the instance | none |
//! | `/spin[?ms=N]` | compute without awaiting, forever or for N ms | 200 `spun` after N ms; none without `ms` |
//! | `/stream?gate=K` | stream `first\n` at once, then wait (polling key K of the `default` store every 10 ms, at most 30 s) until K exists, then stream `second\n` | 200, streamed |
//! | `/stream-echo` | answer at once and, for each request body chunk as it arrives, stream `got <bytes>\n`; `done\n` at the end | 200, streamed |
//! | anything else | identify the component | 200 `component=<component_name variable> path-info=<..>` |
//!
//! The statics behind `/instance` and `/sleep` are per-instance state on purpose: they show whether the runner reuses
//! instances (Spin 4 does, up to 128 requests, 16 at once) and whether requests overlap on one.
//!
//! Failures are answered, never trapped (`/trap` and `/spin` aside): a key-value error (either interface) is `500 kv error: <kind>`, a variables error
//! `500 variable error: <kind>`, an outbound error `502 outbound error: <ErrorCode debug>`.

use spin_sdk::experimental::wasi::keyvalue::atomics as wkv_atomics;
use spin_sdk::experimental::wasi::keyvalue::store as wkv;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{BoxBody, FullBody, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, box_body};
use spin_sdk::key_value::{Error as KvError, Store};
use spin_sdk::variables::Error as VarError;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A plain-text answer: status, extra headers, body.
type Answer = (StatusCode, HeaderMap, FullBody<bytes::Bytes>);

/// Requests this instance has seen.
static SERVED: AtomicU64 = AtomicU64::new(0);
/// This instance's random identity, drawn on its first request.
static INSTANCE_ID: OnceLock<u64> = OnceLock::new();
/// `/sleep` requests in flight on this instance now, and the most there ever were.
static IN_FLIGHT: AtomicU32 = AtomicU32::new(0);
static MAX_IN_FLIGHT: AtomicU32 = AtomicU32::new(0);

fn instance_id() -> u64 {
    *INSTANCE_ID.get_or_init(spin_sdk::wasip3::random::random::get_random_u64)
}

/// The component's entry point: the streaming endpoints, or read the whole request and answer in plain text.
#[spin_sdk::http_service]
async fn handle(req: Request) -> http::Response<BoxBody> {
    SERVED.fetch_add(1, Ordering::Relaxed);
    let path_info = header(req.headers(), "spin-path-info").unwrap_or_default();
    let query = Query::parse(req.uri().query().unwrap_or(""));
    match path_info.as_str() {
        "/stream" => return stream_until_gate(&query),
        "/stream-echo" => return stream_echo(req),
        _ => {}
    }
    let (status, headers, body) = buffered(req, &path_info, &query).await;
    let mut response = http::Response::new(box_body(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A streamed `200` and the sender feeding it.
fn streamed() -> (futures::channel::mpsc::Sender<bytes::Bytes>, http::Response<BoxBody>) {
    let (tx, body) = spin_sdk::http::body::stream::<bytes::Bytes>();
    (tx, http::Response::new(box_body(body)))
}

fn stream_until_gate(q: &Query) -> http::Response<BoxBody> {
    let gate = q.get("gate").unwrap_or("gate").to_owned();
    let (mut tx, response) = streamed();
    spin_sdk::wasip3::spawn(async move {
        use futures::SinkExt as _;
        if tx.send(bytes::Bytes::from_static(b"first\n")).await.is_err() {
            return;
        }
        let Ok(store) = Store::open_default().await else { return };
        for _ in 0..3000 {
            if store.exists(&gate).await.unwrap_or(false) {
                let _ = tx.send(bytes::Bytes::from_static(b"second\n")).await;
                return;
            }
            spin_sdk::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    });
    response
}

fn stream_echo(req: Request) -> http::Response<BoxBody> {
    let (mut tx, response) = streamed();
    spin_sdk::wasip3::spawn(async move {
        use futures::{SinkExt as _, StreamExt as _};
        let mut chunks = req.into_body().stream();
        while let Some(chunk) = chunks.next().await {
            let line = match chunk {
                Ok(bytes) => format!("got {}\n", bytes.len()),
                Err(e) => format!("body error: {e:?}\n"),
            };
            if tx.send(bytes::Bytes::from(line)).await.is_err() {
                return;
            }
        }
        let _ = tx.send(bytes::Bytes::from_static(b"done\n")).await;
    });
    response
}

async fn sleep(q: &Query) -> Answer {
    let ms = q.get("ms").and_then(|v| v.parse().ok()).unwrap_or(100);
    let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
    MAX_IN_FLIGHT.fetch_max(now, Ordering::SeqCst);
    spin_sdk::time::sleep(std::time::Duration::from_millis(ms)).await;
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    text(StatusCode::OK, format!("instance={} max_in_flight={}", instance_id(), MAX_IN_FLIGHT.load(Ordering::SeqCst)))
}

fn spin_cpu(q: &Query) -> Answer {
    let started = std::time::Instant::now();
    let limit = q.get("ms").and_then(|v| v.parse().ok()).map(std::time::Duration::from_millis);
    let mut x = 0u64;
    while limit.is_none_or(|l| started.elapsed() < l) {
        x = std::hint::black_box(x.wrapping_add(1));
    }
    text(StatusCode::OK, "spun")
}

/// Reads the whole request, then dispatches on the path info.
async fn buffered(req: Request, path_info: &str, q: &Query) -> Answer {
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_owned();
    let headers = req.headers().clone();
    let body = match req.into_body().bytes().await {
        Ok(b) => b.to_vec(),
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("body error: {e:?}")),
    };
    match path_info {
        "/instance" => {
            text(StatusCode::OK, format!("instance={} served={}", instance_id(), SERVED.load(Ordering::Relaxed)))
        }
        "/sleep" => sleep(q).await,
        "/trap" => panic!("probe: /trap asks for a trap"),
        "/spin" => spin_cpu(q),
        "/kv/get" => kv_get(q).await,
        "/kv/set" => kv_set(q, body).await,
        "/kv/delete" => kv_delete(q).await,
        "/kv/exists" => kv_exists(q).await,
        "/kv/keys" => kv_keys(q).await,
        "/kv/open" => kv_open(q).await,
        "/kv/incr" => kv_incr(q).await,
        "/wkv/open" => wkv_open(q),
        "/wkv/get" => wkv_get(q),
        "/wkv/set" => wkv_set(q, &body),
        "/wkv/keys" => wkv_keys(q),
        "/wkv/increment" => wkv_increment(q),
        "/wkv/swap" => wkv_swap(q, &body),
        "/var" => var(q).await,
        "/out" => outbound(q, body).await,
        "/time" => time(),
        "/headers" => echo_spin_headers(&headers),
        "/echo" => echo(&method, &query, &headers, body),
        _ => identify(path_info).await,
    }
}

/// Builds a plain-text answer without extra headers.
fn text(status: StatusCode, body: impl Into<Vec<u8>>) -> Answer {
    (status, HeaderMap::new(), FullBody::new(bytes::Bytes::from(body.into())))
}

/// Reads one header as UTF-8 text.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The key-value error as the stable kebab-case name of its WIT variant.
fn kv_error(e: KvError) -> Answer {
    let kind = match e {
        KvError::StoreTableFull => "store-table-full".to_owned(),
        KvError::NoSuchStore => "no-such-store".to_owned(),
        KvError::AccessDenied => "access-denied".to_owned(),
        KvError::Other(msg) => format!("other: {msg}"),
    };
    text(StatusCode::INTERNAL_SERVER_ERROR, format!("kv error: {kind}"))
}

/// Opens the store named by `label` (default `default`).
async fn open(q: &Query) -> Result<Store, Answer> {
    Store::open(q.get("label").unwrap_or("default")).await.map_err(kv_error)
}

/// The `key` parameter, or a 400 answer.
fn key(q: &Query) -> Result<&str, Answer> {
    q.get("key").ok_or_else(|| text(StatusCode::BAD_REQUEST, "missing key parameter"))
}

async fn kv_get(q: &Query) -> Answer {
    let run = async {
        let store = open(q).await?;
        match store.get(key(q)?).await.map_err(kv_error)? {
            Some(v) => Ok(text(StatusCode::OK, v)),
            None => Ok(text(StatusCode::NOT_FOUND, "missing")),
        }
    };
    run.await.unwrap_or_else(|e| e)
}

async fn kv_set(q: &Query, body: Vec<u8>) -> Answer {
    let run = async {
        let store = open(q).await?;
        store.set(key(q)?, body).await.map_err(kv_error)?;
        Ok(text(StatusCode::OK, "ok"))
    };
    run.await.unwrap_or_else(|e| e)
}

async fn kv_delete(q: &Query) -> Answer {
    let run = async {
        let store = open(q).await?;
        store.delete(key(q)?).await.map_err(kv_error)?;
        Ok(text(StatusCode::OK, "ok"))
    };
    run.await.unwrap_or_else(|e| e)
}

async fn kv_exists(q: &Query) -> Answer {
    let run = async {
        let store = open(q).await?;
        let present = store.exists(key(q)?).await.map_err(kv_error)?;
        Ok(text(StatusCode::OK, present.to_string()))
    };
    run.await.unwrap_or_else(|e| e)
}

async fn kv_keys(q: &Query) -> Answer {
    let run = async {
        let store = open(q).await?;
        let mut keys = store.get_keys().await.collect().await.map_err(kv_error)?;
        keys.sort();
        Ok(text(StatusCode::OK, keys.join("\n")))
    };
    run.await.unwrap_or_else(|e| e)
}

async fn kv_open(q: &Query) -> Answer {
    match open(q).await {
        Ok(_) => text(StatusCode::OK, "opened"),
        Err(e) => e,
    }
}

/// A get followed by a set: the request shape the latency figures are measured on.
async fn kv_incr(q: &Query) -> Answer {
    let run = async {
        let store = open(q).await?;
        let key = key(q)?;
        let current = store.get(key).await.map_err(kv_error)?;
        let n: u64 = match current {
            None => 0,
            Some(v) => match std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()) {
                Some(n) => n,
                None => return Err(text(StatusCode::CONFLICT, "not a counter")),
            },
        };
        let next = n.saturating_add(1).to_string();
        store.set(key, next.as_bytes()).await.map_err(kv_error)?;
        Ok(text(StatusCode::OK, next))
    };
    run.await.unwrap_or_else(|e| e)
}

/// The `wasi:keyvalue` error as the kebab-case name of its WIT variant (same answers as [`kv_error`]).
fn wkv_error(e: wkv::Error) -> Answer {
    let kind = match e {
        wkv::Error::NoSuchStore => "no-such-store".to_owned(),
        wkv::Error::AccessDenied => "access-denied".to_owned(),
        wkv::Error::Other(msg) => format!("other: {msg}"),
    };
    text(StatusCode::INTERNAL_SERVER_ERROR, format!("kv error: {kind}"))
}

/// Opens the `wasi:keyvalue` bucket named by `label` (default `default`).
fn wkv_bucket(q: &Query) -> Result<wkv::Bucket, Answer> {
    wkv::open(q.get("label").unwrap_or("default")).map_err(wkv_error)
}

/// A value as text for an answer (`none` when absent).
fn shown(value: Option<Vec<u8>>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| String::from_utf8_lossy(&v).into_owned())
}

fn wkv_open(q: &Query) -> Answer {
    match wkv_bucket(q) {
        Ok(_) => text(StatusCode::OK, "opened"),
        Err(e) => e,
    }
}

fn wkv_get(q: &Query) -> Answer {
    let run = || match wkv_bucket(q)?.get(key(q)?).map_err(wkv_error)? {
        Some(v) => Ok(text(StatusCode::OK, v)),
        None => Ok(text(StatusCode::NOT_FOUND, "missing")),
    };
    run().unwrap_or_else(|e| e)
}

fn wkv_set(q: &Query, body: &[u8]) -> Answer {
    let run = || {
        wkv_bucket(q)?.set(key(q)?, body).map_err(wkv_error)?;
        Ok(text(StatusCode::OK, "ok"))
    };
    run().unwrap_or_else(|e| e)
}

fn wkv_keys(q: &Query) -> Answer {
    let run = || {
        let mut page = wkv_bucket(q)?.list_keys(None).map_err(wkv_error)?;
        page.keys.sort();
        page.keys.push(format!("cursor={}", page.cursor.as_deref().unwrap_or("none")));
        Ok(text(StatusCode::OK, page.keys.join("\n")))
    };
    run().unwrap_or_else(|e| e)
}

fn wkv_increment(q: &Query) -> Answer {
    let run = || {
        let Some(delta) = q.get("delta").and_then(|d| d.parse().ok()) else {
            return Err(text(StatusCode::BAD_REQUEST, "missing or bad delta parameter"));
        };
        let n = wkv_atomics::increment(&wkv_bucket(q)?, key(q)?, delta).map_err(wkv_error)?;
        Ok(text(StatusCode::OK, n.to_string()))
    };
    run().unwrap_or_else(|e| e)
}

/// One compare-and-swap; `interfere` writes the key between reading and swapping, so the swap must lose.
fn wkv_swap(q: &Query, body: &[u8]) -> Answer {
    let run = || {
        let bucket = wkv_bucket(q)?;
        let key = key(q)?;
        let cas = wkv_atomics::Cas::new(&bucket, key).map_err(wkv_error)?;
        let was = shown(cas.current().map_err(wkv_error)?);
        if let Some(v) = q.get("interfere") {
            bucket.set(key, v.as_bytes()).map_err(wkv_error)?;
        }
        match wkv_atomics::swap(cas, body) {
            Ok(()) => Ok(text(StatusCode::OK, format!("swapped was={was}"))),
            Err(wkv_atomics::CasError::CasFailed(fresh)) => {
                let current = shown(fresh.current().map_err(wkv_error)?);
                Ok(text(StatusCode::CONFLICT, format!("cas-failed current={current}")))
            }
            Err(wkv_atomics::CasError::StoreError(e)) => Err(wkv_error(e)),
        }
    };
    run().unwrap_or_else(|e| e)
}

async fn var(q: &Query) -> Answer {
    let Some(name) = q.get("name") else {
        return text(StatusCode::BAD_REQUEST, "missing name parameter");
    };
    match spin_sdk::variables::get(name).await {
        Ok(v) => text(StatusCode::OK, v),
        Err(e) => {
            let kind = match e {
                VarError::InvalidName(m) => format!("invalid-name: {m}"),
                VarError::Undefined(m) => format!("undefined: {m}"),
                VarError::Provider(m) => format!("provider: {m}"),
                VarError::Other(m) => format!("other: {m}"),
            };
            text(StatusCode::INTERNAL_SERVER_ERROR, format!("variable error: {kind}"))
        }
    }
}

async fn outbound(q: &Query, body: Vec<u8>) -> Answer {
    let Some(url) = q.get("url") else {
        return text(StatusCode::BAD_REQUEST, "missing url parameter");
    };
    let method = match q.get("method").map(|m| Method::from_bytes(m.as_bytes())) {
        None => Method::GET,
        Some(Ok(m)) => m,
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "bad method"),
    };
    let request = match http::Request::builder()
        .method(method)
        .uri(url)
        .header("x-probe", "1")
        .body(FullBody::new(bytes::Bytes::from(body)))
    {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad url: {e}")),
    };
    match spin_sdk::http::send(request).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.into_body().bytes().await {
                Ok(b) => {
                    let mut out = format!("status={status}\n").into_bytes();
                    out.extend_from_slice(&b);
                    text(StatusCode::OK, out)
                }
                Err(e) => text(StatusCode::BAD_GATEWAY, format!("outbound error: {e:?}")),
            }
        }
        Err(e) => text(StatusCode::BAD_GATEWAY, format!("outbound error: {e:?}")),
    }
}

fn time() -> Answer {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => text(StatusCode::OK, d.as_millis().to_string()),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "clock before 1970"),
    }
}

fn echo_spin_headers(headers: &HeaderMap) -> Answer {
    let mut lines: Vec<String> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("spin-"))
        .map(|(name, value)| format!("{}: {}", name, value.to_str().unwrap_or("<non-utf8>")))
        .collect();
    lines.sort();
    text(StatusCode::OK, lines.join("\n"))
}

fn echo(method: &Method, query: &str, headers: &HeaderMap, body: Vec<u8>) -> Answer {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if let Some(rest) = name.as_str().strip_prefix("x-echo-")
            && let Ok(n) = HeaderName::from_bytes(rest.as_bytes())
        {
            out.append(n, value.clone());
        }
    }
    if let Ok(m) = HeaderValue::from_str(method.as_str()) {
        out.insert("x-method", m);
    }
    if let Ok(q) = HeaderValue::from_str(query) {
        out.insert("x-query", q);
    }
    (StatusCode::OK, out, FullBody::new(bytes::Bytes::from(body)))
}

async fn identify(path_info: &str) -> Answer {
    let name = spin_sdk::variables::get("component_name").await.unwrap_or_else(|_| "?".to_owned());
    text(StatusCode::OK, format!("component={name} path-info={path_info}"))
}

/// Decoded query parameters, first value wins.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Self {
        Self(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// `application/x-www-form-urlencoded` decoding; malformed escapes are kept literally.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
