//! ASCII-only JSON for every answer the merchant sends.
//!
//! The documentation asks for Chinese text in `memo` to be escaped as `\uXXXX` (§2.4). Escaping *every* non-ASCII
//! character satisfies that rule, keeps the bytes identical whatever charset a client assumes, and makes the
//! `Body-Sign` over those bytes unambiguous. Output is compact (no whitespace), like the documented examples.
//!
//! 1. Build the response struct.
//! 2. Serialise it once with [`to_ascii_json`].
//! 3. Sign and send exactly those bytes.
//!
//! ```
//! use koogallery_core::wire::json_out::to_ascii_json;
//!
//! let body = to_ascii_json(&serde_json::json!({"memo": "创建实例成功", "emoji": "😀"}));
//! assert_eq!(body, br#"{"memo":"\u521b\u5efa\u5b9e\u4f8b\u6210\u529f","emoji":"\ud83d\ude00"}"#);
//! ```

use std::io;

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};

/// A compact `serde_json` formatter that writes every non-ASCII character as a `\uXXXX` escape (a UTF-16 surrogate
/// pair above U+FFFF), in lower-case hex like `serde_json`'s own control-character escapes.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsciiFormatter;

impl Formatter for AsciiFormatter {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// The body used when a value cannot be serialised (only possible for types whose `Serialize` fails, never for
/// this crate's response types): a `000005` answer, so the caller still has a valid body to sign and send.
pub const SERIALIZATION_FAILED_BODY: &[u8] = br#"{"resultCode":"000005","resultMsg":"other inner error"}"#;

/// Serialises `value` as compact, ASCII-only JSON.
///
/// # Errors
///
/// `serde_json`'s error when `value`'s `Serialize` implementation fails (for example a map with non-string keys).
pub fn try_to_ascii_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut ser = Serializer::with_formatter(&mut out, AsciiFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// Serialises `value` as compact, ASCII-only JSON. Infallible for response types; if serialisation ever fails, the
/// result is [`SERIALIZATION_FAILED_BODY`] rather than a panic.
pub fn to_ascii_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    try_to_ascii_json(value).unwrap_or_else(|_| SERIALIZATION_FAILED_BODY.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn escapes_bmp_and_astral_characters() {
        assert_eq!(to_ascii_json(&json!("é")), br#""\u00e9""#);
        assert_eq!(to_ascii_json(&json!("a开b")), br#""a\u5f00b""#);
        assert_eq!(to_ascii_json(&json!("𝄞")), br#""\ud834\udd1e""#);
        assert_eq!(to_ascii_json(&json!("\u{2028}")), br#""\u2028""#);
    }

    #[test]
    fn keeps_standard_escapes_and_is_compact() {
        let v = json!({"k": "q\"b\\n\n/\u{1}", "n": [1, 2.5, null, true]});
        assert_eq!(to_ascii_json(&v), br#"{"k":"q\"b\\n\n/\u0001","n":[1,2.5,null,true]}"#);
    }

    #[test]
    fn escapes_keys_too() {
        assert_eq!(to_ascii_json(&json!({"名": 1})), br#"{"\u540d":1}"#);
    }

    #[test]
    fn output_parses_back_to_the_same_value() {
        let v = json!({"memo": "创建实例成功 😀 ü", "x": "plain"});
        let bytes = to_ascii_json(&v);
        assert!(bytes.is_ascii());
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&bytes).ok(), Some(v));
    }

    #[test]
    fn unserialisable_values_fall_back_to_a_000005_body() {
        let mut bad = BTreeMap::new();
        bad.insert(vec![1u8], 1);
        assert!(try_to_ascii_json(&bad).is_err());
        assert_eq!(to_ascii_json(&bad), SERIALIZATION_FAILED_BODY);
    }
}
