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
