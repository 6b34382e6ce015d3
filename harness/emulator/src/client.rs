//! The emulator's HTTP side: sends a [`Inbound`] request to the endpoint and captures what comes back.
//!
//! The marketplace waits 5 s for an answer, so every exchange (connect, send, read the whole body) runs under
//! [`TIMEOUT`]; a slower answer is a finding, never a hang. Nothing here interprets the answer.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use koogallery_core::http::Inbound;

/// The marketplace's per-request timeout.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Largest answer body read; anything longer is cut off and reported as unreadable.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// What one request produced: an HTTP answer, or why there was none.
#[derive(Clone)]
pub(crate) struct Raw {
    /// The HTTP answer, when one arrived in time.
    pub reply: Result<RawReply, String>,
    /// Time from sending to the end of the body (or to the failure).
    pub elapsed: Duration,
}

/// An HTTP answer as received.
#[derive(Clone)]
pub(crate) struct RawReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawReply {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A pooled HTTP/1 client over tokio.
#[derive(Clone)]
pub(crate) struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl HttpClient {
    /// A client with connection pooling (concurrent duplicates open parallel connections).
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(TIMEOUT));
        connector.set_nodelay(true);
        Self { inner: Client::builder(TokioExecutor::new()).build(connector) }
    }

    /// Sends `req` to `origin` (`http://host:port`) and reads the whole answer within [`TIMEOUT`].
    pub async fn send(&self, origin: &str, req: &Inbound) -> Raw {
        let start = Instant::now();
        let reply = match tokio::time::timeout(TIMEOUT, self.exchange(origin, req)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no complete answer within {} s", TIMEOUT.as_secs())),
        };
        Raw { reply, elapsed: start.elapsed() }
    }

    async fn exchange(&self, origin: &str, req: &Inbound) -> Result<RawReply, String> {
        let uri = if req.query.is_empty() {
            format!("{origin}{}", req.path)
        } else {
            format!("{origin}{}?{}", req.path, req.query)
        };
        let mut builder = http::Request::builder().method(req.method.as_str()).uri(uri);
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request =
            builder.body(Full::new(Bytes::from(req.body.clone()))).map_err(|e| format!("request not built: {e}"))?;
        let response = self.inner.request(request).await.map_err(|e| transport_error(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("answer body unreadable: {e}"))?
            .to_bytes()
            .to_vec();
        Ok(RawReply { status, headers, body })
    }
}

/// A one-line description of a client error, with its cause (connection refused, reset, …).
fn transport_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = format!("no answer: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
