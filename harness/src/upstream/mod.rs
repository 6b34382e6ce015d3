//! A mock OpenAI-compatible model server: the upstream the agents gateway component sits in front of.
//!
//! The gateway checks a caller's JWT, forwards the request to a model server and guarantees a top-level `usage`
//! object in every answer, whatever shape (or absence) of usage the model server used. Its tests need a model
//! server that answers each of those shapes on demand, with numbers known in advance, over real HTTP on
//! `127.0.0.1`: this mock. Everything it receives, and the usage it reported, is recorded for the test to check.
//!
//! | Endpoint | Answer |
//! |---|---|
//! | `POST /v1/chat/completions` | a `chat.completion` (or, with `"stream": true`, server-sent `chat.completion.chunk`s) |
//! | `POST /v1/completions`, `POST /v1/responses` | the same as chat completions |
//! | `POST /v1/embeddings` | an embedding list; usage has only `prompt_tokens` and `total_tokens` |
//! | `GET /v1/models` | the model names of [`Model`], no usage |
//! | anything else | `404` with an OpenAI-style error |
//!
//! # Scripted by the `model` field
//!
//! The request body's `model` selects the behaviour ([`Model`]), so a mock started from the command line
//! (`harness upstream`) is as scriptable by its clients as one started by a test. Any name not listed there (e.g.
//! `gpt-mock`) gets the default: OpenAI's shapes.
//!
//! | `model` | JSON answer | Streamed answer (`"stream": true`) |
//! |---|---|---|
//! | `gpt-mock` (any other) | top-level `usage` `{prompt_tokens, completion_tokens, total_tokens}` | a usage chunk (`choices: []`) before `[DONE]` iff `stream_options.include_usage` |
//! | `usage-input-output` | top-level `usage` `{input_tokens, output_tokens}` only | as default, the usage chunk in that shape |
//! | `usage-nested` | no top-level usage; `response.usage` `{input_tokens, output_tokens, total_tokens}` | as default |
//! | `usage-gemini` | no top-level usage; `usageMetadata` `{promptTokenCount, …}` | as default |
//! | `usage-extra` | OpenAI usage plus `image_count: 2`, `video_duration: 3.5` | as default, the usage chunk with the extras |
//! | `no-usage` | no usage anywhere | never a usage chunk, even if asked |
//! | `usage-anthropic` | as default | Anthropic events (`event:` lines, `message_start` … `message_stop`), no `[DONE]` |
//! | `usage-every-chunk` | as default | every chunk carries the cumulative usage (vLLM style) |
//! | `crlf` | as default | as default, every line ending `\r\n` |
//! | `gated` | as default | the first event, then nothing until [`MockUpstream::release_gate`], then the rest |
//! | `error-mid-stream` | as default | two events, then a broken body (no clean end) |
//! | `error-500`, `error-400` | that status, OpenAI-style error | the same (no stream) |
//! | `hang` | never answers | never answers |
//! | `slow` | the default after 10 × `chunk_delay` | the default stream, its head after 10 × `chunk_delay` |
//!
//! Token counts are deterministic: `prompt_tokens` is the number of whitespace-separated words in the prompt
//! (`messages[].content`, `prompt`, `input`: strings, arrays of them, content parts' `text`), `completion_tokens`
//! is `max_tokens` (or `max_completion_tokens`, `max_output_tokens`; default [`DEFAULT_MAX_TOKENS`], at most
//! [`MAX_COMPLETION_TOKENS`]; 0 for embeddings), and the reply text is `w1 w2 … wN`. A stream sends one content
//! chunk per word (`"w1 "`, `"w2 "`, …, `"wN"`: concatenated, the JSON answer's text), then a chunk with
//! `finish_reason: "stop"`, each event in its own HTTP chunk, `chunk_delay` apart. When the client asked for
//! usage (`include_usage`), every chunk but the usage chunk carries `"usage": null`, as OpenAI's do.
//!
//! If [`UpstreamConfig::api_key`] is set, a request without `Authorization: Bearer <key>` gets `401`
//! `invalid_api_key`. A body that is not a JSON object gets `400`.
//!
//! # Security
//!
//! For tests and local runs only: it listens on whatever address it is given and keeps everything in memory. Its
//! log lines (`tracing`, target `harness::upstream`; accept and connection errors `harness::mock_server`) carry only
//! method, path and status: never headers (they carry
//! API keys and JWTs), a query string or a body. [`Received`] holds requests exactly as sent, keys included, for
//! tests to inspect; [`UpstreamConfig`]'s `Debug` redacts the key.
//!
//! # How to use it
//!
//! 1. Start it: [`MockUpstream::start`] on the current tokio runtime, or [`MockUpstream::start_in_background`] on
//!    a thread of its own (for synchronous tests).
//! 2. Point the gateway at [`MockUpstream::base_url`] (the OpenAI base URL is that plus `/v1`).
//! 3. Send requests through the gateway with the `model` of the behaviour to test.
//! 4. Check what the gateway forwarded and what the mock reported: [`MockUpstream::received`], each
//!    [`Received::reported_usage`] being the numbers the gateway's `usage` must carry.
//!
//! Dropping the [`MockUpstream`] stops the server and closes its connections.
//!
//! ```
//! use harness::upstream::{MockUpstream, ReportedUsage, UpstreamConfig};
//! use std::io::{Read as _, Write as _};
//!
//! let mock = MockUpstream::start_in_background(UpstreamConfig::default())?;
//! let body = r#"{"model":"usage-input-output","messages":[{"role":"user","content":"hello there"}],"max_tokens":3}"#;
//! let mut stream = std::net::TcpStream::connect(mock.addr())?;
//! write!(
//!     stream,
//!     "POST /v1/chat/completions HTTP/1.1\r\nhost: upstream\r\nconnection: close\r\n\
//!      content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
//!     body.len()
//! )?;
//! let mut answer = String::new();
//! stream.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 200"));
//! assert!(answer.contains(r#""usage":{"input_tokens":2,"output_tokens":3}"#));
//!
//! let received = mock.received();
//! assert_eq!(received[0].path, "/v1/chat/completions");
//! let expected = ReportedUsage { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 };
//! assert_eq!(received[0].reported_usage, Some(expected));
//! # Ok::<(), anyhow::Error>(())
//! ```

mod behaviour;
mod stream;

use crate::mock_server::{Handler, MockServer, read_body};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The chat completions endpoint's path.
pub const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";
/// The legacy completions endpoint's path.
pub const COMPLETIONS_PATH: &str = "/v1/completions";
/// The embeddings endpoint's path.
pub const EMBEDDINGS_PATH: &str = "/v1/embeddings";
/// The Responses API endpoint's path.
pub const RESPONSES_PATH: &str = "/v1/responses";
/// The model list's path.
pub const MODELS_PATH: &str = "/v1/models";

/// [`UpstreamConfig::chunk_delay`] by default: short enough for fast tests, long enough that events leave one by one.
pub const DEFAULT_CHUNK_DELAY: Duration = Duration::from_millis(20);
/// `completion_tokens` (reply words) of a request without `max_tokens`.
pub const DEFAULT_MAX_TOKENS: u64 = 5;
/// The largest `completion_tokens`: a larger `max_tokens` is capped, so a client cannot make the mock build a huge
/// answer.
pub const MAX_COMPLETION_TOKENS: u64 = 1000;
/// Largest request body read; a larger one gets `413`.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What a mock knows at start.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// The API key clients must send as `Authorization: Bearer <key>` (`None`: no key needed). Lets a test check
    /// that the gateway injects the upstream's key (and not the caller's JWT).
    pub api_key: Option<String>,
    /// The pause between two events of a stream (and the unit of `slow`'s delay): what makes the events leave as
    /// separate HTTP chunks, so a test can tell a streaming gateway from a buffering one.
    pub chunk_delay: Duration,
}

impl Default for UpstreamConfig {
    /// No API key, [`DEFAULT_CHUNK_DELAY`].
    fn default() -> Self {
        Self { api_key: None, chunk_delay: DEFAULT_CHUNK_DELAY }
    }
}

impl std::fmt::Debug for UpstreamConfig {
    /// Prints the API key as `[REDACTED]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("chunk_delay", &self.chunk_delay)
            .finish()
    }
}

/// The behaviours a request's `model` selects (see the [module documentation](self) for the table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    /// `gpt-mock`, and any name not listed here: OpenAI's shapes.
    Default,
    /// `usage-input-output`: top-level usage `{input_tokens, output_tokens}` (Anthropic / Responses style).
    UsageInputOutput,
    /// `usage-nested`: usage only inside `response.usage`.
    UsageNested,
    /// `usage-gemini`: usage only as Gemini's `usageMetadata`.
    UsageGemini,
    /// `usage-extra`: OpenAI usage plus `image_count` and `video_duration`.
    UsageExtra,
    /// `no-usage`: no usage in the answer, nor in a stream even when asked.
    NoUsage,
    /// `usage-anthropic`: a stream of Anthropic events.
    UsageAnthropic,
    /// `usage-every-chunk`: every stream chunk carries the cumulative usage.
    UsageEveryChunk,
    /// `crlf`: the default stream with `\r\n` line endings.
    Crlf,
    /// `gated`: a stream held after its first event until [`MockUpstream::release_gate`].
    Gated,
    /// `error-mid-stream`: a stream broken after two events.
    ErrorMidStream,
    /// `error-500`: `500` with an OpenAI-style error.
    Error500,
    /// `error-400`: `400` with an OpenAI-style error.
    Error400,
    /// `hang`: no answer until the connection drops.
    Hang,
    /// `slow`: the default answer after 10 × [`UpstreamConfig::chunk_delay`].
    Slow,
}

impl Model {
    /// Every behaviour, in the order `GET /v1/models` lists them.
    pub const ALL: [Model; 15] = [
        Model::Default,
        Model::UsageInputOutput,
        Model::UsageNested,
        Model::UsageGemini,
        Model::UsageExtra,
        Model::NoUsage,
        Model::UsageAnthropic,
        Model::UsageEveryChunk,
        Model::Crlf,
        Model::Gated,
        Model::ErrorMidStream,
        Model::Error500,
        Model::Error400,
        Model::Hang,
        Model::Slow,
    ];

    /// The `model` name that selects this behaviour (`gpt-mock` for [`Model::Default`]).
    pub fn name(self) -> &'static str {
        match self {
            Model::Default => "gpt-mock",
            Model::UsageInputOutput => "usage-input-output",
            Model::UsageNested => "usage-nested",
            Model::UsageGemini => "usage-gemini",
            Model::UsageExtra => "usage-extra",
            Model::NoUsage => "no-usage",
            Model::UsageAnthropic => "usage-anthropic",
            Model::UsageEveryChunk => "usage-every-chunk",
            Model::Crlf => "crlf",
            Model::Gated => "gated",
            Model::ErrorMidStream => "error-mid-stream",
            Model::Error500 => "error-500",
            Model::Error400 => "error-400",
            Model::Hang => "hang",
            Model::Slow => "slow",
        }
    }

    /// The behaviour of a `model` name (exact, case-sensitive); any unknown name is [`Model::Default`], so real
    /// model names work.
    pub fn from_name(name: &str) -> Model {
        Model::ALL.into_iter().find(|m| m.name() == name).unwrap_or(Model::Default)
    }
}

/// The token counts the mock put in an answer, whatever shape it gave them: what the gateway's `usage` must say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReportedUsage {
    /// Prompt (input) tokens.
    pub prompt_tokens: u64,
    /// Completion (output) tokens; 0 for embeddings.
    pub completion_tokens: u64,
    /// Their sum (also when the answer's shape has no total, as `usage-input-output`).
    pub total_tokens: u64,
}

impl ReportedUsage {
    /// The counts for `prompt_tokens` and `completion_tokens`, with their sum.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }
    }
}

/// One request as the mock received it, with what it answered. Recorded before it is answered; the stream fields
/// are filled in as the stream goes.
#[derive(Clone, Debug)]
pub struct Received {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string (still percent-encoded); empty if none.
    pub query: String,
    /// The headers as received (`Authorization` included).
    pub headers: http::HeaderMap,
    /// The body bytes (empty when the body could not be read).
    pub body: Bytes,
    /// The body parsed as JSON (`None`: empty or not JSON).
    pub json: Option<serde_json::Value>,
    /// Whether the body asked for a usage chunk (`stream_options.include_usage == true`): lets a test check that
    /// the gateway asks the upstream for usage when the client did not.
    pub include_usage_requested: bool,
    /// The status answered (`None`: not answered yet, or `hang`).
    pub status: Option<u16>,
    /// The counts the answer carries (for a stream: will carry once complete), in whatever shape the `model`
    /// chose; `None` when it carries none (`no-usage`, a stream without `include_usage`, `error-mid-stream`,
    /// errors, `GET /v1/models`).
    pub reported_usage: Option<ReportedUsage>,
    /// When a stream's first event was handed to the connection (`None` for JSON answers).
    pub first_event_at: Option<Instant>,
    /// When the answer was complete: a JSON answer handed to the connection, a stream's last event sent or its
    /// body broken (`error-mid-stream`). `None` while streaming, for `hang`, and when the client went away first.
    pub finished_at: Option<Instant>,
}

impl Received {
    /// The value of header `name` (case-insensitive), if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body's `model` string, if any.
    pub fn model(&self) -> Option<&str> {
        self.json.as_ref()?.get("model")?.as_str()
    }
}

/// A running mock model server. Dropping it stops the server.
pub struct MockUpstream {
    shared: Arc<Shared>,
    /// Stops the server when dropped.
    server: MockServer,
}

/// The server's name in log lines and errors (and, as `mock-upstream`, its thread's).
const NAME: &str = "mock upstream";

/// What the server tasks and the [`MockUpstream`] share.
struct Shared {
    config: UpstreamConfig,
    records: Mutex<Records>,
    /// The gate of `gated` streams: open or not, and how many releases so far (a stream waiting when
    /// [`MockUpstream::release_gate`] is called goes on even if the gate is closed again before it looks).
    gate: tokio::sync::watch::Sender<GateState>,
}

/// The gate's state.
#[derive(Clone, Copy, Debug, Default)]
struct GateState {
    open: bool,
    releases: u64,
}

/// The recorded requests, each with a sequence number (also the answer's id suffix).
#[derive(Default)]
struct Records {
    next_seq: u64,
    list: Vec<(u64, Received)>,
}

impl Shared {
    fn records(&self) -> MutexGuard<'_, Records> {
        // A panic elsewhere while the lock was held does not make the records unreadable.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a request; its sequence number (from 1).
    fn record(&self, received: Received) -> u64 {
        let mut records = self.records();
        records.next_seq += 1;
        let seq = records.next_seq;
        records.list.push((seq, received));
        seq
    }

    /// Changes the record `seq` (if not cleared since).
    fn update(&self, seq: u64, change: impl FnOnce(&mut Received)) {
        if let Some((_, received)) = self.records().list.iter_mut().find(|(s, _)| *s == seq) {
            change(received);
        }
    }

    /// Waits until the gate is open or released after this call began.
    async fn pass_gate(&self) {
        let mut gate = self.gate.subscribe();
        let releases = gate.borrow().releases;
        // The sender lives as long as `self`: `wait_for` cannot fail while we hold it.
        let _ = gate.wait_for(|g| g.open || g.releases > releases).await;
    }
}

impl std::fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockUpstream").field("base_url", &self.base_url()).finish_non_exhaustive()
    }
}

impl MockUpstream {
    /// Binds `listen` (port 0: any free port) and serves on the current tokio runtime.
    ///
    /// # Errors
    /// The address cannot be bound (the cause is the `std::io::Error`).
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn`).
    pub async fn start(listen: SocketAddr, config: UpstreamConfig) -> anyhow::Result<Self> {
        let shared = Shared::new(config);
        let server = MockServer::start(listen, NAME, handler(&shared)).await?;
        Ok(Self { shared, server })
    }

    /// Serves on `127.0.0.1` (a free port) from a thread of its own with its own runtime: for synchronous tests, or
    /// to outlive the caller's runtime.
    ///
    /// # Errors
    /// The thread, its runtime or the listener cannot be created.
    pub fn start_in_background(config: UpstreamConfig) -> anyhow::Result<Self> {
        let shared = Shared::new(config);
        let server = MockServer::start_in_background(NAME, handler(&shared))?;
        Ok(Self { shared, server })
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT` (no trailing `/`): the model server's URL to give the gateway. OpenAI clients take
    /// this plus `/v1` as their base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Every request received so far (since [`MockUpstream::clear_records`]), in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.records().list.iter().map(|(_, r)| r.clone()).collect()
    }

    /// Forgets the recorded requests (streams under way go on, unrecorded).
    pub fn clear_records(&self) {
        self.shared.records().list.clear();
    }

    /// Opens the gate: every `gated` stream waiting goes on, and later ones pass without waiting, until
    /// [`MockUpstream::close_gate`]. Lets a test observe the gateway while a stream is half sent.
    pub fn release_gate(&self) {
        self.shared.gate.send_modify(|g| {
            g.open = true;
            g.releases += 1;
        });
    }

    /// Closes the gate (as at start): `gated` streams wait after their first event again. Streams released already
    /// are not held back.
    pub fn close_gate(&self) {
        self.shared.gate.send_modify(|g| g.open = false);
    }
}

impl Shared {
    fn new(config: UpstreamConfig) -> Arc<Self> {
        let (gate, _) = tokio::sync::watch::channel(GateState::default());
        Arc::new(Self { config, records: Mutex::new(Records::default()), gate })
    }
}

/// The body of every answer: a whole JSON document or a stream of events (whose producer may fail it).
type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// The server's request handler: [`handle`] on `shared`.
fn handler(shared: &Arc<Shared>) -> impl Handler {
    let shared = Arc::clone(shared);
    move |request| handle(Arc::clone(&shared), request)
}

/// Reads the request, records it, answers it as its endpoint and `model` say.
async fn handle(shared: Arc<Shared>, request: http::Request<Incoming>) -> Result<http::Response<Body>, std::io::Error> {
    let (parts, body) = request.into_parts();
    let (body, too_large) = read_body(body, MAX_BODY_BYTES).await;
    let json = serde_json::from_slice::<serde_json::Value>(&body).ok();
    let include_usage_requested =
        json.as_ref().and_then(|j| j.get("stream_options")?.get("include_usage")?.as_bool()).unwrap_or(false);
    let received = Received {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers.clone(),
        body: body.clone(),
        json,
        include_usage_requested,
        status: None,
        reported_usage: None,
        first_event_at: None,
        finished_at: None,
    };
    let request = behaviour::Request {
        method: &parts.method,
        path: &received.path,
        headers: &parts.headers,
        body_too_large: too_large,
        json: received.json.as_ref(),
        include_usage: include_usage_requested,
    };
    let seq = shared.record(received.clone());
    let outcome = behaviour::respond(&shared.config, &request, seq, unix_now());
    let (method, path) = (parts.method, received.path);
    shared.update(seq, |r| {
        r.status = outcome.status.map(|s| s.as_u16());
        r.reported_usage = outcome.reported;
    });
    match outcome.plan {
        behaviour::Plan::Json { status, body, delay } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let bytes = Bytes::from(serde_json::to_vec(&body).map_err(std::io::Error::other)?);
            let mut response = http::Response::new(Full::new(bytes).map_err(|never| match never {}).boxed_unsync());
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
            tracing::info!(%method, %path, status = status.as_u16(), "mock upstream");
            shared.update(seq, |r| r.finished_at = Some(Instant::now()));
            Ok(response)
        }
        behaviour::Plan::Stream(plan) => {
            if !plan.head_delay.is_zero() {
                tokio::time::sleep(plan.head_delay).await;
            }
            tracing::info!(%method, %path, status = 200, "mock upstream: streaming");
            Ok(stream::respond(shared, seq, plan))
        }
        behaviour::Plan::Hang => {
            tracing::info!(%method, %path, "mock upstream: hanging");
            std::future::pending().await
        }
    }
}

/// Seconds since the Unix epoch, for the answers' `created`.
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
