//! Agents-gateway token usage (§7): the top-level `usage` object the gateway bills from.
//!
//! An Agents-gateway product's backend response **must** carry a top-level
//! `{"usage":{"completion_tokens":…,"prompt_tokens":…,"total_tokens":…}}`; without it the call cannot be billed.
//! [`top_level_usage`] checks exactly that shape (non-negative integer counts, at the top level, not nested inside
//! `data`) so the gateway component can add or refuse before answering.
//!
//! 1. Take the upstream response body (the final event for a stream).
//! 2. `top_level_usage(body)`; on `Err`, add a `usage` object or fail the call, as the product decides.
//!
//! ```
//! use koogallery_core::wire::agents::{top_level_usage, TokenUsage, UsageShapeError};
//!
//! let body = r#"{"data":"南京,全名南京市,...","usage":{"completion_tokens":217,"prompt_tokens":31,"total_tokens":248}}"#;
//! let usage = top_level_usage(body.as_bytes()).unwrap();
//! assert_eq!(usage, TokenUsage { completion_tokens: 217, prompt_tokens: 31, total_tokens: 248 });
//! assert_eq!(top_level_usage(br#"{"data":{"usage":{}}}"#), Err(UsageShapeError::MissingUsage));
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The billed token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Model output tokens.
    pub completion_tokens: u64,
    /// Model input tokens.
    pub prompt_tokens: u64,
    /// Total tokens.
    pub total_tokens: u64,
}

impl TokenUsage {
    /// Whether `total_tokens` equals input plus output. The gateway bills the fields as sent, so a mismatch is not a
    /// shape error, but it is worth a warning in the seller's logs.
    pub fn is_consistent(&self) -> bool {
        self.prompt_tokens.checked_add(self.completion_tokens) == Some(self.total_tokens)
    }
}

/// Why a response body lacks the mandatory usage shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageShapeError {
    /// The body is not JSON.
    #[error("response body is not JSON")]
    NotJson,
    /// The body is JSON but not an object.
    #[error("response body is not a JSON object")]
    NotAnObject,
    /// There is no top-level `usage` (or it is `null`).
    #[error("response has no top-level usage")]
    MissingUsage,
    /// `usage` is not an object.
    #[error("usage is not an object")]
    UsageNotAnObject,
    /// A count is absent (names it).
    #[error("usage.{0} is missing")]
    MissingCount(&'static str),
    /// A count is not a non-negative JSON integer (names it).
    #[error("usage.{0} is not a non-negative integer")]
    NotACount(&'static str),
}

/// Reads and checks the mandatory top-level `usage` object of a backend response.
///
/// # Errors
///
/// A [`UsageShapeError`] saying what is wrong with the shape.
pub fn top_level_usage(body: &[u8]) -> Result<TokenUsage, UsageShapeError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| UsageShapeError::NotJson)?;
    let Value::Object(top) = value else { return Err(UsageShapeError::NotAnObject) };
    let usage = match top.get("usage") {
        None | Some(Value::Null) => return Err(UsageShapeError::MissingUsage),
        Some(Value::Object(u)) => u,
        Some(_) => return Err(UsageShapeError::UsageNotAnObject),
    };
    let count = |name: &'static str| match usage.get(name) {
        None | Some(Value::Null) => Err(UsageShapeError::MissingCount(name)),
        Some(v) => v.as_u64().ok_or(UsageShapeError::NotACount(name)),
    };
    Ok(TokenUsage {
        completion_tokens: count("completion_tokens")?,
        prompt_tokens: count("prompt_tokens")?,
        total_tokens: count("total_tokens")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_errors_name_the_problem() {
        assert_eq!(top_level_usage(b"not json"), Err(UsageShapeError::NotJson));
        assert_eq!(top_level_usage(b"[1]"), Err(UsageShapeError::NotAnObject));
        assert_eq!(top_level_usage(br#"{"usage":null}"#), Err(UsageShapeError::MissingUsage));
        assert_eq!(top_level_usage(br#"{"usage":"x"}"#), Err(UsageShapeError::UsageNotAnObject));
        assert_eq!(
            top_level_usage(br#"{"usage":{"completion_tokens":1,"total_tokens":2}}"#),
            Err(UsageShapeError::MissingCount("prompt_tokens"))
        );
        for bad in ["-1", "1.5", "\"3\"", "true"] {
            let body = format!(r#"{{"usage":{{"completion_tokens":{bad},"prompt_tokens":1,"total_tokens":2}}}}"#);
            assert_eq!(top_level_usage(body.as_bytes()), Err(UsageShapeError::NotACount("completion_tokens")), "{bad}");
        }
    }

    #[test]
    fn consistency_is_reported_not_enforced() {
        let odd = top_level_usage(br#"{"usage":{"completion_tokens":1,"prompt_tokens":1,"total_tokens":5}}"#);
        assert_eq!(odd.map(|u| u.is_consistent()), Ok(false));
        assert!(TokenUsage { completion_tokens: 217, prompt_tokens: 31, total_tokens: 248 }.is_consistent());
    }
}
