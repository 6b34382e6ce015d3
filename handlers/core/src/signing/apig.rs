//! Huawei API Gateway `SDK-HMAC-SHA256` (AK/SK) signing of marketplace OpenAPI calls (protocol §9.2,
//! test-vectors §9), and its verification for the harness's mock marketplace.
//!
//! ```text
//! CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n hex(SHA256(body))
//! StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(SHA256(CanonicalRequest))
//! Authorization: SDK-HMAC-SHA256 Access={AK}, SignedHeaders={h1;h2}, Signature={hex(HMAC-SHA256(SK, StringToSign))}
//! ```
//!
//! Encoding follows the official signers: each path segment and each query key and value is percent-encoded
//! keeping only RFC 3986 unreserved characters (`A-Z a-z 0-9 - _ . ~`, upper-case hex); the path always ends with
//! `/`; query keys are sorted and the values of a repeated key too; an empty value is written `k=`. Every header
//! present is signed, `Host` is added from the URL first.
//!
//! # How to use
//!
//! 1. Build the request ([`ApigRequest`]) with its final body and headers (for usage push, the `signature`, `ts`
//!    and `nonce` headers first, so they are signed too).
//! 2. Call [`ApigSigner::sign`] (or [`ApigSigner::sign_at`] with the clock); send the headers it leaves.
//!
//! ```
//! use koogallery_core::signing::apig::{ApigRequest, ApigSigner};
//! use koogallery_core::signing::keys::SecretKey;
//!
//! let signer = ApigSigner::new("my-ak", SecretKey::new("123"));
//! let mut req = ApigRequest::new("POST", "https://mkt.myhuaweicloud.com/api/mkp-openapi-public/global/v1/license/activate");
//! req.headers.push(("Content-Type".into(), "application/json".into()));
//! req.headers.push(("x-stage".into(), "RELEASE".into()));
//! signer.sign(&mut req, "20240317T144237Z");
//! assert_eq!(req.header("host"), Some("mkt.myhuaweicloud.com"));
//! assert_eq!(
//!     req.header("authorization"),
//!     Some("SDK-HMAC-SHA256 Access=my-ak, SignedHeaders=content-type;host;x-sdk-date;x-stage, \
//!           Signature=77595ad624b6e4e49990b8c4e84bf1c287457fca61069c4e60b9b6765b52053d")
//! );
//! ```

use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::signing::error::{AuthError, ct_eq, decode_hex_tag, hmac_sha256};
use crate::signing::keys::SecretKey;
use crate::signing::window::TimestampWindow;
use crate::wire::time::{format_sdk_date, parse_sdk_date};

/// The algorithm name in `Authorization` and the string to sign.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// The date header (`yyyyMMdd'T'HHmmss'Z'`, UTC).
pub const DATE_HEADER: &str = "X-Sdk-Date";
/// Header whose value `UNSIGNED-PAYLOAD` replaces the body hash.
pub const CONTENT_SHA256_HEADER: &str = "x-sdk-content-sha256";

/// RFC 3986 unreserved characters stay; everything else is `%XX`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// An HTTP request as the signer sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApigRequest {
    /// `GET`, `POST`, … (upper-cased when signing).
    pub method: String,
    /// Absolute URL (`https://host/path?query`); a path-only URL works when a `Host` header is given.
    pub url: String,
    /// Headers in order; names compare case-insensitively.
    pub headers: Vec<(String, String)>,
    /// Exact body bytes.
    pub body: Vec<u8>,
}

impl fmt::Debug for ApigRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ApigRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl ApigRequest {
    /// A request with no headers and an empty body.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self { method: method.into(), url: url.into(), headers: Vec::new(), body: Vec::new() }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn set_header(&mut self, name: &str, value: String) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value));
    }
}

/// The parts of a URL the signature needs.
struct UrlParts<'a> {
    authority: &'a str,
    path: &'a str,
    query: &'a str,
}

fn split_url(url: &str) -> UrlParts<'_> {
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    let (authority, rest) = match url.split_once("://") {
        Some((_, after)) => {
            let end = after.find(['/', '?']).unwrap_or(after.len());
            let (auth, rest) = after.split_at(end);
            (auth.rsplit_once('@').map_or(auth, |(_, host)| host), rest)
        }
        None => ("", url),
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    UrlParts { authority, path, query }
}

fn encode(bytes: &str) -> String {
    utf8_percent_encode(bytes, UNRESERVED).to_string()
}

fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

fn canonical_uri(path: &str) -> String {
    let decoded = decode(path);
    let mut out: String = decoded.split('/').map(encode).collect::<Vec<_>>().join("/");
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        params.entry(decode(k)).or_default().push(decode(v));
    }
    let mut out = Vec::new();
    for (k, mut values) in params {
        values.sort();
        for v in values {
            out.push(format!("{}={}", encode(&k), encode(&v)));
        }
    }
    out.join("&")
}

fn payload_hash(req: &ApigRequest) -> String {
    match req.header(CONTENT_SHA256_HEADER) {
        Some(v) if v.trim() == "UNSIGNED-PAYLOAD" => "UNSIGNED-PAYLOAD".to_owned(),
        _ => hex::encode(Sha256::digest(&req.body)),
    }
}

/// The canonical request for `signed_headers` (lower-case names, in the order given; the signer sorts them).
/// A signed header missing from the request contributes an empty value.
pub fn canonical_request(req: &ApigRequest, signed_headers: &[impl AsRef<str>]) -> String {
    let url = split_url(&req.url);
    let mut out = String::with_capacity(256);
    out.push_str(&req.method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(&canonical_uri(url.path));
    out.push('\n');
    out.push_str(&canonical_query(url.query));
    out.push('\n');
    for name in signed_headers {
        let name = name.as_ref();
        out.push_str(&name.to_ascii_lowercase());
        out.push(':');
        out.push_str(req.header(name).unwrap_or("").trim());
        out.push('\n');
    }
    out.push('\n');
    let names: Vec<String> = signed_headers.iter().map(|n| n.as_ref().to_ascii_lowercase()).collect();
    out.push_str(&names.join(";"));
    out.push('\n');
    out.push_str(&payload_hash(req));
    out
}

/// `SDK-HMAC-SHA256\n{sdk_date}\n{hex(SHA256(canonical))}`.
pub fn string_to_sign(canonical_request: &str, sdk_date: &str) -> String {
    format!("{ALGORITHM}\n{sdk_date}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())))
}

fn signature_tag(sk: &SecretKey, canonical_request: &str, sdk_date: &str) -> [u8; 32] {
    hmac_sha256(sk.as_bytes(), &[string_to_sign(canonical_request, sdk_date).as_bytes()])
}

/// Signs marketplace OpenAPI requests with a Huawei Cloud AK/SK.
#[derive(Clone)]
pub struct ApigSigner {
    ak: String,
    sk: SecretKey,
}

impl fmt::Debug for ApigSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApigSigner").field("ak", &self.ak).field("sk", &self.sk).finish()
    }
}

impl ApigSigner {
    /// A signer for this AK/SK pair.
    pub fn new(ak: impl Into<String>, sk: SecretKey) -> Self {
        Self { ak: ak.into(), sk }
    }

    /// The access key id (not secret).
    pub fn ak(&self) -> &str {
        &self.ak
    }

    /// Adds `Host` (from the URL) and `X-Sdk-Date` (`sdk_date`) when absent, then sets `Authorization` over every
    /// other header. An existing `X-Sdk-Date` is kept and used.
    pub fn sign(&self, req: &mut ApigRequest, sdk_date: &str) {
        if req.header("host").is_none() {
            let authority = split_url(&req.url).authority.to_owned();
            if !authority.is_empty() {
                req.headers.push(("Host".to_owned(), authority));
            }
        }
        if req.header(DATE_HEADER).is_none() {
            req.headers.push((DATE_HEADER.to_owned(), sdk_date.to_owned()));
        }
        let date = req.header(DATE_HEADER).unwrap_or(sdk_date).trim().to_owned();
        let mut signed: Vec<String> =
            req.headers.iter().map(|(n, _)| n.to_ascii_lowercase()).filter(|n| n != "authorization").collect();
        signed.sort();
        signed.dedup();
        let canonical = canonical_request(req, &signed);
        let signature = hex::encode(signature_tag(&self.sk, &canonical, &date));
        let value =
            format!("{ALGORITHM} Access={}, SignedHeaders={}, Signature={signature}", self.ak, signed.join(";"));
        req.set_header("Authorization", value);
    }

    /// [`Self::sign`] with `X-Sdk-Date` taken from a ms clock.
    pub fn sign_at(&self, req: &mut ApigRequest, now_ms: u64) {
        self.sign(req, &format_sdk_date(now_ms));
    }
}

/// The fields of an `Authorization: SDK-HMAC-SHA256 …` header.
struct AuthorizationParts<'a> {
    access: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<AuthorizationParts<'_>> {
    let rest = value.trim().strip_prefix(ALGORITHM)?.trim_start();
    let (mut access, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.split_once('=')?;
        match k.trim() {
            "Access" => access = Some(v.trim()),
            "SignedHeaders" => signed = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let signed_headers: Vec<&str> = signed?.split(';').filter(|h| !h.is_empty()).collect();
    Some(AuthorizationParts { access: access.filter(|a| !a.is_empty())?, signed_headers, signature: signature? })
}

/// Verifies an API-Gateway-signed request (the mock marketplace's side); returns the AK.
///
/// Checks, in order: `Authorization` present and well-formed, `X-Sdk-Date` present, well-formed, signed and
/// inside `window`, the AK known to `lookup_sk`, every signed header present, then the signature in constant time.
///
/// # Errors
/// [`AuthError::MissingSignature`], [`AuthError::MalformedHeader`] (`authorization`, `x-sdk-date`),
/// [`AuthError::MissingHeader`] (`x-sdk-date`), [`AuthError::TimestampTooOld`], [`AuthError::TimestampTooNew`],
/// [`AuthError::UnknownAccessKey`], [`AuthError::BadSignature`].
pub fn verify(
    req: &ApigRequest,
    lookup_sk: impl Fn(&str) -> Option<SecretKey>,
    now_ms: u64,
    window: TimestampWindow,
) -> Result<String, AuthError> {
    let authorization =
        req.header("authorization").filter(|v| !v.trim().is_empty()).ok_or(AuthError::MissingSignature)?;
    let parts = parse_authorization(authorization).ok_or(AuthError::MalformedHeader("authorization"))?;
    let date = req
        .header(DATE_HEADER)
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .ok_or(AuthError::MissingHeader("x-sdk-date"))?;
    let date_ms = parse_sdk_date(date).map_err(|_| AuthError::MalformedHeader("x-sdk-date"))?;
    if !parts.signed_headers.iter().any(|h| h.eq_ignore_ascii_case("x-sdk-date")) {
        return Err(AuthError::MalformedHeader("authorization"));
    }
    window.check_ms(date_ms, now_ms)?;
    let sk = lookup_sk(parts.access).ok_or(AuthError::UnknownAccessKey)?;
    if parts.signed_headers.iter().any(|h| req.header(h).is_none()) {
        return Err(AuthError::BadSignature);
    }
    let received = decode_hex_tag(parts.signature).ok_or(AuthError::BadSignature)?;
    let canonical = canonical_request(req, &parts.signed_headers);
    if ct_eq(&signature_tag(&sk, &canonical, date), &received) {
        Ok(parts.access.to_owned())
    } else {
        Err(AuthError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_rules() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/a b/c%2Fd"), "/a%20b/c/d/");
        assert_eq!(canonical_uri("/x~y_z.-"), "/x~y_z.-/");
        assert_eq!(canonical_query("b=2&a=&a=1&c"), "a=&a=1&b=2&c=");
        assert_eq!(canonical_query("k=%E5%BC%80+x"), "k=%E5%BC%80%2Bx");
        let url = split_url("https://user@h.example:8443/p?q=1#frag");
        assert_eq!((url.authority, url.path, url.query), ("h.example:8443", "/p", "q=1"));
    }
}
