//! The `Body-Sign` response header (protocol §4.4): V1 requires it, V2 ignores it, we send it on both.
//!
//! ```text
//! Body-Sign: sign_type="HMAC-SHA256", signature= "<Base64(HMAC-SHA256(accessKey, exact body bytes))>"
//! ```
//!
//! The spacing is fixed (a space after `signature=`) because the platform compares the header text. The key is
//! the access key alone (not key + timeStamp). Serialise the body once, sign those bytes, send those bytes.
//!
//! # How to use
//!
//! 1. Serialise the response body.
//! 2. Set `Body-Sign` to [`header_value`] of those bytes under the signing key.
//! 3. A client (the harness) checks a response with [`verify`], which tolerates spacing and quoting differences.
//!
//! ```
//! use koogallery_core::signing::body_sign;
//! use koogallery_core::signing::keys::{KeyRing, SecretKey};
//!
//! let key = SecretKey::new("1234567890abcdef1234567890abcdef");
//! let body = br#"{"resultCode":"000000","resultMsg":"success.","instanceId":"61e834ba-7b97-4418-b8f7-e5345137278c"}"#;
//! let header = body_sign::header_value(&key, body);
//! assert_eq!(header, r#"sign_type="HMAC-SHA256", signature= "mHgssqnVSoRSgR9kqAymo6Fb0l408AyRIjKE5IAlh/k=""#);
//! assert!(body_sign::verify(&header, body, &KeyRing::single(key)).is_ok());
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::signing::error::{AuthError, ct_eq, hmac_sha256};
use crate::signing::keys::{KeyRing, SecretKey};

/// The header's name.
pub const HEADER_NAME: &str = "Body-Sign";

/// Standard alphabet, padding optional: a reader is lenient about what it receives.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64 HMAC-SHA256 of `body` under `key`: the quoted part of the header.
pub fn signature(key: &SecretKey, body: &[u8]) -> String {
    STANDARD.encode(hmac_sha256(key.as_bytes(), &[body]))
}

/// The full header value, exactly `sign_type="HMAC-SHA256", signature= "<base64>"`.
pub fn header_value(key: &SecretKey, body: &[u8]) -> String {
    format!("sign_type=\"HMAC-SHA256\", signature= \"{}\"", signature(key, body))
}

/// Checks a `Body-Sign` header against `body` under any key of `keys`. Spacing, quoting and the order of the
/// two attributes may vary; `sign_type`, when given, must be `HMAC-SHA256`.
///
/// # Errors
/// [`AuthError::MissingSignature`] when the header has no (or an empty) `signature`,
/// [`AuthError::MalformedHeader`] for another `sign_type`, [`AuthError::BadSignature`] on mismatch.
pub fn verify(header: &str, body: &[u8], keys: &KeyRing) -> Result<(), AuthError> {
    let mut sign_type = None;
    let mut sig = None;
    for part in header.split(',') {
        let Some((name, value)) = part.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value).trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "sign_type" => sign_type = Some(value),
            "signature" => sig = Some(value),
            _ => {}
        }
    }
    if sign_type.is_some_and(|t| !t.eq_ignore_ascii_case("HMAC-SHA256")) {
        return Err(AuthError::MalformedHeader("body-sign"));
    }
    let sig = sig.filter(|s| !s.is_empty()).ok_or(AuthError::MissingSignature)?;
    let received = LENIENT.decode(sig).map_err(|_| AuthError::BadSignature)?;
    let mut matched = false;
    for key in keys.iter() {
        matched |= ct_eq(&hmac_sha256(key.as_bytes(), &[body]), &received);
    }
    if matched { Ok(()) } else { Err(AuthError::BadSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant_parser_accepts_variants_of_the_format() {
        let key = SecretKey::new("k");
        let keys = KeyRing::single(key.clone());
        let sig = signature(&key, b"{}");
        for header in [
            format!("sign_type=\"HMAC-SHA256\", signature= \"{sig}\""),
            format!("signature=\"{sig}\",sign_type=\"hmac-sha256\""),
            format!("signature={}", sig.trim_end_matches('=')),
        ] {
            assert_eq!(verify(&header, b"{}", &keys), Ok(()), "{header}");
        }
    }

    #[test]
    fn wrong_sign_type_and_missing_signature_are_reported() {
        let keys = KeyRing::single(SecretKey::new("k"));
        assert_eq!(
            verify("sign_type=\"HMAC-SHA1\", signature= \"AAAA\"", b"{}", &keys),
            Err(AuthError::MalformedHeader("body-sign"))
        );
        assert_eq!(verify("sign_type=\"HMAC-SHA256\"", b"{}", &keys), Err(AuthError::MissingSignature));
        assert_eq!(
            verify("sign_type=\"HMAC-SHA256\", signature= \"\"", b"{}", &keys),
            Err(AuthError::MissingSignature)
        );
        assert_eq!(verify("signature= \"!!\"", b"{}", &keys), Err(AuthError::BadSignature));
    }
}
