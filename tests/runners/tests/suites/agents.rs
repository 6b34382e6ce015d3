//! The Agents gateway end to end over real sockets: the `agents` component in a real runner process (`harness up`,
//! and `spin up` when present, each on its default store) in front of the mock OpenAI-compatible model server
//! ([`MockUpstream`]) on its own port.
//!
//! It proves, on each runner:
//!
//! * a JSON chat completion with a valid gateway JWT answers 200 with the top-level `usage` the model server
//!   reported (`x-usage-status: reported`); the model server received the upstream key as its bearer (never the
//!   JWT) and the gateway's `X-Request-Id`, `X-Customer-Id` and `X-Customer-Name`;
//! * a bad token is refused (401 JSON) without reaching the model server;
//! * a streamed completion **streams through the runner**: with the model server holding its stream after the first
//!   event (`gated`), that event reaches the client before the stream is released (a runner that buffers the
//!   response never delivers it: the wait is bounded and fails saying so); after the release the rest arrives, the
//!   last data event before `data: [DONE]` carries the reported usage, `[DONE]` ends the stream, and the model
//!   server was asked for `stream_options.include_usage` although the client was not;
//! * `GET /agents/_usage` totals the billable requests made (requests, tokens);
//! * with the model server gone, a request answers 502 `upstream_unreachable`, counted as unbillable.
//!
//! Time to first chunk (and the relay latency from the model server's first event to the client) and the JSON
//! round trips are printed per runner. Needs the components built for `wasm32-wasip2` and `target/release/harness`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::upstream::{CHAT_COMPLETIONS_PATH, MockUpstream, Received, ReportedUsage, UpstreamConfig};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use koogallery_core::ports::system_now_ms;
use koogallery_core::signing::agents_jwt;
use koogallery_core::signing::keys::SecretKey;
use runners::{Runner, RunnerKind, RunnerOptions};
use serde_json::{Value, json};

use super::{AK, exclusive, runner_kinds};

const GATEWAY_AK: &str = "ak-e2e";
const GATEWAY_SK: &str = "sk-e2e";
const UPSTREAM_KEY: &str = "upstream-secret";
const ADMIN_TOKEN: &str = "agents-e2e-admin-token-0123456789";
const CUSTOMER_ID: &str = "cust-e2e-0001";
const CUSTOMER_NAME: &str = "E2E Customer Ltd";
const CHUNK_DELAY: Duration = Duration::from_millis(30);
/// The gateway's path for the model server's chat completions.
const CHAT_PATH: &str = "/agents/v1/chat/completions";
/// How long the client waits for the first event while the model server holds the stream: far above the relay's
/// real latency (milliseconds), far below "never", which is what a buffering runner gives.
const FIRST_EVENT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the client waits for the rest of the stream after the release (a handful of events 30 ms apart).
const REST_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra JSON round trips timed after the first (all billable).
const TIMED_ROUND_TRIPS: usize = 4;

/// A gateway JWT for `ak`/`sk`, issued now (the runners run on the real clock here) and valid 5 minutes.
fn jwt(ak: &str, sk: &str) -> String {
    let now = system_now_ms();
    agents_jwt::sign(ak, &SecretKey::new(sk), now, now + 5 * 60_000)
}

/// A chat completion request (`stream` or not) through the gateway, with the gateway's headers.
fn chat_request(token: &str, request_id: &str, body: &Value) -> http::Request<Bytes> {
    http::Request::post(CHAT_PATH)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .header("x-request-id", request_id)
        .header("x-customer-id", CUSTOMER_ID)
        .header("x-customer-name", CUSTOMER_NAME)
        .body(Bytes::from(body.to_string()))
        .unwrap_or_else(|e| panic!("request: {e}"))
}

/// The three counts of a `usage` object (`None` if one is missing or not a whole number).
fn usage_of(value: &Value) -> Option<ReportedUsage> {
    Some(ReportedUsage {
        prompt_tokens: value.get("prompt_tokens")?.as_u64()?,
        completion_tokens: value.get("completion_tokens")?.as_u64()?,
        total_tokens: value.get("total_tokens")?.as_u64()?,
    })
}

/// What the mock saw, and the runner's last lines, for failure messages.
fn context(runner: &Runner, mock: &MockUpstream) -> String {
    let seen: Vec<String> = mock
        .received()
        .iter()
        .map(|r| format!("{} {} model={:?} status={:?}", r.method, r.path, r.model(), r.status))
        .collect();
    format!("mock upstream saw: {seen:?}\nrunner log tail:\n{}", runner.log_tail())
}

/// The one request the mock received with `X-Request-Id: request_id`.
fn received_with_id(mock: &MockUpstream, request_id: &str, where_: &str) -> Received {
    let matching: Vec<Received> =
        mock.received().into_iter().filter(|r| r.header("x-request-id") == Some(request_id)).collect();
    assert_eq!(
        matching.len(),
        1,
        "{where_}: the mock received {} requests with X-Request-Id {request_id}",
        matching.len()
    );
    matching.into_iter().next().unwrap_or_else(|| unreachable!())
}

/// Checks what the gateway forwarded: the upstream key as bearer, never the caller's JWT, and the gateway headers.
fn assert_forwarded(received: &Received, token: &str, request_id: &str, where_: &str) {
    assert_eq!(received.method, "POST", "{where_}: forwarded method");
    assert_eq!(received.path, CHAT_COMPLETIONS_PATH, "{where_}: forwarded path");
    assert_eq!(
        received.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str()),
        "{where_}: the upstream's Authorization is not the upstream key"
    );
    for (name, value) in &received.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        assert!(!value.contains(token), "{where_}: the caller's JWT reached the upstream in {name}");
    }
    assert_eq!(received.header("x-request-id"), Some(request_id), "{where_}: X-Request-Id upstream");
    assert_eq!(received.header("x-customer-id"), Some(CUSTOMER_ID), "{where_}: X-Customer-Id upstream");
    assert_eq!(received.header("x-customer-name"), Some(CUSTOMER_NAME), "{where_}: X-Customer-Name upstream");
}

/// Sends one JSON chat completion through the gateway, checks it end to end, and returns its usage and round trip.
async fn json_completion(
    runner: &Runner,
    mock: &MockUpstream,
    request_id: &str,
    words: &str,
    max_tokens: u64,
) -> (ReportedUsage, Duration) {
    let where_ = runner.kind().name();
    let token = jwt(GATEWAY_AK, GATEWAY_SK);
    let body = json!({
        "model": "gpt-mock", "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": words}],
    });
    let started = Instant::now();
    let response = runner
        .send(chat_request(&token, request_id, &body))
        .await
        .unwrap_or_else(|e| panic!("{where_}: JSON chat completion: {e:#}\n{}", context(runner, mock)));
    let took = started.elapsed();
    let text = String::from_utf8_lossy(response.body()).into_owned();
    assert_eq!(response.status(), 200, "{where_}: JSON chat completion: {text}\n{}", context(runner, mock));
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert!(
        header("content-type").is_some_and(|t| t.starts_with("application/json")),
        "{where_}: content-type {:?}",
        header("content-type")
    );
    assert_eq!(header("x-usage-status").as_deref(), Some("reported"), "{where_}: x-usage-status; body: {text}");
    let answer: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{where_}: not JSON ({e}): {text}"));
    let received = received_with_id(mock, request_id, where_);
    assert_forwarded(&received, &token, request_id, where_);
    let reported = received.reported_usage.unwrap_or_else(|| panic!("{where_}: the mock reported no usage"));
    assert!(reported.total_tokens > 0, "{where_}: the mock reported no tokens: {reported:?}");
    assert_eq!(usage_of(&answer["usage"]), Some(reported), "{where_}: the answer's usage: {text}");
    (reported, took)
}

/// One HTTP/1.1 exchange over a fresh TCP connection whose answer body is read frame by frame as it arrives.
struct StreamingExchange {
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: Incoming,
    /// The bytes read so far, CRLF line endings made LF.
    buffer: String,
    /// The complete events taken from `buffer` so far.
    events: Vec<String>,
    ended: bool,
    connection: tokio::task::JoinHandle<()>,
}

impl StreamingExchange {
    /// Connects to `addr`, sends `request` and returns once the answer's head is in (or panics after `timeout`).
    async fn open(addr: SocketAddr, request: http::Request<Bytes>, timeout: Duration) -> Result<Self, String> {
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            let connection = tokio::spawn(async move {
                let _ = connection.await;
            });
            let (parts, body) = request.into_parts();
            let response = sender.send_request(http::Request::from_parts(parts, Full::new(body))).await?;
            anyhow::Ok((response, connection))
        };
        let (response, connection) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("no answer head within {timeout:?}"))?
            .map_err(|e| format!("streaming request: {e:#}"))?;
        let (parts, body) = response.into_parts();
        Ok(Self {
            status: parts.status,
            headers: parts.headers,
            body,
            buffer: String::new(),
            events: Vec::new(),
            ended: false,
            connection,
        })
    }

    /// Reads frames until at least `count` complete events have arrived in all, or the body ends; `Err` with
    /// what arrived when `timeout` passes first.
    async fn read_events(&mut self, count: usize, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.events.len() < count && !self.ended {
            let frame = match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => {
                    return Err(format!(
                        "timed out after {timeout:?} with {} events and {} bytes of an unfinished one",
                        self.events.len(),
                        self.buffer.len()
                    ));
                }
                Ok(None) => {
                    self.ended = true;
                    break;
                }
                Ok(Some(Err(e))) => return Err(format!("the body broke: {e}")),
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(&String::from_utf8_lossy(&data).replace("\r\n", "\n"));
                while let Some(end) = self.buffer.find("\n\n") {
                    let event: String = self.buffer.drain(..end + 2).collect();
                    self.events.push(event.trim_end_matches('\n').to_owned());
                }
            }
        }
        Ok(())
    }

    /// Reads to the end of the body.
    async fn read_to_end(&mut self, timeout: Duration) -> Result<(), String> {
        self.read_events(usize::MAX, timeout).await
    }
}

impl Drop for StreamingExchange {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// The `data` of an SSE event (its `data:` lines joined), `None` if it has none.
fn event_data(event: &str) -> Option<String> {
    let lines: Vec<&str> =
        event.lines().filter_map(|l| l.strip_prefix("data:")).map(|d| d.strip_prefix(' ').unwrap_or(d)).collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// The streamed chat completion through the runner, with the model server holding the stream after its first
/// event until the client has it. Returns its usage, the time to first chunk, and the relay latency (model
/// server's first event → client).
async fn streamed_completion(
    runner: &Runner,
    mock: &MockUpstream,
    request_id: &str,
) -> (ReportedUsage, Duration, Duration) {
    let where_ = runner.kind().name();
    let token = jwt(GATEWAY_AK, GATEWAY_SK);
    // No stream_options: the gateway must ask the model server for usage on its own.
    let body = json!({
        "model": "gated", "stream": true, "max_tokens": 6,
        "messages": [{"role": "user", "content": "stream these words one by one please"}],
    });
    let addr: SocketAddr = runner
        .origin()
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{where_}: origin {}", runner.origin()));
    let mut request = chat_request(&token, request_id, &body);
    request.headers_mut().insert("accept", http::HeaderValue::from_static("text/event-stream"));
    request.headers_mut().insert(
        http::header::HOST,
        http::HeaderValue::from_str(&addr.to_string()).unwrap_or_else(|e| panic!("host: {e}")),
    );
    let started = Instant::now();
    // A runner that buffers the answer sends neither its head nor its first event while the upstream holds it.
    let buffered = |e: &str| -> String {
        let held = mock.received().into_iter().find(|r| r.header("x-request-id") == Some(request_id));
        format!(
            "{where_}: the first SSE event did not reach the client while the upstream held its stream (upstream \
             received the request: {}; sent its first event: {}; finished: {}): {e}. The runner buffers streamed \
             answers instead of passing them on as they arrive.\n{}",
            held.is_some(),
            held.as_ref().is_some_and(|h| h.first_event_at.is_some()),
            held.as_ref().is_some_and(|h| h.finished_at.is_some()),
            context(runner, mock)
        )
    };
    let mut exchange = match StreamingExchange::open(addr, request, FIRST_EVENT_TIMEOUT).await {
        Ok(exchange) => exchange,
        Err(e) => panic!("{}", buffered(&e)),
    };
    assert_eq!(exchange.status, 200, "{where_}: streamed chat completion status\n{}", context(runner, mock));
    let content_type = exchange.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(content_type.starts_with("text/event-stream"), "{where_}: streamed answer's content-type {content_type:?}");

    // The first event must arrive while the model server still holds the rest.
    if let Err(e) = exchange.read_events(1, FIRST_EVENT_TIMEOUT).await {
        panic!("{}", buffered(&e));
    }
    let first_at = Instant::now();
    let time_to_first_chunk = first_at - started;
    let held = received_with_id(mock, request_id, where_);
    assert!(held.finished_at.is_none(), "{where_}: the mock finished the gated stream before its release");
    let upstream_first = held.first_event_at.unwrap_or_else(|| panic!("{where_}: the mock never sent a first event"));
    let relay = first_at.saturating_duration_since(upstream_first);
    assert_eq!(exchange.events.len(), 1, "{where_}: events before the release: {:?}", exchange.events);
    let first = event_data(&exchange.events[0]).unwrap_or_default();
    assert!(first != "[DONE]" && first.contains("chat.completion.chunk"), "{where_}: first event {first:?}");
    assert_forwarded(&held, &token, request_id, where_);
    assert!(
        held.include_usage_requested,
        "{where_}: the gateway did not add stream_options.include_usage upstream; upstream body: {}",
        String::from_utf8_lossy(&held.body)
    );

    mock.release_gate();
    if let Err(e) = exchange.read_to_end(REST_TIMEOUT).await {
        panic!("{where_}: the rest of the stream after the release: {e}\n{}", context(runner, mock));
    }
    let events = &exchange.events;
    assert!(exchange.buffer.trim().is_empty(), "{where_}: bytes after the last event: {:?}", exchange.buffer);
    assert!(events.len() >= 4, "{where_}: too few events: {events:?}");
    let data: Vec<String> = events.iter().filter_map(|e| event_data(e)).collect();
    assert_eq!(data.len(), events.len(), "{where_}: an event without data: {events:?}");
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{where_}: the last event is not [DONE]: {events:?}");
    assert_eq!(data.iter().filter(|d| *d == "[DONE]").count(), 1, "{where_}: [DONE] more than once: {events:?}");
    let usage_event: Value = serde_json::from_str(&data[data.len() - 2])
        .unwrap_or_else(|e| panic!("{where_}: the event before [DONE] is not JSON ({e}): {}", data[data.len() - 2]));
    let done = received_with_id(mock, request_id, where_);
    let reported = done.reported_usage.unwrap_or_else(|| panic!("{where_}: the mock reported no usage for the stream"));
    assert!(done.finished_at.is_some(), "{where_}: the mock does not see its stream finished");
    assert_eq!(
        usage_of(&usage_event["usage"]),
        Some(reported),
        "{where_}: usage of the last data event before [DONE]: {usage_event}"
    );
    let text: String = data[..data.len() - 1]
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert!(!text.is_empty(), "{where_}: no text in the stream: {events:?}");
    (reported, time_to_first_chunk, relay)
}

/// `GET /agents/_usage?customer=…` with the admin bearer.
async fn usage_report(runner: &Runner, mock: &MockUpstream) -> Value {
    let where_ = runner.kind().name();
    let request = http::Request::get(format!("/agents/_usage?customer={CUSTOMER_ID}"))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Bytes::new())
        .unwrap_or_else(|e| panic!("request: {e}"));
    let response = runner.send(request).await.unwrap_or_else(|e| panic!("{where_}: /agents/_usage: {e:#}"));
    let text = String::from_utf8_lossy(response.body()).into_owned();
    assert_eq!(response.status(), 200, "{where_}: /agents/_usage: {text}\n{}", context(runner, mock));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{where_}: /agents/_usage is not JSON ({e}): {text}"))
}

/// Checks the ledger's totals for [`CUSTOMER_ID`]: `billable` requests summing to `usage`, plus `unreachable`.
fn assert_totals(report: &Value, billable: &[ReportedUsage], unreachable: u64, where_: &str) {
    let count = u64::try_from(billable.len()).unwrap_or(u64::MAX);
    let sum = |f: fn(&ReportedUsage) -> u64| billable.iter().map(f).sum::<u64>();
    assert_eq!(report["requests"], json!(count + unreachable), "{where_}: requests in {report}");
    assert_eq!(report["billable"], json!(count), "{where_}: billable in {report}");
    assert_eq!(report["unbillable"], json!(unreachable), "{where_}: unbillable in {report}");
    assert_eq!(report["outcomes"]["billable"], json!(count), "{where_}: outcomes in {report}");
    if unreachable > 0 {
        assert_eq!(report["outcomes"]["upstream_unreachable"], json!(unreachable), "{where_}: outcomes in {report}");
    }
    let expected = ReportedUsage {
        prompt_tokens: sum(|u| u.prompt_tokens),
        completion_tokens: sum(|u| u.completion_tokens),
        total_tokens: sum(|u| u.total_tokens),
    };
    assert_eq!(usage_of(&report["usage"]), Some(expected), "{where_}: usage totals in {report}");
    assert_eq!(report["customers"], json!(1), "{where_}: customers in {report}");
}

/// The whole gateway flow against `kind`.
async fn agents_on(kind: RunnerKind) {
    let where_ = kind.name();
    let mock = MockUpstream::start_in_background(UpstreamConfig {
        api_key: Some(UPSTREAM_KEY.to_owned()),
        chunk_delay: CHUNK_DELAY,
    })
    .unwrap_or_else(|e| panic!("mock upstream: {e:#}"));
    let upstream = mock.base_url();
    let variables = [
        ("access_keys", AK),
        ("agents_keys", &format!("{GATEWAY_AK}:{GATEWAY_SK}")),
        ("agents_upstream", &upstream),
        ("agents_upstream_key", UPSTREAM_KEY),
        ("agents_upstream_hosts", "http://127.0.0.1:*"),
        ("admin_token", ADMIN_TOKEN),
    ];
    let opts = RunnerOptions {
        variables: variables.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..Default::default()
    };
    let runner = Runner::start(kind, opts).await.unwrap_or_else(|e| panic!("{where_}: {e:#}"));
    let mut billable = Vec::new();
    let mut round_trips = Vec::new();

    // 1. A JSON chat completion, then a few more timed.
    let (usage, took) = json_completion(&runner, &mock, &format!("{where_}-json-0"), "hello there gateway", 7).await;
    billable.push(usage);
    round_trips.push(took);
    for i in 1..=TIMED_ROUND_TRIPS {
        let (usage, took) = json_completion(&runner, &mock, &format!("{where_}-json-{i}"), "one two", 3).await;
        billable.push(usage);
        round_trips.push(took);
    }

    // 2. A bad token: refused, the model server never asked.
    let seen = mock.received().len();
    let bad = jwt(GATEWAY_AK, "not-the-secret");
    let body = json!({"model": "gpt-mock", "messages": [{"role": "user", "content": "hi"}]});
    let started = Instant::now();
    let response = runner
        .send(chat_request(&bad, &format!("{where_}-bad-token"), &body))
        .await
        .unwrap_or_else(|e| panic!("{where_}: bad token: {e:#}"));
    let refused_took = started.elapsed();
    let text = String::from_utf8_lossy(response.body()).into_owned();
    assert_eq!(response.status(), 401, "{where_}: bad token: {text}");
    let refusal: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{where_}: 401 not JSON ({e}): {text}"));
    assert!(refusal["error"]["code"].is_string(), "{where_}: 401 body: {text}");
    assert_eq!(refusal["error"]["type"], "authentication_error", "{where_}: 401 body: {text}");
    assert_eq!(
        mock.received().len(),
        seen,
        "{where_}: a refused request reached the model server\n{}",
        context(&runner, &mock)
    );

    // 3. Streaming through the runner.
    let (usage, ttfc, relay) = streamed_completion(&runner, &mock, &format!("{where_}-stream-0")).await;
    billable.push(usage);

    // 5. The ledger's totals for the customer.
    let report = usage_report(&runner, &mock).await;
    assert_totals(&report, &billable, 0, where_);

    // 4. The model server gone: 502, recorded as unbillable.
    drop(mock);
    let token = jwt(GATEWAY_AK, GATEWAY_SK);
    let started = Instant::now();
    let response = runner
        .send(chat_request(&token, &format!("{where_}-down"), &body))
        .await
        .unwrap_or_else(|e| panic!("{where_}: upstream down: {e:#}"));
    let down_took = started.elapsed();
    let text = String::from_utf8_lossy(response.body()).into_owned();
    assert_eq!(response.status(), 502, "{where_}: upstream down: {text}\n{}", runner.log_tail());
    let answer: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{where_}: 502 not JSON ({e}): {text}"));
    assert_eq!(answer["error"]["code"], "upstream_unreachable", "{where_}: 502 body: {text}");
    let request = http::Request::get(format!("/agents/_usage?customer={CUSTOMER_ID}"))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Bytes::new())
        .unwrap_or_else(|e| panic!("request: {e}"));
    let response = runner.send(request).await.unwrap_or_else(|e| panic!("{where_}: /agents/_usage: {e:#}"));
    let report: Value = serde_json::from_slice(response.body()).unwrap_or_default();
    assert_totals(&report, &billable, 1, where_);

    let millis: Vec<u128> = round_trips.iter().map(Duration::as_millis).collect();
    let mut sorted = round_trips.clone();
    sorted.sort();
    eprintln!(
        "{where_}: agents JSON chat completion round trips (ms): {millis:?} (median {:?})",
        sorted[sorted.len() / 2]
    );
    eprintln!(
        "{where_}: agents stream time to first chunk {ttfc:?} (upstream first event → client {relay:?}); \
         refused token answered 401 in {refused_took:?} (no upstream, no ledger); upstream down answered 502 in \
         {down_took:?}"
    );
    drop(runner);
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_gateway_json_refusal_streaming_usage_and_upstream_down() {
    let _one = exclusive().await;
    for kind in runner_kinds("agents gateway") {
        agents_on(kind).await;
    }
}
