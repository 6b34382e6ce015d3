//! Wire form of the Agents-gateway usage object (§7): the documented response and the exact `usage` shape.

use koogallery_core::wire::agents::{TokenUsage, UsageShapeError, top_level_usage};

const DOCUMENTED: &str =
    r#"{"data":"南京,全名南京市,...","usage":{"completion_tokens":217,"prompt_tokens":31,"total_tokens":248}}"#;

#[test]
fn documented_response_has_the_usage_shape() {
    let usage = top_level_usage(DOCUMENTED.as_bytes());
    assert_eq!(usage, Ok(TokenUsage { completion_tokens: 217, prompt_tokens: 31, total_tokens: 248 }));
    assert_eq!(usage.map(|u| u.is_consistent()), Ok(true));
}

#[test]
fn usage_serialises_exactly() {
    let usage = TokenUsage { completion_tokens: 217, prompt_tokens: 31, total_tokens: 248 };
    assert_eq!(
        serde_json::to_string(&usage).expect("serialise"),
        r#"{"completion_tokens":217,"prompt_tokens":31,"total_tokens":248}"#
    );
}

#[test]
fn usage_must_be_top_level_and_complete() {
    let nested = r#"{"data":{"usage":{"completion_tokens":1,"prompt_tokens":1,"total_tokens":2}}}"#;
    assert_eq!(top_level_usage(nested.as_bytes()), Err(UsageShapeError::MissingUsage));
    // Other vendors' names (input_tokens / output_tokens) are not the shape the gateway bills per token from.
    let other_names = r#"{"usage":{"input_tokens":1,"output_tokens":1}}"#;
    assert_eq!(top_level_usage(other_names.as_bytes()), Err(UsageShapeError::MissingCount("completion_tokens")));
    let stringly = r#"{"usage":{"completion_tokens":"217","prompt_tokens":31,"total_tokens":248}}"#;
    assert_eq!(top_level_usage(stringly.as_bytes()), Err(UsageShapeError::NotACount("completion_tokens")));
    // Extra fields alongside are fine.
    let extra =
        r#"{"id":"x","choices":[],"usage":{"completion_tokens":0,"prompt_tokens":0,"total_tokens":0,"image_count":2}}"#;
    assert_eq!(top_level_usage(extra.as_bytes()), Ok(TokenUsage::default()));
}
