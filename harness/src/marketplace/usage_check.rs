//! The mock's checks of a usage push (protocol §4.7, §9.4): the body signature headers, the body's canonical form,
//! and the records.
//!
//! Like [`super::apig_check`], written independently of core (`signing::usage`, `signing::canonical_json`,
//! `wire::usage`), which the components use to build the push: a shared mistake would otherwise pass unseen.
//!
//! * `signature` = Base64(HMAC-SHA256(ISV key, `ts={ts}&nonce={nonce}&body={exact body bytes}`)), with `ts`
//!   (digits: milliseconds) and `nonce` non-empty. The `ts` is not checked against the clock (the protocol does not
//!   say the marketplace does).
//! * The body must be compact JSON with the keys sorted at every level: no whitespace between tokens (none before or
//!   after either), and in every object the keys strictly ascending (a duplicate key is refused). Checked on the
//!   bytes as sent, so it is what re-serialising with sorted keys would give, up to how scalars are written
//!   (Jackson's `1.0E-4` and `\u`-escaped text are accepted as they are).
//! * `usage_records`: 1 to [`MAX_RECORDS`] objects, each with `instance_id` (1–64 characters), `record_time`,
//!   `begin_time`, `end_time` (`yyyyMMdd'T'HHmmss'Z'`, begin not after end), `usage_value` (a string or number
//!   written as a plain decimal, > 0, at most 4 decimals), `metering_sn` (non-empty), and optionally
//!   `relate_pkg_instance` (a string). Other fields are allowed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// The largest batch the marketplace takes (§9.4); a larger one gets `500 MKT.9003`.
pub const MAX_RECORDS: usize = 1000;
/// The body signature header.
pub const SIGNATURE_HEADER: &str = "signature";
/// The header with the signing time in milliseconds.
pub const TS_HEADER: &str = "ts";
/// The header with the request's nonce.
pub const NONCE_HEADER: &str = "nonce";

/// The longest `instance_id` (S64).
const MAX_INSTANCE_ID: usize = 64;

/// The body signature's tag: HMAC-SHA256(`key`, `ts={ts}&nonce={nonce}&body={body}`).
pub(crate) fn body_signature(key: &[u8], ts: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return Vec::new() };
    for part in [b"ts=".as_slice(), ts.as_bytes(), b"&nonce=", nonce.as_bytes(), b"&body=", body] {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Checks the `signature`, `ts` and `nonce` headers over `body`.
///
/// # Errors
/// What is wrong, as text: a header missing, empty or not text, `ts` not digits, `signature` not Base64, or the
/// signature not matching.
pub(crate) fn verify_body_signature(key: &[u8], headers: &http::HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| -> Result<&str, String> {
        let value = headers.get(name).ok_or_else(|| format!("header {name} is missing"))?;
        let value = value.to_str().map_err(|_| format!("header {name} is not text"))?.trim();
        if value.is_empty() { Err(format!("header {name} is empty")) } else { Ok(value) }
    };
    let signature = header(SIGNATURE_HEADER)?;
    let ts = header(TS_HEADER)?;
    let nonce = header(NONCE_HEADER)?;
    if !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err("header ts is not milliseconds".to_owned());
    }
    let given = STANDARD.decode(signature).map_err(|_| "header signature is not Base64".to_owned())?;
    let expected = body_signature(key, ts, nonce, body);
    if bool::from(expected.as_slice().ct_eq(&given)) { Ok(()) } else { Err("signature mismatch".to_owned()) }
}

/// Checks that `body` (valid JSON) is compact and sorted: no whitespace between tokens, and in every object the
/// keys strictly ascending in UTF-16 order (Java's `String.compareTo`, what Jackson's `ORDER_MAP_ENTRIES_BY_KEYS`
/// uses). Scalars are not re-formatted, so Jackson's `1.0E-4` and escaped text pass as they are.
///
/// # Errors
/// What is wrong: where the whitespace is, or which keys are out of order or repeated.
fn check_canonical(body: &[u8]) -> Result<(), String> {
    enum Frame {
        Array,
        Object { previous: Option<String>, expect_key: bool },
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while let Some(&byte) = body.get(i) {
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => return Err(format!("whitespace at byte {i}")),
            b'"' => {
                let end = string_end(body, i).ok_or("an unterminated string")?;
                if let Some(Frame::Object { previous, expect_key }) = stack.last_mut()
                    && *expect_key
                {
                    let key: String = body
                        .get(i..end)
                        .and_then(|raw| serde_json::from_slice(raw).ok())
                        .ok_or("a key that is not a string")?;
                    if let Some(before) = previous.as_deref() {
                        match before.encode_utf16().cmp(key.encode_utf16()) {
                            std::cmp::Ordering::Less => {}
                            std::cmp::Ordering::Equal => return Err(format!("duplicate key {key:?}")),
                            std::cmp::Ordering::Greater => return Err(format!("{before:?} before {key:?}")),
                        }
                    }
                    *previous = Some(key);
                    *expect_key = false;
                }
                i = end;
                continue;
            }
            b'{' => stack.push(Frame::Object { previous: None, expect_key: true }),
            b'[' => stack.push(Frame::Array),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The index just past the string that starts (with its `"`) at `start`.
fn string_end(body: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match body.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// Why a push's body is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BodyProblem {
    /// `400 MKT.0101`: what is wrong, naming the field.
    Invalid(String),
    /// `500 MKT.9003`: more than [`MAX_RECORDS`] records (how many).
    TooManyRecords(usize),
}

/// The number of `usage_records` in `body`, if it is JSON with such an array (for the request log).
pub(crate) fn record_count(body: &[u8]) -> Option<usize> {
    let value: Value = serde_json::from_slice(body).ok()?;
    Some(value.get("usage_records")?.as_array()?.len())
}

/// Checks a push's body; its records, in order.
///
/// # Errors
/// The first problem found.
pub(crate) fn check_body(body: &[u8]) -> Result<Vec<Value>, BodyProblem> {
    let invalid = |text: String| Err(BodyProblem::Invalid(text));
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return invalid(format!("body is not JSON ({e})")),
    };
    let Some(fields) = value.as_object() else { return invalid("body is not a JSON object".to_owned()) };
    if let Err(why) = check_canonical(body) {
        return invalid(format!("body is not compact JSON with keys sorted at every level ({why})"));
    }
    let records = match fields.get("usage_records") {
        None => return invalid("usage_records is missing".to_owned()),
        Some(Value::Array(records)) => records,
        Some(_) => return invalid("usage_records is not an array".to_owned()),
    };
    if records.is_empty() {
        return invalid("usage_records is empty".to_owned());
    }
    if records.len() > MAX_RECORDS {
        return Err(BodyProblem::TooManyRecords(records.len()));
    }
    for (i, record) in records.iter().enumerate() {
        check_record(record).map_err(|problem| BodyProblem::Invalid(format!("usage_records[{i}]{problem}")))?;
    }
    Ok(records.clone())
}

/// Checks one record; the problem as `.field: what` (or `: what` for the record itself).
fn check_record(record: &Value) -> Result<(), String> {
    let Some(fields) = record.as_object() else { return Err(": not an object".to_owned()) };
    let text = |name: &str| -> Result<&str, String> {
        match fields.get(name) {
            None | Some(Value::Null) => Err(format!(".{name}: missing")),
            Some(Value::String(s)) if s.trim().is_empty() => Err(format!(".{name}: empty")),
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(format!(".{name}: not a string")),
        }
    };
    let instance_id = text("instance_id")?;
    if instance_id.chars().count() > MAX_INSTANCE_ID {
        return Err(format!(".instance_id: longer than {MAX_INSTANCE_ID} characters"));
    }
    let mut times = [0u64; 3];
    for (slot, name) in times.iter_mut().zip(["record_time", "begin_time", "end_time"]) {
        *slot = super::time::parse_sdk_date(text(name)?).ok_or_else(|| format!(".{name}: not yyyyMMdd'T'HHmmss'Z'"))?;
    }
    if times[1] > times[2] {
        return Err(".begin_time: after end_time".to_owned());
    }
    check_usage_value(fields.get("usage_value")).map_err(|problem| format!(".usage_value: {problem}"))?;
    text("metering_sn")?;
    match fields.get("relate_pkg_instance") {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(_) => Err(".relate_pkg_instance: not a string".to_owned()),
    }
}

/// `usage_value`: a string or number written as a plain decimal, > 0, at most 4 decimals.
fn check_usage_value(value: Option<&Value>) -> Result<(), &'static str> {
    let written = match value {
        None | Some(Value::Null) => return Err("missing"),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => match n.as_f64() {
            // Jackson writes small and large doubles with an exponent (`1.0E-4`): judge their plain form.
            Some(f) if n.is_f64() && n.to_string().contains(['e', 'E']) => {
                let plain = format!("{f:.10}");
                plain.trim_end_matches('0').trim_end_matches('.').to_owned()
            }
            _ => n.to_string(),
        },
        Some(_) => return Err("not a string or a number"),
    };
    if written.starts_with('-') {
        return Err("must be > 0");
    }
    let (whole, decimals) = match written.split_once('.') {
        Some((_, "")) => return Err("not a plain decimal number"),
        Some((whole, decimals)) => (whole, decimals),
        None => (written.as_str(), ""),
    };
    if whole.is_empty() || !whole.bytes().chain(decimals.bytes()).all(|b| b.is_ascii_digit()) {
        return Err("not a plain decimal number");
    }
    if decimals.len() > 4 {
        return Err("more than 4 decimals");
    }
    if whole.bytes().chain(decimals.bytes()).all(|b| b == b'0') {
        return Err("must be > 0");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// test-vectors §1: the key `AK` is the text `1234567890abcdef1234567890abcdef`.
    const AK: &str = "1234567890abcdef1234567890abcdef";
    /// test-vectors §8 (243 bytes).
    const BODY_8: &str = r#"{"usage_records":[{"begin_time":"20240306T010000Z","end_time":"20240306T015959Z","instance_id":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","metering_sn":"7d2a8f7e-5b1c-4d5e-9a44-0c1e2f3a4b5c","record_time":"20240306T020000Z","usage_value":"12.5"}]}"#;
    const TS_8: &str = "1709690865879";
    const NONCE_8: &str = "6c63c221-1f6b-4141-8ff4-22f5dfe82b65";
    const SIGNATURE_8: &str = "r6hpgb8SILMMnBZIamwXnA98HUD/3g0YHk/QlT5PYm0=";

    fn headers(signature: &str, ts: &str, nonce: &str) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in [(SIGNATURE_HEADER, signature), (TS_HEADER, ts), (NONCE_HEADER, nonce)] {
            if !value.is_empty() {
                map.insert(name, value.parse().expect("a header value"));
            }
        }
        map
    }

    #[test]
    fn vector_8_signature() {
        assert_eq!(BODY_8.len(), 243);
        assert_eq!(STANDARD.encode(body_signature(AK.as_bytes(), TS_8, NONCE_8, BODY_8.as_bytes())), SIGNATURE_8);
        let ok = headers(SIGNATURE_8, TS_8, NONCE_8);
        assert_eq!(verify_body_signature(AK.as_bytes(), &ok, BODY_8.as_bytes()), Ok(()));
        assert_eq!(check_body(BODY_8.as_bytes()).map(|r| r.len()), Ok(1));
    }

    #[test]
    fn vector_8_negative_cases() {
        let body = BODY_8.as_bytes();
        let refused = |key: &str, h: &http::HeaderMap, body: &[u8]| verify_body_signature(key.as_bytes(), h, body);
        let mismatch = Err("signature mismatch".to_owned());
        assert_eq!(refused("1234567890abcdef1234567890abcdeF", &headers(SIGNATURE_8, TS_8, NONCE_8), body), mismatch);
        assert_eq!(refused(AK, &headers(SIGNATURE_8, "1709690865878", NONCE_8), body), mismatch);
        assert_eq!(refused(AK, &headers(SIGNATURE_8, TS_8, "6c63c221-1f6b-4141-8ff4-22f5dfe82b66"), body), mismatch);
        let changed = BODY_8.replace("12.5", "12.6");
        assert_eq!(refused(AK, &headers(SIGNATURE_8, TS_8, NONCE_8), changed.as_bytes()), mismatch);
        let truncated = &SIGNATURE_8[..SIGNATURE_8.len() - 4];
        assert_eq!(refused(AK, &headers(truncated, TS_8, NONCE_8), body), mismatch);
        assert_eq!(refused(AK, &headers("", TS_8, NONCE_8), body), Err("header signature is missing".into()));
        assert_eq!(refused(AK, &headers(SIGNATURE_8, "", NONCE_8), body), Err("header ts is missing".into()));
        assert_eq!(refused(AK, &headers(SIGNATURE_8, TS_8, ""), body), Err("header nonce is missing".into()));
        assert_eq!(
            refused(AK, &headers(SIGNATURE_8, "17e9", NONCE_8), body),
            Err("header ts is not milliseconds".into())
        );
        assert_eq!(refused(AK, &headers("%%%", TS_8, NONCE_8), body), Err("header signature is not Base64".into()));
    }

    #[test]
    fn canonical_form_is_checked_on_the_bytes() {
        assert_eq!(check_canonical(br#"{"a":{"x":1.5,"y":null},"b":[{"a":"\"}","z":1}],"c":[]}"#), Ok(()));
        assert_eq!(check_canonical(br#"{"b":1,"a":2}"#), Err(r#""b" before "a""#.to_owned()));
        assert_eq!(check_canonical(br#"{"a":[{"z":1,"y":2}]}"#), Err(r#""z" before "y""#.to_owned()));
        assert_eq!(check_canonical(br#"{"a":1,"a":2}"#), Err(r#"duplicate key "a""#.to_owned()));
        assert_eq!(check_canonical(br#"{"a": 1}"#), Err("whitespace at byte 5".to_owned()));
        assert_eq!(check_canonical(b"{}\n"), Err("whitespace at byte 2".to_owned()));
        // Values are not keys; text inside strings is not whitespace; UTF-16 order, as Java sorts.
        assert_eq!(check_canonical(br#"{"a":"z y","b":{"k":"a"}}"#), Ok(()));
        // U+1F600 is the surrogate pair D83D DE00 in UTF-16: before U+FF61 for Java, after it in UTF-8 bytes.
        assert_eq!(check_canonical("{\"\u{1f600}\":1,\"\u{ff61}\":2}".as_bytes()), Ok(()));
        assert!(check_canonical("{\"\u{ff61}\":1,\"\u{1f600}\":2}".as_bytes()).is_err());
        assert_eq!(check_canonical(br#"{"usage_records":[{"usage_value":1.0E-4}]}"#), Ok(()));
    }

    fn record() -> Value {
        json!({
            "begin_time": "20240306T010000Z",
            "end_time": "20240306T015959Z",
            "instance_id": "i-1",
            "metering_sn": "sn-1",
            "record_time": "20240306T020000Z",
            "usage_value": "12.5",
        })
    }

    /// The body as a component builds it (core's canonical JSON, checked here by the mock's own code).
    fn body_of(records: Vec<Value>) -> Vec<u8> {
        koogallery_core::signing::canonical_json::sorted_compact(&json!({ "usage_records": records }))
    }

    fn problem(body: &[u8]) -> String {
        match check_body(body) {
            Err(BodyProblem::Invalid(text)) => text,
            other => panic!("not refused as invalid: {other:?}"),
        }
    }

    #[test]
    fn body_form_is_checked() {
        assert!(problem(b"not json").starts_with("body is not JSON"));
        assert_eq!(problem(b"[]"), "body is not a JSON object");
        let unsorted = BODY_8.replace(
            r#"{"begin_time":"20240306T010000Z","end_time":"20240306T015959Z","#,
            r#"{"end_time":"20240306T015959Z","begin_time":"20240306T010000Z","#,
        );
        assert_eq!(
            problem(unsorted.as_bytes()),
            r#"body is not compact JSON with keys sorted at every level ("end_time" before "begin_time")"#
        );
        let spaced = BODY_8.replace(r#""usage_records":["#, r#""usage_records": ["#);
        assert_eq!(
            problem(spaced.as_bytes()),
            "body is not compact JSON with keys sorted at every level (whitespace at byte 17)"
        );
        let escaped = br#"{"usage_records":[],"x":"\u4e2d"}"#;
        assert_eq!(problem(escaped), "usage_records is empty", "escaped text is not a form problem");
        assert_eq!(problem(br#"{"records":[]}"#), "usage_records is missing");
        assert_eq!(problem(br#"{"usage_records":{}}"#), "usage_records is not an array");
        assert_eq!(problem(br#"{"usage_records":[]}"#), "usage_records is empty");
    }

    #[test]
    fn batch_size_limit() {
        assert_eq!(check_body(&body_of(vec![record(); MAX_RECORDS])).map(|r| r.len()), Ok(MAX_RECORDS));
        assert_eq!(check_body(&body_of(vec![record(); MAX_RECORDS + 1])), Err(BodyProblem::TooManyRecords(1001)));
    }

    #[test]
    fn records_are_checked() {
        let with = |field: &str, value: Value| {
            let mut r = record();
            r[field] = value;
            problem(&body_of(vec![record(), r]))
        };
        let without = |field: &str| {
            let mut r = record();
            r.as_object_mut().expect("object").remove(field);
            problem(&body_of(vec![r]))
        };
        for field in ["instance_id", "record_time", "begin_time", "end_time", "usage_value", "metering_sn"] {
            assert_eq!(without(field), format!("usage_records[0].{field}: missing"));
        }
        assert_eq!(
            with("instance_id", json!("x".repeat(65))),
            "usage_records[1].instance_id: longer than 64 characters"
        );
        assert_eq!(with("metering_sn", json!("")), "usage_records[1].metering_sn: empty");
        assert_eq!(with("metering_sn", json!(7)), "usage_records[1].metering_sn: not a string");
        assert_eq!(
            with("record_time", json!("20240306020000")),
            "usage_records[1].record_time: not yyyyMMdd'T'HHmmss'Z'"
        );
        assert_eq!(with("end_time", json!("20240306T005959Z")), "usage_records[1].begin_time: after end_time");
        for (value, why) in [
            (json!("0"), "must be > 0"),
            (json!("0.0000"), "must be > 0"),
            (json!(0), "must be > 0"),
            (json!("-1"), "must be > 0"),
            (json!(-1.5), "must be > 0"),
            (json!("1.23456"), "more than 4 decimals"),
            (json!(1.23456), "more than 4 decimals"),
            (json!(0.00001), "more than 4 decimals"),
            (json!("1e3"), "not a plain decimal number"),
            (json!("1."), "not a plain decimal number"),
            (json!(".5"), "not a plain decimal number"),
            (json!(""), "not a plain decimal number"),
            (json!(true), "not a string or a number"),
        ] {
            assert_eq!(with("usage_value", value.clone()), format!("usage_records[1].usage_value: {why}"), "{value}");
        }
        assert_eq!(with("relate_pkg_instance", json!(1)), "usage_records[1].relate_pkg_instance: not a string");
        assert_eq!(problem(&body_of(vec![json!("x")])), "usage_records[0]: not an object");
        for value in [json!("1"), json!(1), json!(0.0001), json!("1234.5678"), json!(12.5), json!(1e20)] {
            let mut r = record();
            r["usage_value"] = value.clone();
            r["relate_pkg_instance"] = json!("pkg-1");
            assert!(check_body(&body_of(vec![r])).is_ok(), "{value}");
        }
    }
}
