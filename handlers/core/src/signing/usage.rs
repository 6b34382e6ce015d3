//! The usage-push body signature (protocol §4.7): the `signature`, `ts` and `nonce` headers the merchant adds,
//! on top of the API Gateway signature, when pushing on-demand usage to the marketplace.
//!
//! ```text
//! signature = Base64(HMAC-SHA256(basic-interface key, "ts=" + ts + "&nonce=" + nonce + "&body=" + body))
//! ```
//!
//! The body must be sent exactly as signed, with keys sorted at every level: build it with
//! [`crate::signing::canonical_json::sorted_compact`].
//!
//! # How to use
//!
//! 1. Serialise the body with [`crate::signing::canonical_json::sorted_compact`].
//! 2. Set the `ts` (ms), `nonce` and `signature` headers ([`signature`]), then API-Gateway-sign the request
//!    ([`crate::signing::apig::ApigSigner`]) so the three headers are covered too.
//! 3. The mock marketplace checks it with [`verify`].
//!
//! ```
//! use koogallery_core::signing::canonical_json::sorted_compact;
//! use koogallery_core::signing::keys::{KeyRing, SecretKey};
//! use koogallery_core::signing::usage;
//! use koogallery_core::signing::window::TimestampWindow;
//!
//! let key = SecretKey::new("isv-key");
//! let body = sorted_compact(&serde_json::json!({"usage_records": [{"usage_value": "1", "instance_id": "i"}]}));
//! let sig = usage::signature(&key, "1709690865879", "n-1", &body);
//! let keys = KeyRing::single(key);
//! let ok = usage::verify(&keys, "1709690865879", "n-1", &sig, &body, 1_709_690_865_879, TimestampWindow::default());
//! assert_eq!(ok, Ok(1_709_690_865_879));
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::signing::error::{AuthError, ct_eq, hmac_sha256};
use crate::signing::keys::{KeyRing, SecretKey};
use crate::signing::window::TimestampWindow;

fn tag(key: &SecretKey, ts: &str, nonce: &str, body: &[u8]) -> [u8; 32] {
    hmac_sha256(key.as_bytes(), &[b"ts=", ts.as_bytes(), b"&nonce=", nonce.as_bytes(), b"&body=", body])
}

/// The Base64 `signature` header value over `ts`, `nonce` and exactly `body`.
pub fn signature(key: &SecretKey, ts: &str, nonce: &str, body: &[u8]) -> String {
    STANDARD.encode(tag(key, ts, nonce, body))
}

/// Checks the usage-push headers: `ts` present and inside `window`, `nonce` present, `signature` matching
/// under any key; returns `ts` in milliseconds.
///
/// # Errors
/// [`AuthError::MissingTimestamp`], [`AuthError::MalformedTimestamp`], [`AuthError::TimestampTooOld`],
/// [`AuthError::TimestampTooNew`], [`AuthError::MissingNonce`], [`AuthError::MissingSignature`],
/// [`AuthError::BadSignature`].
pub fn verify(
    keys: &KeyRing,
    ts: &str,
    nonce: &str,
    signature: &str,
    body: &[u8],
    now_ms: u64,
    window: TimestampWindow,
) -> Result<u64, AuthError> {
    if ts.is_empty() {
        return Err(AuthError::MissingTimestamp);
    }
    let ts_ms = window.check(ts, now_ms)?;
    if nonce.is_empty() {
        return Err(AuthError::MissingNonce);
    }
    if signature.is_empty() {
        return Err(AuthError::MissingSignature);
    }
    let received = STANDARD.decode(signature.trim()).map_err(|_| AuthError::BadSignature)?;
    let mut matched = false;
    for key in keys.iter() {
        matched |= ct_eq(&tag(key, ts, nonce, body), &received);
    }
    if matched { Ok(ts_ms) } else { Err(AuthError::BadSignature) }
}
