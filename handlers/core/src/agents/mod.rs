//! The Agents-gateway backend front (spec §7): verifies the gateway's JWT, forwards to the seller's model server
//! or agent framework, and makes every answer billable.
//!
//! Routes (all under the component's `/agents/...`):
//!
//! - `GET /agents/_usage?customer=…&from=…&to=…` — the usage ledger's totals, behind `Authorization: Bearer
//!   <admin_token>` (see [`ledger`]).
//! - anything else — verified ([`crate::signing::agents_jwt`]) and forwarded to `agents_upstream` + the path after `/agents`, with the
//!   method, query, body, `Content-Type`, `Accept` and the gateway's `X-Request-Id`, `X-Customer-Id`,
//!   `X-Customer-Name`. The gateway's `Authorization` never leaves; `agents_upstream_key` goes as a bearer instead.
//!
//! What comes back:
//!
//! - **JSON** is read whole (up to [`MAX_JSON_ANSWER_BYTES`]) and gets a top-level `usage` if the upstream reported
//!   usage anywhere else ([`usage`]); the header `x-usage-status` says `reported`, `normalised` or `missing`.
//! - **Server-sent events** pass event by event as they arrive ([`Relay`], [`sse`]); an OpenAI-style streaming
//!   request (`"stream": true` to `…/completions`) is sent upstream with `stream_options.include_usage`, and the
//!   stream's final data event carries the usage.
//! - **Anything else** streams through unchanged, `x-usage-status: missing`.
//!
//! No number is invented: an answer without usage passes unchanged and is recorded as not billable. Each forwarded
//! request is recorded in the [`ledger`] (idempotent on `X-Request-Id`). Failures answer JSON in the OpenAI error
//! shape, `{"error":{"message","type","code"}}`, which the clients the buyers use already understand: 401 for a
//! refused token, 413 for a body over [`MAX_REQUEST_BYTES`], 502 when the upstream cannot be reached, 504 when it
//! does not answer within `agents_deadline_s`, 500 "not configured: set <variable>".

pub mod config;
pub mod ledger;
pub mod sse;
pub mod usage;

pub use config::{AgentsConfig, VARIABLES};

use serde_json::{Value, json};

use crate::http::{Inbound, Outbound, bearer_matches};
use crate::ports::{ChunkSink, ChunkSource, Clock, OutboundError, Random, Store, Upstream, UpstreamRequest};
use crate::produce::{ConfigError, Ctx};
use ledger::{Entry, Outcome};
use sse::SseUsage;
use usage::UsageOutcome;

/// Largest request body forwarded (long conversations and base64 images are large).
pub const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Largest JSON answer read whole to account for its usage; a larger one is answered 502.
pub const MAX_JSON_ANSWER_BYTES: usize = 16 << 20;

/// The route prefix of the component.
const PREFIX: &str = "/agents";

/// How long the last bytes of a stream (its tail, or the error event) may wait for a slow client.
const LAST_WRITE_MS: u64 = 5_000;

/// Request headers passed to the upstream (besides the body's length and the upstream key).
const FORWARDED_HEADERS: &[&str] = &["content-type", "accept", "x-request-id", "x-customer-id", "x-customer-name"];

/// Upstream response headers never passed back: hop-by-hop, or recomputed by the host.
const DROPPED_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "proxy-connection",
];

/// The answer to one request: whole, or a head whose body a [`Relay`] streams.
pub enum Answer<B> {
    /// A complete answer.
    Complete {
        /// The response.
        response: Outbound,
        /// One log line, free of secrets and personal data.
        summary: String,
    },
    /// A streamed answer: send `relay.head` at once, then run the relay to write the body.
    Stream(Box<Relay<B>>),
}

/// A streamed upstream answer on its way to the client: passes each chunk on as it arrives (event by event for
/// server-sent events, adding the usage at the end), then records the request in the ledger before the last bytes.
pub struct Relay<B> {
    /// Status and headers to send before the body (its `body` is empty).
    pub head: Outbound,
    body: B,
    filter: Option<SseUsage>,
    entry: Entry,
    deadline_at: u64,
    started_at: u64,
}

/// How a relayed stream ended.
enum End {
    Clean,
    Timeout,
    Broken,
    ClientGone,
}

impl<B: ChunkSource> Relay<B> {
    /// Writes the body to `sink` until the upstream ends, breaks off or passes the deadline, or the client goes
    /// away. Returns the request's log line.
    pub async fn run<K, S, C>(mut self: Box<Self>, sink: &mut K, store: &S, clock: &C) -> String
    where
        K: ChunkSink,
        S: Store + ?Sized,
        C: Clock + ?Sized,
    {
        let end = loop {
            let remaining = self.deadline_at.saturating_sub(clock.monotonic_ms());
            if remaining == 0 {
                break End::Timeout;
            }
            match self.body.next_chunk(remaining).await {
                Ok(Some(chunk)) => {
                    let out = match &mut self.filter {
                        Some(f) => f.push(&chunk),
                        None => chunk,
                    };
                    // A client that stops reading is given what is left of the deadline, then counted as gone.
                    let room = self.deadline_at.saturating_sub(clock.monotonic_ms()).max(1);
                    if !out.is_empty() && sink.send(out, room).await.is_err() {
                        break End::ClientGone;
                    }
                    if self.filter.as_ref().is_some_and(SseUsage::done) {
                        // `[DONE]` ends the stream, even if the upstream keeps its connection open.
                        break End::Clean;
                    }
                }
                Ok(None) => break End::Clean,
                Err(OutboundError::Timeout) => break End::Timeout,
                Err(_) => break End::Broken,
            }
        };
        let success = (200..300).contains(&self.entry.status);
        let (tail, usage) = match (&end, &mut self.filter) {
            (End::Clean, Some(f)) => {
                let (tail, outcome) = f.finish();
                (tail, outcome.usage().cloned())
            }
            (_, Some(f)) => (Vec::new(), f.usage_so_far()),
            (_, None) => (Vec::new(), None),
        };
        self.entry.usage = usage.as_ref().map(|u| u.tokens);
        self.entry.outcome = match end {
            End::Clean if !success => Outcome::UpstreamError,
            End::Clean if usage.is_some() => Outcome::Billable,
            End::Clean => Outcome::NoUsage,
            End::Timeout => Outcome::UpstreamTimeout,
            End::Broken => Outcome::StreamBroken,
            End::ClientGone => Outcome::ClientGone,
        };
        // Recorded before the last bytes leave: an answer the gateway has in full has its record.
        let recorded = ledger::record(store, &self.entry).await;
        match end {
            End::Clean => {
                if !tail.is_empty() {
                    let _ = sink.send(tail, LAST_WRITE_MS).await;
                }
            }
            End::Timeout | End::Broken => {
                if self.filter.is_some() {
                    let (code, message) = match end {
                        End::Timeout => ("upstream_timeout", "the upstream did not finish within agents_deadline_s"),
                        _ => ("upstream_broken", "the upstream stream broke off"),
                    };
                    let event = json!({"error": {"message": message, "type": "upstream_error", "code": code}});
                    let _ = sink.send(format!("event: error\ndata: {event}\n\n").into_bytes(), LAST_WRITE_MS).await;
                }
                sink.abort();
            }
            End::ClientGone => {}
        }
        let events = self.filter.as_ref().map_or(String::new(), |f| format!(" events={}", f.events()));
        summary(&self.entry, &recorded, clock.monotonic_ms().saturating_sub(self.started_at), &events)
    }
}

/// One log line: route, outcome, usage, ledger state. Never a token, a key, a prompt or a customer id.
fn summary(entry: &Entry, recorded: &Result<(), crate::ports::StoreError>, took_ms: u64, extra: &str) -> String {
    let usage = entry.usage.map_or_else(|| "none".to_owned(), |u| u.total_tokens.to_string());
    let ledger = match recorded {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("FAILED ({e})"),
    };
    format!(
        "{} status={} outcome={} stream={} total_tokens={usage} request_id={} ledger={ledger}{extra} upstream_ms={took_ms}",
        entry.path,
        entry.status,
        entry.outcome.as_str(),
        entry.stream,
        entry.request_id,
    )
}

/// An answer in the OpenAI error shape.
fn error(status: u16, kind: &str, code: &str, message: &str) -> Outbound {
    let body = json!({"error": {"message": message, "type": kind, "code": code}});
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if status == 401 {
        headers.push(("www-authenticate".to_owned(), "Bearer".to_owned()));
    }
    Outbound { status, headers, body: body.to_string().into_bytes() }
}

fn complete<B>(response: Outbound, summary: String) -> Answer<B> {
    Answer::Complete { response, summary }
}

/// What a request may go on to once the checks that need no body passed.
pub enum Checked<'a> {
    /// `GET /agents/_usage` (its bearer is checked by the report itself).
    UsageReport(&'a AgentsConfig),
    /// A route to forward, for the verified access key `ak`.
    Forward {
        /// The path after `/agents`.
        route: &'a str,
        /// The configuration.
        cfg: &'a AgentsConfig,
        /// The JWT's `api_key`.
        ak: String,
    },
}

/// The checks that need no body: configuration, the route, and for a forwarded route the JWT. The host may run
/// this before it reads the body, so a caller without a valid token cannot make it buffer one.
///
/// # Errors
/// The answer to send instead, with its log line: `500` not configured, `400` a path with dot segments, `401` a
/// refused token.
pub fn precheck<'a>(
    req: &'a Inbound,
    cfg: Result<&'a AgentsConfig, &ConfigError>,
    now_ms: u64,
) -> Result<Checked<'a>, (Outbound, String)> {
    let route = req.path.strip_prefix(PREFIX).unwrap_or(&req.path);
    let route = if route.is_empty() { "/" } else { route };
    let cfg = cfg.map_err(|e| {
        (error(500, "server_error", "not_configured", &e.not_configured()), format!("{route} not configured: {e}"))
    })?;
    if has_dot_segment(route) {
        // `..` would leave agents_upstream's base path with the upstream key attached.
        let message = "the path must not contain . or .. segments";
        return Err((error(400, "invalid_request_error", "invalid_path", message), format!("{route} refused: dots")));
    }
    if route.trim_end_matches('/') == "/_usage" {
        return Ok(Checked::UsageReport(cfg));
    }
    match cfg.verifier.verify(req.header("authorization").unwrap_or(""), now_ms) {
        Ok(claims) => Ok(Checked::Forward { route, cfg, ak: claims.api_key }),
        Err(e) => Err((
            error(401, "authentication_error", e.code(), &e.to_string()),
            format!("{route} refused: {}", e.code()),
        )),
    }
}

/// Whether a path has a `.` or `..` segment, also percent-encoded.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

/// Answers one request to the component. Never panics on input.
pub async fn handle<S, U, C, R>(
    req: &Inbound,
    cfg: Result<&AgentsConfig, &ConfigError>,
    ctx: &Ctx<'_, S, U, C, R>,
) -> Answer<U::Body>
where
    S: Store,
    U: Upstream,
    C: Clock,
    R: Random,
{
    let (route, cfg, ak) = match precheck(req, cfg, ctx.clock.now_ms()) {
        Ok(Checked::Forward { route, cfg, ak }) => (route, cfg, ak),
        Ok(Checked::UsageReport(cfg)) => return complete(usage_report(req, cfg, ctx).await, "usage report".into()),
        Err((response, summary)) => return complete(response, summary),
    };
    if req.body.len() > MAX_REQUEST_BYTES {
        let message = format!("request body over {MAX_REQUEST_BYTES} bytes");
        return complete(
            error(413, "invalid_request_error", "request_too_large", &message),
            format!("{route} too large"),
        );
    }
    forward(req, route, cfg, ctx, &ak).await
}

async fn forward<S, U, C, R>(
    req: &Inbound,
    route: &str,
    cfg: &AgentsConfig,
    ctx: &Ctx<'_, S, U, C, R>,
    ak: &str,
) -> Answer<U::Body>
where
    S: Store,
    U: Upstream,
    C: Clock,
    R: Random,
{
    let started_at = ctx.clock.monotonic_ms();
    let deadline_at = started_at.saturating_add(cfg.deadline_ms);
    let (request_id, generated_id) = match req.header("x-request-id").map(str::trim).filter(|v| !v.is_empty()) {
        Some(id) => (id.chars().take(128).collect::<String>(), false),
        None => {
            let mut bytes = [0u8; 16];
            ctx.random.fill(&mut bytes);
            (uuid::Builder::from_random_bytes(bytes).into_uuid().to_string(), true)
        }
    };
    let mut entry = Entry {
        customer: req.header("x-customer-id").map(str::trim).filter(|v| !v.is_empty()).unwrap_or("-").to_owned(),
        request_id: request_id.clone(),
        generated_id,
        at_ms: ctx.clock.now_ms(),
        path: route.to_owned(),
        status: 0,
        stream: false,
        outcome: Outcome::UpstreamUnreachable,
        usage: None,
    };

    let mut headers: Vec<(String, String)> = FORWARDED_HEADERS
        .iter()
        .filter_map(|name| req.header(name).map(|v| ((*name).to_owned(), v.to_owned())))
        .filter(|(name, _)| name != "x-request-id")
        .collect();
    headers.push(("x-request-id".to_owned(), request_id));
    if let Some(key) = &cfg.upstream_key {
        headers.push(("authorization".to_owned(), format!("Bearer {}", key.as_str())));
    }
    let body = ask_for_stream_usage(req.method.as_str(), route, &req.body).unwrap_or_else(|| req.body.clone());
    let query = if req.query.is_empty() { String::new() } else { format!("?{}", req.query) };
    let request =
        UpstreamRequest { method: req.method.clone(), url: format!("{}{route}{query}", cfg.upstream), headers, body };

    let head = match ctx.backend.open(&request, cfg.deadline_ms).await {
        Ok(head) => head,
        Err(e) => {
            let (status, code, message, outcome) = match e {
                OutboundError::Timeout => (
                    504,
                    "upstream_timeout",
                    "the upstream did not answer within agents_deadline_s",
                    Outcome::UpstreamTimeout,
                ),
                OutboundError::Denied => (
                    502,
                    "upstream_denied",
                    "the host refused the upstream: agents_upstream must be allowed by agents_upstream_hosts",
                    Outcome::UpstreamUnreachable,
                ),
                _ => (502, "upstream_unreachable", "the upstream could not be reached", Outcome::UpstreamUnreachable),
            };
            entry.status = status;
            entry.outcome = outcome;
            let recorded = ledger::record(ctx.store, &entry).await;
            let took = ctx.clock.monotonic_ms().saturating_sub(started_at);
            return complete(
                error(status, "upstream_error", code, message),
                format!("ak={} {}", ak, summary(&entry, &recorded, took, &format!(" error={e}"))),
            );
        }
    };

    entry.status = head.status;
    let content_type = header_of(&head.headers, "content-type").unwrap_or("").to_ascii_lowercase();
    let mut response_headers: Vec<(String, String)> = head
        .headers
        .iter()
        .filter(|(k, _)| !DROPPED_RESPONSE_HEADERS.iter().any(|d| k.eq_ignore_ascii_case(d)))
        .filter(|(k, _)| !k.eq_ignore_ascii_case("x-usage-status"))
        .cloned()
        .collect();

    let relay = |headers: Vec<(String, String)>, body: U::Body, filter: Option<SseUsage>, entry: Entry| {
        Answer::Stream(Box::new(Relay {
            head: Outbound { status: head.status, headers, body: Vec::new() },
            body,
            filter,
            entry: Entry { stream: true, ..entry },
            deadline_at,
            started_at,
        }))
    };
    let no_body = req.method == "HEAD" || matches!(head.status, 100..=199 | 204 | 304);
    if no_body {
        // Nothing to account, and the upstream's framing (a HEAD's content-length) is the answer's.
        if req.method == "HEAD"
            && let Some(length) = header_of(&head.headers, "content-length")
        {
            response_headers.push(("content-length".to_owned(), length.to_owned()));
        }
        response_headers.push(("x-usage-status".to_owned(), "missing".to_owned()));
        return relay(response_headers, head.body, None, entry);
    }
    if content_type.starts_with("text/event-stream") {
        return relay(response_headers, head.body, Some(SseUsage::new()), entry);
    }
    let is_json = content_type.starts_with("application/json")
        || content_type.split(';').next().is_some_and(|t| t.trim().ends_with("+json"));
    if !is_json {
        response_headers.push(("x-usage-status".to_owned(), "missing".to_owned()));
        return relay(response_headers, head.body, None, entry);
    }

    // JSON: read whole, then account.
    let mut body = head.body;
    let mut bytes = Vec::new();
    let read = loop {
        let remaining = deadline_at.saturating_sub(ctx.clock.monotonic_ms());
        if remaining == 0 {
            break Err(OutboundError::Timeout);
        }
        match body.next_chunk(remaining).await {
            Ok(Some(chunk)) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_JSON_ANSWER_BYTES {
                    break Err(OutboundError::Transport("too large".into()));
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let took = |ctx: &Ctx<'_, S, U, C, R>| ctx.clock.monotonic_ms().saturating_sub(started_at);
    if let Err(e) = read {
        let (status, code, message, outcome) = match &e {
            OutboundError::Timeout => (
                504,
                "upstream_timeout",
                "the upstream did not finish its answer within agents_deadline_s",
                Outcome::UpstreamTimeout,
            ),
            OutboundError::Transport(t) if t == "too large" => {
                (502, "upstream_answer_too_large", "the upstream's JSON answer is over 16 MiB", Outcome::UpstreamError)
            }
            _ => (502, "upstream_broken", "the upstream's answer broke off", Outcome::StreamBroken),
        };
        entry.status = status;
        entry.outcome = outcome;
        let recorded = ledger::record(ctx.store, &entry).await;
        return complete(
            error(status, "upstream_error", code, message),
            format!("ak={} {}", ak, summary(&entry, &recorded, took(ctx), &format!(" error={e}"))),
        );
    }
    let success = (200..300).contains(&head.status);
    let (changed, outcome) = if success { usage::normalise_json(&bytes) } else { (None, UsageOutcome::Missing) };
    entry.usage = outcome.usage().map(|u| u.tokens);
    entry.outcome = match (&outcome, success) {
        (_, false) => Outcome::UpstreamError,
        (UsageOutcome::Missing, true) => Outcome::NoUsage,
        _ => Outcome::Billable,
    };
    response_headers.push(("x-usage-status".to_owned(), outcome.status().to_owned()));
    let recorded = ledger::record(ctx.store, &entry).await;
    let response = Outbound { status: head.status, headers: response_headers, body: changed.unwrap_or(bytes) };
    complete(
        response,
        format!("ak={} {}", ak, summary(&entry, &recorded, took(ctx), &format!(" usage={}", outcome.status()))),
    )
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// For an OpenAI-style streaming completion (`POST …/completions` with `"stream": true`), the body with
/// `stream_options.include_usage = true` — OpenAI-compatible servers report a stream's usage only when asked.
/// `None` when the body stays as it is.
pub fn ask_for_stream_usage(method: &str, route: &str, body: &[u8]) -> Option<Vec<u8>> {
    if method != "POST" || !route.trim_end_matches('/').ends_with("/completions") {
        return None;
    }
    let mut document: Value = serde_json::from_slice(body).ok()?;
    let object = document.as_object_mut()?;
    if object.get("stream") != Some(&Value::Bool(true)) {
        return None;
    }
    match object.get_mut("stream_options") {
        Some(Value::Object(options)) => {
            if options.get("include_usage") == Some(&Value::Bool(true)) {
                return None;
            }
            options.insert("include_usage".into(), Value::Bool(true));
        }
        _ => {
            object.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    serde_json::to_vec(&document).ok()
}

/// `GET /agents/_usage`: the ledger's totals for `customer` (all when absent) from `from` (inclusive, default the
/// beginning) to `to` (exclusive, default now). Times are milliseconds since the epoch, `yyyyMMdd'T'HHmmss'Z'`
/// or `yyyy-MM-dd` (UTC midnight).
async fn usage_report<S, U, C, R>(req: &Inbound, cfg: &AgentsConfig, ctx: &Ctx<'_, S, U, C, R>) -> Outbound
where
    S: Store,
    C: Clock,
{
    let Some(token) = &cfg.admin_token else {
        return error(500, "server_error", "not_configured", "not configured: set admin_token");
    };
    if !bearer_matches(req, token.as_bytes()) {
        return error(401, "authentication_error", "bad_admin_token", "missing or wrong bearer token");
    }
    if req.method != "GET" {
        return error(405, "invalid_request_error", "method_not_allowed", "use GET");
    }
    let params = req.query_params();
    let single = |name: &'static str| crate::http::single_param(&params, name);
    let (customer, from, to) = match (single("customer"), single("from"), single("to")) {
        (Ok(c), Ok(f), Ok(t)) => (c.filter(|c| !c.is_empty()), f, t),
        _ => {
            return error(
                400,
                "invalid_request_error",
                "duplicate_parameter",
                "customer, from and to may appear once each",
            );
        }
    };
    let parse = |value: Option<&str>, default: u64, name: &str| match value {
        None | Some("") => Ok(default),
        Some(v) => parse_instant(v).ok_or(format!("{name} must be milliseconds, yyyyMMddTHHmmssZ or yyyy-MM-dd")),
    };
    let (from_ms, to_ms) = match (parse(from, 0, "from"), parse(to, ctx.clock.now_ms().saturating_add(1), "to")) {
        (Ok(f), Ok(t)) if f <= t => (f, t),
        (Ok(_), Ok(_)) => return error(400, "invalid_request_error", "bad_period", "from must not be after to"),
        (Err(m), _) | (_, Err(m)) => return error(400, "invalid_request_error", "bad_time", &m),
    };
    match ledger::totals(ctx.store, customer, from_ms, to_ms).await {
        Ok((totals, skipped)) => {
            let body = json!({
                "customer": customer,
                "from": from_ms,
                "to": to_ms,
                "requests": totals.requests,
                "billable": totals.billable,
                "unbillable": totals.unbillable,
                "outcomes": totals.outcomes,
                "usage": totals.usage,
                "customers": totals.customers,
                "unreadable_records": skipped,
            });
            Outbound {
                status: 200,
                headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                body: body.to_string().into_bytes(),
            }
        }
        Err(_) => error(503, "server_error", "store_unavailable", "the key-value store failed; try again"),
    }
}

/// Milliseconds (digits), `yyyyMMdd'T'HHmmss'Z'`, or `yyyy-MM-dd` (UTC midnight).
fn parse_instant(text: &str) -> Option<u64> {
    let text = text.trim();
    if !text.is_empty() && text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    if let Ok(ms) = crate::wire::time::parse_sdk_date(text) {
        return Some(ms);
    }
    let date = crate::wire::time::parse_loose_date(text).ok()?;
    crate::wire::time::parse_sdk_date(&format!("{:04}{:02}{:02}T000000Z", date.year, date.month, date.day)).ok()
}

#[cfg(test)]
mod tests;
