//! Forward mode on each runner and store: a real HTTP backend that is down, then up. Every creation attempt
//! carries the same `webhook-id` and bytes, the event is delivered once, the instance becomes ready only then,
//! nothing is left in the outbox, and every webhook arrives with an explicit `content-length` (never chunked)
//! and a signature that verifies with an independent Standard Webhooks check (HMAC-SHA256 here, not the crate the
//! component signs with).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use runners::{RedisServer, Runner, RunnerKind, RunnerOptions, Store};
use serde_json::{Value, json};

use super::{AK, call, exclusive, runner_kinds};

pub(super) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One webhook as the backend received it.
#[derive(Clone, Debug)]
pub(super) struct Received {
    pub(super) id: String,
    pub(super) body: Vec<u8>,
    pub(super) framing: Result<usize, String>,
    pub(super) signature_ok: bool,
}

/// The seller's backend: down until `up` is set, answering after `delay_ms`.
#[derive(Default)]
pub(super) struct Backend {
    pub(super) up: AtomicBool,
    pub(super) delay_ms: std::sync::atomic::AtomicU64,
    in_flight: std::sync::atomic::AtomicUsize,
    pub(super) max_in_flight: std::sync::atomic::AtomicUsize,
    pub(super) attempts: Mutex<Vec<Received>>,
    pub(super) delivered: Mutex<Vec<Received>>,
}

/// Standard Webhooks, checked by hand: `v1,` Base64 HMAC-SHA256 over `id.timestamp.body`, keyed by the Base64
/// secret after `whsec_`.
fn signature_verifies(headers: &http::HeaderMap, body: &[u8]) -> bool {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let Ok(key) = STANDARD.decode(SECRET.trim_start_matches("whsec_")) else { return false };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&key) else { return false };
    mac.update(format!("{}.{}.", get("webhook-id"), get("webhook-timestamp")).as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    get("webhook-signature").split(' ').any(|s| s == expected)
}

impl Backend {
    async fn handle(&self, request: http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.map(|c| c.to_bytes().to_vec()).unwrap_or_default();
        let framing = match (parts.headers.get("content-length"), parts.headers.get("transfer-encoding")) {
            (Some(len), None) => len.to_str().ok().and_then(|l| l.parse().ok()).ok_or_else(|| "bad length".to_owned()),
            (len, te) => Err(format!("content-length {len:?}, transfer-encoding {te:?}")),
        };
        let received = Received {
            id: parts.headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned(),
            signature_ok: signature_verifies(&parts.headers, &body),
            body,
            framing,
        };
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.attempts.lock().unwrap_or_else(|e| e.into_inner()).push(received.clone());
        if !self.up.load(Ordering::SeqCst) {
            let mut r = http::Response::new(Full::new(Bytes::from_static(b"down for maintenance")));
            *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            return r;
        }
        self.delivered.lock().unwrap_or_else(|e| e.into_inner()).push(received);
        let reply = br#"{"appInfo":{"frontEndUrl":"https://tenant.example.com/login","userName":"owner","password":"S3cret!x"}}"#;
        http::Response::new(Full::new(Bytes::from_static(reply)))
    }
}

/// Serves `backend` on a free loopback port until the returned task is aborted.
pub(super) async fn serve(backend: Arc<Backend>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let backend = Arc::clone(&backend);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let backend = Arc::clone(&backend);
                    async move { Ok::<_, std::convert::Infallible>(backend.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, task)
}

/// A runner in forward mode against a fresh backend (`up` or down at first), with `extra` variables; returns the
/// backend, the runner, the backend's server task and a "runner on store" label for messages.
pub(super) async fn forward_runner(
    kind: RunnerKind,
    store: Store,
    up: bool,
    extra: &[(&str, &str)],
) -> (Arc<Backend>, Runner, tokio::task::JoinHandle<()>, String) {
    let backend = Arc::new(Backend::default());
    backend.up.store(up, Ordering::SeqCst);
    let (addr, server) = serve(Arc::clone(&backend)).await;
    let mut variables = vec![
        ("access_keys".to_owned(), AK.to_owned()),
        ("backend_url".to_owned(), format!("http://{addr}/events")),
        ("backend_origin".to_owned(), format!("http://{addr}")),
        ("backend_secret".to_owned(), SECRET.to_owned()),
    ];
    variables.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let where_ = format!("{} on {}", kind.name(), store.name());
    let opts = RunnerOptions { variables, store, ..Default::default() };
    let runner = Runner::start(kind, opts).await.unwrap_or_else(|e| panic!("{where_}: {e:#}"));
    (backend, runner, server, where_)
}

async fn forward_mode_on(kind: RunnerKind, store: Store) {
    let (backend, runner, server, where_) = forward_runner(kind, store, false, &[]).await;

    let new = json!({"activity":"newInstance","orderId":"CSFWD","orderLineId":"CSFWD-000001","businessId":"b1"});
    let created = call(&runner, &new).await;
    assert_eq!(created["resultCode"], "000000", "{where_}: {created}");
    let id = created["instanceId"].as_str().unwrap_or_default().to_owned();

    // Backend down: pending, and the marketplace is told to come back; a retry keeps the instance.
    let query = json!({"activity":"queryInstance","instanceId":id});
    assert_eq!(call(&runner, &query).await["resultCode"], "000004", "{where_}");
    assert_eq!(call(&runner, &query).await["resultCode"], "000004", "{where_}");
    let retry = json!({"activity":"newInstance","orderId":"CSFWD","orderLineId":"CSFWD-000001","businessId":"b2"});
    assert_eq!(call(&runner, &retry).await["instanceId"].as_str(), Some(id.as_str()), "{where_}");
    assert!(backend.delivered.lock().unwrap_or_else(|e| e.into_inner()).is_empty());

    // Backend up: the next poll delivers the event and answers with the backend's login information.
    backend.up.store(true, Ordering::SeqCst);
    let ready = call(&runner, &query).await;
    assert_eq!(ready["resultCode"], "000000", "{where_}: {ready}");
    assert_eq!(ready["info"][0]["appInfo"]["frontEndUrl"], "https://tenant.example.com/login", "{where_}");
    let freeze = json!({"activity":"updateInstanceStatus","instanceId":id,"status":"FREEZE"});
    assert_eq!(call(&runner, &freeze).await["resultCode"], "000000", "{where_}");

    let attempts = backend.attempts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let delivered = backend.delivered.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // Create, two polls and the retry while down, the poll that delivers, then the freeze.
    assert!(attempts.len() >= 6, "{where_}: every request retried delivery: {}", attempts.len());
    let creation = &attempts[0];
    assert!(
        attempts[..attempts.len() - 1].iter().all(|a| a.id == creation.id && a.body == creation.body),
        "{where_}: the creation event keeps its id and bytes on every attempt"
    );
    for a in &attempts {
        assert_eq!(a.framing, Ok(a.body.len()), "{where_}: webhook framing");
        assert!(a.signature_ok, "{where_}: webhook signature");
    }
    assert_eq!(delivered.len(), 2, "{where_}: created once, then frozen");
    let types: Vec<Value> = delivered
        .iter()
        .map(|d| serde_json::from_slice::<Value>(&d.body).unwrap_or_default()["type"].clone())
        .collect();
    assert_eq!(types, [json!("instance.created"), json!("instance.frozen")], "{where_}");

    let state = runner.stop().await.unwrap_or_else(|e| panic!("{where_}: read state: {e:#}"));
    let record = state.json(&format!("live/instance/{id}"));
    assert_eq!(record["outbox"], json!([]), "{where_}: {record}");
    server.abort();
    eprintln!(
        "forward mode on {where_}: {} attempts, {} delivered, framing and signatures verified",
        attempts.len(),
        delivered.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forward_mode_delivers_every_event_once_on_each_runners_default_store() {
    let _one = exclusive().await;
    for kind in runner_kinds("forward mode") {
        forward_mode_on(kind, Store::RunnerDefault).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forward_mode_delivers_every_event_once_on_redis() {
    let _one = exclusive().await;
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e:#}"));
    for kind in runner_kinds("forward mode on Redis") {
        redis.flush().unwrap_or_else(|e| panic!("{e:#}"));
        forward_mode_on(kind, Store::Redis(redis.url())).await;
    }
}

const ADMIN_TOKEN: &str = "operator-token-for-the-drain";

/// A freeze whose delivery failed, on an instance the marketplace never calls about again: an operator route
/// (`POST /produce/outbox/drain`, as a scheduler calls it) delivers it once the backend is back.
async fn quiet_instance_drained_on(kind: RunnerKind, store: Store) {
    let (backend, runner, server, where_) = forward_runner(kind, store, true, &[("admin_token", ADMIN_TOKEN)]).await;
    let new = json!({"activity":"newInstance","orderId":"CSQUIET","orderLineId":"CSQUIET-000001","businessId":"b1"});
    let id = call(&runner, &new).await["instanceId"].as_str().unwrap_or_default().to_owned();
    backend.up.store(false, Ordering::SeqCst);
    let freeze = json!({"activity":"updateInstanceStatus","instanceId":id,"status":"FREEZE"});
    assert_eq!(call(&runner, &freeze).await["resultCode"], "000000", "{where_}");
    backend.up.store(true, Ordering::SeqCst);

    let admin = |method: &str, path: &str, token: &str| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Bytes::new())
            .unwrap_or_else(|e| panic!("request: {e}"))
    };
    let listing = runner.send(admin("GET", "/produce/outbox", ADMIN_TOKEN)).await.unwrap_or_else(|e| panic!("{e:#}"));
    let listing: Value = serde_json::from_slice(listing.body()).unwrap_or_default();
    assert_eq!(listing["waiting"][0]["type"], "instance.frozen", "{where_}: {listing}");
    assert!(listing["waiting"][0]["lastError"].as_str().unwrap_or("").contains("503"), "{where_}: {listing}");
    let refused =
        runner.send(admin("POST", "/produce/outbox/drain", "wrong")).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(refused.status(), 401, "{where_}");
    // The back-off after one failure is 5 s; the scheduler's next run comes after it.
    tokio::time::sleep(std::time::Duration::from_millis(5_100)).await;
    let drained =
        runner.send(admin("POST", "/produce/outbox/drain", ADMIN_TOKEN)).await.unwrap_or_else(|e| panic!("{e:#}"));
    let report: Value = serde_json::from_slice(drained.body()).unwrap_or_default();
    assert_eq!((drained.status().as_u16(), report["delivered"].clone()), (200, json!(1)), "{where_}: {report}");
    let delivered = backend.delivered.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let kinds: Vec<Value> = delivered
        .iter()
        .map(|d| serde_json::from_slice::<Value>(&d.body).unwrap_or_default()["type"].clone())
        .collect();
    assert_eq!(kinds, [json!("instance.created"), json!("instance.frozen")], "{where_}");
    let state = runner.stop().await.unwrap_or_else(|e| panic!("{where_}: read state: {e:#}"));
    assert_eq!(state.json(&format!("live/instance/{id}"))["outbox"], json!([]), "{where_}");
    server.abort();
    eprintln!("quiet instance on {where_}: the waiting freeze was listed, then delivered by the drain route");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_instances_event_is_delivered_by_the_drain_route() {
    let _one = exclusive().await;
    for kind in runner_kinds("drain route") {
        quiet_instance_drained_on(kind, Store::RunnerDefault).await;
    }
}
