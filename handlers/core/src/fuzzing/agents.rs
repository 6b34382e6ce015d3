//! The Agents gateway's answer rewriting: the SSE usage filter and JSON usage normalisation.

use serde_json::Value;

use crate::agents::sse::SseUsage;
use crate::agents::usage::{self, UsageOutcome};

/// Input: one mode byte, then an upstream answer. Mode even: the answer is a server-sent event stream, cut into
/// chunks at the mode byte's value as a stride (1–128 bytes), fed to [`SseUsage`]. Mode odd: the answer is a JSON
/// body for [`usage::normalise_json`]. Returns whether usage was found.
///
/// Oracles, SSE: chunking does not change the output or the outcome; without an added event the output is the input
/// byte for byte; with one, the output is the input with exactly one `data:` event inserted, whose top-level
/// `usage` holds the outcome's three counts. JSON: a body is changed only when normalised; then it is a JSON object
/// with the same top-level keys (plus `usage`), every key but `usage` unchanged, and `usage` holding the counts with
/// `total_tokens` derived consistently when the upstream gave no total.
pub fn agents_stream(data: &[u8]) -> bool {
    let Some((&mode, answer)) = data.split_first() else {
        return false;
    };
    if mode % 2 == 1 {
        return json(answer);
    }
    let stride = usize::from(mode / 2 % 128) + 1;
    let (chunked, outcome) = filter(answer.chunks(stride));
    let (whole, whole_outcome) = filter(std::iter::once(answer));
    assert_eq!(chunked, whole, "chunking changed the output");
    assert_eq!(outcome, whole_outcome, "chunking changed the outcome");
    match &outcome {
        UsageOutcome::Normalised(u) => {
            let prefix = chunked.iter().zip(answer).take_while(|(a, b)| a == b).count();
            let added = chunked.len().checked_sub(answer.len()).filter(|n| *n > 0).expect("an added event adds bytes");
            let prefix = prefix.min(answer.len());
            // Several splits can restore the input (the insertion may be rotated against equal bytes around it);
            // one of them must be a whole data event with the counts.
            let found = (0..=prefix)
                .filter(|&k| chunked[..k] == answer[..k] && chunked[k + added..] == answer[k..])
                .any(|k| inserted_usage(&chunked[k..k + added]) == Some(u.tokens));
            assert!(found, "the output is not the input with one usage event inserted");
        }
        _ => assert_eq!(chunked, answer, "a stream without an added event must pass unchanged"),
    }
    outcome.usage().is_some()
}

/// The counts of an inserted `data: {…"usage":{…}}` event.
fn inserted_usage(bytes: &[u8]) -> Option<usage::TokenUsage> {
    let text = std::str::from_utf8(bytes).ok()?;
    let event: Value = serde_json::from_str(text.trim_end().strip_prefix("data: ")?).ok()?;
    let n = |k: &str| event["usage"][k].as_u64();
    Some(usage::TokenUsage {
        prompt_tokens: n("prompt_tokens")?,
        completion_tokens: n("completion_tokens")?,
        total_tokens: n("total_tokens")?,
    })
}

fn filter<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<u8>, UsageOutcome) {
    let mut sse = SseUsage::new();
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(sse.push(chunk));
    }
    let (tail, outcome) = sse.finish();
    out.extend(tail);
    (out, outcome)
}

fn json(body: &[u8]) -> bool {
    let (changed, outcome) = usage::normalise_json(body);
    match (&changed, &outcome) {
        (None, _) => {}
        (Some(bytes), UsageOutcome::Normalised(u)) => {
            let before: Value = serde_json::from_slice(body).expect("only JSON is normalised");
            let after: Value = serde_json::from_slice(bytes).expect("the normalised body is JSON");
            let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
                panic!("only objects are normalised");
            };
            for (k, v) in before {
                if k != "usage" {
                    assert_eq!(after.get(k), Some(v), "key {k} changed");
                }
            }
            assert_eq!(after.len(), before.len() + usize::from(!before.contains_key("usage")));
            let n = |k: &str| after["usage"][k].as_u64();
            assert_eq!(n("prompt_tokens"), Some(u.tokens.prompt_tokens));
            assert_eq!(n("completion_tokens"), Some(u.tokens.completion_tokens));
            assert_eq!(n("total_tokens"), Some(u.tokens.total_tokens));
        }
        (Some(_), other) => panic!("a body was changed but the outcome is {other:?}"),
    }
    outcome.usage().is_some()
}
