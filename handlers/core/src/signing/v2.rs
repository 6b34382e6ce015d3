//! The V2 request signature of the basic SaaS interfaces (protocol §4.1).
//!
//! ```text
//! bodyHash         = hex(HMAC-SHA256(accessKey, RequestPayload))
//! canonicalRequest = accessKey + nonce + timestamp + bodyHash
//! signature        = HEX(HMAC-SHA256(accessKey, canonicalRequest))      query parameter, compared ignoring case
//! ```
//!
//! # Security
//!
//! Tags are compared in constant time. The timestamp window is two-sided. A nonce cache (against replays inside
//! the window) is the caller's job: [`V2Verified::nonce`] is what to record.
//!
//! # How to use
//!
//! 1. Build a [`V2Verifier`] from the configured [`KeyRing`] and [`TimestampWindow`].
//! 2. Pass the `signature`, `timestamp` and `nonce` query parameters as a [`V2Auth`], the raw body and the clock.
//! 3. Map an error with [`AuthError::is_authentication_failure`] (`000001`) / [`AuthError::field`] (`000002`).
//!
//! ```
//! use koogallery_core::signing::keys::KeyRing;
//! use koogallery_core::signing::v2::{V2Auth, V2Verifier};
//! use koogallery_core::signing::window::TimestampWindow;
//!
//! let keys = KeyRing::parse_list("1234567890abcdef1234567890abcdef").expect("key");
//! let verifier = V2Verifier::new(keys, TimestampWindow::default());
//! let body = br#"{"activity":"queryInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","testFlag":"0"}"#;
//! let (ts, nonce) = ("1680508237508", "9FB42E04DF4594B1FAA50B304E647AD7154AB9B4F144A65F1168886540A8B24C");
//! let signature = verifier.sign(body, ts, nonce);
//! assert_eq!(signature, "340B8F4B4F882DCB8C59DD3B0BD4B383A3BF2689194B2789ED0C13AF08301286");
//!
//! let auth = V2Auth { signature: Some(&signature), timestamp: Some(ts), nonce: Some(nonce) };
//! let ok = verifier.verify(auth, body, 1_680_508_237_508 + 1_000).expect("valid");
//! assert_eq!(ok.timestamp_ms, 1_680_508_237_508);
//! ```

use crate::signing::canonical_json;
use crate::signing::error::{AuthError, hmac_sha256};
use crate::signing::keys::{KeyRing, SecretKey};
use crate::signing::window::TimestampWindow;

/// The three authentication query parameters of a V2 request, each `None` when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct V2Auth<'a> {
    /// `signature`: hex HMAC, any case.
    pub signature: Option<&'a str>,
    /// `timestamp`: ms since the epoch, 13 digits.
    pub timestamp: Option<&'a str>,
    /// `nonce`: random text, recorded by the caller's nonce cache.
    pub nonce: Option<&'a str>,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Verified {
    /// The request timestamp in ms (seconds are scaled when enabled).
    pub timestamp_ms: u64,
    /// The nonce, for the replay cache.
    pub nonce: String,
    /// Which key of the ring verified the request (its position): the answer is signed with it.
    pub key_index: usize,
}

/// Signs and verifies V2 requests under a key ring and a timestamp window.
#[derive(Debug, Clone)]
pub struct V2Verifier {
    keys: KeyRing,
    window: TimestampWindow,
}

/// `bodyHash`: lower-case hex of HMAC-SHA256(key, payload). Exposed for tests and tools that show the steps.
pub fn body_hash(key: &SecretKey, payload: &[u8]) -> String {
    hex::encode(hmac_sha256(key.as_bytes(), &[payload]))
}

/// The raw 32-byte signature for one key and payload.
fn signature_tag(key: &SecretKey, payload: &[u8], timestamp: &str, nonce: &str) -> [u8; 32] {
    let inner = body_hash(key, payload);
    hmac_sha256(key.as_bytes(), &[key.as_bytes(), nonce.as_bytes(), timestamp.as_bytes(), inner.as_bytes()])
}

impl V2Verifier {
    /// A verifier accepting signatures under any key of `keys` within `window`.
    pub fn new(keys: KeyRing, window: TimestampWindow) -> Self {
        Self { keys, window }
    }

    /// The upper-case hex signature of exactly `payload` under the signing key (the first of the ring).
    pub fn sign(&self, payload: &[u8], timestamp: &str, nonce: &str) -> String {
        hex::encode_upper(signature_tag(self.keys.signing_key(), payload, timestamp, nonce))
    }

    /// Signs the demo's canonical form of `body` (top-level keys sorted, top-level `null`s dropped), as the
    /// marketplace does; for emulators and the `sign` tool.
    ///
    /// # Errors
    /// [`AuthError::NotJsonObject`] when `body` is not a JSON object.
    pub fn sign_canonical(&self, body: &[u8], timestamp: &str, nonce: &str) -> Result<String, AuthError> {
        let payload = canonical_json::demo_payload(body)?;
        Ok(self.sign(&payload, timestamp, nonce))
    }

    /// Verifies a request: timestamp (present, well-formed, fresh), nonce present, signature present, body a JSON
    /// object, then the signature against every key × every §4.1 candidate payload, in constant time.
    ///
    /// # Errors
    /// `000002` kinds: [`AuthError::MissingTimestamp`], [`AuthError::MalformedTimestamp`],
    /// [`AuthError::TimestampTooOld`], [`AuthError::TimestampTooNew`], [`AuthError::MissingNonce`],
    /// [`AuthError::NotJsonObject`]. `000001` kinds: [`AuthError::MissingSignature`], [`AuthError::BadSignature`].
    pub fn verify(&self, auth: V2Auth<'_>, body: &[u8], now_ms: u64) -> Result<V2Verified, AuthError> {
        let timestamp = auth.timestamp.filter(|t| !t.is_empty()).ok_or(AuthError::MissingTimestamp)?;
        let timestamp_ms = self.window.check(timestamp, now_ms)?;
        let nonce = auth.nonce.filter(|n| !n.is_empty()).ok_or(AuthError::MissingNonce)?;
        let signature = auth.signature.filter(|s| !s.is_empty()).ok_or(AuthError::MissingSignature)?;
        let matched = canonical_json::matches_any_candidate(&self.keys, body, signature, |key, payload| {
            signature_tag(key, payload, timestamp, nonce)
        })?;
        match matched {
            Some(key_index) => Ok(V2Verified { timestamp_ms, nonce: nonce.to_owned(), key_index }),
            None => Err(AuthError::BadSignature),
        }
    }
}
