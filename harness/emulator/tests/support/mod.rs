//! An in-process production endpoint for the emulator to test: hyper on 127.0.0.1:0 around
//! `koogallery_core::produce::handle` (memory store, no backend, the system clock), plus a kit endpoint
//! (`kit.rs`) that verifies `x-sign` or the V1 `authToken`, validates the body, decrypts the `applicationSync`
//! secret and sends forward-mode events to the emulator's webhook receiver. A [`Defect`] turns it into one of the
//! broken fixtures the emulator must catch.

#![allow(dead_code)] // each test binary uses a subset

mod kit;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use koogallery_core::http::{Inbound, Outbound};
use koogallery_core::marketplace::{Marketplace, fresh_nonce};
use koogallery_core::ports::MemoryStore;
use koogallery_core::ports::{NoBackend, OsRandom, SystemClock};
use koogallery_core::produce::{Ctx, ProduceConfig, handle};
use koogallery_core::signing::body_sign;
use koogallery_core::signing::canonical_json::sorted_compact;
use koogallery_core::signing::keys::{KeyRing, SecretKey};
use koogallery_core::signing::v2::V2Verifier;
use koogallery_core::signing::window::TimestampWindow;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Basic-interface key: `AK` of the known-answer vectors (test-vectors.md §1).
pub const KEY: &str = "1234567890abcdef1234567890abcdef";
/// Kit key: `AK2` of the vectors (a different key, as in production).
pub const KIT_KEY: &str = "71d8a0d7-508d-4017-8563-60f9099eea71";
/// The merchant RSA key pair of core's test data (3072 bits).
pub const RSA_PRIVATE: &str = include_str!("../../../../handlers/core/tests/data/rsa3072_pkcs8.pem");
/// Its public half, handed to the emulator.
pub const RSA_PUBLIC: &str = include_str!("../../../../handlers/core/tests/data/rsa3072_public.pem");

/// What is wrong with the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// None: a conforming endpoint.
    None,
    /// Accepts any V2 signature (forged, wrong key, missing) as long as timestamp and nonce are there.
    AcceptsForgedSignatures,
    /// Creates a new instance, with a new instanceId, on every newInstance (ignores idempotency).
    NewIdEveryCall,
    /// Sends no Body-Sign on answers other than 000000.
    OmitsBodySignOnErrors,
    /// Signs every answer with the wrong key.
    GarblesBodySign,
    /// Answers a body that is not valid JSON with a bare HTTP 500.
    MalformedJson500,
    /// Not a defect: answers `000004` to the first two V2 queries of each instance, as a forward-mode endpoint
    /// does while the seller's backend provisions.
    SlowProvisioning,
    /// Never answers a body larger than 64 KiB.
    HangsOnOversize,
    /// Answers kit `x-sign` requests without checking `x-sign`, `x-timestamp` or `x-nonce`.
    KitSkipsVerification,
    /// Sends an event for every kit add, revoke, delete and full sync, changed or not.
    KitEventOnEveryCall,
    /// Signs its events with a secret other than the backend secret.
    KitBadWebhookSignature,
}

pub use kit::BACKEND_SECRET;

/// A running endpoint; stops when dropped.
pub struct Server {
    /// Production URL, e.g. `http://127.0.0.1:40123/produce`.
    pub url: String,
    /// Where its events go: the address the emulator's webhook receiver is to listen on.
    pub backend_listen: String,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    cfg: ProduceConfig,
    store: Arc<MemoryStore>,
    defect: Defect,
    /// `queryInstance` calls seen per instance list (for [`Defect::SlowProvisioning`]).
    queries: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    kit: kit::KitSide,
}

/// Starts an endpoint with `defect` on an ephemeral port.
pub async fn start(defect: Defect) -> Server {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let keys = KeyRing::parse_list(KEY).expect("key");
    // A free port for the emulator's receiver: bound here, released, and bound again by the emulator.
    let backend = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
    let state = Arc::new(State {
        cfg: ProduceConfig::new(keys),
        store: Arc::new(MemoryStore::new()),
        defect,
        queries: Default::default(),
        kit: kit::KitSide::new(defect, format!("http://{backend}/events")),
    });
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| serve(state.clone(), req));
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Server { url: format!("http://{addr}/produce"), backend_listen: backend.to_string(), task }
}

async fn serve(
    state: Arc<State>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let inbound = Inbound {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body,
    };
    let out = match kit::KitSide::route(&inbound) {
        Some(route) => state.kit.handle(route, &inbound).await,
        None => produce(&state, inbound).await,
    };
    let mut response = hyper::Response::builder().status(out.status);
    for (k, v) in &out.headers {
        response = response.header(k.as_str(), v.as_str());
    }
    Ok(response.body(Full::new(Bytes::from(out.body))).expect("valid response"))
}

async fn produce(state: &Arc<State>, mut inbound: Inbound) -> Outbound {
    let keys = state.cfg.keys.clone();
    match state.defect {
        Defect::AcceptsForgedSignatures => inbound = resign(&keys, inbound),
        Defect::NewIdEveryCall => inbound = fresh_order_line(&keys, inbound),
        Defect::MalformedJson500
            if inbound.method == "POST" && serde_json::from_slice::<Value>(&inbound.body).is_err() =>
        {
            return Outbound { status: 500, headers: vec![], body: vec![] };
        }
        Defect::SlowProvisioning if inbound.method == "POST" => {
            if let Some(pending) = pending_query(state, &inbound) {
                return pending;
            }
        }
        Defect::HangsOnOversize if inbound.body.len() > 64 * 1024 => {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        }
        _ => {}
    }
    let cfg = state.cfg.clone();
    let store = state.store.clone();
    let mut out = tokio::task::spawn_blocking(move || {
        let ctx = Ctx { store: store.as_ref(), backend: &NoBackend, clock: &SystemClock, random: &OsRandom };
        pollster::block_on(handle(&inbound, &cfg, &ctx)).response
    })
    .await
    .expect("handler task");
    match state.defect {
        Defect::OmitsBodySignOnErrors if !String::from_utf8_lossy(&out.body).contains(r#""resultCode":"000000""#) => {
            out.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("body-sign"));
        }
        Defect::GarblesBodySign => {
            let wrong = body_sign::header_value(&SecretKey::new("not-the-key"), &out.body);
            for (k, v) in &mut out.headers {
                if k.eq_ignore_ascii_case("body-sign") {
                    *v = wrong.clone();
                }
            }
        }
        _ => {}
    }
    out
}

/// A signed `000004` for the first two V2 queries of an instance list, after checking the signature like the
/// real handler (so forged queries are still refused by it).
fn pending_query(state: &State, inbound: &Inbound) -> Option<Outbound> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&inbound.body) else { return None };
    if body.get("activity").and_then(Value::as_str) != Some("queryInstance") {
        return None;
    }
    let ids = body.get("instanceId").and_then(Value::as_str)?.to_owned();
    let mut seen = state.queries.lock().ok()?;
    let n = seen.entry(ids).or_insert(0);
    *n += 1;
    if *n > 2 {
        return None;
    }
    let body = br#"{"resultCode":"000004","resultMsg":"request is processing"}"#.to_vec();
    let sign = body_sign::header_value(state.cfg.keys.signing_key(), &body);
    Some(Outbound {
        status: 200,
        headers: vec![("content-type".into(), "application/json;charset=UTF-8".into()), ("body-sign".into(), sign)],
        body,
    })
}

/// Replaces the V2 signature with a correct one whenever timestamp and nonce are present: "accepts anything".
fn resign(keys: &KeyRing, mut inbound: Inbound) -> Inbound {
    let params = inbound.query_params();
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (Some(ts), Some(nonce)) = (get("timestamp"), get("nonce")) else { return inbound };
    let signature = V2Verifier::new(keys.clone(), TimestampWindow::default()).sign(&inbound.body, &ts, &nonce);
    let rest: Vec<&str> = inbound.query.split('&').filter(|p| !p.starts_with("signature=")).collect();
    inbound.query = format!("signature={signature}&{}", rest.join("&"));
    inbound
}

/// Gives every newInstance a new order line (so a new instance), re-signed so it passes verification.
fn fresh_order_line(keys: &KeyRing, inbound: Inbound) -> Inbound {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&inbound.body) else { return inbound };
    if body.get("activity").and_then(Value::as_str) != Some("newInstance") {
        return inbound;
    }
    let Some(line) = body.get("orderLineId").and_then(Value::as_str).map(str::to_owned) else { return inbound };
    let nonce = fresh_nonce();
    let suffix: String = nonce.chars().take(8).collect();
    body.insert("orderLineId".into(), Value::String(format!("{line}-{suffix}")));
    let bytes = sorted_compact(&Value::Object(body));
    let ts = inbound.query_params().into_iter().find(|(k, _)| k == "timestamp").map(|(_, v)| v);
    let ts: u64 = ts.and_then(|t| t.parse().ok()).unwrap_or_default();
    Marketplace::new(keys.clone()).v2(&inbound.path, &bytes, ts, &nonce)
}

/// Emulator options for `server`: V1 on, kit syncs on (same server, kit key, RSA public key), the webhook
/// receiver where the server sends its events, quiet.
pub fn options(server: &Server) -> emulator::EmulateOptions {
    emulator::EmulateOptions {
        url: server.url.clone(),
        key: KEY.into(),
        v1: true,
        kit_url: Some(server.url.clone()),
        kit_key: Some(KIT_KEY.into()),
        kit_rsa_public_key: Some(RSA_PUBLIC.into()),
        backend_listen: Some(server.backend_listen.clone()),
        backend_secret: Some(BACKEND_SECRET.into()),
        progress: false,
        ..Default::default()
    }
}
