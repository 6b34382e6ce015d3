//! Field validation shared by every request parser: mandatory fields, maximum lengths, enum values.
//!
//! The marketplace shows a `000002` answer's `resultMsg` in the seller's interface-message log, so an invalid
//! request must say *which* field is wrong. Every parser in this crate returns a [`FieldError`] naming the field
//! with its wire name (`orderLineId`, `userList[0].userName`), and a handler answers `000002` with its `Display`.
//!
//! 1. Wrap a decoded JSON object in [`Fields`] (or read query parameters yourself).
//! 2. Read each field with [`Fields::required`], [`Fields::optional`], [`Fields::integer`], … giving the table's
//!    maximum length; lengths count characters, not bytes.
//! 3. Turn the `Err(FieldError)` into a `000002` answer with `e.to_string()` as `resultMsg`.
//!
//! ```
//! use koogallery_core::wire::validate::{FieldError, FieldProblem, Fields};
//!
//! let body: serde_json::Value = serde_json::from_str(r#"{"orderId":"CS1","orderLineId":""}"#).unwrap();
//! let fields = Fields::new(&body).unwrap();
//! assert_eq!(fields.required("orderId", 64).unwrap(), "CS1");
//! let err = fields.required("orderLineId", 64).unwrap_err();
//! assert_eq!(err.to_string(), "orderLineId is missing");
//! assert_eq!(err.problem, FieldProblem::Missing);
//! ```

use std::fmt;

use serde_json::{Map, Value};

use crate::wire::lenient;

/// One invalid field: which one, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct FieldError {
    /// The field's wire name, with a path for nested fields (`userList[2].orgCode`).
    pub field: String,
    /// What is wrong.
    pub problem: FieldProblem,
}

/// What is wrong with a field. Messages are fixed ASCII strings: they never echo the received value, so a
/// `resultMsg` or a log line cannot leak what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldProblem {
    /// Absent, `null`, or blank where a value is mandatory.
    Missing,
    /// Longer than the documented maximum (in characters).
    TooLong {
        /// The documented maximum.
        max: usize,
        /// The length received.
        actual: usize,
    },
    /// Present but not acceptable; the text says what is expected.
    Invalid(&'static str),
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldProblem::Missing => f.write_str("is missing"),
            FieldProblem::TooLong { max, .. } => write!(f, "exceeds {max} characters"),
            FieldProblem::Invalid(why) => write!(f, "is invalid: {why}"),
        }
    }
}

impl FieldError {
    /// A mandatory field is absent or blank.
    pub fn missing(field: impl Into<String>) -> Self {
        FieldError { field: field.into(), problem: FieldProblem::Missing }
    }

    /// A field is longer than its documented maximum.
    pub fn too_long(field: impl Into<String>, max: usize, actual: usize) -> Self {
        FieldError { field: field.into(), problem: FieldProblem::TooLong { max, actual } }
    }

    /// A field has an unacceptable value or type.
    pub fn invalid(field: impl Into<String>, why: &'static str) -> Self {
        FieldError { field: field.into(), problem: FieldProblem::Invalid(why) }
    }
}

/// Checks a maximum length in characters (the documentation's "Max" column counts characters).
///
/// # Errors
///
/// [`FieldProblem::TooLong`] when `value` has more than `max` characters.
pub fn check_len(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    let actual = value.chars().count();
    if actual > max { Err(FieldError::too_long(field, max, actual)) } else { Ok(()) }
}

/// A mandatory string: present, not blank, at most `max` characters.
///
/// # Errors
///
/// [`FieldProblem::Missing`] for `None` or a blank value, [`FieldProblem::TooLong`] past `max`.
pub fn required_str(field: &str, value: Option<String>, max: usize) -> Result<String, FieldError> {
    match value {
        Some(v) if !v.trim().is_empty() => {
            check_len(field, &v, max)?;
            Ok(v)
        }
        _ => Err(FieldError::missing(field)),
    }
}

/// An optional string: a blank value counts as absent, a present one is at most `max` characters.
///
/// # Errors
///
/// [`FieldProblem::TooLong`] past `max`.
pub fn optional_str(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, FieldError> {
    match value {
        Some(v) if !v.trim().is_empty() => {
            check_len(field, &v, max)?;
            Ok(Some(v))
        }
        _ => Ok(None),
    }
}

/// Read access to one JSON object's fields, producing [`FieldError`]s that carry the field's full path.
///
/// Values are read leniently (see [`crate::wire::lenient`]): strings may arrive as numbers, integers as numeric strings,
/// and `null` always means "absent".
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// Wraps a top-level body.
    ///
    /// # Errors
    ///
    /// `body is invalid: must be a JSON object` when `value` is not an object.
    pub fn new(value: &'a Value) -> Result<Self, FieldError> {
        match value {
            Value::Object(map) => Ok(Fields { map, prefix: None }),
            _ => Err(FieldError::invalid("body", "must be a JSON object")),
        }
    }

    /// Wraps a nested object whose errors are reported under `prefix` (`userList[0]`).
    pub fn nested(map: &'a Map<String, Value>, prefix: &'a str) -> Self {
        Fields { map, prefix: Some(prefix) }
    }

    /// The full path of a field, for error messages.
    pub fn path(&self, name: &str) -> String {
        match self.prefix {
            Some(p) => format!("{p}.{name}"),
            None => name.to_owned(),
        }
    }

    /// The raw value, `None` when absent or `null`.
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// Whether the key is present at all (even as `null` or `""`).
    pub fn has_key(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// A string (or number, turned into its text); `None` when absent or `null`.
    ///
    /// # Errors
    ///
    /// `must be a string` for objects, arrays and booleans.
    pub fn string(&self, name: &str) -> Result<Option<String>, FieldError> {
        match self.raw(name) {
            None => Ok(None),
            Some(v) => {
                lenient::string_or_number(v).map_err(|_| FieldError::invalid(self.path(name), "must be a string"))
            }
        }
    }

    /// A mandatory, non-blank string of at most `max` characters.
    ///
    /// # Errors
    ///
    /// Missing, too long, or not a string.
    pub fn required(&self, name: &str, max: usize) -> Result<String, FieldError> {
        required_str(&self.path(name), self.string(name)?, max)
    }

    /// A mandatory string that may be empty (the kit's `instanceId` during credential setup); `null` and an absent
    /// key read as `""`.
    ///
    /// # Errors
    ///
    /// Too long, or not a string.
    pub fn required_may_be_empty(&self, name: &str, max: usize) -> Result<String, FieldError> {
        // Absent reads as empty too: the marketplace signs its canonical form with `null` entries dropped, so a
        // body carrying `"instanceId": null` and the same body without the key are one signed message and must
        // parse alike.
        let value = self.string(name)?.unwrap_or_default();
        check_len(&self.path(name), &value, max)?;
        Ok(value)
    }

    /// An optional string of at most `max` characters; blank reads as `None`.
    ///
    /// # Errors
    ///
    /// Too long, or not a string.
    pub fn optional(&self, name: &str, max: usize) -> Result<Option<String>, FieldError> {
        optional_str(&self.path(name), self.string(name)?, max)
    }

    /// An integer given as a JSON number or a numeric string; `None` when absent, `null` or `""`.
    ///
    /// # Errors
    ///
    /// `must be an integer` for anything else (fractions included).
    pub fn integer(&self, name: &str) -> Result<Option<i64>, FieldError> {
        match self.raw(name) {
            None => Ok(None),
            Some(v) => lenient::integer(v).map_err(|_| FieldError::invalid(self.path(name), "must be an integer")),
        }
    }

    /// An object given as a JSON object or as a string holding one; `None` when absent, `null` or `""`.
    ///
    /// # Errors
    ///
    /// `must be a JSON object` for anything else.
    pub fn object(&self, name: &str) -> Result<Option<Map<String, Value>>, FieldError> {
        match self.raw(name) {
            None => Ok(None),
            Some(v) => {
                lenient::object_or_string(v).map_err(|_| FieldError::invalid(self.path(name), "must be a JSON object"))
            }
        }
    }

    /// An array given as a JSON array or as a string holding one; `None` when absent, `null` or `""`.
    ///
    /// # Errors
    ///
    /// `must be a JSON array` for anything else.
    pub fn array(&self, name: &str) -> Result<Option<Vec<Value>>, FieldError> {
        match self.raw(name) {
            None => Ok(None),
            Some(v) => {
                lenient::array_or_string(v).map_err(|_| FieldError::invalid(self.path(name), "must be a JSON array"))
            }
        }
    }
}

/// Parses a request body into a JSON value, answering a body that is not JSON with a field error on `body`.
///
/// # Errors
///
/// `body is invalid: must be a JSON object` for anything that is not a JSON object.
pub fn parse_object(body: &[u8]) -> Result<Value, FieldError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(FieldError::invalid("body", "must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display_names_the_field() {
        assert_eq!(FieldError::missing("orderLineId").to_string(), "orderLineId is missing");
        assert_eq!(FieldError::too_long("orderId", 64, 65).to_string(), "orderId exceeds 64 characters");
        assert_eq!(
            FieldError::invalid("status", "must be FREEZE or UNFREEZE").to_string(),
            "status is invalid: must be FREEZE or UNFREEZE"
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let sixty_four_chinese = "开".repeat(64);
        assert_eq!(check_len("name", &sixty_four_chinese, 64), Ok(()));
        let too_long = "开".repeat(65);
        assert_eq!(check_len("name", &too_long, 64), Err(FieldError::too_long("name", 64, 65)));
    }

    #[test]
    fn blank_is_missing_for_mandatory_and_absent_for_optional() {
        assert_eq!(required_str("a", Some("  ".into()), 5), Err(FieldError::missing("a")));
        assert_eq!(required_str("a", None, 5), Err(FieldError::missing("a")));
        assert_eq!(optional_str("a", Some(String::new()), 5), Ok(None));
        assert_eq!(optional_str("a", Some("abcdef".into()), 5), Err(FieldError::too_long("a", 5, 6)));
    }

    #[test]
    fn fields_report_nested_paths_and_lenient_types() {
        let v = json!({"n": 7, "s": "8", "o": "{\"a\":1}", "bad": [1], "nul": null});
        let Value::Object(map) = &v else { panic!("object") };
        let f = Fields::nested(map, "userList[3]");
        assert_eq!(f.string("n"), Ok(Some("7".into())));
        assert_eq!(f.integer("s"), Ok(Some(8)));
        assert_eq!(f.object("o").ok().flatten().and_then(|m| m.get("a").cloned()), Some(json!(1)));
        assert_eq!(f.string("bad"), Err(FieldError::invalid("userList[3].bad", "must be a string")));
        assert_eq!(f.required("nul", 5), Err(FieldError::missing("userList[3].nul")));
        assert_eq!(f.required_may_be_empty("nul", 5), Ok(String::new()));
        // Absent and null are one signed message (the canonical form drops nulls), so they read alike.
        assert_eq!(f.required_may_be_empty("absent", 5), Ok(String::new()));
    }

    #[test]
    fn non_object_bodies_are_rejected_on_body() {
        for body in [&b"[]"[..], b"\"x\"", b"not json", b""] {
            assert_eq!(parse_object(body), Err(FieldError::invalid("body", "must be a JSON object")));
        }
    }
}
