//! What a request gets, as a pure function of the request, the config, its sequence number and the time: the
//! answer's status, its body or its events, and the usage it reports. The I/O (delays, the gate, writing the
//! events) is the caller's.

use super::{
    CHAT_COMPLETIONS_PATH, COMPLETIONS_PATH, DEFAULT_MAX_TOKENS, EMBEDDINGS_PATH, MAX_COMPLETION_TOKENS, MODELS_PATH,
    Model, RESPONSES_PATH, ReportedUsage, UpstreamConfig,
};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// What the handler knows of a request.
pub(super) struct Request<'a> {
    pub(super) method: &'a Method,
    pub(super) path: &'a str,
    pub(super) headers: &'a http::HeaderMap,
    /// The body passed [`super::MAX_BODY_BYTES`].
    pub(super) body_too_large: bool,
    /// The body as JSON (`None`: empty or not JSON).
    pub(super) json: Option<&'a Value>,
    /// `stream_options.include_usage == true`.
    pub(super) include_usage: bool,
}

/// The answer to give.
pub(super) struct Outcome {
    /// The status (`None`: no answer, `hang`).
    pub(super) status: Option<StatusCode>,
    /// The usage the answer carries, see [`super::Received::reported_usage`].
    pub(super) reported: Option<ReportedUsage>,
    /// How to answer.
    pub(super) plan: Plan,
}

/// How to answer.
pub(super) enum Plan {
    /// A JSON document, after `delay`.
    Json { status: StatusCode, body: Value, delay: Duration },
    /// `200` with server-sent events.
    Stream(StreamPlan),
    /// Nothing, ever.
    Hang,
}

/// A `text/event-stream` answer: its head after `head_delay`, then each event as its own HTTP chunk, `chunk_delay`
/// apart.
pub(super) struct StreamPlan {
    /// The wait before the response head (`slow`).
    pub(super) head_delay: Duration,
    /// The pause between two events.
    pub(super) chunk_delay: Duration,
    /// The events, each a complete SSE event (ending with its blank line).
    pub(super) events: Vec<Bytes>,
    /// Wait at the gate after the first event (`gated`).
    pub(super) gated: bool,
    /// Break the body (an error instead of a clean end) after this many events (`error-mid-stream`).
    pub(super) break_after: Option<usize>,
}

/// The endpoints served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    Responses,
    Models,
}

impl Endpoint {
    fn route(method: &Method, path: &str) -> Option<Self> {
        match (method, path) {
            (&Method::POST, CHAT_COMPLETIONS_PATH) => Some(Self::ChatCompletions),
            (&Method::POST, COMPLETIONS_PATH) => Some(Self::Completions),
            (&Method::POST, EMBEDDINGS_PATH) => Some(Self::Embeddings),
            (&Method::POST, RESPONSES_PATH) => Some(Self::Responses),
            (&Method::GET, MODELS_PATH) => Some(Self::Models),
            _ => None,
        }
    }
}

/// An OpenAI-style error body.
pub(super) fn error_body(message: &str, kind: &str, code: &str) -> Value {
    json!({ "error": { "message": message, "type": kind, "code": code } })
}

fn error(status: StatusCode, message: &str, kind: &str, code: &str) -> Outcome {
    let body = error_body(message, kind, code);
    Outcome { status: Some(status), reported: None, plan: Plan::Json { status, body, delay: Duration::ZERO } }
}

/// Whether `Authorization` is `Bearer <key>` (the scheme case-insensitive, as RFC 9110 has it).
fn authorized(headers: &http::HeaderMap, key: &str) -> bool {
    let Some(value) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    match value.split_once(' ') {
        Some((scheme, token)) => scheme.eq_ignore_ascii_case("bearer") && token.trim() == key,
        None => false,
    }
}

/// The answer to `request`, the `seq`-th request, at `created` (Unix seconds).
pub(super) fn respond(config: &UpstreamConfig, request: &Request<'_>, seq: u64, created: u64) -> Outcome {
    if let Some(key) = &config.api_key
        && !authorized(request.headers, key)
    {
        return error(StatusCode::UNAUTHORIZED, "invalid api key", "invalid_request_error", "invalid_api_key");
    }
    let Some(endpoint) = Endpoint::route(request.method, request.path) else {
        return error(StatusCode::NOT_FOUND, "unknown endpoint", "invalid_request_error", "not_found");
    };
    if endpoint == Endpoint::Models {
        let data: Vec<Value> = Model::ALL
            .iter()
            .map(|m| json!({ "id": m.name(), "object": "model", "created": 0, "owned_by": "koogallery-mock" }))
            .collect();
        let body = json!({ "object": "list", "data": data });
        return Outcome {
            status: Some(StatusCode::OK),
            reported: None,
            plan: Plan::Json { status: StatusCode::OK, body, delay: Duration::ZERO },
        };
    }
    if request.body_too_large {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large", "invalid_request_error", "too_large");
    }
    let Some(body) = request.json.filter(|j| j.is_object()) else {
        let message = "the body is not a JSON object";
        return error(StatusCode::BAD_REQUEST, message, "invalid_request_error", "invalid_json");
    };
    let model_name = body.get("model").and_then(Value::as_str).unwrap_or(Model::Default.name());
    let call = Call {
        endpoint,
        model: Model::from_name(model_name),
        model_name,
        seq,
        created,
        prompt_tokens: prompt_tokens(body),
        completion_tokens: completion_tokens(body, endpoint),
        include_usage: request.include_usage,
    };
    match call.model {
        Model::Error500 => {
            let message = "mock upstream failure";
            return error(StatusCode::INTERNAL_SERVER_ERROR, message, "server_error", "internal_error");
        }
        Model::Error400 => {
            let message = "mock bad request";
            return error(StatusCode::BAD_REQUEST, message, "invalid_request_error", "bad_request");
        }
        Model::Hang => return Outcome { status: None, reported: None, plan: Plan::Hang },
        _ => {}
    }
    let delay = if call.model == Model::Slow { config.chunk_delay * 10 } else { Duration::ZERO };
    let usage = ReportedUsage::new(call.prompt_tokens, call.completion_tokens);
    if body.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        let reported = match call.model {
            Model::NoUsage | Model::ErrorMidStream => None,
            Model::UsageAnthropic | Model::UsageEveryChunk => Some(usage),
            _ => call.include_usage.then_some(usage),
        };
        let events = call.events();
        let plan = StreamPlan {
            head_delay: delay,
            chunk_delay: config.chunk_delay,
            events,
            gated: call.model == Model::Gated,
            break_after: (call.model == Model::ErrorMidStream).then_some(2),
        };
        Outcome { status: Some(StatusCode::OK), reported, plan: Plan::Stream(plan) }
    } else {
        let reported = (call.model != Model::NoUsage).then_some(usage);
        let plan = Plan::Json { status: StatusCode::OK, body: call.json_body(), delay };
        Outcome { status: Some(StatusCode::OK), reported, plan }
    }
}

/// The whitespace-separated words of the prompt: `messages`, `prompt` and `input`, each a string, an array, or
/// objects whose `content` / `text` are (chat messages, content parts, Responses input items).
fn prompt_tokens(body: &Value) -> u64 {
    ["messages", "prompt", "input"].iter().filter_map(|key| body.get(key)).map(words).sum()
}

fn words(value: &Value) -> u64 {
    match value {
        Value::String(text) => text.split_whitespace().count() as u64,
        Value::Array(items) => items.iter().map(words).sum(),
        Value::Object(fields) => ["content", "text"].into_iter().filter_map(|key| fields.get(key)).map(words).sum(),
        _ => 0,
    }
}

/// `max_tokens` (or `max_completion_tokens`, `max_output_tokens`), default [`DEFAULT_MAX_TOKENS`], capped at
/// [`MAX_COMPLETION_TOKENS`]; embeddings complete nothing.
fn completion_tokens(body: &Value, endpoint: Endpoint) -> u64 {
    if endpoint == Endpoint::Embeddings {
        return 0;
    }
    ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .find_map(|key| body.get(key)?.as_u64())
        .unwrap_or(DEFAULT_MAX_TOKENS)
        .min(MAX_COMPLETION_TOKENS)
}

/// One request to answer.
struct Call<'a> {
    endpoint: Endpoint,
    model: Model,
    /// The `model` as sent (echoed in the answer).
    model_name: &'a str,
    seq: u64,
    created: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    include_usage: bool,
}

impl Call<'_> {
    fn id(&self) -> String {
        format!("chatcmpl-mock-{}", self.seq)
    }

    /// The reply: `w1 w2 … wN`.
    fn text(&self) -> String {
        (1..=self.completion_tokens).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ")
    }

    /// The reply's pieces as streamed: `"w1 "`, `"w2 "`, …, `"wN"` (concatenated: [`Call::text`]).
    fn pieces(&self) -> Vec<String> {
        let n = self.completion_tokens;
        (1..=n).map(|i| if i < n { format!("w{i} ") } else { format!("w{i}") }).collect()
    }

    /// The usage object in OpenAI's shape (embeddings: no `completion_tokens`) for `completion` tokens so far,
    /// with `usage-extra`'s extras.
    fn openai_usage(&self, completion: u64) -> Value {
        let p = self.prompt_tokens;
        let mut usage = if self.endpoint == Endpoint::Embeddings {
            json!({ "prompt_tokens": p, "total_tokens": p })
        } else {
            json!({ "prompt_tokens": p, "completion_tokens": completion, "total_tokens": p + completion })
        };
        if self.model == Model::UsageExtra {
            usage["image_count"] = json!(2);
            usage["video_duration"] = json!(3.5);
        }
        usage
    }

    /// The top-level usage object of the default shapes and of the usage chunk (`None`: `no-usage`).
    fn top_usage(&self) -> Option<Value> {
        match self.model {
            Model::NoUsage => None,
            Model::UsageInputOutput => {
                Some(json!({ "input_tokens": self.prompt_tokens, "output_tokens": self.completion_tokens }))
            }
            _ => Some(self.openai_usage(self.completion_tokens)),
        }
    }

    /// The JSON answer.
    fn json_body(&self) -> Value {
        let (p, c) = (self.prompt_tokens, self.completion_tokens);
        match self.model {
            Model::UsageNested => json!({
                "id": format!("resp-mock-{}", self.seq),
                "response": {
                    "output_text": self.text(),
                    "usage": { "input_tokens": p, "output_tokens": c, "total_tokens": p + c },
                },
            }),
            Model::UsageGemini => json!({
                "candidates": [{
                    "content": { "role": "model", "parts": [{ "text": self.text() }] },
                    "finishReason": "STOP",
                    "index": 0,
                }],
                "usageMetadata": { "promptTokenCount": p, "candidatesTokenCount": c, "totalTokenCount": p + c },
                "modelVersion": self.model_name,
            }),
            _ => {
                let mut body = if self.endpoint == Endpoint::Embeddings {
                    json!({
                        "object": "list",
                        "data": [{ "object": "embedding", "index": 0, "embedding": [0.0, 0.5, 1.0] }],
                        "model": self.model_name,
                    })
                } else {
                    json!({
                        "id": self.id(),
                        "object": "chat.completion",
                        "created": self.created,
                        "model": self.model_name,
                        "choices": [{
                            "index": 0,
                            "message": { "role": "assistant", "content": self.text() },
                            "finish_reason": "stop",
                        }],
                    })
                };
                if let Some(usage) = self.top_usage() {
                    body["usage"] = usage;
                }
                body
            }
        }
    }

    /// A `chat.completion.chunk` with `choices` and, if given, `usage`.
    fn chunk(&self, choices: Value, usage: Option<Value>) -> Value {
        let mut chunk = json!({
            "id": self.id(),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model_name,
            "choices": choices,
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage;
        }
        chunk
    }

    /// The stream's events, framed.
    fn events(&self) -> Vec<Bytes> {
        let crlf = self.model == Model::Crlf;
        let sse = |event: Option<&str>, data: &str| sse(event, data, crlf);
        if self.model == Model::UsageAnthropic {
            return self.anthropic_events();
        }
        let every_chunk = self.model == Model::UsageEveryChunk;
        // With `include_usage`, OpenAI puts `"usage": null` on every chunk but the usage chunk.
        let usage_chunk = if every_chunk || !self.include_usage { None } else { self.top_usage() };
        let null_usage = usage_chunk.is_some().then_some(Value::Null);
        let mut events = Vec::new();
        for (i, piece) in self.pieces().into_iter().enumerate() {
            let usage = if every_chunk { Some(self.openai_usage(i as u64 + 1)) } else { null_usage.clone() };
            let choices = json!([{ "index": 0, "delta": { "content": piece }, "finish_reason": null }]);
            events.push(sse(None, &self.chunk(choices, usage).to_string()));
        }
        let usage = if every_chunk { Some(self.openai_usage(self.completion_tokens)) } else { null_usage };
        let choices = json!([{ "index": 0, "delta": {}, "finish_reason": "stop" }]);
        events.push(sse(None, &self.chunk(choices, usage).to_string()));
        if let Some(usage) = usage_chunk {
            events.push(sse(None, &self.chunk(json!([]), Some(usage)).to_string()));
        }
        events.push(sse(None, "[DONE]"));
        events
    }

    /// Anthropic's Messages stream: `message_start` (input tokens), a `content_block_delta` per piece,
    /// `message_delta` (output tokens), `message_stop`; no `[DONE]`.
    fn anthropic_events(&self) -> Vec<Bytes> {
        let mut events = Vec::new();
        let start = json!({
            "type": "message_start",
            "message": {
                "id": format!("msg_mock_{}", self.seq),
                "type": "message",
                "role": "assistant",
                "model": self.model_name,
                "content": [],
                "stop_reason": null,
                "usage": { "input_tokens": self.prompt_tokens, "output_tokens": 1 },
            },
        });
        events.push(sse(Some("message_start"), &start.to_string(), false));
        for piece in self.pieces() {
            let delta = json!({
                "type": "content_block_delta",
                "index": 0,
                "delta": { "type": "text_delta", "text": piece },
            });
            events.push(sse(Some("content_block_delta"), &delta.to_string(), false));
        }
        let delta = json!({
            "type": "message_delta",
            "delta": { "stop_reason": "end_turn" },
            "usage": { "output_tokens": self.completion_tokens },
        });
        events.push(sse(Some("message_delta"), &delta.to_string(), false));
        events.push(sse(Some("message_stop"), &json!({ "type": "message_stop" }).to_string(), false));
        events
    }
}

/// One server-sent event: an optional `event:` line, a `data:` line, a blank line; `\r\n` line endings if `crlf`.
fn sse(event: Option<&str>, data: &str, crlf: bool) -> Bytes {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut text = String::new();
    if let Some(event) = event {
        text.push_str(&format!("event: {event}{eol}"));
    }
    text.push_str(&format!("data: {data}{eol}{eol}"));
    Bytes::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(body: Value) -> Outcome {
        let headers = http::HeaderMap::new();
        let request = Request {
            method: &Method::POST,
            path: CHAT_COMPLETIONS_PATH,
            headers: &headers,
            body_too_large: false,
            json: Some(&body),
            include_usage: false,
        };
        respond(&UpstreamConfig::default(), &request, 7, 1_700_000_000)
    }

    #[test]
    fn upstream_prompt_words_count_every_text_shape() {
        let body = json!({
            "messages": [
                { "role": "system", "content": "be  brief" },
                { "role": "user", "content": [{ "type": "text", "text": "one two three" }, { "type": "image_url" }] },
            ],
            "prompt": ["a b", "c"],
            "input": "x",
        });
        assert_eq!(prompt_tokens(&body), 2 + 3 + 3 + 1);
        assert_eq!(prompt_tokens(&json!({ "input": [1, 2, 3] })), 0);
    }

    #[test]
    fn upstream_completion_tokens_default_cap_and_aliases() {
        let chat = Endpoint::ChatCompletions;
        assert_eq!(completion_tokens(&json!({}), chat), DEFAULT_MAX_TOKENS);
        assert_eq!(completion_tokens(&json!({ "max_tokens": 5000 }), chat), MAX_COMPLETION_TOKENS);
        assert_eq!(completion_tokens(&json!({ "max_completion_tokens": 2 }), chat), 2);
        assert_eq!(completion_tokens(&json!({ "max_output_tokens": 4 }), chat), 4);
        assert_eq!(completion_tokens(&json!({ "max_tokens": -1 }), chat), DEFAULT_MAX_TOKENS);
        assert_eq!(completion_tokens(&json!({ "max_tokens": 9 }), Endpoint::Embeddings), 0);
    }

    #[test]
    fn upstream_stream_pieces_concatenate_to_the_json_text() {
        let outcome = call(json!({ "model": "x", "messages": [{ "content": "hi" }], "max_tokens": 3, "stream": true }));
        let Plan::Stream(plan) = outcome.plan else { panic!("not a stream") };
        let mut text = String::new();
        for event in &plan.events {
            let data = std::str::from_utf8(event).expect("utf-8").trim_end().trim_start_matches("data: ");
            if data == "[DONE]" {
                continue;
            }
            let chunk: Value = serde_json::from_str(data).expect("json");
            text.push_str(chunk["choices"][0]["delta"]["content"].as_str().unwrap_or_default());
        }
        assert_eq!(text, "w1 w2 w3");
        assert_eq!(outcome.reported, None, "no include_usage, no usage chunk");
    }

    #[test]
    fn upstream_model_names_round_trip() {
        for model in Model::ALL {
            assert_eq!(Model::from_name(model.name()), model);
        }
        assert_eq!(Model::from_name("gpt-4o"), Model::Default);
        assert_eq!(Model::from_name("HANG"), Model::Default);
    }

    #[test]
    fn upstream_bearer_scheme_is_case_insensitive_and_key_exact() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("bearer k1"));
        assert!(authorized(&headers, "k1"));
        assert!(!authorized(&headers, "k"));
        headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("Basic k1"));
        assert!(!authorized(&headers, "k1"));
        assert!(!authorized(&http::HeaderMap::new(), "k1"));
    }
}
