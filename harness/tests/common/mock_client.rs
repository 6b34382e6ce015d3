//! The HTTP/1.1 client of the mock servers' tests (`oneaccess.rs`, `upstream.rs`): one request on a fresh
//! connection, answered by the mock as it would answer a component. Kept apart from `common/mod.rs` (the probe
//! app's helpers) so that those tests need not build the probe component.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use std::net::SocketAddr;

/// One answer: status, headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The value of header `name`, empty if absent or not text.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// Sends one request to `addr` on a fresh HTTP/1.1 connection; the response with its body unread (for streams).
pub async fn open(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> http::Response<hyper::body::Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let mut request = http::Request::builder().method(method).uri(target).header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body.to_owned()))).expect("a request");
    sender.send_request(request).await.expect("an answer")
}

/// Sends one request to `addr` on a fresh HTTP/1.1 connection and reads the whole answer.
pub async fn send(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let response = open(addr, method, target, headers, body).await;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("the body").to_bytes();
    Answer { status: parts.status.as_u16(), headers: parts.headers, body }
}
