//! A plain HTTP/1.1 client for talking to a runner, keeping every byte and header of the answer.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The longest a test waits for one answer (the marketplace waits 5 s; a runner under test load gets more).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A pooled keep-alive HTTP/1.1 client (hyper) with `TCP_NODELAY`.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A new client; connections are reused between requests.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Self { inner: Client::builder(TokioExecutor::new()).build(connector) }
    }

    /// Sends `request` to `origin` (`http://host:port`; the request's URI is a path and query) and reads the
    /// whole answer. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// No complete answer within [`ANSWER_TIMEOUT`], or a transport error (with its causes).
    pub async fn send(&self, origin: &str, request: http::Request<Bytes>) -> anyhow::Result<http::Response<Bytes>> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = format!("{origin}{path}").parse()?;
        let request = http::Request::from_parts(parts, Full::new(body));
        let exchange = async {
            let response = self.inner.request(request).await.map_err(|e| {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                anyhow::anyhow!(text)
            })?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            anyhow::Ok(http::Response::from_parts(parts, body))
        };
        tokio::time::timeout(ANSWER_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow::anyhow!("no complete answer within {} s", ANSWER_TIMEOUT.as_secs()))?
    }
}
