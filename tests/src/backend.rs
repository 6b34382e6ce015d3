//! Seller backends for forward-mode tests, in the harness's outbound slot.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use harness::OutboundHandler;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;

/// How a [`FlakyBackend`] fails while it is down.
#[derive(Debug, Clone, Copy)]
pub enum Outage {
    /// The connection is refused (a transport error).
    Refused,
    /// It answers `503`.
    Unavailable,
}

/// A backend that is down until [`FlakyBackend::set_up`], and records every webhook it was sent (webhook id and
/// body): each attempt, and the ones it accepted.
pub struct FlakyBackend {
    up: AtomicBool,
    outage: Outage,
    reply: &'static [u8],
    attempts: Mutex<Vec<(String, Vec<u8>)>>,
    delivered: Mutex<Vec<(String, Vec<u8>)>>,
}

impl FlakyBackend {
    /// Down (failing as `outage`); once up, answers `200` with `reply`.
    pub fn new(outage: Outage, reply: &'static [u8]) -> Self {
        Self {
            up: AtomicBool::new(false),
            outage,
            reply,
            attempts: Mutex::new(Vec::new()),
            delivered: Mutex::new(Vec::new()),
        }
    }

    /// Brings the backend up or down.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    /// Every webhook sent to it so far, accepted or not.
    pub fn attempts(&self) -> Vec<(String, Vec<u8>)> {
        self.attempts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The webhooks it accepted.
    pub fn delivered(&self) -> Vec<(String, Vec<u8>)> {
        self.delivered.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl OutboundHandler for FlakyBackend {
    async fn handle(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, ErrorCode> {
        let id = request.headers().get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = request.body().to_vec();
        self.attempts.lock().unwrap_or_else(|e| e.into_inner()).push((id.clone(), body.clone()));
        if !self.up.load(Ordering::SeqCst) {
            return match self.outage {
                Outage::Refused => Err(ErrorCode::ConnectionRefused),
                Outage::Unavailable => Ok(http::Response::builder().status(503).body(Bytes::new()).unwrap_or_default()),
            };
        }
        self.delivered.lock().unwrap_or_else(|e| e.into_inner()).push((id, body));
        Ok(http::Response::new(Bytes::from_static(self.reply)))
    }
}

/// Outbound calls to one host go to an in-process handler (the seller's backend); every other allowed call goes over
/// the network as it would without a handler (a mock marketplace on loopback, plain HTTP/1.1).
pub struct RouteHost {
    host: String,
    handler: std::sync::Arc<dyn OutboundHandler>,
}

impl RouteHost {
    /// Calls to `host` go to `handler`.
    pub fn new(host: impl Into<String>, handler: std::sync::Arc<dyn OutboundHandler>) -> Self {
        Self { host: host.into(), handler }
    }
}

#[async_trait::async_trait]
impl OutboundHandler for RouteHost {
    async fn handle(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, ErrorCode> {
        if request.uri().host() == Some(self.host.as_str()) {
            return self.handler.handle(request).await;
        }
        send_over_network(request).await
    }
}

/// Sends `request` over a new TCP connection to its URI's authority.
async fn send_over_network(request: http::Request<Bytes>) -> Result<http::Response<Bytes>, ErrorCode> {
    use http_body_util::{BodyExt as _, Full};
    let failed = |e: &dyn std::fmt::Display| ErrorCode::InternalError(Some(e.to_string()));
    let (mut parts, body) = request.into_parts();
    let authority = parts.uri.authority().ok_or(ErrorCode::HttpRequestUriInvalid)?.as_str().to_owned();
    parts.uri =
        parts.uri.path_and_query().map_or("/", |p| p.as_str()).parse().map_err(|_| ErrorCode::HttpRequestUriInvalid)?;
    if !parts.headers.contains_key(http::header::HOST) {
        let host = http::HeaderValue::from_str(&authority).map_err(|_| ErrorCode::HttpRequestUriInvalid)?;
        parts.headers.insert(http::header::HOST, host);
    }
    let stream = tokio::net::TcpStream::connect(&authority).await.map_err(|_| ErrorCode::ConnectionRefused)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| failed(&e))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(http::Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|_| ErrorCode::ConnectionTerminated)?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|_| ErrorCode::ConnectionTerminated)?.to_bytes();
    Ok(http::Response::from_parts(parts, body))
}
