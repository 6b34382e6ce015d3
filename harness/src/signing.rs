//! Signing requests the way the marketplace does, for `harness sign` and for re-signing cassettes in `replay`.
//!
//! All cryptography is `koogallery-core`'s; this module only places the results where each scheme carries them:
//!
//! | scheme | where | core API |
//! |---|---|---|
//! | V2 | query `signature`, `timestamp` (ms), `nonce` | [`V2Verifier::sign_canonical`] (raw body if not a JSON object) |
//! | V1 | query `timeStamp` (`yyyyMMddHHmmssSSS` UTC), `authToken` | [`V1AuthToken::signed_query`] |
//! | kit | headers `x-sign`, `x-timestamp`, `x-nonce` | [`KitVerifier::sign_canonical`] |

use koogallery_core::signing::keys::{KeyRing, SecretKey};
use koogallery_core::signing::kit::KitVerifier;
use koogallery_core::signing::v1::V1AuthToken;
use koogallery_core::signing::v2::V2Verifier;
use koogallery_core::signing::window::TimestampWindow;
use koogallery_core::wire::time::{Precision, format_compact_utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Query characters kept unescaped (RFC 3986 unreserved).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A signing scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Scheme {
    /// Basic interfaces, V2 (query signature).
    V2,
    /// Legacy V1 (`authToken` query parameter).
    V1,
    /// Joint-operation kit syncs (`x-sign` headers).
    Kit,
    /// No signature.
    None,
}

/// A key ring holding one key, or `None` if `key` is empty.
pub fn key_ring(key: &str) -> Option<KeyRing> {
    if key.is_empty() { None } else { Some(KeyRing::single(SecretKey::new(key))) }
}

/// A fresh 64-character upper-case hex nonce, the form most documented requests use.
pub fn fresh_nonce() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()).to_uppercase()
}

/// The V1 `timeStamp` for `ms`.
pub fn v1_time_stamp(ms: u64) -> String {
    format_compact_utc(ms, Precision::Millis17)
}

/// Decoded `name=value` pairs of a raw query string (`+` is a space).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-encodes `pairs` into a query string.
pub fn encode_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, UNRESERVED), utf8_percent_encode(v, UNRESERVED)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The V2 signature of `body` as the marketplace computes it: over the canonical payload of a JSON object body,
/// over the raw bytes otherwise.
pub fn v2_signature(keys: &KeyRing, body: &[u8], timestamp: &str, nonce: &str) -> String {
    let signer = V2Verifier::new(keys.clone(), TimestampWindow::default());
    signer.sign_canonical(body, timestamp, nonce).unwrap_or_else(|_| signer.sign(body, timestamp, nonce))
}

/// `query` with its V2 parameters replaced: other parameters kept in order, then `signature`, `timestamp`, `nonce`.
pub fn v2_query(keys: &KeyRing, query: &str, body: &[u8], timestamp: &str, nonce: &str) -> String {
    let signature = v2_signature(keys, body, timestamp, nonce);
    let kept = parse_query(query);
    let kept = kept.iter().filter(|(k, _)| !matches!(k.as_str(), "signature" | "timestamp" | "nonce"));
    encode_query(kept.map(|(k, v)| (k.as_str(), v.as_str())).chain([
        ("signature", signature.as_str()),
        ("timestamp", timestamp),
        ("nonce", nonce),
    ]))
}

/// A complete V1 query: `params` (any `timeStamp`/`authToken` replaced), `timeStamp`, then `authToken`.
pub fn v1_query(keys: &KeyRing, params: &[(String, String)], time_stamp: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| k != "timeStamp" && k != "authToken")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.push(("timeStamp", time_stamp));
    V1AuthToken::new(keys.clone()).signed_query(&pairs, time_stamp)
}

/// The kit headers `x-sign`, `x-timestamp`, `x-nonce` for `body`.
pub fn kit_headers(keys: &KeyRing, body: &[u8], timestamp: &str, nonce: &str) -> [(&'static str, String); 3] {
    let signer = KitVerifier::new(keys.clone(), TimestampWindow::default());
    let sign = signer.sign_canonical(body, timestamp, nonce).unwrap_or_else(|_| signer.sign(body, timestamp, nonce));
    [("x-sign", sign), ("x-timestamp", timestamp.to_owned()), ("x-nonce", nonce.to_owned())]
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A curl command line for the request.
pub fn curl_line(method: &str, url: &str, headers: &[(String, String)], body: Option<&str>) -> String {
    let mut line = format!("curl -sS -X {method} {}", shell_quote(url));
    for (k, v) in headers {
        line.push_str(&format!(" -H {}", shell_quote(&format!("{k}: {v}"))));
    }
    if let Some(b) = body {
        line.push_str(&format!(" --data-raw {}", shell_quote(b)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const AK: &str = "1234567890abcdef1234567890abcdef";
    const BODY: &str = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;
    const NONCE: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";

    #[test]
    fn v2_known_answer_test_vectors_6_1() {
        let keys = key_ring(AK).expect("key");
        let q = v2_query(&keys, "keep=1&signature=old", BODY.as_bytes(), "1680508066618", NONCE);
        assert_eq!(
            q,
            format!(
                "keep=1&signature=A3086BF160E99C0F507576161BBE4911A01C1179403F02133EB263559D4530E8&timestamp=1680508066618&nonce={NONCE}"
            )
        );
    }

    #[test]
    fn query_round_trip_and_quoting() {
        assert_eq!(
            parse_query("a=1&b=x+y%26z&c"),
            [("a".into(), "1".into()), ("b".into(), "x y&z".into()), ("c".into(), String::new())]
        );
        assert_eq!(encode_query([("b", "x y&z")]), "b=x%20y%26z");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(fresh_nonce().len(), 64);
        assert!(key_ring("").is_none());
        assert_eq!(v1_time_stamp(1_669_257_378_256), "20221124023618256");
    }
}
