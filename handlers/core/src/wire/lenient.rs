//! Lenient readers for the marketplace's inconsistent JSON shapes.
//!
//! The same field arrives in different shapes depending on the page, the generation (V1/V2) and the product:
//! `flag` as `1` or `"1"`, `orgInfoList` as an array or as a string holding an array, `license_code_info` as a
//! string holding an object, `null` where a value is optional. Refusing any of these would fail a real callback, so
//! every reader here accepts all documented shapes and treats `null` as absent.
//!
//! 1. For hand-written parsers, call the value-level functions ([`string_or_number`], [`integer`],
//!    [`object_or_string`], [`array_or_string`]) — `validate::Fields` does this for you.
//! 2. For serde-derived types, use the adaptors with `#[serde(default, deserialize_with = "...")]` (`default` makes
//!    an absent field read as `None` / empty).
//!
//! ```
//! use koogallery_core::wire::lenient;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Line {
//!     #[serde(default, deserialize_with = "lenient::opt_i64")]
//!     period_number: Option<i64>,
//!     #[serde(default, deserialize_with = "lenient::vec_or_string")]
//!     tags: Vec<String>,
//! }
//!
//! let a: Line = serde_json::from_str(r#"{"period_number":"12","tags":"[\"x\"]"}"#).unwrap();
//! let b: Line = serde_json::from_str(r#"{"period_number":12,"tags":["x"]}"#).unwrap();
//! assert_eq!((a.period_number, a.tags.clone()), (b.period_number, b.tags));
//! let c: Line = serde_json::from_str(r#"{"period_number":null}"#).unwrap();
//! assert_eq!((c.period_number, c.tags.len()), (None, 0));
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use serde_with::SerializeAs;
use serde_with::json::JsonString;

/// A value whose shape fits none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LenientError {
    /// Expected text; got an object or an array.
    #[error("expected a string or a number")]
    NotAString,
    /// Expected an integer (number or numeric string); got something else.
    #[error("expected an integer or a numeric string")]
    NotAnInteger,
    /// Expected an object or a string holding one.
    #[error("expected a JSON object or a string holding one")]
    NotAnObject,
    /// Expected an array or a string holding one.
    #[error("expected a JSON array or a string holding one")]
    NotAnArray,
}

/// Text from a string, a number (its JSON text) or a boolean (`true`/`false`); `null` is `None`.
///
/// # Errors
///
/// [`LenientError::NotAString`] for objects and arrays.
pub fn string_or_number(v: &Value) -> Result<Option<String>, LenientError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Array(_) | Value::Object(_) => Err(LenientError::NotAString),
    }
}

/// An integer from a JSON integer (or an integral float such as `1.0`) or a numeric string (surrounding spaces
/// allowed); `null` and `""` are `None`.
///
/// # Errors
///
/// [`LenientError::NotAnInteger`] for fractions, non-numeric text, out-of-range values, objects, arrays, booleans.
pub fn integer(v: &Value) -> Result<Option<i64>, LenientError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(Some(i));
            }
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => Err(LenientError::NotAnInteger),
            }
        }
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            t.parse::<i64>().map(Some).map_err(|_| LenientError::NotAnInteger)
        }
        _ => Err(LenientError::NotAnInteger),
    }
}

/// An object from a JSON object or from a string holding one; `null` and `""` are `None`.
///
/// # Errors
///
/// [`LenientError::NotAnObject`] for anything else, including a string that does not hold an object.
pub fn object_or_string(v: &Value) -> Result<Option<Map<String, Value>>, LenientError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => Ok(Some(m.clone())),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            Ok(Value::Null) => Ok(None),
            _ => Err(LenientError::NotAnObject),
        },
        _ => Err(LenientError::NotAnObject),
    }
}

/// An array from a JSON array or from a string holding one; `null` and `""` are `None`.
///
/// # Errors
///
/// [`LenientError::NotAnArray`] for anything else, including a string that does not hold an array.
pub fn array_or_string(v: &Value) -> Result<Option<Vec<Value>>, LenientError> {
    match v {
        Value::Null => Ok(None),
        Value::Array(a) => Ok(Some(a.clone())),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(a)) => Ok(Some(a)),
            Ok(Value::Null) => Ok(None),
            _ => Err(LenientError::NotAnArray),
        },
        _ => Err(LenientError::NotAnArray),
    }
}

/// Serde adaptor: `Option<String>` from a string, number or boolean; `null` → `None`.
///
/// # Errors
///
/// The deserializer's error for objects and arrays.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    string_or_number(&v).map_err(serde::de::Error::custom)
}

/// Serde adaptor: `Option<i64>` from a number or a numeric string; `null` and `""` → `None`.
///
/// # Errors
///
/// The deserializer's error for non-integral or non-numeric values.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    integer(&v).map_err(serde::de::Error::custom)
}

/// Serde adaptor: `Vec<T>` from an array or a string holding one; `null` and `""` → empty; `null` elements are
/// skipped.
///
/// # Errors
///
/// The deserializer's error when the value is not an array or an element does not fit `T`.
pub fn vec_or_string<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    let v = Value::deserialize(d)?;
    match array_or_string(&v).map_err(serde::de::Error::custom)? {
        None => Ok(Vec::new()),
        Some(items) => {
            let items: Vec<Value> = items.into_iter().filter(|item| !item.is_null()).collect();
            serde_json::from_value(Value::Array(items)).map_err(serde::de::Error::custom)
        }
    }
}

/// Serde adaptor: `Option<T>` from an object or a string holding one; `null` and `""` → `None`.
///
/// # Errors
///
/// The deserializer's error when the value is not an object or does not fit `T`.
pub fn opt_object_or_string<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = Value::deserialize(d)?;
    match object_or_string(&v).map_err(serde::de::Error::custom)? {
        None => Ok(None),
        Some(map) => serde_json::from_value(Value::Object(map)).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Serde adaptor for the opposite direction: writes `Some(value)` as a string holding its compact JSON (the shape
/// the marketplace uses for `license_code_info`), `None` as `null`. Mocks need it to answer like the marketplace.
///
/// This is `serde_with`'s `Option<JsonString>`, kept under this name for `serialize_with`. The readers above stay
/// hand-written: `serde_with` (`PickFirst`, `DisplayFromStr`, `NoneAsEmptyString`, `JsonString`, `DefaultOnNull`)
/// cannot read numbers or booleans as text, integral floats or padded numeric strings as integers, `""` or `"null"`
/// as absent, or skip `null` list elements, and `PickFirst<(_, JsonString)>` would accept an array for a struct.
///
/// # Errors
///
/// The serializer's error when `value` cannot be serialised.
pub fn ser_as_json_string<S: Serializer, T: Serialize>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    <Option<JsonString> as SerializeAs<Option<T>>>::serialize_as(value, s)
}

/// Defines a string-valued wire enum that keeps unknown values: `as_str`, `parse` (ASCII case-insensitive, with
/// aliases), `From<&str>`, `Display`, and serde as the text (numbers are read as their text).
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept verbatim so that it can be logged, stored and passed on.
            Unknown(String),
        }

        impl $name {
            /// The wire text (the unknown value as received).
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(s) => s,
                }
            }

            /// Reads the wire text, ignoring ASCII case; anything else becomes `Unknown`.
            pub fn parse(s: &str) -> Self {
                $(
                    if s.eq_ignore_ascii_case($text) $(|| s.eq_ignore_ascii_case($alias))* {
                        return Self::$variant;
                    }
                )+
                Self::Unknown(s.to_owned())
            }

            /// Whether the value is one this version knows.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Unknown(_))
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::parse(s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let v = <serde_json::Value as serde::Deserialize>::deserialize(deserializer)?;
                match $crate::wire::lenient::string_or_number(&v) {
                    Ok(Some(s)) => Ok(Self::parse(&s)),
                    _ => Err(serde::de::Error::custom(concat!("expected a string for ", stringify!($name)))),
                }
            }
        }
    };
}
pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_from_numbers_and_null_as_absent() {
        assert_eq!(string_or_number(&json!("a")), Ok(Some("a".into())));
        assert_eq!(string_or_number(&json!(50)), Ok(Some("50".into())));
        assert_eq!(string_or_number(&json!(12.5)), Ok(Some("12.5".into())));
        assert_eq!(string_or_number(&json!(true)), Ok(Some("true".into())));
        assert_eq!(string_or_number(&Value::Null), Ok(None));
        assert_eq!(string_or_number(&json!({})), Err(LenientError::NotAString));
    }

    #[test]
    fn integers_from_numbers_and_numeric_strings() {
        assert_eq!(integer(&json!(1)), Ok(Some(1)));
        assert_eq!(integer(&json!(-3)), Ok(Some(-3)));
        assert_eq!(integer(&json!(" 2 ")), Ok(Some(2)));
        assert_eq!(integer(&json!(1.0)), Ok(Some(1)));
        assert_eq!(integer(&json!("")), Ok(None));
        assert_eq!(integer(&Value::Null), Ok(None));
        assert_eq!(integer(&json!(1.5)), Err(LenientError::NotAnInteger));
        assert_eq!(integer(&json!("1.5")), Err(LenientError::NotAnInteger));
        assert_eq!(integer(&json!("one")), Err(LenientError::NotAnInteger));
        assert_eq!(integer(&json!(true)), Err(LenientError::NotAnInteger));
    }

    #[test]
    fn containers_from_values_or_strings() {
        assert_eq!(array_or_string(&json!([1])), Ok(Some(vec![json!(1)])));
        assert_eq!(array_or_string(&json!("[1]")), Ok(Some(vec![json!(1)])));
        assert_eq!(array_or_string(&json!("")), Ok(None));
        assert_eq!(array_or_string(&json!("{}")), Err(LenientError::NotAnArray));
        assert_eq!(array_or_string(&json!("[")), Err(LenientError::NotAnArray));
        let obj = object_or_string(&json!("{\"a\":1}")).ok().flatten();
        assert_eq!(obj.and_then(|m| m.get("a").cloned()), Some(json!(1)));
        assert_eq!(object_or_string(&json!([])), Err(LenientError::NotAnObject));
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Inner {
        a: i64,
    }

    #[derive(Debug, Deserialize, Serialize)]
    struct Outer {
        #[serde(default, deserialize_with = "opt_object_or_string", serialize_with = "ser_as_json_string")]
        inner: Option<Inner>,
        #[serde(default, deserialize_with = "opt_string")]
        text: Option<String>,
    }

    #[test]
    fn json_string_round_trip() {
        let o: Outer = serde_json::from_str(r#"{"inner":"{\"a\":2}","text":3}"#).expect("lenient parse");
        assert_eq!(o.inner, Some(Inner { a: 2 }));
        assert_eq!(o.text.as_deref(), Some("3"));
        let out = serde_json::to_string(&o).expect("serialise");
        assert_eq!(out, r#"{"inner":"{\"a\":2}","text":"3"}"#);
        let absent: Outer = serde_json::from_str("{}").expect("absent fields");
        assert!(absent.inner.is_none() && absent.text.is_none());
    }
}
