//! The error every request verifier returns, and the small MAC helpers they share.
//!
//! # Security
//!
//! Messages name the field at fault and never contain key material, signatures or body bytes, so an
//! [`AuthError`] can be logged and echoed in a `resultMsg` as it is.
//!
//! # How to use
//!
//! 1. Call a verifier of one of the schemes in [`crate::signing`] (`V2Verifier::verify`, `KitVerifier::verify`,
//!    `V1AuthToken::verify`, …).
//! 2. On `Err(e)`, answer `000001` when [`AuthError::is_authentication_failure`] is true, otherwise `000002`
//!    naming [`AuthError::field`] in the message.
//!
//! ```
//! use koogallery_core::signing::error::AuthError;
//!
//! let e = AuthError::MissingTimestamp;
//! assert!(!e.is_authentication_failure()); // → 000002
//! assert_eq!(e.field(), Some("timestamp"));
//! assert!(AuthError::BadSignature.is_authentication_failure()); // → 000001
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a signed request was refused. Shared by every scheme so handlers map errors to result codes once.
///
/// The split that matters to the marketplace is [`AuthError::is_authentication_failure`]: `000001` for a
/// missing or wrong signature (or a replay), `000002` for everything that makes the request malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The signature parameter (`signature`, `authToken`, `Body-Sign`'s `signature=`, `Authorization`) is absent
    /// or empty. Answered `000001`, as the V2 documentation says.
    #[error("signature is missing")]
    MissingSignature,
    /// The signature does not match under any configured key: wrong key, altered request, truncated signature.
    #[error("signature does not match")]
    BadSignature,
    /// The timestamp parameter is absent or empty.
    #[error("timestamp is missing")]
    MissingTimestamp,
    /// The nonce parameter is absent or empty.
    #[error("nonce is missing")]
    MissingNonce,
    /// The timestamp is not a 13-digit millisecond value (or a 10-digit second value where those are enabled).
    #[error("timestamp is malformed")]
    MalformedTimestamp,
    /// The timestamp is further in the past than the window allows.
    #[error("timestamp is outside the allowed window (too old)")]
    TimestampTooOld,
    /// The timestamp is further in the future than the window allows.
    #[error("timestamp is outside the allowed window (too new)")]
    TimestampTooNew,
    /// The body is not a JSON object, so no canonical payload exists.
    #[error("body is not a JSON object")]
    NotJsonObject,
    /// A required header is absent or empty (kit `x-sign`/`x-timestamp`/`x-nonce`, API Gateway `x-sdk-date`).
    #[error("header {0} is missing")]
    MissingHeader(&'static str),
    /// A header is present but cannot be parsed (a malformed `Authorization`, `Body-Sign` or `x-timestamp`).
    #[error("header {0} is malformed")]
    MalformedHeader(&'static str),
    /// The nonce was already seen inside the window (nonce cache). Treated as an authentication failure.
    #[error("nonce was already used")]
    ReplayedNonce,
    /// The access key named by the request (API Gateway `Access=`) is not known.
    #[error("access key is not known")]
    UnknownAccessKey,
}

impl AuthError {
    /// True when the marketplace expects `000001` (authentication failed): a missing or wrong signature, an
    /// unknown access key, a replayed nonce. False means `000002` (a parameter is missing or invalid).
    pub fn is_authentication_failure(&self) -> bool {
        matches!(self, Self::MissingSignature | Self::BadSignature | Self::ReplayedNonce | Self::UnknownAccessKey)
    }

    /// The name of the offending field, for the `000002` message (`"timestamp is invalid"`).
    ///
    /// Scheme-neutral variants use the V2 names (`signature`, `timestamp`, `nonce`); header variants carry the
    /// header's own name (`x-sign`, `x-timestamp`, …).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::MissingSignature | Self::BadSignature => Some("signature"),
            Self::MissingTimestamp | Self::MalformedTimestamp | Self::TimestampTooOld | Self::TimestampTooNew => {
                Some("timestamp")
            }
            Self::MissingNonce | Self::ReplayedNonce => Some("nonce"),
            Self::NotJsonObject => Some("body"),
            Self::MissingHeader(name) | Self::MalformedHeader(name) => Some(name),
            Self::UnknownAccessKey => Some("access key"),
        }
    }
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`; the one MAC every scheme here uses.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; the fallback is unreachable but keeps
    // the function total without a panic path.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time equality of two byte strings (length is not secret: tags have a fixed length).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Decodes hex of either case into a 32-byte tag; `None` for anything else (wrong length, non-hex).
pub(crate) fn decode_hex_tag(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.as_bytes(), &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_code_split_matches_the_protocol() {
        for e in [AuthError::MissingSignature, AuthError::BadSignature, AuthError::ReplayedNonce] {
            assert!(e.is_authentication_failure(), "{e:?}");
        }
        for e in [
            AuthError::MissingTimestamp,
            AuthError::MissingNonce,
            AuthError::MalformedTimestamp,
            AuthError::TimestampTooOld,
            AuthError::TimestampTooNew,
            AuthError::NotJsonObject,
            AuthError::MissingHeader("x-sign"),
        ] {
            assert!(!e.is_authentication_failure(), "{e:?}");
        }
    }

    #[test]
    fn field_names_the_parameter() {
        assert_eq!(AuthError::MissingNonce.field(), Some("nonce"));
        assert_eq!(AuthError::TimestampTooNew.field(), Some("timestamp"));
        assert_eq!(AuthError::MissingHeader("x-sign").field(), Some("x-sign"));
        assert_eq!(AuthError::BadSignature.field(), Some("signature"));
    }

    #[test]
    fn hex_tags_decode_in_either_case_and_reject_truncation() {
        let upper = "A3086BF160E99C0F507576161BBE4911A01C1179403F02133EB263559D4530E8";
        assert_eq!(decode_hex_tag(upper), decode_hex_tag(&upper.to_lowercase()));
        assert!(decode_hex_tag(upper).is_some());
        assert!(decode_hex_tag(&upper[..63]).is_none());
        assert!(decode_hex_tag(&upper[..62]).is_none());
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
