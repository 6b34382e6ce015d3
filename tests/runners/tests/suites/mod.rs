//! Shared helpers: which runners to use, one suite at a time.

mod agents;
mod backend;
mod cassettes;
mod emulate;
mod kit_emulate;
mod license;
mod nodes;
mod portable;
mod races;
mod sso_browser;
mod usage;

use bytes::Bytes;
use koogallery_core::marketplace::{Marketplace, fresh_nonce};
use koogallery_core::ports::system_now_ms;
use runners::{Runner, RunnerKind, spin_or_skip};
use serde_json::Value;

/// The key every suite signs with (test-vectors `AK`).
pub const AK: &str = "1234567890abcdef1234567890abcdef";

/// The kit key (`AK2` of the known-answer vectors): a different key from [`AK`], as in production.
pub const KIT_KEY: &str = "71d8a0d7-508d-4017-8563-60f9099eea71";

/// The merchant key pair, (PKCS#8 private, SPKI public) PEM: test-only, public in the repository.
pub fn key_pair() -> (&'static str, &'static str) {
    (
        include_str!("../../../fixtures/kit_rsa3072_private.pem"),
        include_str!("../../../fixtures/kit_rsa3072_public.pem"),
    )
}

/// A loopback port nothing listens on (bound and released; the runner, emulator or chromedriver binds it again).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}")).port()
}

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The suite lock, held for the duration of a test (each test has its own runtime; tokio's mutex is not tied to
/// one).
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// The harness, and Spin when available (see [`spin_or_skip`]).
pub fn runner_kinds(suite: &str) -> Vec<RunnerKind> {
    let mut kinds = vec![RunnerKind::Harness];
    if spin_or_skip(suite).is_some() {
        kinds.push(RunnerKind::Spin);
    }
    kinds
}

/// Sends a V2 request for `body`, signed now with [`AK`], and returns the JSON answer (`Null` if not JSON).
pub async fn call(runner: &Runner, body: &Value) -> Value {
    let body = body.to_string();
    let mp = Marketplace::from_key(AK).unwrap_or_else(|| panic!("key"));
    let query = mp.v2_query("", body.as_bytes(), &system_now_ms().to_string(), &fresh_nonce());
    let request = http::Request::post(format!("/produce?{query}"))
        .header("content-type", "application/json")
        .body(Bytes::from(body))
        .unwrap_or_else(|e| panic!("request: {e}"));
    let response = runner.send(request).await.unwrap_or_else(|e| panic!("{}: {e:#}", runner.kind().name()));
    serde_json::from_slice(response.body()).unwrap_or_default()
}
