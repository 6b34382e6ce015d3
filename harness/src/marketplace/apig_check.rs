//! The mock marketplace's check of the API Gateway `SDK-HMAC-SHA256` (AK/SK) signature (protocol §9.2).
//!
//! Written from the protocol, independently of core's `signing::apig`: the components sign with core's signer, so
//! a verifier sharing its code would accept whatever mistake the signer makes. The two are cross-checked by the
//! tests (test-vectors §9.1 and §9.2, and requests signed by core's `ApigSigner`).
//!
//! ```text
//! CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n hex(SHA256(body))
//! StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(SHA256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(SK, StringToSign))
//! ```
//!
//! The canonical request is built from the request as received: the method; the path percent-decoded, split on
//! `/`, each segment percent-encoded keeping only RFC 3986 unreserved characters, always ending with `/`; the query
//! decoded and re-encoded the same way, keys sorted, the values of a repeated key sorted, `k=` for an empty value;
//! the headers the `Authorization` header lists (in its order), `name:trimmed value` each followed by `\n`, then an
//! empty line; the list itself; the body's hex SHA-256 (or `UNSIGNED-PAYLOAD` when `x-sdk-content-sha256` says so).
//!
//! # How to use
//!
//! 1. Make an [`ApigVerifier`] with the AK/SK pair the mock accepts.
//! 2. Describe the received request as a [`SignedRequest`] and call [`ApigVerifier::verify`] with the clock.
//!
//! ```
//! use harness::marketplace::apig_check::{ApigVerifier, SignedRequest};
//!
//! // test-vectors §9.1, the published vector (SK `123`).
//! let mut headers = http::HeaderMap::new();
//! headers.insert("content-type", "application/json".parse()?);
//! headers.insert("host", "mkt.myhuaweicloud.com".parse()?);
//! headers.insert("x-sdk-date", "20240317T144237Z".parse()?);
//! headers.insert("x-stage", "RELEASE".parse()?);
//! headers.insert(
//!     "authorization",
//!     "SDK-HMAC-SHA256 Access=my-ak, SignedHeaders=content-type;host;x-sdk-date;x-stage, \
//!      Signature=77595ad624b6e4e49990b8c4e84bf1c287457fca61069c4e60b9b6765b52053d"
//!         .parse()?,
//! );
//! let request = SignedRequest {
//!     method: "POST",
//!     path: "/api/mkp-openapi-public/global/v1/license/activate",
//!     query: "",
//!     headers: &headers,
//!     body: b"",
//! };
//! let verifier = ApigVerifier::new("my-ak", "123");
//! assert_eq!(verifier.verify(&request, 1_710_686_557_000, None), Ok(()));
//! assert!(ApigVerifier::new("my-ak", "124").verify(&request, 1_710_686_557_000, None).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use hmac::{Hmac, Mac as _};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;
use subtle::ConstantTimeEq as _;

/// The algorithm name that starts the `Authorization` header and the string to sign.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// The signing time header (`yyyyMMdd'T'HHmmss'Z'`, UTC); it must be among the signed headers.
pub const DATE_HEADER: &str = "x-sdk-date";
/// The header whose value `UNSIGNED-PAYLOAD` stands for the body hash.
pub const CONTENT_SHA256_HEADER: &str = "x-sdk-content-sha256";
/// How far `X-Sdk-Date` may be from the mock's clock, either way, by default (the API Gateway's 15 minutes).
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// RFC 3986 unreserved characters stay as they are; every other byte is `%XX` (upper-case hex).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Why a request's AK/SK signature was refused. The mock records the text for tests; a real gateway would answer
/// opaquely.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApigError {
    /// No `Authorization` header, or one that is not text.
    #[error("no Authorization header")]
    MissingAuthorization,
    /// `Authorization` does not start with `SDK-HMAC-SHA256 `.
    #[error("Authorization is not SDK-HMAC-SHA256")]
    WrongAlgorithm,
    /// `Authorization` lacks a field (`Access`, `SignedHeaders`, `Signature`), repeats one, or has an empty one.
    #[error("Authorization field {0} is missing, repeated or empty")]
    MalformedAuthorization(&'static str),
    /// `Access` is not the mock's AK.
    #[error("unknown access key")]
    UnknownAccessKey,
    /// `x-sdk-date` is not among `SignedHeaders`.
    #[error("x-sdk-date is not a signed header")]
    DateNotSigned,
    /// A header listed in `SignedHeaders` is not in the request.
    #[error("signed header {0} is not in the request")]
    SignedHeaderAbsent(String),
    /// `X-Sdk-Date` is not `yyyyMMdd'T'HHmmss'Z'`.
    #[error("x-sdk-date is not yyyyMMdd'T'HHmmss'Z'")]
    MalformedDate,
    /// `X-Sdk-Date` is further from the mock's clock than allowed.
    #[error("x-sdk-date is {skew_s} s from the mock's clock, more than {max_s} s")]
    DateOutOfWindow {
        /// The distance, in seconds.
        skew_s: u64,
        /// The limit, in seconds.
        max_s: u64,
    },
    /// `Signature` is not the HMAC of the request (or not hex).
    #[error("signature mismatch")]
    BadSignature,
}

/// A received request, as the signature covers it.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    /// `GET`, `POST`, … (compared upper-cased).
    pub method: &'a str,
    /// The path as received (percent-encoded), without the query.
    pub path: &'a str,
    /// The raw query string (percent-encoded), without `?`; empty if none.
    pub query: &'a str,
    /// The headers as received.
    pub headers: &'a http::HeaderMap,
    /// The exact body bytes.
    pub body: &'a [u8],
}

/// The parsed `Authorization` header. `Debug` leaves the signature out.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `Access`: the AK.
    pub access: String,
    /// `SignedHeaders`, lower-cased, in the order given.
    pub signed_headers: Vec<String>,
    /// `Signature`: hex.
    pub signature: String,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("access", &self.access)
            .field("signed_headers", &self.signed_headers)
            .finish_non_exhaustive()
    }
}

/// Parses `SDK-HMAC-SHA256 Access=…, SignedHeaders=a;b, Signature=…`.
///
/// # Errors
/// [`ApigError::WrongAlgorithm`] or [`ApigError::MalformedAuthorization`].
pub fn parse_authorization(value: &str) -> Result<Authorization, ApigError> {
    let rest = value.trim().strip_prefix(ALGORITHM).ok_or(ApigError::WrongAlgorithm)?;
    if !rest.starts_with([' ', '\t']) {
        return Err(ApigError::WrongAlgorithm);
    }
    let (mut access, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, field_value) = part.trim().split_once('=').unwrap_or((part.trim(), ""));
        let (slot, field) = match name.trim() {
            "Access" => (&mut access, "Access"),
            "SignedHeaders" => (&mut signed, "SignedHeaders"),
            "Signature" => (&mut signature, "Signature"),
            _ => continue,
        };
        let field_value = field_value.trim();
        if slot.is_some() || field_value.is_empty() {
            return Err(ApigError::MalformedAuthorization(field));
        }
        *slot = Some(field_value.to_owned());
    }
    let access = access.ok_or(ApigError::MalformedAuthorization("Access"))?;
    let signed = signed.ok_or(ApigError::MalformedAuthorization("SignedHeaders"))?;
    let signature = signature.ok_or(ApigError::MalformedAuthorization("Signature"))?;
    let signed_headers: Vec<String> = signed.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(ApigError::MalformedAuthorization("SignedHeaders"));
    }
    Ok(Authorization { access, signed_headers, signature })
}

/// Percent-encodes `bytes` keeping RFC 3986 unreserved characters.
fn encode(bytes: &[u8]) -> String {
    percent_encode(bytes, UNRESERVED).to_string()
}

/// The canonical URI: decoded, split on `/`, each segment encoded, ending with `/`.
fn canonical_uri(path: &str) -> String {
    let decoded: Vec<u8> = percent_decode_str(path).collect();
    let mut uri = decoded.split(|b| *b == b'/').map(encode).collect::<Vec<_>>().join("/");
    if !uri.starts_with('/') {
        uri.insert(0, '/');
    }
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// The canonical query: keys sorted, a repeated key's values sorted, each encoded, `k=v` joined by `&`.
fn canonical_query(query: &str) -> String {
    let mut params: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.entry(percent_decode_str(key).collect()).or_default().push(percent_decode_str(value).collect());
    }
    let mut out = Vec::new();
    for (key, mut values) in params {
        values.sort();
        for value in values {
            out.push(format!("{}={}", encode(&key), encode(&value)));
        }
    }
    out.join("&")
}

/// The canonical request over `signed_headers` (lower-case names, in that order).
///
/// # Errors
/// [`ApigError::SignedHeaderAbsent`] when a listed header is not in the request.
pub fn canonical_request(request: &SignedRequest<'_>, signed_headers: &[String]) -> Result<Vec<u8>, ApigError> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(request.method.to_ascii_uppercase().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(request.path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(request.query).as_bytes());
    out.push(b'\n');
    for name in signed_headers {
        let value = request.headers.get(name.as_str()).ok_or_else(|| ApigError::SignedHeaderAbsent(name.clone()))?;
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(value.as_bytes().trim_ascii());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.join(";").as_bytes());
    out.push(b'\n');
    let unsigned =
        request.headers.get(CONTENT_SHA256_HEADER).is_some_and(|v| v.as_bytes().trim_ascii() == b"UNSIGNED-PAYLOAD");
    if unsigned {
        out.extend_from_slice(b"UNSIGNED-PAYLOAD");
    } else {
        out.extend_from_slice(hex::encode(Sha256::digest(request.body)).as_bytes());
    }
    Ok(out)
}

/// `SDK-HMAC-SHA256\n{sdk_date}\n{hex(SHA256(canonical_request))}`.
pub fn string_to_sign(canonical_request: &[u8], sdk_date: &str) -> String {
    format!("{ALGORITHM}\n{sdk_date}\n{}", hex::encode(Sha256::digest(canonical_request)))
}

/// Checks AK/SK signatures for one AK/SK pair. `Debug` redacts the SK.
#[derive(Clone)]
pub struct ApigVerifier {
    ak: String,
    sk: Vec<u8>,
}

impl std::fmt::Debug for ApigVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApigVerifier").field("ak", &self.ak).field("sk", &"[REDACTED]").finish()
    }
}

impl ApigVerifier {
    /// A verifier accepting requests signed with `sk` under access key `ak`.
    pub fn new(ak: impl Into<String>, sk: impl AsRef<[u8]>) -> Self {
        Self { ak: ak.into(), sk: sk.as_ref().to_vec() }
    }

    /// The access key accepted.
    pub fn ak(&self) -> &str {
        &self.ak
    }

    /// Checks `request`'s `Authorization`: the AK, `x-sdk-date` signed and (with `max_skew`) within `max_skew` of
    /// `now_ms`, and the signature, compared in constant time.
    ///
    /// # Errors
    /// The first problem found, as an [`ApigError`].
    pub fn verify(
        &self,
        request: &SignedRequest<'_>,
        now_ms: u64,
        max_skew: Option<Duration>,
    ) -> Result<(), ApigError> {
        let value = request.headers.get(http::header::AUTHORIZATION).ok_or(ApigError::MissingAuthorization)?;
        let value = value.to_str().map_err(|_| ApigError::MissingAuthorization)?;
        let authorization = parse_authorization(value)?;
        if authorization.access != self.ak {
            return Err(ApigError::UnknownAccessKey);
        }
        if !authorization.signed_headers.iter().any(|h| h == DATE_HEADER) {
            return Err(ApigError::DateNotSigned);
        }
        let date = request.headers.get(DATE_HEADER).ok_or_else(|| ApigError::SignedHeaderAbsent(DATE_HEADER.into()))?;
        let date = date.to_str().map_err(|_| ApigError::MalformedDate)?.trim();
        let date_ms = super::time::parse_sdk_date(date).ok_or(ApigError::MalformedDate)?;
        if let Some(max) = max_skew {
            let skew_ms = date_ms.abs_diff(now_ms);
            if u128::from(skew_ms) > max.as_millis() {
                return Err(ApigError::DateOutOfWindow { skew_s: skew_ms / 1000, max_s: max.as_secs() });
            }
        }
        let canonical = canonical_request(request, &authorization.signed_headers)?;
        let given = hex::decode(authorization.signature.trim()).map_err(|_| ApigError::BadSignature)?;
        let expected = self.tag(&string_to_sign(&canonical, date));
        if bool::from(expected.as_slice().ct_eq(&given)) { Ok(()) } else { Err(ApigError::BadSignature) }
    }

    /// HMAC-SHA256 of `string_to_sign` with the SK.
    fn tag(&self, string_to_sign: &str) -> Vec<u8> {
        // HMAC takes keys of any length: `new_from_slice` cannot fail.
        match Hmac::<Sha256>::new_from_slice(&self.sk) {
            Ok(mut mac) => {
                mac.update(string_to_sign.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIVATE_PATH: &str = "/api/mkp-openapi-public/global/v1/license/activate";
    const ORDER_PATH: &str = "/api/mkp-openapi-public/global/v1/order/query";
    const ORDER_QUERY: &str = "orderId=MOCKPERIODYEARNEW&orderLineId=MOCKPERIODYEARNEW-000001";
    /// 2024-03-17T14:42:37Z, the vectors' `X-Sdk-Date`.
    const VECTOR_MS: u64 = 1_710_686_557_000;
    const SIG_9_1: &str = "77595ad624b6e4e49990b8c4e84bf1c287457fca61069c4e60b9b6765b52053d";
    const SIG_9_2: &str = "df37ba3315950b108c9be5a4933a5fc864d004b012050c179dc3d22a78c99301";

    /// One request's parts, owned, so that a test can change one byte of any of them.
    #[derive(Clone)]
    struct Parts {
        method: String,
        path: String,
        query: String,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    }

    impl Parts {
        fn header_map(&self) -> http::HeaderMap {
            let mut map = http::HeaderMap::new();
            for (name, value) in &self.headers {
                map.append(*name, value.parse().expect("a header value"));
            }
            map
        }

        fn verify(&self, verifier: &ApigVerifier, now_ms: u64) -> Result<(), ApigError> {
            let headers = self.header_map();
            let request = SignedRequest {
                method: &self.method,
                path: &self.path,
                query: &self.query,
                headers: &headers,
                body: &self.body,
            };
            verifier.verify(&request, now_ms, Some(DEFAULT_MAX_SKEW))
        }

        fn set(&mut self, name: &str, value: &str) {
            for (n, v) in &mut self.headers {
                if *n == name {
                    *v = value.to_owned();
                }
            }
        }

        fn value(&self, name: &str) -> String {
            self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).expect("the header")
        }
    }

    fn authorization(signed: &str, signature: &str) -> String {
        format!("SDK-HMAC-SHA256 Access=vector-ak, SignedHeaders={signed}, Signature={signature}")
    }

    /// test-vectors §9.1 (published).
    fn vector_9_1() -> Parts {
        Parts {
            method: "POST".into(),
            path: ACTIVATE_PATH.into(),
            query: String::new(),
            headers: vec![
                ("content-type", "application/json".into()),
                ("host", "mkt.myhuaweicloud.com".into()),
                ("x-sdk-date", "20240317T144237Z".into()),
                ("x-stage", "RELEASE".into()),
                ("authorization", authorization("content-type;host;x-sdk-date;x-stage", SIG_9_1)),
            ],
            body: Vec::new(),
        }
    }

    /// test-vectors §9.2 (computed).
    fn vector_9_2() -> Parts {
        Parts {
            method: "GET".into(),
            path: ORDER_PATH.into(),
            query: ORDER_QUERY.into(),
            headers: vec![
                ("content-type", "application/json".into()),
                ("host", "mkt.myhuaweicloud.com".into()),
                ("x-sdk-date", "20240317T144237Z".into()),
                ("authorization", authorization("content-type;host;x-sdk-date", SIG_9_2)),
            ],
            body: Vec::new(),
        }
    }

    fn verifier() -> ApigVerifier {
        ApigVerifier::new("vector-ak", "123")
    }

    /// The canonical request of `parts` for `signed`, as text.
    fn canonical(parts: &Parts, signed: &[&str]) -> String {
        let headers = parts.header_map();
        let request = SignedRequest {
            method: &parts.method,
            path: &parts.path,
            query: &parts.query,
            headers: &headers,
            body: &parts.body,
        };
        let signed: Vec<String> = signed.iter().map(|s| (*s).to_owned()).collect();
        String::from_utf8(canonical_request(&request, &signed).expect("canonical")).expect("text")
    }

    #[test]
    fn published_vector_9_1_canonical_request_and_signature() {
        let parts = vector_9_1();
        let text = canonical(&parts, &["content-type", "host", "x-sdk-date", "x-stage"]);
        let expected = "POST\n/api/mkp-openapi-public/global/v1/license/activate/\n\ncontent-type:application/json\n\
                        host:mkt.myhuaweicloud.com\nx-sdk-date:20240317T144237Z\nx-stage:RELEASE\n\n\
                        content-type;host;x-sdk-date;x-stage\n\
                        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(text, expected);
        assert_eq!(
            hex::encode(Sha256::digest(text.as_bytes())),
            "9a33b07351104f6c775075faa7dc0db58ec18bc532feaa8fd0b8fcf7990b1a9e"
        );
        assert_eq!(
            string_to_sign(text.as_bytes(), "20240317T144237Z"),
            "SDK-HMAC-SHA256\n20240317T144237Z\n9a33b07351104f6c775075faa7dc0db58ec18bc532feaa8fd0b8fcf7990b1a9e"
        );
        assert_eq!(parts.verify(&verifier(), VECTOR_MS), Ok(()));
        // Upper-case hex is the same signature.
        let mut upper = parts.clone();
        upper.set("authorization", &authorization("content-type;host;x-sdk-date;x-stage", &SIG_9_1.to_uppercase()));
        assert_eq!(upper.verify(&verifier(), VECTOR_MS), Ok(()));
    }

    #[test]
    fn computed_vector_9_2_canonical_request_and_signature() {
        let parts = vector_9_2();
        let text = canonical(&parts, &["content-type", "host", "x-sdk-date"]);
        let expected = "GET\n/api/mkp-openapi-public/global/v1/order/query/\n\
                        orderId=MOCKPERIODYEARNEW&orderLineId=MOCKPERIODYEARNEW-000001\n\
                        content-type:application/json\nhost:mkt.myhuaweicloud.com\nx-sdk-date:20240317T144237Z\n\n\
                        content-type;host;x-sdk-date\n\
                        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(text, expected);
        assert_eq!(
            hex::encode(Sha256::digest(text.as_bytes())),
            "d282ce755ed8d7764e1fc7da9c334c7565a00eb22fcbb5c9a7a10c427267e4af"
        );
        assert_eq!(parts.verify(&verifier(), VECTOR_MS), Ok(()));
        // The query's order on the wire does not matter: it is sorted.
        let mut swapped = parts.clone();
        swapped.query = "orderLineId=MOCKPERIODYEARNEW-000001&orderId=MOCKPERIODYEARNEW".into();
        assert_eq!(swapped.verify(&verifier(), VECTOR_MS), Ok(()));
    }

    /// Every one-byte change of a signed part is refused.
    fn assert_one_byte_changes_refused(parts: &Parts) {
        let v = verifier();
        let mut changes: Vec<(&str, Parts)> = Vec::new();
        let mut p = parts.clone();
        p.method = p.method.replace('T', "X");
        changes.push(("method", p));
        let mut p = parts.clone();
        p.path = p.path.replace("global", "globaL");
        changes.push(("path", p));
        let mut p = parts.clone();
        p.path.push('x');
        changes.push(("path end", p));
        let mut p = parts.clone();
        p.query = if p.query.is_empty() { "a=b".into() } else { p.query.replace("000001", "000002") };
        changes.push(("query", p));
        let mut p = parts.clone();
        p.set("content-type", "application/jsoN");
        changes.push(("header value", p));
        let mut p = parts.clone();
        p.set("host", "mkt.myhuaweicloud.cn");
        changes.push(("host", p));
        let mut p = parts.clone();
        p.body = b" ".to_vec();
        changes.push(("body", p));
        let mut p = parts.clone();
        p.set("x-sdk-date", "20240317T144238Z");
        changes.push(("date", p));
        for (what, changed) in changes {
            assert_eq!(changed.verify(&v, VECTOR_MS), Err(ApigError::BadSignature), "{what}");
        }
        // A one-digit change of the signature, and the wrong SK.
        let mut p = parts.clone();
        let auth = p.value("authorization").replace("Signature=7", "Signature=8").replace("Signature=d", "Signature=e");
        p.set("authorization", &auth);
        assert_eq!(p.verify(&v, VECTOR_MS), Err(ApigError::BadSignature));
        assert_eq!(parts.verify(&ApigVerifier::new("vector-ak", "124"), VECTOR_MS), Err(ApigError::BadSignature));
        assert_eq!(parts.verify(&ApigVerifier::new("other-ak", "123"), VECTOR_MS), Err(ApigError::UnknownAccessKey));
        // Whitespace around a header value is not signed.
        let mut p = parts.clone();
        p.set("content-type", "  application/json ");
        assert_eq!(p.verify(&v, VECTOR_MS), Ok(()));
    }

    #[test]
    fn one_byte_changes_of_vector_9_1_are_refused() {
        assert_one_byte_changes_refused(&vector_9_1());
    }

    #[test]
    fn one_byte_changes_of_vector_9_2_are_refused() {
        assert_one_byte_changes_refused(&vector_9_2());
        let mut p = vector_9_2();
        p.query = ORDER_QUERY.replace("orderId", "orderid");
        assert_eq!(p.verify(&verifier(), VECTOR_MS), Err(ApigError::BadSignature));
    }

    #[test]
    fn date_window_both_ways() {
        let parts = vector_9_1();
        let v = verifier();
        let minute = 60_000;
        assert_eq!(parts.verify(&v, VECTOR_MS + 15 * minute), Ok(()));
        assert_eq!(parts.verify(&v, VECTOR_MS - 15 * minute), Ok(()));
        let late = parts.verify(&v, VECTOR_MS + 15 * minute + 1000);
        assert_eq!(late, Err(ApigError::DateOutOfWindow { skew_s: 901, max_s: 900 }));
        assert!(matches!(parts.verify(&v, VECTOR_MS - 16 * minute), Err(ApigError::DateOutOfWindow { .. })));
        let headers = parts.header_map();
        let request = SignedRequest { method: "POST", path: ACTIVATE_PATH, query: "", headers: &headers, body: b"" };
        assert_eq!(v.verify(&request, 0, None), Ok(()), "no window: any clock");
    }

    #[test]
    fn malformed_authorization_and_date() {
        let v = verifier();
        let mut p = vector_9_1();
        p.headers.retain(|(n, _)| *n != "authorization");
        assert_eq!(p.verify(&v, VECTOR_MS), Err(ApigError::MissingAuthorization));
        let cases = [
            ("HMAC-SHA256 Access=vector-ak, SignedHeaders=host, Signature=00", ApigError::WrongAlgorithm),
            ("SDK-HMAC-SHA256Access=vector-ak, SignedHeaders=host, Signature=00", ApigError::WrongAlgorithm),
            ("SDK-HMAC-SHA256 SignedHeaders=host, Signature=00", ApigError::MalformedAuthorization("Access")),
            ("SDK-HMAC-SHA256 Access=vector-ak, Signature=00", ApigError::MalformedAuthorization("SignedHeaders")),
            ("SDK-HMAC-SHA256 Access=vector-ak, SignedHeaders=host", ApigError::MalformedAuthorization("Signature")),
            (
                "SDK-HMAC-SHA256 Access=vector-ak, SignedHeaders=host;;x, Signature=00",
                ApigError::MalformedAuthorization("SignedHeaders"),
            ),
            (
                "SDK-HMAC-SHA256 Access=a, Access=b, SignedHeaders=host, Signature=00",
                ApigError::MalformedAuthorization("Access"),
            ),
            (
                "SDK-HMAC-SHA256 Access=vector-ak, SignedHeaders=content-type;host, Signature=00",
                ApigError::DateNotSigned,
            ),
            (
                "SDK-HMAC-SHA256 Access=vector-ak, SignedHeaders=host;x-sdk-date;x-missing, Signature=00",
                ApigError::SignedHeaderAbsent("x-missing".into()),
            ),
            ("SDK-HMAC-SHA256 Access=vector-ak, SignedHeaders=host;x-sdk-date, Signature=zz", ApigError::BadSignature),
        ];
        for (value, error) in cases {
            let mut p = vector_9_1();
            p.set("authorization", value);
            assert_eq!(p.verify(&v, VECTOR_MS), Err(error), "{value}");
        }
        let mut p = vector_9_1();
        p.set("x-sdk-date", "2024-03-17T14:42:37Z");
        assert_eq!(p.verify(&v, VECTOR_MS), Err(ApigError::MalformedDate));
        let parsed = parse_authorization(&authorization("Content-Type;HOST;x-sdk-date", SIG_9_1)).expect("parses");
        assert_eq!(parsed.signed_headers, ["content-type", "host", "x-sdk-date"]);
        assert!(!format!("{parsed:?}").contains(SIG_9_1), "Debug leaves the signature out");
        assert!(!format!("{:?}", verifier()).contains("123"), "Debug redacts the SK");
    }

    #[test]
    fn encoding_of_path_and_query() {
        assert_eq!(canonical_uri("/a%20b/c~d/"), "/a%20b/c~d/");
        assert_eq!(canonical_uri("/a b/%e4%b8%ad"), "/a%20b/%E4%B8%AD/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_query("b=2&a=&a=1&c"), "a=&a=1&b=2&c=");
        assert_eq!(canonical_query("k=%2a%7E+"), "k=%2A~%2B");
        assert_eq!(canonical_query(""), "");
    }

    #[test]
    fn unsigned_payload_replaces_the_body_hash() {
        let mut p = vector_9_1();
        p.headers.push(("x-sdk-content-sha256", "UNSIGNED-PAYLOAD".into()));
        let text = canonical(&p, &["host", "x-sdk-date"]);
        assert!(text.ends_with("\nhost;x-sdk-date\nUNSIGNED-PAYLOAD"), "{text}");
    }
}
