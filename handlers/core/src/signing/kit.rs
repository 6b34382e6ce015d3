//! The kit V2 `x-sign` header of the joint-operation (联营) sync interfaces (protocol §4.2).
//!
//! ```text
//! canonicalRequest = kitKey + x-nonce + x-timestamp + RequestPayload     (no inner HMAC, unlike V2)
//! x-sign           = hex(HMAC-SHA256(kitKey, canonicalRequest))          compared ignoring case
//! ```
//!
//! The kit key is a different secret from the basic-interface key. The documentation gives no window and no
//! error codes; this module uses the V2 candidate set and window, `000001` for a wrong `x-sign`, and `000002` for
//! a missing header (including a missing `x-sign`, as §4.2's "Implement" line says) or a stale timestamp.
//!
//! # How to use
//!
//! 1. Build a [`KitVerifier`] from the kit key ring and the window.
//! 2. Pass the `x-sign`, `x-timestamp` and `x-nonce` headers as a [`KitAuth`], the raw body and the clock.
//!
//! ```
//! use koogallery_core::signing::keys::{KeyRing, SecretKey};
//! use koogallery_core::signing::kit::{KitAuth, KitVerifier};
//! use koogallery_core::signing::window::TimestampWindow;
//!
//! let kit = KitVerifier::new(KeyRing::single(SecretKey::new("kit-key")), TimestampWindow::default());
//! let body = br#"{"flag":1,"instanceId":"i-1","tenantId":"t-1","testFlag":0}"#;
//! let sign = kit.sign(body, "1680508066618", "n-1");
//! let auth = KitAuth { sign: Some(&sign), timestamp: Some("1680508066618"), nonce: Some("n-1") };
//! assert!(kit.verify(auth, body, 1_680_508_066_618).is_ok());
//! ```

use crate::signing::canonical_json;
use crate::signing::error::{AuthError, hmac_sha256};
use crate::signing::keys::{KeyRing, SecretKey};
use crate::signing::window::TimestampWindow;

/// The kit authentication headers, each `None` when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KitAuth<'a> {
    /// `x-sign`: hex HMAC, any case.
    pub sign: Option<&'a str>,
    /// `x-timestamp`: ms since the epoch.
    pub timestamp: Option<&'a str>,
    /// `x-nonce`.
    pub nonce: Option<&'a str>,
}

/// What a successful kit verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitVerified {
    /// `x-timestamp` in ms.
    pub timestamp_ms: u64,
    /// `x-nonce`, for the replay cache.
    pub nonce: String,
    /// The position in the key ring of the key that matched: the answer is signed with it.
    pub key_index: usize,
}

/// Signs and verifies kit requests under the kit key ring.
#[derive(Debug, Clone)]
pub struct KitVerifier {
    keys: KeyRing,
    window: TimestampWindow,
}

fn kit_tag(key: &SecretKey, payload: &[u8], timestamp: &str, nonce: &str) -> [u8; 32] {
    hmac_sha256(key.as_bytes(), &[key.as_bytes(), nonce.as_bytes(), timestamp.as_bytes(), payload])
}

impl KitVerifier {
    /// A verifier accepting `x-sign` under any key of `keys` within `window`.
    pub fn new(keys: KeyRing, window: TimestampWindow) -> Self {
        Self { keys, window }
    }

    /// Lower-case hex `x-sign` of exactly `payload` under the signing key.
    pub fn sign(&self, payload: &[u8], timestamp: &str, nonce: &str) -> String {
        hex::encode(kit_tag(self.keys.signing_key(), payload, timestamp, nonce))
    }

    /// Signs the demo's canonical form of `body` (top-level TreeMap), as the marketplace does.
    ///
    /// # Errors
    /// [`AuthError::NotJsonObject`] when `body` is not a JSON object.
    pub fn sign_canonical(&self, body: &[u8], timestamp: &str, nonce: &str) -> Result<String, AuthError> {
        let payload = canonical_json::demo_payload(body)?;
        Ok(self.sign(&payload, timestamp, nonce))
    }

    /// Verifies a kit request: headers present, `x-timestamp` well-formed and fresh, body a JSON object, then
    /// `x-sign` against every key × every candidate payload in constant time.
    ///
    /// # Errors
    /// `000002` kinds: [`AuthError::MissingHeader`] (`x-timestamp`, `x-nonce`, `x-sign`),
    /// [`AuthError::MalformedHeader`] (`x-timestamp`), [`AuthError::TimestampTooOld`],
    /// [`AuthError::TimestampTooNew`], [`AuthError::NotJsonObject`]. `000001`: [`AuthError::BadSignature`].
    pub fn verify(&self, auth: KitAuth<'_>, body: &[u8], now_ms: u64) -> Result<KitVerified, AuthError> {
        let timestamp = auth.timestamp.filter(|t| !t.is_empty()).ok_or(AuthError::MissingHeader("x-timestamp"))?;
        let timestamp_ms = self.window.check(timestamp, now_ms).map_err(|e| match e {
            AuthError::MalformedTimestamp | AuthError::MissingTimestamp => AuthError::MalformedHeader("x-timestamp"),
            other => other,
        })?;
        let nonce = auth.nonce.filter(|n| !n.is_empty()).ok_or(AuthError::MissingHeader("x-nonce"))?;
        let sign = auth.sign.filter(|s| !s.is_empty()).ok_or(AuthError::MissingHeader("x-sign"))?;
        let matched = canonical_json::matches_any_candidate(&self.keys, body, sign, |key, payload| {
            kit_tag(key, payload, timestamp, nonce)
        })?;
        match matched {
            Some(key_index) => Ok(KitVerified { timestamp_ms, nonce: nonce.to_owned(), key_index }),
            None => Err(AuthError::BadSignature),
        }
    }
}
