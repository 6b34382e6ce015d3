//! The ports: the outside world as traits — time, randomness, the seller's backend and the key-value store.
//!
//! `core` never reads the clock, draws random bytes or opens a socket itself. The Spin adapter implements these
//! traits over WASI and spin-sdk, the harness and the tests implement them over a virtual clock and in-process stubs,
//! so the same handler code runs natively, in the Wasm component, and under test.

use std::time::{SystemTime, UNIX_EPOCH};

pub mod atomic;
mod store;
mod stream;

pub use store::{MemoryCas, MemoryStore, Store, StoreError, Swap, delete_listed};
pub use stream::{ChunkSink, ChunkSource, SinkClosed, Upstream, UpstreamHead, UpstreamRequest, VecSink};

/// Wall-clock time in milliseconds since the Unix epoch.
///
/// Every timestamp window and every record time goes through this, so tests can pin time to a vector's timestamp.
pub trait Clock {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    fn now_ms(&self) -> u64;

    /// Milliseconds on a clock that never goes back, for the request deadline. Defaults to the wall clock, which is
    /// what pinned and virtual clocks want (their time does not pass during a request).
    fn monotonic_ms(&self) -> u64 {
        self.now_ms()
    }
}

/// The system clock. In a Wasm component this is the host's WASI wall clock (which the harness can pin).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        system_now_ms()
    }

    fn monotonic_ms(&self) -> u64 {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let elapsed = START.get_or_init(std::time::Instant::now).elapsed();
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    }
}

/// The system wall clock in milliseconds since the Unix epoch (0 before 1970): the one place the project reads it
/// outside a [`Clock`], for tools that stamp requests with the real time.
pub fn system_now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A clock that always answers the same instant; for tests and benchmarks.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

/// A source of cryptographically secure random bytes (IVs, nonces).
pub trait Random {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// Operating-system randomness (`getrandom`; WASI `random` inside a component).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        // getrandom only fails when the platform has no entropy source at all; a zeroed buffer would be a silent
        // security bug, so in that case we fall back to a time-seeded hash rather than zeros.
        if getrandom::fill(buf).is_err() {
            use sha2::{Digest, Sha256};
            let seed = SystemClock.now_ms().to_le_bytes();
            for (i, chunk) in buf.chunks_mut(32).enumerate() {
                let block = Sha256::new().chain_update(seed).chain_update(i.to_le_bytes()).finalize();
                chunk.copy_from_slice(&block[..chunk.len()]);
            }
        }
    }
}

/// An HTTP reply from the seller's backend (or any outbound call core makes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundReply {
    /// HTTP status code.
    pub status: u16,
    /// Response body bytes.
    pub body: Vec<u8>,
}

/// Why an outbound call did not produce a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The host refused the destination (not in `allowed_outbound_hosts`).
    #[error("outbound request denied by the host")]
    Denied,
    /// The call did not complete within the time budget.
    #[error("outbound request timed out")]
    Timeout,
    /// Connection or protocol failure; the text is the host's description, free of secrets.
    #[error("outbound request failed: {0}")]
    Transport(String),
}

/// Outbound HTTP, as the seller's backend sees it: a POST of a JSON body with headers.
#[allow(async_fn_in_trait)] // components are single-threaded; no `Send` bound is wanted
pub trait Backend {
    /// POSTs `body` to `url` with `headers`, waiting at most `timeout_ms` for the whole reply.
    ///
    /// # Errors
    /// [`OutboundError`] when no HTTP reply was received in time.
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<OutboundReply, OutboundError>;

    /// GETs `url` with `headers`, waiting at most `timeout_ms` (OneAccess's userinfo). Only the SSO component needs
    /// it; a backend that only ever receives POSTs (the seller's) keeps this default, which refuses.
    ///
    /// # Errors
    /// [`OutboundError`] when no HTTP reply was received in time.
    async fn get(
        &self,
        url: &str,
        headers: &[(String, String)],
        timeout_ms: u64,
    ) -> Result<OutboundReply, OutboundError> {
        let _ = (url, headers, timeout_ms);
        Err(OutboundError::Denied)
    }
}

/// A backend that is never reachable; used when no `backend_url` is configured (built-in mode never calls it).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBackend;

impl Backend for NoBackend {
    async fn post(
        &self,
        _url: &str,
        _headers: &[(String, String)],
        _body: &[u8],
        _timeout_ms: u64,
    ) -> Result<OutboundReply, OutboundError> {
        Err(OutboundError::Denied)
    }
}
