//! Streaming HTTP through the host: a request whose answer is read chunk by chunk, and a response written chunk by
//! chunk. Only the Agents gateway needs it (model answers stream for minutes); everything else uses the whole-body
//! [`Backend`](super::Backend).

use super::OutboundError;

/// A request to the upstream. The body is whole: requests are read (and possibly amended) before they are sent.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Absolute URL, query included.
    pub url: String,
    /// Headers to send (the host adds `content-length`).
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty for none).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for UpstreamRequest {
    // Headers carry the upstream key and bodies the buyer's prompts: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamRequest")
            .field("method", &self.method)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The upstream's answer once its head has arrived; the body follows through [`ChunkSource`].
pub struct UpstreamHead<B> {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// The body, still arriving.
    pub body: B,
}

/// The rest of an upstream answer, read as it arrives.
#[allow(async_fn_in_trait)] // components are single-threaded; no `Send` bound is wanted
pub trait ChunkSource {
    /// The next chunk, `Ok(None)` at the body's normal end.
    ///
    /// # Errors
    /// [`OutboundError::Timeout`] when nothing arrived within `timeout_ms`; [`OutboundError::Transport`] when the
    /// body broke off.
    async fn next_chunk(&mut self, timeout_ms: u64) -> Result<Option<Vec<u8>>, OutboundError>;
}

/// Outbound HTTP whose answers stream.
#[allow(async_fn_in_trait)]
pub trait Upstream {
    /// The body type of an answer.
    type Body: ChunkSource;

    /// Sends `request` and waits at most `timeout_ms` for the answer's head.
    ///
    /// # Errors
    /// [`OutboundError`] when no head arrived (refused by the host, unreachable, timed out).
    async fn open(&self, request: &UpstreamRequest, timeout_ms: u64)
    -> Result<UpstreamHead<Self::Body>, OutboundError>;
}

/// The client went away: the response body can no longer be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the client closed the response")]
pub struct SinkClosed;

/// Where a streamed response body is written, chunk by chunk, as the host sends it to the client.
#[allow(async_fn_in_trait)]
pub trait ChunkSink {
    /// Writes one chunk, waiting at most `timeout_ms` for room (a client that stops reading holds it up).
    ///
    /// # Errors
    /// [`SinkClosed`] when the client is gone or took no more within `timeout_ms`.
    async fn send(&mut self, chunk: Vec<u8>, timeout_ms: u64) -> Result<(), SinkClosed>;

    /// Ends the body with an error instead of a normal end, so the client sees that it is cut short (HTTP/1.1: no
    /// final chunk) rather than complete.
    fn abort(&mut self);
}

/// A sink that keeps what it was given: for native tests and benchmarks.
#[derive(Debug, Default)]
pub struct VecSink {
    /// The chunks written, in order.
    pub chunks: Vec<Vec<u8>>,
    /// Whether the body was ended with an error.
    pub aborted: bool,
}

impl ChunkSink for VecSink {
    async fn send(&mut self, chunk: Vec<u8>, _timeout_ms: u64) -> Result<(), SinkClosed> {
        self.chunks.push(chunk);
        Ok(())
    }

    fn abort(&mut self) {
        self.aborted = true;
    }
}
