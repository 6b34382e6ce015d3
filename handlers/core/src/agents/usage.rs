//! The billable `usage` object (spec §7): found wherever the upstream put it, reported at the top level.
//!
//! The gateway bills from a top-level `usage` with integer `prompt_tokens`, `completion_tokens` and
//! `total_tokens`. Model servers report usage under other names (`input_tokens`/`output_tokens`, Gemini's
//! `usageMetadata`, Ollama's `prompt_eval_count`/`eval_count`) or in a nested object (`response.usage`, …). This
//! module reads all of those and never invents a number: a third count is derived from the other two, but usage
//! with fewer than two counts is no usage at all.

use serde_json::{Map, Value};

pub use crate::wire::agents::TokenUsage;

/// Names of the input-token count, in the order they are preferred.
const PROMPT_NAMES: &[&str] = &["prompt_tokens", "input_tokens", "promptTokens", "inputTokens", "promptTokenCount"];
/// Names of the output-token count.
const COMPLETION_NAMES: &[&str] =
    &["completion_tokens", "output_tokens", "completionTokens", "outputTokens", "candidatesTokenCount"];
/// Names of the total.
const TOTAL_NAMES: &[&str] = &["total_tokens", "totalTokens", "totalTokenCount"];
/// Objects that may hold usage below the top level (Responses API, wrappers, Anthropic's `message_start`).
const NESTED: &[&str] = &["response", "data", "result", "message", "output"];
/// Other billing factors the gateway reads from `usage` (§7), carried over from a nested usage object.
const FACTORS: &[&str] = &["image_count", "video_duration"];

/// Complete token usage, as billed.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// The three counts.
    pub tokens: TokenUsage,
    /// Other fields of the usage object the upstream reported (`image_count`, `video_duration`, …).
    pub extra: Map<String, Value>,
}

/// Usage as far as it is known: from one answer, or merged over a stream's events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartialUsage {
    /// Input tokens, if reported.
    pub prompt: Option<u64>,
    /// Output tokens, if reported.
    pub completion: Option<u64>,
    /// Total tokens, if reported.
    pub total: Option<u64>,
    /// Billing factors and, for a top-level usage object, its other fields.
    pub extra: Map<String, Value>,
}

impl PartialUsage {
    /// Takes every count `later` reports (streams report cumulative counts, so the latest wins).
    pub fn merge(&mut self, later: Self) {
        // A total reported before newer input or output counts is stale: derive it again from those.
        if later.total.is_none() && (later.prompt.is_some() || later.completion.is_some()) {
            self.total = None;
        }
        self.prompt = later.prompt.or(self.prompt);
        self.completion = later.completion.or(self.completion);
        self.total = later.total.or(self.total);
        self.extra.extend(later.extra);
    }

    /// The usage if at least two counts are known (the third derived), else `None`.
    pub fn complete(&self) -> Option<Usage> {
        let (prompt, completion, total) = match (self.prompt, self.completion, self.total) {
            (Some(p), Some(c), Some(t)) => (p, c, t),
            (Some(p), Some(c), None) => (p, c, p.checked_add(c)?),
            (Some(p), None, Some(t)) => (p, t.checked_sub(p)?, t),
            (None, Some(c), Some(t)) => (t.checked_sub(c)?, c, t),
            _ => return None,
        };
        let tokens = TokenUsage { prompt_tokens: prompt, completion_tokens: completion, total_tokens: total };
        Some(Usage { tokens, extra: self.extra.clone() })
    }
}

/// A token count: a non-negative integer, an integral float, or a string of digits.
fn count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1e15).map(|f| f as u64))
        }
        Value::String(s) if !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    }
}

fn first_count(object: &Map<String, Value>, names: &[&str]) -> Option<u64> {
    names.iter().find_map(|n| object.get(*n).and_then(count))
}

/// Reads one usage object (any naming). `keep_all`: keep every other field (a top-level object, returned as is);
/// otherwise only the billing factors.
fn read_object(object: &Map<String, Value>, keep_all: bool) -> PartialUsage {
    let extra = object
        .iter()
        .filter(|(k, _)| if keep_all { true } else { FACTORS.contains(&k.as_str()) })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    PartialUsage {
        prompt: first_count(object, PROMPT_NAMES),
        completion: first_count(object, COMPLETION_NAMES),
        total: first_count(object, TOTAL_NAMES),
        extra,
    }
}

fn has_counts(p: &PartialUsage) -> bool {
    p.prompt.is_some() || p.completion.is_some() || p.total.is_some()
}

/// The usage a JSON answer (or one stream event) reports, wherever it is: top-level `usage`, a nested
/// `<wrapper>.usage`, Gemini's `usageMetadata`, or Ollama's top-level counts. `None` when it reports none.
pub fn find(document: &Value) -> Option<PartialUsage> {
    let object = document.as_object()?;
    if let Some(Value::Object(usage)) = object.get("usage") {
        let found = read_object(usage, true);
        if has_counts(&found) {
            return Some(found);
        }
    }
    for wrapper in NESTED {
        if let Some(Value::Object(usage)) = object.get(*wrapper).and_then(|w| w.get("usage")) {
            let found = read_object(usage, false);
            if has_counts(&found) {
                return Some(found);
            }
        }
    }
    if let Some(Value::Object(meta)) = object.get("usageMetadata") {
        let found = read_object(meta, false);
        if has_counts(&found) {
            return Some(found);
        }
    }
    let ollama = PartialUsage {
        prompt: object.get("prompt_eval_count").and_then(count),
        completion: object.get("eval_count").and_then(count),
        total: None,
        extra: Map::new(),
    };
    has_counts(&ollama).then_some(ollama)
}

/// Whether `document` already carries `usage` at the top level with exactly these three counts as integers.
pub fn reports_at_top_level(document: &Value, usage: &Usage) -> bool {
    let Some(Value::Object(top)) = document.get("usage") else {
        return false;
    };
    let is = |name: &str, n: u64| top.get(name).and_then(Value::as_u64) == Some(n);
    is("prompt_tokens", usage.tokens.prompt_tokens)
        && is("completion_tokens", usage.tokens.completion_tokens)
        && is("total_tokens", usage.tokens.total_tokens)
}

/// The top-level `usage` object for `usage`: the fields the upstream's own top-level object had (if any), then the
/// three counts as integers.
pub fn usage_object(existing: Option<&Map<String, Value>>, usage: &Usage) -> Value {
    let mut object = existing.cloned().unwrap_or_default();
    for (k, v) in &usage.extra {
        object.entry(k.clone()).or_insert_with(|| v.clone());
    }
    object.insert("prompt_tokens".into(), usage.tokens.prompt_tokens.into());
    object.insert("completion_tokens".into(), usage.tokens.completion_tokens.into());
    object.insert("total_tokens".into(), usage.tokens.total_tokens.into());
    Value::Object(object)
}

/// How an answer's usage was found.
#[derive(Debug, Clone, PartialEq)]
pub enum UsageOutcome {
    /// The upstream reported it at the top level as the gateway reads it: the body is unchanged.
    Reported(Usage),
    /// The upstream reported it elsewhere or under other names: a top-level `usage` was written.
    Normalised(Usage),
    /// The upstream reported no usable usage: the body is unchanged and the call is not billable.
    Missing,
}

impl UsageOutcome {
    /// The usage, if any.
    pub fn usage(&self) -> Option<&Usage> {
        match self {
            Self::Reported(u) | Self::Normalised(u) => Some(u),
            Self::Missing => None,
        }
    }

    /// The value of the `x-usage-status` response header: `reported`, `normalised` or `missing`.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Reported(_) => "reported",
            Self::Normalised(_) => "normalised",
            Self::Missing => "missing",
        }
    }
}

/// Makes a JSON answer billable: returns the body to send (unchanged unless a top-level `usage` had to be
/// written) and what was found. Anything but a JSON object passes unchanged as [`UsageOutcome::Missing`].
pub fn normalise_json(body: &[u8]) -> (Option<Vec<u8>>, UsageOutcome) {
    // The common case, an OpenAI-compatible answer, is checked by the shape the gateway requires.
    if let Ok(tokens) = crate::wire::agents::top_level_usage(body) {
        return (None, UsageOutcome::Reported(Usage { tokens, extra: Map::new() }));
    }
    let Ok(mut document) = serde_json::from_slice::<Value>(body) else {
        return (None, UsageOutcome::Missing);
    };
    let Some(usage) = find(&document).and_then(|p| p.complete()) else {
        return (None, UsageOutcome::Missing);
    };
    if reports_at_top_level(&document, &usage) {
        return (None, UsageOutcome::Reported(usage));
    }
    let Some(object) = document.as_object_mut() else {
        return (None, UsageOutcome::Missing);
    };
    let existing = match object.get("usage") {
        Some(Value::Object(top)) => Some(top.clone()),
        _ => None,
    };
    object.insert("usage".into(), usage_object(existing.as_ref(), &usage));
    match serde_json::to_vec(&document) {
        Ok(bytes) => (Some(bytes), UsageOutcome::Normalised(usage)),
        Err(_) => (None, UsageOutcome::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn normalised(body: &Value) -> (Value, &'static str) {
        let bytes = serde_json::to_vec(body).expect("json");
        let (changed, outcome) = normalise_json(&bytes);
        let out: Value = serde_json::from_slice(changed.as_deref().unwrap_or(&bytes)).expect("json");
        (out, outcome.status())
    }

    #[test]
    fn openai_usage_passes_byte_for_byte() {
        let body = br#"{"data":"x",  "usage":{"completion_tokens":217,"prompt_tokens":31,"total_tokens":248}}"#;
        let (changed, outcome) = normalise_json(body);
        assert_eq!(changed, None);
        assert_eq!(outcome.usage().map(|u| u.tokens.total_tokens), Some(248));
        assert_eq!(outcome.status(), "reported");
    }

    #[test]
    fn each_upstream_shape_is_mapped() {
        let cases = [
            json!({"usage": {"input_tokens": 3, "output_tokens": 4}}),
            json!({"response": {"usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}}}),
            json!({"data": {"usage": {"prompt_tokens": 3, "completion_tokens": 4}}}),
            json!({"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}}),
            json!({"prompt_eval_count": 3, "eval_count": 4, "done": true}),
            json!({"usage": {"promptTokens": "3", "completionTokens": 4.0}}),
        ];
        for body in cases {
            let (out, status) = normalised(&body);
            assert_eq!(status, "normalised", "{body}");
            assert_eq!(out["usage"]["prompt_tokens"], json!(3), "{body}");
            assert_eq!(out["usage"]["completion_tokens"], json!(4), "{body}");
            assert_eq!(out["usage"]["total_tokens"], json!(7), "{body}");
        }
    }

    #[test]
    fn other_fields_and_factors_are_kept() {
        let (out, status) = normalised(&json!({
            "id": "a", "usage": {"input_tokens": 3, "output_tokens": 4, "image_count": 2, "video_duration": 3.5}
        }));
        assert_eq!(status, "normalised");
        assert_eq!(out["id"], "a");
        assert_eq!(out["usage"]["image_count"], json!(2));
        assert_eq!(out["usage"]["video_duration"], json!(3.5));
        assert_eq!(out["usage"]["input_tokens"], json!(3));
        let (out, _) =
            normalised(&json!({"data": {"usage": {"prompt_tokens": 1, "total_tokens": 1, "image_count": 5}}}));
        assert_eq!(
            out["usage"],
            json!({"image_count": 5, "prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1})
        );
        assert_eq!(out["data"]["usage"]["prompt_tokens"], json!(1), "the nested object stays");
    }

    #[test]
    fn no_numbers_are_invented() {
        for body in [
            json!({"choices": []}),
            json!({"usage": {"total_tokens": 9}}),
            json!({"usage": {"prompt_tokens": -1, "completion_tokens": 2}}),
            json!({"usage": {"prompt_tokens": 9, "total_tokens": 3}}),
            json!({"usage": null}),
            json!([1, 2]),
        ] {
            let bytes = serde_json::to_vec(&body).expect("json");
            assert_eq!(normalise_json(&bytes), (None, UsageOutcome::Missing), "{body}");
        }
        assert_eq!(normalise_json(b"not json"), (None, UsageOutcome::Missing));
    }

    #[test]
    fn a_stale_total_is_derived_again() {
        let mut merged =
            find(&json!({"usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}})).expect("first");
        merged.merge(find(&json!({"usage": {"completion_tokens": 25}})).expect("later"));
        assert_eq!(merged.complete().map(|u| u.tokens.total_tokens), Some(35));
    }

    #[test]
    fn stream_counts_merge_latest_first() {
        let mut merged = PartialUsage::default();
        merged.merge(
            find(&json!({"type": "message_start", "message": {"usage": {"input_tokens": 10, "output_tokens": 1}}}))
                .expect("start"),
        );
        merged.merge(find(&json!({"type": "message_delta", "usage": {"output_tokens": 25}})).expect("delta"));
        let usage = merged.complete().expect("complete");
        assert_eq!(
            (usage.tokens.prompt_tokens, usage.tokens.completion_tokens, usage.tokens.total_tokens),
            (10, 25, 35)
        );
    }
}
