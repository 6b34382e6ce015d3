//! The seller's backend as the emulator plays it: a small webhook receiver that answers `200 {}`, keeps every event
//! the endpoint delivers, and checks each one's Standard Webhooks signature.
//!
//! Run the endpoint in forward mode against it (`backend_url = http://<listen address>`, the same
//! `backend_secret`); the `kit.events*` rules then read what arrived. Signatures are checked with the
//! `standardwebhooks` crate, on the secret read as the endpoint reads it (`whsec_` + Base64 decoded, any other text
//! used as its bytes). A wrongly signed delivery is kept too, marked, and is a finding.
//!
//! `200 {}` is also an acceptable answer to the basic interface's events (`instance.created` then takes its login
//! information from the endpoint's URL templates), so the whole run may go through forward mode.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use koogallery_core::signing::keys::SecretKey;
use serde_json::Value;
use standardwebhooks::Webhook;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// Largest event body kept; a longer one is recorded as unreadable.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// The `webhook-id` header (empty when absent).
    pub webhook_id: String,
    /// The body, when it is a JSON object.
    pub event: Option<serde_json::Map<String, Value>>,
    /// The exact body bytes (redeliveries must repeat them).
    pub body: Vec<u8>,
    /// The signature check: `Err` says why it failed (missing header, invalid signature, stale timestamp).
    pub signature: Result<(), String>,
}

impl Delivery {
    /// The event's `type`, or `""`.
    pub fn kind(&self) -> &str {
        self.event.as_ref().and_then(|e| e.get("type")).and_then(Value::as_str).unwrap_or("")
    }

    /// The event's `data`, or `Null`.
    pub fn data(&self) -> &Value {
        self.event.as_ref().and_then(|e| e.get("data")).unwrap_or(&Value::Null)
    }

    /// The event's `data.tenantId`, when it has one.
    pub fn tenant_id(&self) -> Option<&str> {
        self.data().get("tenantId").and_then(Value::as_str)
    }

    /// `type` and `webhook-id`, for a report line.
    pub fn describe(&self) -> String {
        let kind = if self.kind().is_empty() { "(no type)" } else { self.kind() };
        format!("{kind} webhook-id {:?}", self.webhook_id)
    }
}

/// The running receiver; stops when dropped.
pub(crate) struct Receiver {
    addr: SocketAddr,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The verifier for `secret`, read as the endpoint's signer reads `backend_secret`.
fn verifier(secret: &SecretKey) -> std::io::Result<Webhook> {
    let text = secret.expose();
    let decoded = text.strip_prefix("whsec_").and_then(|_| Webhook::new(text).ok());
    match decoded {
        Some(w) => Ok(w),
        None => Webhook::from_bytes(text.as_bytes().to_vec())
            .map_err(|e| std::io::Error::other(format!("backend_secret is unusable: {e}"))),
    }
}

impl Receiver {
    /// Binds `addr` (port `0`: any free port) and starts serving.
    ///
    /// # Errors
    /// The secret is refused by the verifier, or the address cannot be bound.
    pub async fn start(addr: SocketAddr, secret: &SecretKey) -> std::io::Result<Self> {
        let verifier = Arc::new(verifier(secret)?);
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&deliveries);
        let task = tokio::spawn(async move {
            // Connections live in this set, so stopping the receiver also ends kept-alive ones: a later receiver on
            // the same address must not have events delivered over an old connection into an old list.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                while connections.try_join_next().is_some() {}
                let (kept, verifier) = (Arc::clone(&kept), Arc::clone(&verifier));
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let (kept, verifier) = (Arc::clone(&kept), Arc::clone(&verifier));
                        async move { Ok::<_, Infallible>(receive(req, &verifier, &kept).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, deliveries, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits until the address and every connection are released, so that another receiver (the
    /// next run's) can bind the same address at once.
    pub async fn stop(mut self) {
        self.task.abort();
        // Completes once the task's future, which owns the listener and the connections, has been dropped.
        let _ = (&mut self.task).await;
    }

    /// Everything received so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

async fn receive(
    req: hyper::Request<hyper::body::Incoming>,
    verifier: &Webhook,
    kept: &Mutex<Vec<Delivery>>,
) -> hyper::Response<Full<Bytes>> {
    if req.method() != http::Method::POST {
        return reply(405, b"{}");
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_EVENT_BYTES).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(e) => {
            let delivery = Delivery {
                webhook_id: header(&parts.headers, "webhook-id"),
                event: None,
                body: Vec::new(),
                signature: Err(format!("body unreadable: {e}")),
            };
            if let Ok(mut d) = kept.lock() {
                d.push(delivery);
            }
            return reply(413, b"{}");
        }
    };
    let signature = verifier.verify(&body, &parts.headers).map_err(|e| e.to_string());
    let event = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    let delivery = Delivery { webhook_id: header(&parts.headers, "webhook-id"), event, body, signature };
    if let Ok(mut d) = kept.lock() {
        d.push(delivery);
    }
    reply(200, b"{}")
}

fn header(headers: &http::HeaderMap, name: &str) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

fn reply(status: u16, body: &'static [u8]) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(body)));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::HttpClient;
    use koogallery_core::http::Inbound;
    use koogallery_core::ports::system_now_ms;
    use koogallery_core::webhook::WebhookSigner;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn event(id: &str, body: &[u8], secret: &str) -> Inbound {
        let headers = WebhookSigner::new(&SecretKey::new(secret)).headers(id, body, system_now_ms());
        Inbound { method: "POST".into(), path: "/events".into(), headers, body: body.to_vec(), ..Default::default() }
    }

    #[tokio::test]
    async fn keeps_every_event_and_marks_the_wrongly_signed_ones() {
        let rx = Receiver::start(([127, 0, 0, 1], 0).into(), &SecretKey::new(SECRET)).await.expect("bind");
        let origin = format!("http://{}", rx.addr());
        let client = HttpClient::new();
        let body = br#"{"id":"evt_1","type":"tenant.created","timestamp":1,"data":{"tenantId":"t-1"}}"#;
        let good = client.send(&origin, &event("evt_1", body, SECRET)).await;
        assert_eq!(good.reply.as_ref().map(|r| r.status), Ok(200));
        let forged = client.send(&origin, &event("evt_2", body, "whsec_b3RoZXIgc2VjcmV0")).await;
        assert_eq!(forged.reply.as_ref().map(|r| r.status), Ok(200), "answered all the same");
        let mut unsigned = event("evt_3", body, SECRET);
        unsigned.headers.retain(|(k, _)| k != "webhook-signature");
        client.send(&origin, &unsigned).await;
        let mut stale = event("evt_4", body, SECRET);
        for (k, v) in &mut stale.headers {
            if k == "webhook-timestamp" {
                *v = (system_now_ms() / 1000 - 3600).to_string();
            }
        }
        client.send(&origin, &stale).await;

        let got = rx.deliveries();
        let summary: Vec<(&str, bool)> = got.iter().map(|d| (d.webhook_id.as_str(), d.signature.is_ok())).collect();
        assert_eq!(summary, [("evt_1", true), ("evt_2", false), ("evt_3", false), ("evt_4", false)]);
        assert_eq!((got[0].kind(), got[0].tenant_id()), ("tenant.created", Some("t-1")));
        assert!(got[2].signature.as_ref().is_err_and(|e| e.contains("missing")), "{:?}", got[2].signature);
    }

    #[tokio::test]
    async fn a_stopped_receiver_frees_its_address_and_connections_at_once() {
        let secret = SecretKey::new(SECRET);
        let first = Receiver::start(([127, 0, 0, 1], 0).into(), &secret).await.expect("bind");
        let addr = first.addr();
        let client = HttpClient::new();
        // A kept-alive connection to the first receiver, as an endpoint's pooled client holds one.
        client.send(&format!("http://{addr}"), &event("evt_1", b"{}", SECRET)).await;
        first.stop().await;
        let second = Receiver::start(addr, &secret).await.expect("the same address again");
        client.send(&format!("http://{addr}"), &event("evt_2", b"{}", SECRET)).await;
        let ids: Vec<String> = second.deliveries().into_iter().map(|d| d.webhook_id).collect();
        assert_eq!(ids, ["evt_2"], "delivered to the new receiver, not over the old connection");
    }

    #[tokio::test]
    async fn a_plain_secret_is_the_key_bytes_as_the_endpoint_reads_it() {
        let rx = Receiver::start(([127, 0, 0, 1], 0).into(), &SecretKey::new("plain-secret")).await.expect("bind");
        let origin = format!("http://{}", rx.addr());
        let client = HttpClient::new();
        client.send(&origin, &event("evt_1", b"{}", "plain-secret")).await;
        client.send(&origin, &event("evt_2", b"{}", "other-secret")).await;
        let ok: Vec<bool> = rx.deliveries().iter().map(|d| d.signature.is_ok()).collect();
        assert_eq!(ok, [true, false]);
    }
}
