//! The Agents-gateway AK/SK token: an HS256 JWT (protocol §7, test-vectors §10).
//!
//! Header `{"alg":"HS256","sign_type":"SIGN"}`, payload `{"api_key": AK, "exp": …, "timestamp": ms}`, signed with the
//! SK. The documentation leaves the header carrying it and the expiry's unit open; this verifier reads
//! `Authorization` with or without `Bearer `, treats `exp ≥ 10^11` as milliseconds and smaller values as seconds,
//! and allows a small clock skew ([`DEFAULT_SKEW_MS`]). A token without `exp` expires [`DEFAULT_LIFETIME_MS`] after
//! its `timestamp`; one with neither is refused, and so is one whose `timestamp` is in the future.
//!
//! Hand-written on `hmac` + `base64` (URL-safe, no padding) because only HS256 is needed and `alg` must be pinned.
//!
//! # How to use
//!
//! 1. Build a [`JwtVerifier`] from the configured AK/SK pairs.
//! 2. Call [`JwtVerifier::verify`] with the `Authorization` header and the clock; answer 401 on any error.
//!
//! ```
//! use koogallery_core::signing::agents_jwt::{self, JwtVerifier};
//! use koogallery_core::signing::keys::SecretKey;
//!
//! let sk = SecretKey::new("demo-sk-0001");
//! let token = agents_jwt::sign("demo-ak-0001", &sk, 1_709_690_865_879, 1_709_691_165_879);
//! let verifier = JwtVerifier::new(vec![("demo-ak-0001".to_owned(), sk)]);
//! let claims = verifier.verify(&format!("Bearer {token}"), 1_709_690_865_879).expect("valid");
//! assert_eq!(claims.api_key, "demo-ak-0001");
//! assert_eq!(claims.exp_ms, Some(1_709_691_165_879));
//! ```

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use crate::signing::error::{ct_eq, hmac_sha256};
use crate::signing::keys::SecretKey;

/// Clock skew tolerated past `exp`, in ms.
pub const DEFAULT_SKEW_MS: u64 = 5_000;
/// Lifetime assumed for a token that has a `timestamp` but no `exp` (the documented "5 minutes ahead").
pub const DEFAULT_LIFETIME_MS: u64 = 5 * 60_000;

/// The header every token carries.
const HEADER_JSON: &str = r#"{"alg":"HS256","sign_type":"SIGN"}"#;

/// Decodes with or without padding (senders differ).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a token was refused. All of them mean 401; the variants say why, for logs. Never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// No token in the header.
    #[error("no token")]
    MissingToken,
    /// Not three Base64url parts with JSON object header and payload.
    #[error("token is malformed")]
    Malformed,
    /// `alg` is not `HS256` (including `none`).
    #[error("token algorithm is not HS256")]
    UnsupportedAlgorithm,
    /// The payload has no string `api_key`.
    #[error("token has no api_key")]
    MissingApiKey,
    /// `api_key` is not configured.
    #[error("api_key is not known")]
    UnknownApiKey,
    /// The signature does not match the SK of `api_key`.
    #[error("token signature does not match")]
    BadSignature,
    /// Past `exp` (plus the skew allowance).
    #[error("token has expired")]
    Expired,
    /// Neither `exp` nor `timestamp`, so the token would never expire.
    #[error("token has no expiry")]
    MissingExpiry,
    /// `timestamp` is later than now (plus the skew allowance): a token minted ahead of time.
    #[error("token timestamp is in the future")]
    NotYetValid,
}

impl JwtError {
    /// A stable machine-readable name, for the `401` answer's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::Malformed => "malformed_token",
            Self::UnsupportedAlgorithm => "unsupported_alg",
            Self::MissingApiKey => "missing_api_key",
            Self::UnknownApiKey => "unknown_api_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "token_expired",
            Self::MissingExpiry => "missing_expiry",
            Self::NotYetValid => "token_not_yet_valid",
        }
    }
}

/// The claims of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtClaims {
    /// The AK the token was issued for.
    pub api_key: String,
    /// `exp` in ms (scaled from seconds when small), if present.
    pub exp_ms: Option<u64>,
    /// `timestamp` in ms, if present.
    pub timestamp_ms: Option<u64>,
}

/// Verifies gateway tokens against a set of AK/SK pairs.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    pairs: Vec<(String, SecretKey)>,
    skew_ms: u64,
}

/// A claim as ms: integers ≥ 10^11 are ms, smaller ones seconds; non-integers are ignored.
fn claim_ms(payload: &Value, name: &str) -> Result<Option<u64>, JwtError> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = v.as_u64().ok_or(JwtError::Malformed)?;
            Ok(Some(if n >= 100_000_000_000 { n } else { n.saturating_mul(1000) }))
        }
    }
}

fn decode_object(part: &str) -> Result<Value, JwtError> {
    let bytes = LENIENT.decode(part).map_err(|_| JwtError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(JwtError::Malformed),
    }
}

impl JwtVerifier {
    /// A verifier for these `(AK, SK)` pairs, with [`DEFAULT_SKEW_MS`].
    pub fn new(pairs: Vec<(String, SecretKey)>) -> Self {
        Self { pairs, skew_ms: DEFAULT_SKEW_MS }
    }

    /// The same verifier with another skew allowance (0 = expire exactly at `exp`).
    pub fn with_skew_ms(mut self, skew_ms: u64) -> Self {
        self.skew_ms = skew_ms;
        self
    }

    /// Verifies the `Authorization` header value (optional `Bearer ` prefix) at `now_ms`.
    ///
    /// # Errors
    /// [`JwtError`]: malformed, wrong `alg`, unknown `api_key`, bad signature, expired, no expiry.
    pub fn verify(&self, authorization_header: &str, now_ms: u64) -> Result<JwtClaims, JwtError> {
        let header = authorization_header.trim();
        let token = match (header.get(..6), header.get(6..)) {
            (Some(prefix), Some(rest))
                if prefix.eq_ignore_ascii_case("bearer") && (rest.is_empty() || rest.starts_with([' ', '\t'])) =>
            {
                rest.trim()
            }
            _ => header,
        };
        if token.is_empty() {
            return Err(JwtError::MissingToken);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(JwtError::Malformed);
        };
        let head = decode_object(h)?;
        if head.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(JwtError::UnsupportedAlgorithm);
        }
        let payload = decode_object(p)?;
        let api_key = payload.get("api_key").and_then(Value::as_str).ok_or(JwtError::MissingApiKey)?;
        let sk = self.pairs.iter().find(|(ak, _)| ak == api_key).map(|(_, sk)| sk).ok_or(JwtError::UnknownApiKey)?;
        let received = LENIENT.decode(s).map_err(|_| JwtError::BadSignature)?;
        let signing_input = &token[..h.len() + 1 + p.len()];
        if !ct_eq(&hmac_sha256(sk.as_bytes(), &[signing_input.as_bytes()]), &received) {
            return Err(JwtError::BadSignature);
        }
        let exp_ms = claim_ms(&payload, "exp")?;
        let timestamp_ms = claim_ms(&payload, "timestamp")?;
        let expires = exp_ms
            .or_else(|| timestamp_ms.map(|t| t.saturating_add(DEFAULT_LIFETIME_MS)))
            .ok_or(JwtError::MissingExpiry)?;
        if now_ms > expires.saturating_add(self.skew_ms) {
            return Err(JwtError::Expired);
        }
        if timestamp_ms.is_some_and(|t| t > now_ms.saturating_add(self.skew_ms)) {
            return Err(JwtError::NotYetValid);
        }
        Ok(JwtClaims { api_key: api_key.to_owned(), exp_ms, timestamp_ms })
    }
}

/// Issues a token as the gateway does: header `{"alg":"HS256","sign_type":"SIGN"}`, payload
/// `{"api_key":…,"exp":exp_ms,"timestamp":timestamp_ms}`.
pub fn sign(ak: &str, sk: &SecretKey, timestamp_ms: u64, exp_ms: u64) -> String {
    let mut payload = serde_json::Map::new();
    payload.insert("api_key".to_owned(), Value::from(ak));
    payload.insert("exp".to_owned(), Value::from(exp_ms));
    payload.insert("timestamp".to_owned(), Value::from(timestamp_ms));
    let payload = crate::signing::canonical_json::jackson_compact(&Value::Object(payload));
    let mut token = URL_SAFE_NO_PAD.encode(HEADER_JSON);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let tag = hmac_sha256(sk.as_bytes(), &[token.as_bytes()]);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut token);
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(vec![("ak".to_owned(), SecretKey::new("sk"))])
    }

    #[test]
    fn seconds_and_milliseconds_are_told_apart() {
        let token = sign("ak", &SecretKey::new("sk"), 1_709_690_865, 1_709_691_165);
        let claims = verifier().verify(&token, 1_709_690_865_879).expect("valid");
        assert_eq!(claims.exp_ms, Some(1_709_691_165_000));
        assert_eq!(claims.timestamp_ms, Some(1_709_690_865_000));
    }

    #[test]
    fn alg_none_and_garbage_are_refused() {
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"api_key":"ak"}"#)
        );
        assert_eq!(verifier().verify(&none, 0), Err(JwtError::UnsupportedAlgorithm));
        assert_eq!(verifier().verify("Bearer ", 0), Err(JwtError::MissingToken));
        assert_eq!(verifier().verify("a.b", 0), Err(JwtError::Malformed));
        assert_eq!(verifier().verify("a.b.c.d", 0), Err(JwtError::Malformed));
    }

    #[test]
    fn future_timestamp_is_refused() {
        let now = 1_709_690_865_879;
        let ahead = sign("ak", &SecretKey::new("sk"), now + DEFAULT_SKEW_MS + 1, now + 600_000);
        assert_eq!(verifier().verify(&ahead, now), Err(JwtError::NotYetValid));
        let within_skew = sign("ak", &SecretKey::new("sk"), now + DEFAULT_SKEW_MS, now + 600_000);
        assert!(verifier().verify(&within_skew, now).is_ok());
    }

    #[test]
    fn missing_expiry_is_refused() {
        let h = URL_SAFE_NO_PAD.encode(HEADER_JSON);
        let p = URL_SAFE_NO_PAD.encode(r#"{"api_key":"ak"}"#);
        let input = format!("{h}.{p}");
        let tag = URL_SAFE_NO_PAD.encode(hmac_sha256(b"sk", &[input.as_bytes()]));
        assert_eq!(verifier().verify(&format!("{input}.{tag}"), 0), Err(JwtError::MissingExpiry));
    }
}
