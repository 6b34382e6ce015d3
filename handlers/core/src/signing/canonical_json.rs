//! Jackson-compatible compact JSON and the candidate payloads of the V2 and kit signatures (protocol §4.1).
//!
//! The marketplace signs a *re-serialisation* of the body made by Jackson (Java), not necessarily the bytes it
//! sends. Every documented body is already compact and sorted, so the two agree there; where they could differ
//! the verifiers try each plausible payload. All of them need the key, so accepting any does not weaken the scheme.
//!
//! # How to use
//!
//! 1. Call [`signing_candidates`] with the raw body; it fails with [`AuthError::NotJsonObject`] for a body that is
//!    not a JSON object (answer `000002`).
//! 2. MAC each candidate and accept if any matches.
//! 3. To produce a body that is signed as sent (usage push), serialise it with [`sorted_compact`].
//!
//! ```
//! use koogallery_core::signing::canonical_json::{signing_candidates, sorted_compact};
//!
//! let raw = br#"{"b": {"z": 1, "a": "/"}, "a": "\u534e", "n": null}"#;
//! let c = signing_candidates(raw).expect("an object");
//! assert_eq!(c[0], raw.to_vec()); // 1. the raw bytes
//! assert_eq!(c[1], r#"{"a":"华","b":{"z":1,"a":"/"}}"#.as_bytes()); // 2. the demo's top-level TreeMap
//! assert_eq!(c[2], r#"{"a":"华","b":{"a":"/","z":1}}"#.as_bytes()); // 3. sorted at every level
//!
//! let v = serde_json::json!({"b": [{"y": 2, "x": 1}], "a": null});
//! assert_eq!(sorted_compact(&v), br#"{"a":null,"b":[{"x":1,"y":2}]}"#);
//! ```
//!
//! Serialisation rules (Jackson defaults): no whitespace; non-ASCII written raw as UTF-8; `/` not escaped; `"` and
//! `\` escaped; `\b \t \n \f \r` escaped by name, other control characters as `\u00XX` (upper-case hex); integers as
//! received; other numbers as Java's `Double.toString` (`1.0E-5`, `100.0`). Keys sort in Java `String` order
//! (UTF-16 code units), which differs from byte order only above U+FFFF.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::signing::error::{AuthError, ct_eq, decode_hex_tag};
use crate::signing::keys::{KeyRing, SecretKey};

/// The protocol's §4.1 candidate payloads for `raw`, in order, with duplicates removed:
/// 1. the raw bytes; 2. top-level `null`s dropped and top-level keys sorted, nested objects in received order;
/// 3. the same with keys sorted at every level.
///
/// # Errors
/// [`AuthError::NotJsonObject`] when `raw` is not a JSON object.
pub fn signing_candidates(raw: &[u8]) -> Result<Vec<Vec<u8>>, AuthError> {
    let value: Value = serde_json::from_slice(raw).map_err(|_| AuthError::NotJsonObject)?;
    let Value::Object(map) = value else {
        return Err(AuthError::NotJsonObject);
    };
    let mut top: Vec<(&String, &Value)> = map.iter().filter(|(_, v)| !v.is_null()).collect();
    top.sort_by(|a, b| java_cmp(a.0, b.0));

    let mut demo = Vec::with_capacity(raw.len());
    write_entries(&mut demo, top.iter().copied(), false);
    let mut full = Vec::with_capacity(raw.len());
    write_entries(&mut full, top.iter().copied(), true);

    let mut out = vec![raw.to_vec()];
    for candidate in [demo, full] {
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    Ok(out)
}

/// The demo's canonical payload (candidate 2): top-level `null`s dropped, top-level keys sorted, compact. This
/// is what the marketplace signs, so emulators and the `sign` tool sign it.
///
/// # Errors
/// [`AuthError::NotJsonObject`] when `raw` is not a JSON object.
pub fn demo_payload(raw: &[u8]) -> Result<Vec<u8>, AuthError> {
    let value: Value = serde_json::from_slice(raw).map_err(|_| AuthError::NotJsonObject)?;
    let Value::Object(map) = value else {
        return Err(AuthError::NotJsonObject);
    };
    let mut top: Vec<(&String, &Value)> = map.iter().filter(|(_, v)| !v.is_null()).collect();
    top.sort_by(|a, b| java_cmp(a.0, b.0));
    let mut out = Vec::with_capacity(raw.len());
    write_entries(&mut out, top.into_iter(), false);
    Ok(out)
}

/// Compact JSON with keys sorted at every level (`null`s kept): Jackson with `ORDER_MAP_ENTRIES_BY_KEYS`. The
/// usage push signs and sends exactly these bytes.
pub fn sorted_compact(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value, true);
    out
}

/// Compact JSON in the value's own key order, with Jackson's escaping and number format.
pub fn jackson_compact(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value, false);
    out
}

/// Java `String.compareTo`: UTF-16 code unit order.
fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_value(out: &mut Vec<u8>, value: &Value, sort: bool) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item, sort);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map, sort),
    }
}

fn write_object(out: &mut Vec<u8>, map: &Map<String, Value>, sort: bool) {
    if sort {
        let mut entries: Vec<(&String, &Value)> = map.iter().collect();
        entries.sort_by(|a, b| java_cmp(a.0, b.0));
        write_entries(out, entries.into_iter(), sort);
    } else {
        write_entries(out, map.iter(), sort);
    }
}

fn write_entries<'a>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'a String, &'a Value)>, sort: bool) {
    out.push(b'{');
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, key);
        out.push(b':');
        write_value(out, value, sort);
    }
    out.push(b'}');
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0C => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1F => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xF)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    if n.is_i64() || n.is_u64() {
        out.extend_from_slice(n.to_string().as_bytes());
    } else if let Some(f) = n.as_f64() {
        out.extend_from_slice(java_double(f).as_bytes());
    } else {
        out.extend_from_slice(n.to_string().as_bytes());
    }
}

/// Java's `Double.toString` (JDK 19+ shortest-digit form): plain notation with at least one fraction digit for
/// `1e-3 ≤ |d| < 1e7`, otherwise `d.dddE±n`.
fn java_double(f: f64) -> String {
    if !f.is_finite() {
        return "null".to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".to_owned() } else { "0.0".to_owned() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-5".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let abs = f.abs();
    if (1e-3..1e7).contains(&abs) {
        let point = exp + 1; // digits before the decimal point
        let (int_part, frac_part) = if point <= 0 {
            let zeros = usize::try_from(-point).unwrap_or(0);
            ("0".to_owned(), format!("{}{}", "0".repeat(zeros), digits))
        } else {
            let point = usize::try_from(point).unwrap_or(0);
            if digits.len() <= point {
                (format!("{digits}{}", "0".repeat(point - digits.len())), String::new())
            } else {
                (digits[..point].to_owned(), digits[point..].to_owned())
            }
        };
        let frac_part = if frac_part.is_empty() { "0".to_owned() } else { frac_part };
        format!("{sign}{int_part}.{frac_part}")
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let rest = if rest.is_empty() { "0" } else { rest };
        format!("{sign}{first}.{rest}E{exp}")
    }
}

/// Which key of `keys` (its position) makes the hex tag `received` equal `tag(key, payload)` for some signing
/// candidate `payload` of `body` (the V2 and kit schemes), or `None`. Every pair is computed and compared in constant
/// time, so the timing does not tell how close a forgery came.
///
/// # Errors
/// [`AuthError::NotJsonObject`] when `body` is not a JSON object (checked before the tag is read).
pub(crate) fn matches_any_candidate(
    keys: &KeyRing,
    body: &[u8],
    received: &str,
    tag: impl Fn(&SecretKey, &[u8]) -> [u8; 32],
) -> Result<Option<usize>, AuthError> {
    let candidates = signing_candidates(body)?;
    let Some(received) = decode_hex_tag(received) else { return Ok(None) };
    let mut matched = None;
    for (index, key) in keys.iter().enumerate() {
        for payload in &candidates {
            // Every key and candidate is tried; only which key matched (not the MAC) decides the branch.
            if ct_eq(&tag(key, payload), &received) && matched.is_none() {
                matched = Some(index);
            }
        }
    }
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_double_matches_double_to_string() {
        let cases = [
            (12.5, "12.5"),
            (100.0, "100.0"),
            (1e-5, "1.0E-5"),
            (0.001, "0.001"),
            (1e7, "1.0E7"),
            (9_999_999.0, "9999999.0"),
            (-1.25e10, "-1.25E10"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (1.2345e-4, "1.2345E-4"),
        ];
        for (f, want) in cases {
            assert_eq!(java_double(f), want, "{f}");
        }
    }

    #[test]
    fn control_characters_are_escaped_like_jackson() {
        let v = Value::String("a\u{1}\n\"\\/\u{7f}é\u{8}\u{c}\r\t\u{1f}".to_owned());
        assert_eq!(String::from_utf8_lossy(&jackson_compact(&v)), "\"a\\u0001\\n\\\"\\\\/\u{7f}é\\b\\f\\r\\t\\u001F\"");
    }

    #[test]
    fn keys_sort_by_utf16_not_bytes() {
        // U+FF21 (Ａ) is one code unit 0xFF21; U+1F600 is the surrogate pair 0xD83D 0xDE00, so it sorts first in
        // Java although its UTF-8 bytes (F0 …) sort after EF BC A1.
        let raw = "{\"\u{FF21}\":1,\"\u{1F600}\":2}";
        let c = signing_candidates(raw.as_bytes()).expect("object");
        assert_eq!(c.len(), 2);
        assert_eq!(String::from_utf8_lossy(&c[1]), "{\"\u{1F600}\":2,\"\u{FF21}\":1}");
    }

    #[test]
    fn non_objects_are_refused() {
        for raw in [&b"[]"[..], b"\"x\"", b"1", b"null", b"", b"{", b"{\"a\":1} x"] {
            assert_eq!(signing_candidates(raw), Err(AuthError::NotJsonObject), "{raw:?}");
        }
    }

    #[test]
    fn canonical_bodies_give_one_candidate() {
        let raw = br#"{"a":"1","b":{"c":2}}"#;
        assert_eq!(signing_candidates(raw), Ok(vec![raw.to_vec()]));
        assert_eq!(
            demo_payload(br#"{"b":{"d":1,"c":2},"a":"1","z":null}"#),
            Ok(br#"{"a":"1","b":{"d":1,"c":2}}"#.to_vec())
        );
    }
}
