//! What every fuzz entry point shares: the known-answer keys and times, and the readers that turn fuzzer bytes into
//! fields.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::signing::canonical_json;
use crate::signing::keys::{KeyRing, SecretKey};

/// test-vectors §1 `AK`: the basic-interface key (and the kit key of §7).
pub(super) const AK: &str = "1234567890abcdef1234567890abcdef";
/// test-vectors §1 `AK2`: a second key, to check rotation (verify against every key of the ring).
pub(super) const AK2: &str = "71d8a0d7-508d-4017-8563-60f9099eea71";
/// test-vectors §6.1 / §7 timestamp, the default clock.
pub(super) const T0: u64 = 1_680_508_066_618;
/// test-vectors §6.1 nonce.
pub(super) const NONCE0: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";
/// test-vectors §8 `ts`.
pub(super) const T_USAGE: u64 = 1_709_690_865_879;
/// test-vectors §9.1: SK, the date and its ms value.
pub(super) const APIG_SK: &str = "123";
pub(super) const APIG_AK: &str = "my-ak";
pub(super) const APIG_DATE: &str = "20240317T144237Z";
pub(super) const APIG_DATE_MS: u64 = 1_710_686_557_000;
/// test-vectors §10.
pub(super) const JWT_AK: &str = "demo-ak-0001";
pub(super) const JWT_SK: &str = "demo-sk-0001";
/// V1 `timeStamp` used when a fuzzed parameter list has none (test-vectors §4.1).
pub(super) const V1_STAMP: &str = "20200727073711903";
/// Production path used by the `produce` target.
pub(super) const PRODUCE_PATH: &str = "/saasproduce";
/// Separates requests in a `produce` input.
pub(super) const REQUEST_SEPARATOR: &[u8] = b"\n%%\n";

/// Splits `data` at the first `N - 1` newlines; missing fields are empty and the last field is the rest.
pub(super) fn split<const N: usize>(data: &[u8]) -> [&[u8]; N] {
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
pub(super) fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// A decimal clock value, or `default` when the field is not one.
pub(super) fn clock(field: &[u8], default: u64) -> u64 {
    std::str::from_utf8(field).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(default)
}

/// `Some(field)` unless the field is empty: an empty header line stands for an absent header.
pub(super) fn present(field: &str) -> Option<&str> {
    (!field.is_empty()).then_some(field)
}

pub(super) fn ring(keys: &[&str]) -> KeyRing {
    let keys: Vec<SecretKey> = keys.iter().map(|k| SecretKey::new(*k)).collect();
    KeyRing::new(keys).unwrap_or_else(|_| KeyRing::single(SecretKey::new(AK)))
}

/// A copy of a hex signature with its last digit changed (still hex, same length).
pub(super) fn tamper_hex(sig: &str) -> String {
    let mut out = sig.to_owned();
    let last = out.pop().map_or('0', |c| if c == '0' { '1' } else { '0' });
    out.push(last);
    out
}

/// `raw` with every top-level `null` member removed: what every canonical candidate of §4.1 describes.
pub(super) fn without_top_level_nulls(raw: &Value) -> Value {
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
pub(super) fn floats_read_back(v: &Value) -> bool {
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
pub(super) fn json_floats_read_back(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes).map_or(true, |v| floats_read_back(&v))
}

/// serde round trip: `bytes` → `T` → JSON → `T` must give the same value; returns whether `bytes` parsed.
pub(super) fn serde_round_trip<T>(bytes: &[u8]) -> bool
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

/// The requests of a multi-request input (`produce`, `kit`), split at `\n%%\n`.
pub(super) fn requests(data: &[u8]) -> Vec<&[u8]> {
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

/// Checks that a business answer is what the marketplace can read — HTTP 200, declared JSON, ASCII only, a six-digit
/// `resultCode` that the log summary repeats, a `Body-Sign` that verifies under `keys` — and returns the code.
pub(super) fn check_signed_answer(handled: &crate::produce::Handled, keys: &KeyRing) -> String {
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
    let sign = response.header(crate::signing::body_sign::HEADER_NAME);
    assert!(
        sign.is_some_and(|s| crate::signing::body_sign::verify(s, &response.body, keys).is_ok()),
        "Body-Sign is missing or does not verify"
    );
    code.to_owned()
}
