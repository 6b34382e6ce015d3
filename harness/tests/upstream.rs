//! The mock model server over real HTTP: each usage shape and its numbers, the API key, streams (default, usage
//! chunk, Anthropic, CRLF, gated, broken, timing), errors, hang and slow.

#[path = "common/mock_client.rs"]
mod mock_client;

use bytes::Bytes;
use harness::upstream::{MockUpstream, Model, ReportedUsage, UpstreamConfig};
use http_body_util::BodyExt as _;
use mock_client::Answer;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

async fn start(config: UpstreamConfig) -> MockUpstream {
    MockUpstream::start(SocketAddr::from(([127, 0, 0, 1], 0)), config).await.expect("starts")
}

/// Sends one request on a fresh HTTP/1.1 connection; the response with its body unread.
async fn open(
    mock: &MockUpstream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> http::Response<hyper::body::Incoming> {
    mock_client::open(mock.addr(), method, path, headers, body).await
}

/// Sends one request and reads the whole answer.
async fn send(mock: &MockUpstream, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    mock_client::send(mock.addr(), method, path, headers, body).await
}

async fn post(mock: &MockUpstream, path: &str, body: &Value) -> Answer {
    send(mock, "POST", path, &[("content-type", "application/json")], &body.to_string()).await
}

/// A chat request of `model` with a 5-word prompt (3 + 2 words in two messages) and `max_tokens: 3`.
fn chat(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            { "role": "system", "content": "be brief please" },
            { "role": "user", "content": "hello there" },
        ],
        "max_tokens": 3,
    })
}

fn streamed(model: &str, include_usage: bool) -> Value {
    let mut body = chat(model);
    body["stream"] = json!(true);
    if include_usage {
        body["stream_options"] = json!({ "include_usage": true });
    }
    body
}

/// The counts of [`chat`]: 5 prompt words, 3 reply words.
const P: u64 = 5;
const C: u64 = 3;

/// Whether `key` appears anywhere in `value` (any depth).
fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(fields) => fields.iter().any(|(k, v)| k == key || has_key(v, key)),
        Value::Array(items) => items.iter().any(|v| has_key(v, key)),
        _ => false,
    }
}

/// One server-sent event.
#[derive(Debug)]
struct Event {
    event: Option<String>,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("event data {:?} is not JSON: {e}", self.data))
    }
}

/// Parses an event stream with `\n` line endings (events separated by a blank line).
fn parse_sse(text: &str) -> Vec<Event> {
    assert!(text.ends_with("\n\n"), "the stream ends with a complete event: {text:?}");
    text.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut event = Event { event: None, data: String::new() };
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event.event = Some(name.to_owned());
                } else if let Some(data) = line.strip_prefix("data: ") {
                    event.data.push_str(data);
                } else {
                    panic!("unexpected line {line:?} in {block:?}");
                }
            }
            event
        })
        .collect()
}

/// The concatenated `delta.content` of OpenAI chunks.
fn streamed_text(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .filter_map(|e| e.json()["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

async fn stream_text(mock: &MockUpstream, body: &Value) -> (Answer, Vec<Event>) {
    let answer = post(mock, "/v1/chat/completions", body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "text/event-stream");
    let events = parse_sse(std::str::from_utf8(&answer.body).expect("UTF-8"));
    (answer, events)
}

/// Reads the next body frame's data within `limit` (`None`: the body ended; panics on a timeout or an error).
async fn next_data(body: &mut hyper::body::Incoming, limit: Duration) -> Option<Bytes> {
    loop {
        let frame = tokio::time::timeout(limit, body.frame()).await.expect("a frame in time")?;
        if let Ok(data) = frame.expect("a good frame").into_data() {
            return Some(data);
        }
    }
}

#[tokio::test]
async fn upstream_default_json_shape_and_numbers() {
    let mock = start(UpstreamConfig::default()).await;
    assert!(mock.base_url().starts_with("http://127.0.0.1:"));
    let answer = send(
        &mock,
        "POST",
        "/v1/chat/completions?api-version=1",
        &[("content-type", "application/json"), ("x-trace", "t-1")],
        &chat("gpt-mock").to_string(),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "application/json");
    let body = answer.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-mock");
    assert!(body["id"].as_str().is_some_and(|id| id.starts_with("chatcmpl-mock-")));
    assert_eq!(body["choices"][0]["message"]["content"], "w1 w2 w3");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"], json!({ "prompt_tokens": P, "completion_tokens": C, "total_tokens": P + C }));

    let received = mock.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.query.as_str()),
        ("POST", "/v1/chat/completions", "api-version=1")
    );
    assert_eq!(r.header("X-Trace"), Some("t-1"));
    assert_eq!(r.json.as_ref(), Some(&chat("gpt-mock")));
    assert_eq!(r.body, Bytes::from(chat("gpt-mock").to_string()));
    assert_eq!(r.model(), Some("gpt-mock"));
    assert_eq!(r.status, Some(200));
    assert!(!r.include_usage_requested);
    assert_eq!(r.reported_usage, Some(ReportedUsage { prompt_tokens: P, completion_tokens: C, total_tokens: P + C }));
    assert!(r.first_event_at.is_none());
    assert!(r.finished_at.is_some());

    // A real model name is the default too; the name is echoed.
    let answer = post(&mock, "/v1/chat/completions", &chat("gpt-4o-mini")).await;
    assert_eq!(answer.json()["model"], "gpt-4o-mini");
    assert_eq!(answer.json()["usage"]["total_tokens"], P + C);
    mock.clear_records();
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn upstream_json_usage_shapes() {
    let mock = start(UpstreamConfig::default()).await;
    let path = "/v1/chat/completions";

    let body = post(&mock, path, &chat("usage-input-output")).await.json();
    assert_eq!(body["usage"], json!({ "input_tokens": P, "output_tokens": C }));
    assert_eq!(body["choices"][0]["message"]["content"], "w1 w2 w3");

    let body = post(&mock, path, &chat("usage-nested")).await.json();
    assert!(body.get("usage").is_none(), "{body}");
    assert!(body["id"].is_string());
    assert_eq!(body["response"]["output_text"], "w1 w2 w3");
    assert_eq!(body["response"]["usage"], json!({ "input_tokens": P, "output_tokens": C, "total_tokens": P + C }));

    let body = post(&mock, path, &chat("usage-gemini")).await.json();
    assert!(body.get("usage").is_none(), "{body}");
    assert_eq!(body["candidates"][0]["content"]["parts"][0]["text"], "w1 w2 w3");
    let expected = json!({ "promptTokenCount": P, "candidatesTokenCount": C, "totalTokenCount": P + C });
    assert_eq!(body["usageMetadata"], expected);

    let body = post(&mock, path, &chat("usage-extra")).await.json();
    let expected = json!({
        "prompt_tokens": P, "completion_tokens": C, "total_tokens": P + C, "image_count": 2, "video_duration": 3.5
    });
    assert_eq!(body["usage"], expected);

    let body = post(&mock, path, &chat("no-usage")).await.json();
    assert_eq!(body["choices"][0]["message"]["content"], "w1 w2 w3");
    for key in ["usage", "usageMetadata", "prompt_tokens", "input_tokens"] {
        assert!(!has_key(&body, key), "{key} in {body}");
    }

    let reported: Vec<_> = mock.received().iter().map(|r| r.reported_usage).collect();
    let usage = Some(ReportedUsage::new(P, C));
    assert_eq!(reported, [usage, usage, usage, usage, None]);
}

#[tokio::test]
async fn upstream_other_endpoints_count_their_prompts() {
    let mock = start(UpstreamConfig::default()).await;

    let body = json!({ "model": "gpt-mock", "prompt": ["one two", "three"], "max_tokens": 2 });
    let answer = post(&mock, "/v1/completions", &body).await.json();
    assert_eq!(answer["usage"], json!({ "prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5 }));
    assert_eq!(answer["choices"][0]["message"]["content"], "w1 w2");

    let body = json!({ "model": "gpt-mock", "input": "a b c d" });
    let answer = post(&mock, "/v1/responses", &body).await.json();
    assert_eq!(answer["usage"], json!({ "prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9 }));
    assert_eq!(answer["choices"][0]["message"]["content"], "w1 w2 w3 w4 w5", "default max_tokens 5");

    let body = json!({ "model": "text-embedding-mock", "input": ["a b", "c d e"] });
    let answer = post(&mock, "/v1/embeddings", &body).await.json();
    assert_eq!(answer["usage"], json!({ "prompt_tokens": 5, "total_tokens": 5 }));
    assert_eq!(answer["object"], "list");
    assert!(answer["data"][0]["embedding"].is_array());

    let body = json!({ "model": "gpt-mock", "messages": [{ "role": "user", "content": "x" }], "max_tokens": 100000 });
    let answer = post(&mock, "/v1/chat/completions", &body).await.json();
    assert_eq!(answer["usage"]["completion_tokens"], 1000, "max_tokens is capped");

    let answer = send(&mock, "GET", "/v1/models", &[], "").await;
    assert_eq!(answer.status, 200);
    let models = answer.json();
    let ids: Vec<&str> = models["data"].as_array().expect("data").iter().filter_map(|m| m["id"].as_str()).collect();
    let names: Vec<&str> = Model::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(ids, names);
    assert!(!has_key(&models, "usage"));

    let reported: Vec<_> = mock.received().iter().map(|r| r.reported_usage).collect();
    let expected = [Some(ReportedUsage::new(3, 2)), Some(ReportedUsage::new(4, 5)), Some(ReportedUsage::new(5, 0))];
    assert_eq!(reported[..3], expected);
    assert_eq!(reported[4], None);
}

#[tokio::test]
async fn upstream_errors_and_unknown_paths() {
    let mock = start(UpstreamConfig::default()).await;
    let path = "/v1/chat/completions";

    let answer = post(&mock, path, &chat("error-500")).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.json()["error"]["type"], "server_error");
    assert!(answer.json()["error"]["message"].is_string());

    let answer = post(&mock, path, &streamed("error-400", true)).await;
    assert_eq!(answer.status, 400, "errors come before any stream");
    assert_eq!(answer.header("content-type"), "application/json");
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");

    let answer = send(&mock, "POST", path, &[("content-type", "application/json")], "{not json").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");

    let answer = send(&mock, "GET", "/v1/nothing", &[], "").await;
    assert_eq!(answer.status, 404);
    assert!(answer.json()["error"]["message"].is_string());
    let answer = send(&mock, "GET", path, &[], "").await;
    assert_eq!(answer.status, 404, "chat completions is POST only");

    let received = mock.received();
    let statuses: Vec<_> = received.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(500), Some(400), Some(400), Some(404), Some(404)]);
    assert!(received.iter().all(|r| r.reported_usage.is_none()));
    assert!(received[1].include_usage_requested);
    assert!(received[2].json.is_none());
}

#[tokio::test]
async fn upstream_api_key_refused_and_accepted() {
    let config = UpstreamConfig { api_key: Some("sk-mock".to_owned()), ..UpstreamConfig::default() };
    assert!(!format!("{config:?}").contains("sk-mock"), "Debug redacts the key");
    let mock = start(config).await;
    let body = chat("gpt-mock").to_string();
    let path = "/v1/chat/completions";
    let expected = json!({
        "error": { "message": "invalid api key", "type": "invalid_request_error", "code": "invalid_api_key" }
    });

    for headers in [vec![], vec![("authorization", "Bearer sk-other")], vec![("authorization", "sk-mock")]] {
        let answer = send(&mock, "POST", path, &headers, &body).await;
        assert_eq!(answer.status, 401, "{headers:?}");
        assert_eq!(answer.json(), expected);
    }
    let answer = send(&mock, "GET", "/v1/models", &[], "").await;
    assert_eq!(answer.status, 401, "the model list needs the key too");

    let answer = send(&mock, "POST", path, &[("authorization", "Bearer sk-mock")], &body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["usage"]["total_tokens"], P + C);
    let received = mock.received();
    assert_eq!(received.len(), 5, "refused requests are recorded too");
    assert_eq!(received[4].header("authorization"), Some("Bearer sk-mock"));
    assert_eq!(received[4].reported_usage, Some(ReportedUsage::new(P, C)));
}

#[tokio::test]
async fn upstream_stream_without_include_usage_has_no_usage_chunk() {
    let mock = start(UpstreamConfig { chunk_delay: Duration::from_millis(1), ..UpstreamConfig::default() }).await;
    let (answer, events) = stream_text(&mock, &streamed("gpt-mock", false)).await;
    assert!(answer.header("content-length").is_empty(), "chunked, not buffered");
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    assert_eq!(events.len(), 3 + 1 + 1, "3 words, the stop chunk, [DONE]");
    for event in &events[..4] {
        assert_eq!(event.event, None);
        let chunk = event.json();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert!(chunk.get("usage").is_none(), "{chunk}");
    }
    assert_eq!(events[0].json()["choices"][0]["delta"], json!({ "content": "w1 " }));
    assert_eq!(events[0].json()["choices"][0]["finish_reason"], Value::Null);
    assert_eq!(events[3].json()["choices"][0]["finish_reason"], "stop");
    assert_eq!(streamed_text(&events), "w1 w2 w3");
    let received = mock.received();
    assert!(!received[0].include_usage_requested);
    assert_eq!(received[0].reported_usage, None);
    assert!(received[0].first_event_at.is_some() && received[0].finished_at.is_some());
}

#[tokio::test]
async fn upstream_stream_with_include_usage_ends_with_the_usage_chunk() {
    let mock = start(UpstreamConfig { chunk_delay: Duration::from_millis(1), ..UpstreamConfig::default() }).await;
    let (_, events) = stream_text(&mock, &streamed("gpt-mock", true)).await;
    assert_eq!(events.len(), 3 + 1 + 1 + 1, "3 words, the stop chunk, the usage chunk, [DONE]");
    assert_eq!(events[5].data, "[DONE]");
    let last = events[4].json();
    assert_eq!(last["object"], "chat.completion.chunk");
    assert!(last["id"].as_str().is_some_and(|id| id.starts_with("chatcmpl-mock-")));
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], json!({ "prompt_tokens": P, "completion_tokens": C, "total_tokens": P + C }));
    for event in &events[..4] {
        assert_eq!(event.json()["usage"], Value::Null, "as OpenAI: usage null on the other chunks");
        assert!(event.json().as_object().is_some_and(|o| o.contains_key("usage")));
    }
    assert_eq!(streamed_text(&events), "w1 w2 w3");
    let received = mock.received();
    assert!(received[0].include_usage_requested);
    assert_eq!(received[0].reported_usage, Some(ReportedUsage::new(P, C)));
}

#[tokio::test]
async fn upstream_stream_usage_variants() {
    let mock = start(UpstreamConfig { chunk_delay: Duration::from_millis(1), ..UpstreamConfig::default() }).await;

    let (_, events) = stream_text(&mock, &streamed("no-usage", true)).await;
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    assert!(events.iter().filter(|e| e.data != "[DONE]").all(|e| !has_key(&e.json(), "usage")));

    let (_, events) = stream_text(&mock, &streamed("usage-every-chunk", false)).await;
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    let usages: Vec<Value> = events.iter().filter(|e| e.data != "[DONE]").map(|e| e.json()["usage"].clone()).collect();
    assert_eq!(usages.len(), 4);
    for (i, usage) in usages.iter().enumerate() {
        let c = (i as u64 + 1).min(C);
        assert_eq!(usage, &json!({ "prompt_tokens": P, "completion_tokens": c, "total_tokens": P + c }), "chunk {i}");
    }

    let (_, events) = stream_text(&mock, &streamed("usage-input-output", true)).await;
    assert_eq!(events[events.len() - 2].json()["usage"], json!({ "input_tokens": P, "output_tokens": C }));

    let (_, events) = stream_text(&mock, &streamed("usage-extra", true)).await;
    let usage = &events[events.len() - 2].json()["usage"];
    assert_eq!((usage["total_tokens"].as_u64(), usage["image_count"].as_u64()), (Some(P + C), Some(2)));

    let reported: Vec<_> = mock.received().iter().map(|r| r.reported_usage).collect();
    let usage = Some(ReportedUsage::new(P, C));
    assert_eq!(reported, [None, usage, usage, usage]);
}

#[tokio::test]
async fn upstream_stream_anthropic_events() {
    let mock = start(UpstreamConfig { chunk_delay: Duration::from_millis(1), ..UpstreamConfig::default() }).await;
    let (_, events) = stream_text(&mock, &streamed("usage-anthropic", false)).await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().expect("an event: line")).collect();
    let expected = [
        "message_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "message_delta",
        "message_stop",
    ];
    assert_eq!(names, expected);
    assert!(events.iter().all(|e| e.data != "[DONE]"));
    for event in &events {
        assert_eq!(event.json()["type"].as_str(), event.event.as_deref(), "type matches the event name");
    }
    let start = events[0].json();
    assert_eq!(start["message"]["usage"], json!({ "input_tokens": P, "output_tokens": 1 }));
    assert!(start["message"]["id"].is_string());
    assert_eq!(events[1].json()["delta"], json!({ "type": "text_delta", "text": "w1 " }));
    let text: String =
        events[1..4].iter().filter_map(|e| e.json()["delta"]["text"].as_str().map(str::to_owned)).collect();
    assert_eq!(text, "w1 w2 w3");
    let delta = events[4].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"], json!({ "output_tokens": C }));
    assert_eq!(mock.received()[0].reported_usage, Some(ReportedUsage::new(P, C)));
}

#[tokio::test]
async fn upstream_stream_crlf_line_endings() {
    let mock = start(UpstreamConfig { chunk_delay: Duration::from_millis(1), ..UpstreamConfig::default() }).await;
    let answer = post(&mock, "/v1/chat/completions", &streamed("crlf", true)).await;
    let text = std::str::from_utf8(&answer.body).expect("UTF-8");
    assert!(text.ends_with("data: [DONE]\r\n\r\n"), "{text:?}");
    let lf = text.matches('\n').count();
    assert!(lf > 0);
    assert_eq!(text.matches("\r\n").count(), lf, "every line ending is CRLF: {text:?}");
    assert_eq!(text.matches("\r\n\r\n").count(), 6, "6 events: {text:?}");
    let events = parse_sse(&text.replace("\r\n", "\n"));
    assert_eq!(events[4].json()["usage"]["total_tokens"], P + C);
    assert_eq!(streamed_text(&events), "w1 w2 w3");
}

#[tokio::test]
async fn upstream_stream_gated_holds_after_the_first_event() {
    let mock = start(UpstreamConfig { chunk_delay: Duration::from_millis(5), ..UpstreamConfig::default() }).await;
    let body = streamed("gated", true).to_string();
    let response = open(&mock, "POST", "/v1/chat/completions", &[], &body).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();

    let first = next_data(&mut body, Duration::from_secs(5)).await.expect("the first event");
    let first = String::from_utf8(first.to_vec()).expect("UTF-8");
    assert!(first.starts_with("data: ") && first.contains(r#""content":"w1 ""#), "{first:?}");
    // Nothing more while the gate is closed.
    let more = tokio::time::timeout(Duration::from_millis(300), body.frame()).await;
    assert!(more.is_err(), "an event passed the closed gate: {more:?}");
    let received = mock.received();
    assert!(received[0].first_event_at.is_some());
    assert!(received[0].finished_at.is_none(), "still at the gate");

    let released = Instant::now();
    mock.release_gate();
    let mut rest = String::new();
    while let Some(data) = next_data(&mut body, Duration::from_secs(5)).await {
        rest.push_str(std::str::from_utf8(&data).expect("UTF-8"));
    }
    let events = parse_sse(&format!("{first}{rest}"));
    assert_eq!(events.len(), 6);
    assert_eq!(events[5].data, "[DONE]");
    assert_eq!(events[4].json()["usage"]["total_tokens"], P + C);
    assert_eq!(streamed_text(&events), "w1 w2 w3");

    let received = mock.received();
    let (first_at, finished_at) = (received[0].first_event_at.expect("first"), received[0].finished_at.expect("done"));
    assert!(first_at < released && released < finished_at);

    // Released: later gated streams pass; closed again, they wait.
    let (_, events) = stream_text(&mock, &streamed("gated", false)).await;
    assert_eq!(events.len(), 5);
    mock.close_gate();
    let response = open(&mock, "POST", "/v1/chat/completions", &[], &streamed("gated", false).to_string()).await;
    let mut body = response.into_body();
    assert!(next_data(&mut body, Duration::from_secs(5)).await.is_some());
    assert!(tokio::time::timeout(Duration::from_millis(200), body.frame()).await.is_err(), "the gate is closed");
}

#[tokio::test]
async fn upstream_stream_error_mid_stream_breaks_the_body() {
    let mock = start(UpstreamConfig { chunk_delay: Duration::from_millis(5), ..UpstreamConfig::default() }).await;
    let body = streamed("error-mid-stream", true).to_string();
    let response = open(&mock, "POST", "/v1/chat/completions", &[], &body).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut data = Vec::new();
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(5), body.frame()).await.expect("in time") {
            Some(Ok(frame)) => data.extend_from_slice(frame.data_ref().map(|d| d.as_ref()).unwrap_or_default()),
            Some(Err(e)) => break e,
            None => panic!("the body ended cleanly after {:?}", String::from_utf8_lossy(&data)),
        }
    };
    let events = parse_sse(std::str::from_utf8(&data).expect("UTF-8"));
    assert_eq!(events.len(), 2, "two events before the break ({error})");
    assert_eq!(streamed_text(&events), "w1 w2 ");
    let received = mock.received();
    assert_eq!(received[0].reported_usage, None);
    assert!(received[0].finished_at.is_some());
}

#[tokio::test]
async fn upstream_stream_events_leave_one_by_one_spaced_by_the_delay() {
    let delay = Duration::from_millis(80);
    let mock = start(UpstreamConfig { chunk_delay: delay, ..UpstreamConfig::default() }).await;
    let mut body = streamed("gpt-mock", true);
    body["max_tokens"] = json!(2);
    let response = open(&mock, "POST", "/v1/chat/completions", &[], &body.to_string()).await;
    let mut body = response.into_body();
    let mut arrivals = Vec::new();
    while let Some(data) = next_data(&mut body, Duration::from_secs(5)).await {
        arrivals.push((Instant::now(), String::from_utf8(data.to_vec()).expect("UTF-8")));
    }
    let texts: Vec<&str> = arrivals.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(arrivals.len(), 2 + 1 + 1 + 1, "one read per event: {texts:?}");
    for text in &texts {
        assert_eq!(parse_sse(text).len(), 1, "{text:?} is one event");
    }
    for pair in arrivals.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= delay / 2, "events {:?} and {:?} only {gap:?} apart", pair[0].1, pair[1].1);
    }
    let total = arrivals[arrivals.len() - 1].0 - arrivals[0].0;
    assert!(total >= delay * 4 - delay / 2, "{total:?} for 4 delays of {delay:?}");
}

#[tokio::test]
async fn upstream_hang_never_answers_and_slow_answers_late() {
    let delay = Duration::from_millis(30);
    let mock = start(UpstreamConfig { chunk_delay: delay, ..UpstreamConfig::default() }).await;
    let hung =
        tokio::time::timeout(Duration::from_millis(500), post(&mock, "/v1/chat/completions", &chat("hang"))).await;
    assert!(hung.is_err(), "hang answered");
    let received = mock.received();
    assert_eq!((received.len(), received[0].status, received[0].finished_at), (1, None, None));

    let sent = Instant::now();
    let answer = post(&mock, "/v1/chat/completions", &chat("slow")).await;
    assert!(sent.elapsed() >= delay * 10, "slow answered after {:?}", sent.elapsed());
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["usage"]["total_tokens"], P + C);

    let sent = Instant::now();
    let (_, events) = stream_text(&mock, &streamed("slow", false)).await;
    assert!(sent.elapsed() >= delay * 10);
    assert_eq!(streamed_text(&events), "w1 w2 w3");
}

#[test]
fn upstream_in_background_serves_and_stops_on_drop() {
    use std::io::{Read as _, Write as _};
    let mock = MockUpstream::start_in_background(UpstreamConfig::default()).expect("starts");
    let addr = mock.addr();
    let mut stream = std::net::TcpStream::connect(addr).expect("connects");
    write!(stream, "GET /v1/models HTTP/1.1\r\nhost: upstream\r\nconnection: close\r\n\r\n").expect("writes");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("reads");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""id":"usage-anthropic""#));
    assert_eq!(mock.received().len(), 1);
    drop(mock);
    assert!(std::net::TcpStream::connect(addr).is_err(), "still listening after drop");
}
