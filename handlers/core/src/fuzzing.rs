//! Entry points for the fuzz targets in `fuzz/` (see there). Not part of the public API.
//!
//! Each function takes the fuzzer's bytes, drives one entry point of the crate and checks an *oracle* with
//! `assert!`: a panic here is a finding, never a normal outcome. Round trips are the main oracle (sign → verify,
//! encrypt → decrypt, parse → serialise → parse), and verifiers are also fed bodies signed right here, so the fuzzer
//! gets past the signature check into the parsers behind it.
//!
//! 1. A fuzz target is one line: `fuzz_target!(|data: &[u8]| { let _ = fuzzing::v2_verify(data); });`.
//! 2. `tests/fuzz_seeds.rs` runs every seed of `fuzz/corpus/<name>/` through the function `<name>` here; a seed whose
//!    file name starts with `accept` must return `true`, one starting with `reject` must return `false`.
//! 3. What `true` means is documented on each function ("the input got past validation").
//!
//! Inputs are text-friendly so seeds can be written by hand: header fields are separated by `\n` and the last field
//! (usually a body) is the rest of the input, newlines included. Bytes that are not UTF-8 are replaced (`U+FFFD`)
//! wherever an API takes `&str`, as an HTTP layer would.
//!
//! ```
//! use koogallery_core::fuzzing;
//!
//! // now \n signature \n timestamp \n nonce \n body  (test-vectors §6.1)
//! let seed = b"1680508066618\nA3086BF160E99C0F507576161BBE4911A01C1179403F02133EB263559D4530E8\n1680508066618\n\
//! 50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA\n\
//! {\"activity\":\"newInstance\",\"businessId\":\"87b94795-0603-4e24-8ae5-69420d60e3c8\",\"orderId\":\"CS2211181819B4LVS\",\"orderLineId\":\"CS2211181819B4LVS-000001\",\"testFlag\":\"1\"}";
//! assert!(fuzzing::v2_verify(seed));
//! assert!(!fuzzing::v2_verify(b"garbage"));
//! ```

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::aes_cred::{AesBits, CredentialCipher, decrypt_contact};
use crate::agents::top_level_usage;
use crate::agents_jwt::{self, JwtError, JwtVerifier};
use crate::apig::{self, ApigRequest, ApigSigner};
use crate::auth::AuthError;
use crate::auth_token_v1::V1AuthToken;
use crate::body_sign;
use crate::canonical_json::{self, signing_candidates};
use crate::env::{FixedClock, NoBackend, OsRandom};
use crate::http::{self, Inbound};
use crate::keys::{KeyRing, SecretKey};
use crate::kit::{KitSync, parse_kit_request};
use crate::license::{ActivateResponse, HeartbeatResponse, parse_license_callback};
use crate::marketplace::Marketplace;
use crate::order::QueryOrderResponse;
use crate::produce::{Ctx, Handled, ProduceConfig, handle};
use crate::sign_kit::{KitAuth, KitVerifier};
use crate::sign_usage;
use crate::sign_v2::{V2Auth, V2Verifier};
use crate::store::MemoryStore;
use crate::usage::{UsagePushRequest, UsagePushResponse};
use crate::v1::parse_v1_request;
use crate::v2::parse_v2_request;
use crate::window::TimestampWindow;

/// test-vectors §1 `AK`: the basic-interface key (and the kit key of §7).
const AK: &str = "1234567890abcdef1234567890abcdef";
/// test-vectors §1 `AK2`: a second key, to check rotation (verify against every key of the ring).
const AK2: &str = "71d8a0d7-508d-4017-8563-60f9099eea71";
/// test-vectors §6.1 / §7 timestamp, the default clock.
const T0: u64 = 1_680_508_066_618;
/// test-vectors §6.1 nonce.
const NONCE0: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";
/// test-vectors §8 `ts`.
const T_USAGE: u64 = 1_709_690_865_879;
/// test-vectors §9.1: SK, the date and its ms value.
const APIG_SK: &str = "123";
const APIG_AK: &str = "my-ak";
const APIG_DATE: &str = "20240317T144237Z";
const APIG_DATE_MS: u64 = 1_710_686_557_000;
/// test-vectors §10.
const JWT_AK: &str = "demo-ak-0001";
const JWT_SK: &str = "demo-sk-0001";
/// V1 `timeStamp` used when a fuzzed parameter list has none (test-vectors §4.1).
const V1_STAMP: &str = "20200727073711903";
/// Production path used by the `produce` target.
const PRODUCE_PATH: &str = "/saasproduce";
/// Separates requests in a `produce` input.
const REQUEST_SEPARATOR: &[u8] = b"\n%%\n";

// ---------------------------------------------------------------------------------------------------------------
// Input helpers

/// Splits `data` at the first `N - 1` newlines; missing fields are empty and the last field is the rest.
fn split<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut rest = data;
    for slot in out.iter_mut().take(N.saturating_sub(1)) {
        let (field, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let (field, tail) = rest.split_at(i);
                (field, tail.get(1..).unwrap_or_default())
            }
            None => (rest, &[][..]),
        };
        *slot = field;
        rest = tail;
    }
    if let Some(last) = out.last_mut() {
        *last = rest;
    }
    out
}

/// The bytes as text, invalid UTF-8 replaced.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// A decimal clock value, or `default` when the field is not one.
fn clock(field: &[u8], default: u64) -> u64 {
    std::str::from_utf8(field).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(default)
}

/// `Some(field)` unless the field is empty: an empty header line stands for an absent header.
fn present(field: &str) -> Option<&str> {
    (!field.is_empty()).then_some(field)
}

fn ring(keys: &[&str]) -> KeyRing {
    let keys: Vec<SecretKey> = keys.iter().map(|k| SecretKey::new(*k)).collect();
    KeyRing::new(keys).unwrap_or_else(|_| KeyRing::single(SecretKey::new(AK)))
}

/// A copy of a hex signature with its last digit changed (still hex, same length).
fn tamper_hex(sig: &str) -> String {
    let mut out = sig.to_owned();
    let last = out.pop().map_or('0', |c| if c == '0' { '1' } else { '0' });
    out.push(last);
    out
}

/// `raw` with every top-level `null` member removed: what every canonical candidate of §4.1 describes.
fn without_top_level_nulls(raw: &Value) -> Value {
    match raw {
        Value::Object(map) => {
            Value::Object(map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        other => other.clone(),
    }
}

/// Whether serde_json reads every float of `v` back exactly from its shortest text, in Rust's and in Java's notation.
///
/// Without serde_json's `float_roundtrip` feature its parser can be 1 ULP off: `1.0E50` (Java's spelling of `1e50`)
/// reads as `9.999999999999999E49` and `1.0484047473709551E27` as `1.0484047473709553E27`, although `str::parse` gets
/// both right, so a value written and read again can differ in its last bit. Inputs holding such numbers are kept out of the equality oracles, which test this crate's logic, not that
/// limitation; they still run through everything for panics.
fn floats_read_back(v: &Value) -> bool {
    match v {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => n.as_f64().is_none_or(|f| {
            let reads = |text: &str| serde_json::from_str::<f64>(text).is_ok_and(|g| g.to_bits() == f.to_bits());
            let java = canonical_json::jackson_compact(v);
            reads(&format!("{f:e}"))
                && reads(&serde_json::to_string(&f).unwrap_or_default())
                && reads(&String::from_utf8_lossy(&java))
        }),
        Value::Array(items) => items.iter().all(floats_read_back),
        Value::Object(map) => map.values().all(floats_read_back),
        // The lenient readers decode strings holding JSON (`"data":"{\"a\":1.5}"`), so look inside those too.
        Value::String(text) => serde_json::from_str::<Value>(text).map_or(true, |inner| floats_read_back(&inner)),
        _ => true,
    }
}

/// [`floats_read_back`] for JSON text; `true` when it is not JSON (nothing to compare then).
fn json_floats_read_back(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes).map_or(true, |v| floats_read_back(&v))
}

/// serde round trip: `bytes` → `T` → JSON → `T` must give the same value; returns whether `bytes` parsed.
fn serde_round_trip<T>(bytes: &[u8]) -> bool
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let Ok(first) = serde_json::from_slice::<T>(bytes) else {
        return false;
    };
    let written = serde_json::to_vec(&first);
    assert!(written.is_ok(), "a parsed {} cannot be serialised", std::any::type_name::<T>());
    let written = written.unwrap_or_default();
    let second = serde_json::from_slice::<T>(&written);
    // Judge the floats on the parsed value itself: the input may not even be a valid `Value` (an ignored field can
    // hold invalid UTF-8), and numbers can hide in strings holding JSON.
    if !serde_json::to_value(&first).is_ok_and(|v| floats_read_back(&v)) {
        return true;
    }
    assert!(
        second.as_ref().is_ok_and(|s| *s == first),
        "{} does not round-trip:\n  first  = {first:?}\n  json   = {}\n  second = {second:?}",
        std::any::type_name::<T>(),
        String::from_utf8_lossy(&written),
    );
    true
}

// ---------------------------------------------------------------------------------------------------------------
// Signature verifiers

/// V2 verifier on fuzzed parameters. Input: `now \n signature \n timestamp \n nonce \n body` (an empty line is an
/// absent parameter; `now` defaults to test-vectors §6.1's timestamp). Returns whether the request verified.
///
/// Oracles: never panics; an accepted request has its timestamp inside the window and its nonce echoed.
pub fn v2_verify(data: &[u8]) -> bool {
    let [now, signature, timestamp, nonce, body] = split::<5>(data);
    let now = clock(now, T0);
    let (signature, timestamp, nonce) = (text(signature), text(timestamp), text(nonce));
    let auth = V2Auth { signature: present(&signature), timestamp: present(&timestamp), nonce: present(&nonce) };
    let verifier = V2Verifier::new(ring(&[AK2, AK]), TimestampWindow::default());
    match verifier.verify(auth, body, now) {
        Ok(v) => {
            assert_eq!(v.nonce, nonce, "the verified nonce is not the one received");
            assert!(v.timestamp_ms.abs_diff(now) <= TimestampWindow::default().window_ms, "accepted a stale request");
            true
        }
        Err(_) => false,
    }
}

/// V2 sign → verify on a fuzzed body, then the V2 parser on it. Input: the body. Returns whether the body parsed
/// as a V2 request.
///
/// Oracles: a signature over the raw body, over the demo's canonical form and over every §4.1 candidate verifies
/// (under a rotated key ring) exactly when the body is a JSON object; a changed signature or another key is refused.
pub fn v2_signed(body: &[u8]) -> bool {
    let ts = T0.to_string();
    let signer = V2Verifier::new(ring(&[AK]), TimestampWindow::default());
    let verifier = V2Verifier::new(ring(&[AK2, AK]), TimestampWindow::default());
    let verify = |sig: &str| {
        verifier.verify(V2Auth { signature: Some(sig), timestamp: Some(&ts), nonce: Some(NONCE0) }, body, T0)
    };
    let raw_sig = signer.sign(body, &ts, NONCE0);
    let candidates = signing_candidates(body);
    match &candidates {
        Err(_) => {
            assert_eq!(verify(&raw_sig), Err(AuthError::NotJsonObject), "a non-object body was not refused as such");
            assert!(signer.sign_canonical(body, &ts, NONCE0).is_err(), "sign_canonical accepted a non-object body");
        }
        Ok(candidates) => {
            assert!(verify(&raw_sig).is_ok(), "a signature over the raw body does not verify");
            assert!(verify(&raw_sig.to_ascii_lowercase()).is_ok(), "a lower-case signature does not verify");
            let canonical = signer.sign_canonical(body, &ts, NONCE0);
            assert!(canonical.as_deref().is_ok_and(|s| verify(s).is_ok()), "sign_canonical does not verify");
            for c in candidates {
                assert!(verify(&signer.sign(c, &ts, NONCE0)).is_ok(), "a §4.1 candidate's signature does not verify");
            }
            assert_eq!(verify(&tamper_hex(&raw_sig)), Err(AuthError::BadSignature), "a changed signature verified");
            let other = V2Verifier::new(ring(&["another key"]), TimestampWindow::default()).sign(body, &ts, NONCE0);
            assert_eq!(verify(&other), Err(AuthError::BadSignature), "another key's signature verified");
        }
    }
    parse_v2(body)
}

/// Kit `x-sign` verifier on fuzzed headers. Input: `now \n x-sign \n x-timestamp \n x-nonce \n body`. Returns whether
/// the request verified.
///
/// Oracles: never panics; an accepted request is fresh and echoes its nonce.
pub fn kit_verify(data: &[u8]) -> bool {
    let [now, sign, timestamp, nonce, body] = split::<5>(data);
    let now = clock(now, T0);
    let (sign, timestamp, nonce) = (text(sign), text(timestamp), text(nonce));
    let auth = KitAuth { sign: present(&sign), timestamp: present(&timestamp), nonce: present(&nonce) };
    let verifier = KitVerifier::new(ring(&[AK2, AK]), TimestampWindow::default());
    match verifier.verify(auth, body, now) {
        Ok(v) => {
            assert_eq!(v.nonce, nonce, "the verified nonce is not the one received");
            assert!(v.timestamp_ms.abs_diff(now) <= TimestampWindow::default().window_ms, "accepted a stale request");
            true
        }
        Err(_) => false,
    }
}

/// Kit sign → verify on a fuzzed body, then every kit sync parser on it. Input: the body. Returns whether some sync
/// parsed it.
///
/// Oracles: as [`v2_signed`], for `x-sign`; then as [`parse_kit`].
pub fn kit_signed(body: &[u8]) -> bool {
    let ts = T0.to_string();
    let signer = KitVerifier::new(ring(&[AK]), TimestampWindow::default());
    let verifier = KitVerifier::new(ring(&[AK2, AK]), TimestampWindow::default());
    let verify =
        |sig: &str| verifier.verify(KitAuth { sign: Some(sig), timestamp: Some(&ts), nonce: Some(NONCE0) }, body, T0);
    let raw_sig = signer.sign(body, &ts, NONCE0);
    match signing_candidates(body) {
        Err(_) => assert_eq!(verify(&raw_sig), Err(AuthError::NotJsonObject), "a non-object body was not refused"),
        Ok(candidates) => {
            assert!(verify(&raw_sig).is_ok(), "an x-sign over the raw body does not verify");
            assert!(verify(&raw_sig.to_ascii_uppercase()).is_ok(), "an upper-case x-sign does not verify");
            let canonical = signer.sign_canonical(body, &ts, NONCE0);
            assert!(canonical.as_deref().is_ok_and(|s| verify(s).is_ok()), "sign_canonical does not verify");
            for c in &candidates {
                assert!(verify(&signer.sign(c, &ts, NONCE0)).is_ok(), "a candidate's x-sign does not verify");
            }
            assert_eq!(verify(&tamper_hex(&raw_sig)), Err(AuthError::BadSignature), "a changed x-sign verified");
        }
    }
    parse_kit(body)
}

/// V1 `authToken` verifier on a fuzzed raw query string (also the kit V1 header form, with the query's own
/// `authToken` as the header). Input: the query. Returns whether [`V1AuthToken::verify`] accepted it.
///
/// Oracles: never panics; a token is only ever accepted together with a `timeStamp`.
pub fn v1_verify(data: &[u8]) -> bool {
    let query = text(data);
    let v1 = V1AuthToken::new(ring(&[AK2, AK]));
    let params = http::parse_query(&query);
    let token = params.iter().find(|(k, _)| k == "authToken").map_or("", |(_, v)| v.as_str());
    let _ = v1.verify_params(&params, token);
    let ok = v1.verify(&query).is_ok();
    if ok {
        assert!(params.iter().any(|(k, v)| k == "timeStamp" && !v.is_empty()), "accepted without a timeStamp");
    }
    ok
}

/// V1 sign → verify on fuzzed parameters, then the V1 parser. Input: one `name=value` per line (decoded text; a
/// `timeStamp` is added first when none is given). Returns whether the signed request parsed as a V1 request.
///
/// Oracles: `signed_query` → `verify` accepts (or names the empty `timeStamp`); percent-encoding round-trips
/// (`http::parse_query` of the signed query gives back the parameters); `verify_params` accepts the same token.
pub fn v1_signed(data: &[u8]) -> bool {
    let input = text(data);
    let mut params: Vec<(String, String)> = input
        .split('\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    if !params.iter().any(|(k, _)| k == "timeStamp") {
        params.insert(0, ("timeStamp".to_owned(), V1_STAMP.to_owned()));
    }
    let time_stamp = params.iter().find(|(k, _)| k == "timeStamp").map_or("", |(_, v)| v.as_str()).to_owned();
    let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let signer = V1AuthToken::new(ring(&[AK]));
    let verifier = V1AuthToken::new(ring(&[AK2, AK]));
    let token = signer.sign(&refs, &time_stamp);
    let query = signer.signed_query(&refs, &time_stamp);
    let verified = verifier.verify(&query);
    if time_stamp.is_empty() {
        assert_eq!(verified, Err(AuthError::MissingTimestamp), "an empty timeStamp was not reported");
    } else {
        assert_eq!(verified, Ok(()), "signed_query does not verify: {query}");
    }
    let decoded = http::parse_query(&query);
    let mut expected: Vec<(String, String)> = params.iter().filter(|(k, _)| k != "authToken").cloned().collect();
    expected.push(("authToken".to_owned(), token.clone()));
    assert_eq!(decoded, expected, "percent-encoding does not round-trip through http::parse_query");
    if !time_stamp.is_empty() {
        let body_params: Vec<(String, String)> = decoded.iter().filter(|(k, _)| k != "authToken").cloned().collect();
        assert_eq!(verifier.verify_params(&body_params, &token), Ok(()), "verify_params refuses a signed token");
    }
    verified.is_ok() && parse_v1_request(&decoded).is_ok()
}

/// `Body-Sign` verifier on a fuzzed header, and header_value → verify on a fuzzed body. Input: `header \n body`.
/// Returns whether the fuzzed header verified.
///
/// Oracles: our own header over any body verifies under a ring holding the key; a changed body or a ring without the
/// key is refused.
pub fn body_sign(data: &[u8]) -> bool {
    let [header, body] = split::<2>(data);
    let keys = ring(&[AK2, AK]);
    let accepted = body_sign::verify(&text(header), body, &keys).is_ok();
    let own = body_sign::header_value(&SecretKey::new(AK), body);
    assert_eq!(body_sign::verify(&own, body, &keys), Ok(()), "our own Body-Sign does not verify");
    let mut changed = body.to_vec();
    changed.push(b' ');
    assert_eq!(body_sign::verify(&own, &changed, &keys), Err(AuthError::BadSignature), "a changed body verified");
    assert_eq!(body_sign::verify(&own, body, &ring(&[AK2])), Err(AuthError::BadSignature), "the wrong key verified");
    accepted
}

/// Usage-push `signature` verifier on fuzzed headers, and signature → verify on a fuzzed nonce and body. Input:
/// `now \n ts \n nonce \n signature \n body`. Returns whether the fuzzed headers verified.
///
/// Oracles: our own signature verifies with a fresh `ts`; a changed body is refused.
pub fn usage_sign(data: &[u8]) -> bool {
    let [now, ts, nonce, signature, body] = split::<5>(data);
    let now = clock(now, T_USAGE);
    let (ts, nonce, signature) = (text(ts), text(nonce), text(signature));
    let keys = ring(&[AK2, AK]);
    let window = TimestampWindow::default();
    let accepted = sign_usage::verify(&keys, &ts, &nonce, &signature, body, now, window);
    if let Ok(ts_ms) = accepted {
        assert!(ts_ms.abs_diff(now) <= window.window_ms, "accepted a stale usage push");
    }
    let nonce = if nonce.is_empty() { Cow::Borrowed("n") } else { nonce };
    let own_ts = T_USAGE.to_string();
    let own = sign_usage::signature(&SecretKey::new(AK), &own_ts, &nonce, body);
    let check = |b: &[u8]| sign_usage::verify(&keys, &own_ts, &nonce, &own, b, T_USAGE, window);
    assert_eq!(check(body), Ok(T_USAGE), "our own usage signature does not verify");
    let mut changed = body.to_vec();
    changed.push(b'x');
    assert_eq!(check(&changed), Err(AuthError::BadSignature), "a changed usage body verified");
    accepted.is_ok()
}

/// Agents-gateway JWT verifier on a fuzzed `Authorization` header, and sign → verify on a fuzzed AK. Input:
/// `now \n authorization \n ak`. Returns whether the fuzzed header verified (under test-vectors §10's AK/SK).
///
/// Oracles: our own token verifies (with and without `Bearer `) and gives back the AK and times; it expires after
/// `exp` plus the skew; another SK is refused.
pub fn jwt(data: &[u8]) -> bool {
    let [now, header, ak] = split::<3>(data);
    let now = clock(now, T_USAGE);
    let verifier = JwtVerifier::new(vec![(JWT_AK.to_owned(), SecretKey::new(JWT_SK))]);
    let accepted = verifier.verify(&text(header), now);
    if let Ok(claims) = &accepted {
        assert_eq!(claims.api_key, JWT_AK, "accepted a token for another AK");
    }

    let ak = text(ak).into_owned();
    let sk = SecretKey::new(JWT_SK);
    let exp = T_USAGE + agents_jwt::DEFAULT_LIFETIME_MS;
    let token = agents_jwt::sign(&ak, &sk, T_USAGE, exp);
    let own = JwtVerifier::new(vec![(ak.clone(), sk)]);
    for header in [token.clone(), format!("Bearer {token}"), format!("bearer\t{token} ")] {
        let claims = own.verify(&header, T_USAGE);
        assert!(
            claims.as_ref().is_ok_and(|c| c.api_key == ak && c.exp_ms == Some(exp) && c.timestamp_ms == Some(T_USAGE)),
            "our own token does not verify to its claims: {claims:?}"
        );
    }
    let late = exp + agents_jwt::DEFAULT_SKEW_MS + 1;
    assert_eq!(own.verify(&token, late), Err(JwtError::Expired), "an expired token verified");
    let wrong = JwtVerifier::new(vec![(ak, SecretKey::new("demo-sk-0002"))]);
    assert_eq!(wrong.verify(&token, T_USAGE), Err(JwtError::BadSignature), "another SK verified");
    accepted.is_ok()
}

/// RFC 7230 `tchar`: what an HTTP header name may contain.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Percent-encodes every byte of `s` except `/` (lower-case hex), the most verbose spelling of the same text.
fn encode_all(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if keep_slash && b == b'/' {
            out.push('/');
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// API Gateway verifier and canonicaliser. Input: `now \n method \n path \n query \n header lines (Name: value) \n
/// empty line \n body`. Returns whether the request as given (its own `Authorization` and `X-Sdk-Date`, under
/// test-vectors §9.1's SK) verified.
///
/// Oracles, after stripping `Authorization` and `X-Sdk-Date` and signing: the request verifies; it still verifies
/// with header names in another case, with its path and query re-encoded byte by byte (the canonical request
/// depends on decoded text only), and the canonical request is the same; a changed body is refused unless the
/// payload is declared unsigned.
pub fn apig(data: &[u8]) -> bool {
    let [now, method, path, query, rest] = split::<5>(data);
    let now = clock(now, APIG_DATE_MS);
    let method: String = text(method).chars().filter(|c| is_tchar(*c)).collect();
    let method = if method.is_empty() { "GET".to_owned() } else { method };
    let path: String = text(path).chars().filter(|c| !matches!(c, '?' | '#')).collect();
    let path = path.trim_start_matches('/').to_owned();
    let query: String = text(query).chars().filter(|c| *c != '#').collect();
    let rest = text(rest);
    let (header_block, body) = rest.split_once("\n\n").unwrap_or((&rest, ""));
    let headers: Vec<(String, String)> = header_block
        .split('\n')
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            let name: String = name.chars().filter(|c| is_tchar(*c)).collect();
            (!name.is_empty()).then(|| (name, value.to_owned()))
        })
        .collect();
    let url = |p: &str, q: &str| {
        if q.is_empty() { format!("https://mkt.example.com/{p}") } else { format!("https://mkt.example.com/{p}?{q}") }
    };
    let lookup = |ak: &str| (ak == APIG_AK).then(|| SecretKey::new(APIG_SK));
    let window = TimestampWindow::default();

    let given =
        ApigRequest { method: method.clone(), url: url(&path, &query), headers, body: body.as_bytes().to_vec() };
    let accepted = apig::verify(&given, lookup, now, window).is_ok();

    let mut req = given;
    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization") && !n.eq_ignore_ascii_case(apig::DATE_HEADER));
    ApigSigner::new(APIG_AK, SecretKey::new(APIG_SK)).sign(&mut req, APIG_DATE);
    let verify = |r: &ApigRequest| apig::verify(r, lookup, APIG_DATE_MS, window);
    assert_eq!(verify(&req), Ok(APIG_AK.to_owned()), "a signed request does not verify: {req:?}");

    let mut recased = req.clone();
    for (name, _) in &mut recased.headers {
        *name = name.to_ascii_uppercase();
    }
    assert_eq!(verify(&recased), Ok(APIG_AK.to_owned()), "header-name case changed the signature");

    let decoded_path = decode(&path);
    let requery: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            format!("{}={}", encode_all(&decode(k), false), encode_all(&decode(v), false))
        })
        .collect();
    let reencoded = ApigRequest { url: url(&encode_all(&decoded_path, true), &requery.join("&")), ..req.clone() };
    let signed: Vec<String> =
        req.headers.iter().map(|(n, _)| n.to_ascii_lowercase()).filter(|n| n != "authorization").collect();
    assert_eq!(
        apig::canonical_request(&req, &signed),
        apig::canonical_request(&reencoded, &signed),
        "the canonical request depends on how the URL is percent-encoded"
    );
    assert_eq!(verify(&reencoded), Ok(APIG_AK.to_owned()), "a re-encoded URL does not verify");

    let unsigned_payload = req.header(apig::CONTENT_SHA256_HEADER).is_some_and(|v| v.trim() == "UNSIGNED-PAYLOAD");
    let mut changed = req;
    changed.body.push(b'x');
    if !unsigned_payload {
        assert_eq!(verify(&changed), Err(AuthError::BadSignature), "a changed body verified");
    }
    accepted
}

// ---------------------------------------------------------------------------------------------------------------
// Request parsers

/// Checks that a parser reads every §4.1 signing candidate of `body` as it reads `body` itself: the verifier accepts
/// a signature over any candidate, so the parser must not care which one was signed.
fn candidates_parse_alike<T: PartialEq + std::fmt::Debug>(body: &[u8], parse: impl Fn(&[u8]) -> T, what: &str) {
    let Ok(candidates) = signing_candidates(body) else {
        return;
    };
    let first = parse(body);
    if !json_floats_read_back(body) {
        return;
    }
    for c in candidates.iter().skip(1) {
        let other = parse(c);
        assert!(
            other == first,
            "{what} reads a signing candidate differently from the body:\n  body      = {}\n  candidate = {}\n  \
             body parse      = {first:?}\n  candidate parse = {other:?}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(c),
        );
    }
}

/// The V2 body parser. Input: the body. Returns whether it parsed.
///
/// Oracles: never panics; every signing candidate parses to the same result.
pub fn parse_v2(body: &[u8]) -> bool {
    candidates_parse_alike(body, parse_v2_request, "parse_v2_request");
    parse_v2_request(body).is_ok()
}

/// The V1 parameter parser on a fuzzed raw query string (form-decoded by `http::parse_query`). Returns whether it
/// parsed.
///
/// Oracles: never panics; the parameters' order does not matter (duplicates are refused either way).
pub fn parse_v1(data: &[u8]) -> bool {
    let params = http::parse_query(&text(data));
    let result = parse_v1_request(&params);
    let reversed: Vec<(String, String)> = params.iter().rev().cloned().collect();
    assert_eq!(parse_v1_request(&reversed), result, "parameter order changes the V1 parse");
    result.is_ok()
}

/// Every kit sync parser on one body. Returns whether some sync parsed it.
///
/// Oracles: never panics; every signing candidate parses to the same result; a parsed request reports its sync.
pub fn parse_kit(body: &[u8]) -> bool {
    let mut any = false;
    for sync in KitSync::ALL {
        candidates_parse_alike(body, |b| parse_kit_request(sync, b), sync.as_str());
        if let Ok(request) = parse_kit_request(sync, body) {
            assert_eq!(request.sync(), sync, "parsed as another sync");
            any = true;
        }
    }
    any
}

/// The query-order answer (§9.3). Returns whether it parsed. Oracle: parse → serialise → parse is the identity.
pub fn parse_order(body: &[u8]) -> bool {
    serde_round_trip::<QueryOrderResponse>(body)
}

/// The usage-push body and answer (§9.4). Returns whether the body parsed as a usage push.
///
/// Oracles: parse → serialise → parse is the identity for both types; the sorted form we would sign and send parses
/// to the same batch, and validation gives the same verdict on it.
pub fn parse_usage(body: &[u8]) -> bool {
    let _ = serde_round_trip::<UsagePushResponse>(body);
    if !serde_round_trip::<UsagePushRequest>(body) {
        return false;
    }
    let Ok(batch) = serde_json::from_slice::<UsagePushRequest>(body) else {
        return false;
    };
    let value = serde_json::to_value(&batch).unwrap_or(Value::Null);
    let sent = canonical_json::sorted_compact(&value);
    let reread = serde_json::from_slice::<UsagePushRequest>(&sent);
    assert!(reread.as_ref().is_ok_and(|r| *r == batch), "the sorted body does not parse back: {reread:?}");
    // No float survives into a batch (usage_value is kept as text), so no `floats_read_back` guard is needed here.
    assert_eq!(
        reread.map(|r| r.validate(T_USAGE)).ok(),
        Some(batch.validate(T_USAGE)),
        "validation depends on the serialisation"
    );
    true
}

/// License callbacks (§8.4) and OpenAPI answers (§8.1, §8.2). Returns whether the body parsed as a callback.
///
/// Oracles: callbacks read every signing candidate alike; answers round-trip through serde.
pub fn parse_license(body: &[u8]) -> bool {
    let _ = serde_round_trip::<ActivateResponse>(body);
    let _ = serde_round_trip::<HeartbeatResponse>(body);
    candidates_parse_alike(body, parse_license_callback, "parse_license_callback");
    parse_license_callback(body).is_ok()
}

/// The Agents-gateway `usage` check (§7). Returns whether the body has the mandatory shape.
///
/// Oracle: the counts read back from a body written from them are the same.
pub fn parse_agents_usage(body: &[u8]) -> bool {
    let Ok(usage) = top_level_usage(body) else {
        return false;
    };
    let _ = usage.is_consistent();
    let written = serde_json::to_vec(&serde_json::json!({ "data": null, "usage": usage })).unwrap_or_default();
    assert_eq!(top_level_usage(&written), Ok(usage), "usage does not round-trip");
    true
}

/// The §4.1 signing candidates. Input: the body. Returns whether it is a JSON object.
///
/// Oracles: the first candidate is the body; every other candidate is compact JSON equal to the body without its
/// top-level `null`s; candidates are distinct; the fully sorted candidate is a fixed point (its only candidate is
/// itself); `demo_payload` is among them.
pub fn canonical_json(body: &[u8]) -> bool {
    let Ok(candidates) = signing_candidates(body) else {
        assert!(canonical_json::demo_payload(body).is_err(), "demo_payload accepted what signing_candidates refused");
        return false;
    };
    assert_eq!(candidates.first().map(Vec::as_slice), Some(body), "the first candidate is not the raw body");
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let expected = without_top_level_nulls(&value);
    let exact = floats_read_back(&value);
    for (i, c) in candidates.iter().enumerate().skip(1) {
        let parsed: Result<Value, _> = serde_json::from_slice(c);
        assert!(
            parsed.as_ref().is_ok_and(|p| *p == expected || !exact),
            "candidate {i} is not the same JSON value:\n  body      = {}\n  candidate = {}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(c),
        );
        assert!(candidates[..i].iter().all(|earlier| earlier != c), "duplicate candidate {i}");
    }
    let demo = canonical_json::demo_payload(body);
    assert!(demo.as_ref().is_ok_and(|d| candidates.contains(d)), "demo_payload is not a candidate");
    if let Some(full) = candidates.last() {
        let again = signing_candidates(full);
        assert!(
            again.as_ref().is_ok_and(|a| a.len() == 1) || !exact,
            "the fully sorted candidate is not canonical: {}",
            String::from_utf8_lossy(full)
        );
    }
    true
}

// ---------------------------------------------------------------------------------------------------------------
// Credential encryption

/// AES credential decryption of arbitrary text, with both key sizes. Input: the text. Returns whether either size
/// decrypted it.
///
/// Oracle: whatever decrypts re-encrypts, with the same IV, to the same text (Base64 is canonical); the contact
/// reader never fails.
pub fn aes_decrypt(data: &[u8]) -> bool {
    let input = text(data);
    let key = SecretKey::new(AK);
    let mut any = false;
    for bits in [AesBits::Aes256, AesBits::Aes128] {
        let cipher = CredentialCipher::new(&key, bits);
        if let Ok(plain) = cipher.decrypt(&input) {
            any = true;
            let trimmed = input.trim();
            let iv: Option<[u8; 16]> = trimmed.as_bytes().get(..16).and_then(|iv| iv.try_into().ok());
            if let Some(iv) = iv.filter(|iv| iv.iter().all(u8::is_ascii_alphanumeric)) {
                assert_eq!(cipher.encrypt(&plain, &iv), trimmed, "decrypt → encrypt does not give the text back");
            }
        }
    }
    let contact = decrypt_contact(&key, &input);
    assert_eq!(contact.is_decrypted(), any, "decrypt_contact disagrees with CredentialCipher::decrypt");
    any
}

/// AES encrypt → decrypt of arbitrary UTF-8. Input: 16 IV bytes, then the plaintext. Returns `true` (the round trip
/// is the oracle).
///
/// Oracles: for both sizes, decrypt(encrypt(p)) = p, the output starts with 16 alphanumeric IV characters and is
/// `16 + Base64(16·(⌊len/16⌋+1))` long.
pub fn aes_round_trip(data: &[u8]) -> bool {
    let (iv_bytes, plain) = data.split_at(data.len().min(16));
    let mut iv = [0u8; 16];
    for (slot, b) in iv.iter_mut().zip(iv_bytes) {
        *slot = *b;
    }
    let plain = text(plain);
    let key = SecretKey::new(AK);
    for bits in [AesBits::Aes256, AesBits::Aes128] {
        let cipher = CredentialCipher::new(&key, bits);
        let out = cipher.encrypt(&plain, &iv);
        let blocks = plain.len() / 16 + 1;
        assert_eq!(out.len(), 16 + (blocks * 16).div_ceil(3) * 4, "unexpected ciphertext length");
        assert!(out.as_bytes().iter().take(16).all(u8::is_ascii_alphanumeric), "the IV is not alphanumeric");
        assert_eq!(cipher.decrypt(&out).as_deref(), Ok(&*plain), "encrypt → decrypt does not give the text back");
    }
    true
}

// ---------------------------------------------------------------------------------------------------------------
// The whole production interface

/// How a request of a `produce` input was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    /// Signed like the marketplace (V2 or V1): must never be answered `000001`.
    Signed,
    /// A signed V2 request sent a second time: must never be answered `000000` (nonce cache).
    ReplayedV2,
    /// Unsigned or resent otherwise: anything goes, but the answer must be well-formed.
    Other,
}

/// Checks the answer's form and returns its `resultCode`.
fn check_answer(handled: &Handled, keys: &KeyRing) -> String {
    let response = &handled.response;
    assert_eq!(response.status, 200, "business outcomes are answered with HTTP 200");
    assert!(
        response.header("content-type").is_some_and(|c| c.starts_with("application/json")),
        "the answer is not declared JSON"
    );
    assert!(response.body.is_ascii(), "the answer is not ASCII-only JSON: {}", String::from_utf8_lossy(&response.body));
    let value: Result<Value, _> = serde_json::from_slice(&response.body);
    let code = value.as_ref().ok().and_then(|v| v.get("resultCode")).and_then(Value::as_str).unwrap_or("");
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "resultCode is not 6 digits: {}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(code, handled.summary.result_code.as_str(), "the summary's result code is not the answer's");
    let sign = response.header(body_sign::HEADER_NAME);
    assert!(
        sign.is_some_and(|s| body_sign::verify(s, &response.body, keys).is_ok()),
        "Body-Sign is missing or does not verify"
    );
    code.to_owned()
}

/// The requests of a `produce` input, split at `\n%%\n`.
fn requests(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(REQUEST_SEPARATOR.len()).position(|w| w == REQUEST_SEPARATOR) {
        let (head, tail) = rest.split_at(i);
        out.push(head);
        rest = tail.get(REQUEST_SEPARATOR.len()..).unwrap_or_default();
    }
    out.push(rest);
    out
}

/// The production handler over a sequence of requests sharing one in-memory store, with a clock advancing 1 s per
/// request from test-vectors §6.1's timestamp.
///
/// Input: requests separated by a line `%%`. Each request starts with a line naming its kind:
/// - `v2`: the rest is a body, signed like the marketplace (`Marketplace::v2`, fresh timestamp, unique nonce);
/// - `v1`: the rest is one `name=value` per line, signed like the marketplace (`Marketplace::v1`);
/// - `raw`: then `METHOD`, then the raw query string, then the body, sent unsigned;
/// - `replay`: sends the previous request again, unchanged;
/// - `wait`: then a number of ms to advance the clock by;
/// - anything else: the whole request is an unsigned POST body.
///
/// Returns whether some request was answered `000000`.
///
/// Oracles: never panics; every answer is HTTP 200, ASCII JSON with a 6-digit `resultCode` equal to the summary's,
/// and a `Body-Sign` that verifies; a request signed like the marketplace is never refused as unauthenticated
/// (`000001`); a V2 request sent twice never succeeds the second time.
pub async fn produce(data: &[u8]) -> bool {
    let keys = ring(&[AK]);
    let cfg = ProduceConfig::new(keys.clone());
    let marketplace = Marketplace::new(keys.clone());
    let store = MemoryStore::new();
    let mut now = T0;
    let mut previous: Option<(Inbound, bool)> = None;
    let mut any_success = false;
    for (i, chunk) in requests(data).into_iter().enumerate() {
        now = now.saturating_add(1_000);
        let [kind, rest] = split::<2>(chunk);
        let (request, made, is_v2) = match text(kind).trim() {
            "v2" => (marketplace.v2(PRODUCE_PATH, rest, now, &format!("{i:064X}")), Made::Signed, true),
            "v1" => {
                let lines = text(rest);
                let params: Vec<(&str, &str)> =
                    lines.split('\n').filter(|l| !l.is_empty()).map(|l| l.split_once('=').unwrap_or((l, ""))).collect();
                (marketplace.v1(PRODUCE_PATH, &params), Made::Signed, false)
            }
            "raw" => {
                let [method, query, body] = split::<3>(rest);
                let request = Inbound {
                    method: text(method).trim().to_owned(),
                    path: PRODUCE_PATH.to_owned(),
                    query: text(query).into_owned(),
                    headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                    body: body.to_vec(),
                };
                (request, Made::Other, false)
            }
            "replay" => match previous.take() {
                Some((request, was_v2)) => (request, if was_v2 { Made::ReplayedV2 } else { Made::Other }, was_v2),
                None => continue,
            },
            "wait" => {
                now = now.saturating_add(clock(rest, 0));
                continue;
            }
            _ => {
                let request = Inbound {
                    method: "POST".to_owned(),
                    path: PRODUCE_PATH.to_owned(),
                    body: chunk.to_vec(),
                    ..Inbound::default()
                };
                (request, Made::Other, false)
            }
        };
        let fixed = FixedClock(now);
        let ctx = Ctx { store: &store, backend: &NoBackend, clock: &fixed, random: &OsRandom };
        let handled = handle(&request, &cfg, &ctx).await;
        let code = check_answer(&handled, &keys);
        match made {
            Made::Signed => assert_ne!(code, "000001", "a correctly signed request was refused: {}", handled.summary),
            Made::ReplayedV2 => assert_ne!(code, "000000", "a replayed V2 request succeeded: {}", handled.summary),
            Made::Other => {}
        }
        any_success |= code == "000000";
        previous = Some((request, is_v2));
    }
    any_success
}
