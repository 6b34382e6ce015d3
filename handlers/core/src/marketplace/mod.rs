//! Requests as KooGallery sends them: signed V2 POSTs, V1 GETs with `authToken`, kit POSTs with `x-sign`, and the
//! sample bodies the seller center's debugging tool sends.
//!
//! This is the one way the project builds a marketplace request: `harness sign`, the cassette re-signer, the
//! emulator and the tests all go through [`Marketplace`], so every test request meets the real verifier exactly as
//! the marketplace's would.
//!
//! 1. Make a [`Marketplace`] with the shared key ([`Marketplace::new`] or [`Marketplace::from_key`]).
//! 2. Take a body from [`samples`] (or write one) and sign it: [`Marketplace::v2`], [`Marketplace::v1`],
//!    [`Marketplace::kit`] give a complete [`Inbound`]; [`Marketplace::v2_query`], [`Marketplace::v1_query`] and
//!    [`Marketplace::kit_headers`] give just the signed parts, for tools that place them themselves.
//! 3. Fresh values as the marketplace makes them: [`fresh_nonce`], [`fresh_uuid`], [`v1_time_stamp`].
//!
//! ```
//! use koogallery_core::signing::keys::KeyRing;
//! use koogallery_core::marketplace::Marketplace;
//! let mp = Marketplace::new(KeyRing::parse_list("1234567890abcdef1234567890abcdef").expect("key"));
//! let body = br#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;
//! let req = mp.v2("/saasproduce", body, 1680508066618, "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA");
//! assert!(req.query.starts_with("signature=A3086BF160E99C0F507576161BBE4911A01C1179403F02133EB263559D4530E8&"));
//! ```

pub mod samples;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::http::Inbound;
use crate::signing::keys::{KeyRing, SecretKey};
use crate::signing::kit::KitVerifier;
use crate::signing::v1::V1AuthToken;
use crate::signing::v2::V2Verifier;
use crate::signing::window::TimestampWindow;
use crate::wire::time::{Precision, format_compact_utc};

/// Query characters kept unescaped (RFC 3986 unreserved).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Signs requests with the marketplace's side of the shared keys (the first key of the ring).
#[derive(Debug, Clone)]
pub struct Marketplace {
    keys: KeyRing,
}

impl Marketplace {
    /// A marketplace that signs with the first key of `keys`.
    pub fn new(keys: KeyRing) -> Self {
        Self { keys }
    }

    /// A marketplace that signs with the one key `key`; `None` when `key` is empty.
    pub fn from_key(key: &str) -> Option<Self> {
        (!key.is_empty()).then(|| Self::new(KeyRing::single(SecretKey::new(key))))
    }

    /// The keys this marketplace signs with (answers' `Body-Sign` is checked against them).
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The V2 signature of `body` as the marketplace computes it: over the canonical payload of a JSON object body,
    /// over the raw bytes otherwise (so malformed bodies still reach the handler signed).
    pub fn v2_signature(&self, body: &[u8], timestamp: &str, nonce: &str) -> String {
        let signer = V2Verifier::new(self.keys.clone(), TimestampWindow::default());
        signer.sign_canonical(body, timestamp, nonce).unwrap_or_else(|_| signer.sign(body, timestamp, nonce))
    }

    /// `query` with its V2 parameters replaced: other parameters kept in order, then `signature`, `timestamp`,
    /// `nonce`.
    pub fn v2_query(&self, query: &str, body: &[u8], timestamp: &str, nonce: &str) -> String {
        let signature = self.v2_signature(body, timestamp, nonce);
        let kept = crate::http::parse_query(query.trim_start_matches('?'));
        let kept = kept.iter().filter(|(k, _)| !matches!(k.as_str(), "signature" | "timestamp" | "nonce"));
        encode_query(kept.map(|(k, v)| (k.as_str(), v.as_str())).chain([
            ("signature", signature.as_str()),
            ("timestamp", timestamp),
            ("nonce", nonce),
        ]))
    }

    /// A V2 basic-interface request: `POST path?signature=…&timestamp=…&nonce=…` with `body` as the exact bytes.
    pub fn v2(&self, path: &str, body: &[u8], timestamp_ms: u64, nonce: &str) -> Inbound {
        Inbound {
            method: "POST".into(),
            path: path.into(),
            query: self.v2_query("", body, &timestamp_ms.to_string(), nonce),
            headers: vec![
                ("content-type".into(), "application/json;charset=utf8".into()),
                ("accept".into(), "application/json".into()),
            ],
            body: body.to_vec(),
        }
    }

    /// A complete V1 query: `params` (any `timeStamp`/`authToken` replaced) in order, `timeStamp`, then
    /// `authToken`.
    pub fn v1_query(&self, params: &[(String, String)], time_stamp: &str) -> String {
        let mut pairs: Vec<(&str, &str)> = params
            .iter()
            .filter(|(k, _)| k != "timeStamp" && k != "authToken")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.push(("timeStamp", time_stamp));
        V1AuthToken::new(self.keys.clone()).signed_query(&pairs, time_stamp)
    }

    /// A V1 request: `GET path?<params>&authToken=…`, `params` in the given order; they must include `timeStamp`.
    pub fn v1(&self, path: &str, params: &[(&str, &str)]) -> Inbound {
        let time_stamp = params.iter().find(|(k, _)| *k == "timeStamp").map_or("", |(_, v)| *v);
        let query = V1AuthToken::new(self.keys.clone()).signed_query(params, time_stamp);
        Inbound { method: "GET".into(), path: path.into(), query, headers: vec![], body: vec![] }
    }

    /// The kit headers `x-sign`, `x-timestamp`, `x-nonce` for `body` (signed over the canonical payload of a JSON
    /// object body, over the raw bytes otherwise).
    pub fn kit_headers(&self, body: &[u8], timestamp: &str, nonce: &str) -> [(&'static str, String); 3] {
        let signer = KitVerifier::new(self.keys.clone(), TimestampWindow::default());
        let sign =
            signer.sign_canonical(body, timestamp, nonce).unwrap_or_else(|_| signer.sign(body, timestamp, nonce));
        [("x-sign", sign), ("x-timestamp", timestamp.to_owned()), ("x-nonce", nonce.to_owned())]
    }

    /// A kit sync request: `POST path` with `x-sign`, `x-timestamp`, `x-nonce` headers.
    pub fn kit(&self, path: &str, body: &[u8], timestamp_ms: u64, nonce: &str) -> Inbound {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        let signed = self.kit_headers(body, &timestamp_ms.to_string(), nonce);
        headers.extend(signed.into_iter().map(|(k, v)| (k.to_owned(), v)));
        Inbound { method: "POST".into(), path: path.into(), query: String::new(), headers, body: body.to_vec() }
    }
}

impl Marketplace {
    /// A kit V1 sync request: `POST path` with the JSON `body` and an `authToken` header over its top-level fields
    /// (see [`crate::signing::v1::kit_v1_params`]), HMAC key = kit key + the body's `timeStamp`. A body that is not
    /// a JSON object is sent with an empty token.
    pub fn kit_v1(&self, path: &str, body: &[u8]) -> Inbound {
        let token = crate::signing::v1::kit_v1_params(body)
            .map(|params| {
                let time_stamp = params.iter().find(|(k, _)| k == "timeStamp").map_or("", |(_, v)| v.as_str());
                let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                V1AuthToken::new(self.keys.clone()).sign(&pairs, time_stamp)
            })
            .unwrap_or_default();
        let headers = vec![("content-type".to_owned(), "application/json".to_owned()), ("authToken".to_owned(), token)];
        Inbound { method: "POST".into(), path: path.into(), query: String::new(), headers, body: body.to_vec() }
    }
}

/// Percent-encodes `pairs` into a query string (RFC 3986 unreserved characters kept).
pub fn encode_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, UNRESERVED), utf8_percent_encode(v, UNRESERVED)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The V1 `timeStamp` for `ms`: `yyyyMMddHHmmssSSS` in UTC.
pub fn v1_time_stamp(ms: u64) -> String {
    format_compact_utc(ms, Precision::Millis17)
}

/// A fresh 64-character upper-case hex nonce, as the marketplace sends.
pub fn fresh_nonce() -> String {
    hex::encode_upper(random_bytes())
}

/// A fresh random (version 4) UUID, hyphenated: a `businessId`, an unknown instance.
pub fn fresh_uuid() -> String {
    let bytes = random_bytes();
    let mut first = [0u8; 16];
    first.copy_from_slice(&bytes[..16]);
    uuid::Builder::from_random_bytes(first).into_uuid().hyphenated().to_string()
}

/// 32 random bytes. Uniqueness is what matters here (nonces, ids), not secrecy: without an OS source, the clock and
/// a counter still give distinct values.
fn random_bytes() -> [u8; 32] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
        bytes[16..24].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        bytes[24..28].copy_from_slice(&std::process::id().to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const AK: &str = "1234567890abcdef1234567890abcdef";
    const BODY: &str = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;
    const NONCE: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";

    #[test]
    fn v2_query_known_answer_test_vectors_6_1_keeps_other_parameters() {
        let mp = Marketplace::from_key(AK).expect("key");
        let q = mp.v2_query("keep=1&signature=old", BODY.as_bytes(), "1680508066618", NONCE);
        assert_eq!(
            q,
            format!(
                "keep=1&signature=A3086BF160E99C0F507576161BBE4911A01C1179403F02133EB263559D4530E8&timestamp=1680508066618&nonce={NONCE}"
            )
        );
    }

    #[test]
    fn signed_requests_verify_with_the_handlers_verifiers() {
        let mp = Marketplace::from_key(AK).expect("key");
        let keys = mp.keys().clone();
        // Unsorted keys: the marketplace signs the canonical payload, which the verifier accepts.
        let body = br#"{"testFlag":"1","activity":"queryInstance","instanceId":"i-1"}"#;
        let req = mp.v2("/produce", body, 1_680_508_066_618, NONCE);
        let params = req.query_params();
        let find = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let auth = crate::signing::v2::V2Auth {
            signature: find("signature"),
            timestamp: find("timestamp"),
            nonce: find("nonce"),
        };
        let verifier = V2Verifier::new(keys.clone(), TimestampWindow::default());
        assert!(verifier.verify(auth, body, 1_680_508_066_618).is_ok());

        let kit = mp.kit("/produceAPI/v2/tenantSync", body, 1_680_508_066_618, NONCE);
        let auth = crate::signing::kit::KitAuth {
            sign: kit.header("x-sign"),
            timestamp: kit.header("x-timestamp"),
            nonce: kit.header("x-nonce"),
        };
        let verifier = KitVerifier::new(keys.clone(), TimestampWindow::default());
        assert!(verifier.verify(auth, body, 1_680_508_066_618).is_ok());

        let params = [("activity".to_owned(), "queryInstance".to_owned()), ("timeStamp".to_owned(), "x".to_owned())];
        let query = mp.v1_query(&params, &v1_time_stamp(1_669_257_378_256));
        assert!(query.contains("timeStamp=20221124023618256&authToken="), "{query}");
        assert!(V1AuthToken::new(keys).verify(&query).is_ok());
    }

    #[test]
    fn fresh_values_are_fresh_and_well_formed() {
        let (a, b) = (fresh_nonce(), fresh_nonce());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
        let id = fresh_uuid();
        assert_eq!(uuid::Uuid::parse_str(&id).map(|u| u.get_version_num()), Ok(4));
        assert!(Marketplace::from_key("").is_none());
        assert_eq!(encode_query([("b", "x y&z~")]), "b=x%20y%26z~");
    }
}
