//! The handler natively, against a scripted upstream: routing, forwarding, the usage guarantee, the ledger.

use std::cell::RefCell;
use std::collections::VecDeque;

use super::*;
use crate::ports::{FixedClock, MemoryStore, OsRandom, SinkClosed, UpstreamHead, VecSink};
use crate::signing::agents_jwt;
use crate::signing::keys::SecretKey;

const NOW: u64 = 1_709_690_865_879;

/// A scripted reply: status, content type, body chunks (or a failure to open).
type Reply = Result<(u16, &'static str, Vec<Result<Vec<u8>, OutboundError>>), OutboundError>;

/// Answers every request with the next scripted reply and keeps the requests.
#[derive(Default)]
struct Scripted {
    replies: RefCell<VecDeque<Reply>>,
    requests: RefCell<Vec<UpstreamRequest>>,
}

struct Chunks(VecDeque<Result<Vec<u8>, OutboundError>>);

impl ChunkSource for Chunks {
    async fn next_chunk(&mut self, _timeout_ms: u64) -> Result<Option<Vec<u8>>, OutboundError> {
        self.0.pop_front().transpose()
    }
}

impl Upstream for Scripted {
    type Body = Chunks;
    async fn open(&self, request: &UpstreamRequest, _timeout_ms: u64) -> Result<UpstreamHead<Chunks>, OutboundError> {
        self.requests.borrow_mut().push(request.clone());
        let (status, content_type, chunks) = self.replies.borrow_mut().pop_front().expect("a scripted reply")?;
        Ok(UpstreamHead {
            status,
            headers: vec![("Content-Type".into(), content_type.into()), ("Transfer-Encoding".into(), "chunked".into())],
            body: Chunks(chunks.into()),
        })
    }
}

fn config(admin: bool) -> AgentsConfig {
    AgentsConfig::from_variables(|n| match n {
        "agents_keys" => Some("ak1:sk1".into()),
        "agents_upstream" => Some("http://model.test/base/".into()),
        "agents_upstream_key" => Some("UPSTREAM-KEY".into()),
        "admin_token" if admin => Some("ADMIN".into()),
        _ => None,
    })
    .expect("config")
}

fn token() -> String {
    agents_jwt::sign("ak1", &SecretKey::new("sk1"), NOW, NOW + 300_000)
}

fn request(path: &str, body: &str, customer: &str, request_id: &str) -> Inbound {
    Inbound {
        method: "POST".into(),
        path: format!("/agents{path}"),
        query: "api-version=1".into(),
        headers: vec![
            ("Authorization".into(), format!("Bearer {}", token())),
            ("Content-Type".into(), "application/json".into()),
            ("X-Request-Id".into(), request_id.into()),
            ("X-Customer-Id".into(), customer.into()),
            ("X-Customer-Name".into(), "Buyer".into()),
            ("Cookie".into(), "not-forwarded".into()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    pollster::block_on(f)
}

fn ctx<'a>(store: &'a MemoryStore, upstream: &'a Scripted) -> Ctx<'a, MemoryStore, Scripted, FixedClock, OsRandom> {
    Ctx { store, backend: upstream, clock: &FixedClock(NOW), random: &OsRandom }
}

impl Scripted {
    /// Scripts one `text/event-stream` answer made of `chunks`.
    fn push_stream(&self, chunks: Vec<Result<Vec<u8>, OutboundError>>) {
        self.replies.borrow_mut().push_back(Ok((200, "text/event-stream", chunks)));
    }
}

/// Handles `req`, expects a streamed answer and relays it into a fresh sink: the sink and the log line.
fn stream_through(req: &Inbound, cfg: &AgentsConfig, store: &MemoryStore, upstream: &Scripted) -> (VecSink, String) {
    let Answer::Stream(relay) = run(handle(req, Ok(cfg), &ctx(store, upstream))) else {
        panic!("expected a streamed answer");
    };
    let mut sink = VecSink::default();
    let summary = run(relay.run(&mut sink, store, &FixedClock(NOW)));
    (sink, summary)
}

fn complete_of<B>(answer: Answer<B>) -> Outbound {
    match answer {
        Answer::Complete { response, .. } => response,
        Answer::Stream(_) => panic!("expected a complete answer"),
    }
}

#[test]
fn json_is_forwarded_with_the_right_headers_and_normalised() {
    let store = MemoryStore::new();
    let upstream = Scripted::default();
    upstream.replies.borrow_mut().push_back(Ok((
        200,
        "application/json",
        vec![Ok(br#"{"id":"x","usage":{"input_tokens":3,"#.to_vec()), Ok(br#""output_tokens":4}}"#.to_vec())],
    )));
    let cfg = config(false);
    let req = request("/v1/chat/completions", r#"{"model":"m","messages":[]}"#, "cust-1", "req-1");
    let out = complete_of(run(handle(&req, Ok(&cfg), &ctx(&store, &upstream))));
    assert_eq!(out.status, 200);
    assert_eq!(out.header("x-usage-status"), Some("normalised"));
    assert_eq!(out.header("transfer-encoding"), None, "hop-by-hop headers are dropped");
    let body: Value = serde_json::from_slice(&out.body).expect("json");
    assert_eq!(body["usage"]["total_tokens"], 7);

    let sent = &upstream.requests.borrow()[0];
    assert_eq!(sent.url, "http://model.test/base/v1/chat/completions?api-version=1");
    let header = |n: &str| sent.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(header("authorization"), Some("Bearer UPSTREAM-KEY"), "the gateway's JWT is replaced");
    assert_eq!(header("x-request-id"), Some("req-1"));
    assert_eq!(header("x-customer-id"), Some("cust-1"));
    assert_eq!(header("x-customer-name"), Some("Buyer"));
    assert_eq!(header("content-type"), Some("application/json"));
    assert!(header("cookie").is_none());
    assert_eq!(sent.body, br#"{"model":"m","messages":[]}"#, "a non-streaming body is sent as received");
}

#[test]
fn refused_tokens_forward_nothing() {
    let store = MemoryStore::new();
    let upstream = Scripted::default();
    let cfg = config(false);
    let mut req = request("/v1/chat/completions", "{}", "c", "r");
    req.headers[0].1 = agents_jwt::sign("ak1", &SecretKey::new("wrong"), NOW, NOW + 300_000);
    let out = complete_of(run(handle(&req, Ok(&cfg), &ctx(&store, &upstream))));
    assert_eq!(out.status, 401);
    let body: Value = serde_json::from_slice(&out.body).expect("json");
    assert_eq!(body["error"]["code"], "bad_signature");
    assert!(upstream.requests.borrow().is_empty());
    assert!(store.snapshot().is_empty(), "nothing recorded for a refused caller");
}

#[test]
fn sse_streams_event_by_event_and_gets_usage_before_done() {
    let store = MemoryStore::new();
    let upstream = Scripted::default();
    upstream.push_stream(vec![
        Ok(b"data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":{\"input_tokens\":5,"
            .to_vec()),
        Ok(b"\"output_tokens\":2}}\n\ndata: [DONE]\n\n".to_vec()),
    ]);
    let cfg = config(true);
    let req = request("/v1/chat/completions", r#"{"model":"m","stream":true}"#, "cust-1", "req-2");
    let (sink, summary) = stream_through(&req, &cfg, &store, &upstream);
    let sent_body: Value = serde_json::from_slice(&upstream.requests.borrow()[0].body).expect("json");
    assert_eq!(sent_body["stream_options"]["include_usage"], true, "usage is asked for");
    assert!(summary.contains("outcome=billable"), "{summary}");
    assert_eq!(sink.chunks.len(), 2, "first event as soon as complete, then usage + [DONE]");
    let tail = String::from_utf8(sink.chunks[1].clone()).expect("utf8");
    assert!(tail.starts_with("data: {\"id\":\"c\",\"choices\":[],\"usage\":{"), "{tail}");
    assert!(tail.ends_with("data: [DONE]\n\n"), "{tail}");

    let report = Inbound {
        method: "GET".into(),
        path: "/agents/_usage".into(),
        query: "customer=cust-1".into(),
        headers: vec![("Authorization".into(), "Bearer ADMIN".into())],
        body: Vec::new(),
    };
    let out = complete_of(run(handle(&report, Ok(&cfg), &ctx(&store, &upstream))));
    let totals: Value = serde_json::from_slice(&out.body).expect("json");
    assert_eq!(totals["requests"], 1);
    assert_eq!(totals["usage"]["total_tokens"], 7);
}

#[test]
fn a_broken_stream_ends_with_an_error_and_is_not_billed() {
    struct Gone;
    impl ChunkSink for Gone {
        async fn send(&mut self, _chunk: Vec<u8>, _timeout_ms: u64) -> Result<(), SinkClosed> {
            Err(SinkClosed)
        }
        fn abort(&mut self) {}
    }
    let store = MemoryStore::new();
    let upstream = Scripted::default();
    for _ in 0..2 {
        upstream.push_stream(vec![Ok(b"data: {\"x\":1}\n\n".to_vec()), Err(OutboundError::Transport("reset".into()))]);
    }
    let cfg = config(false);
    let req = request("/v1/chat/completions", "{}", "c", "r-broken");
    let (sink, summary) = stream_through(&req, &cfg, &store, &upstream);
    assert!(summary.contains("outcome=stream_broken"), "{summary}");
    assert!(sink.aborted);
    assert!(String::from_utf8_lossy(&sink.chunks.concat()).contains("event: error"));

    let req = request("/v1/chat/completions", "{}", "c", "r-gone");
    let Answer::Stream(relay) = run(handle(&req, Ok(&cfg), &ctx(&store, &upstream))) else { panic!("stream") };
    let summary = run(relay.run(&mut Gone, &store, &FixedClock(NOW)));
    assert!(summary.contains("outcome=client_gone"), "{summary}");
}

#[test]
fn upstream_failures_are_502_and_504_and_recorded() {
    let store = MemoryStore::new();
    let upstream = Scripted::default();
    upstream.replies.borrow_mut().push_back(Err(OutboundError::Transport("connection refused".into())));
    upstream.replies.borrow_mut().push_back(Err(OutboundError::Timeout));
    let cfg = config(false);
    let down = complete_of(run(handle(&request("/v1/x", "{}", "c", "r1"), Ok(&cfg), &ctx(&store, &upstream))));
    assert_eq!(down.status, 502);
    let late = complete_of(run(handle(&request("/v1/x", "{}", "c", "r2"), Ok(&cfg), &ctx(&store, &upstream))));
    assert_eq!(late.status, 504);
    let body: Value = serde_json::from_slice(&late.body).expect("json");
    assert_eq!(body["error"]["code"], "upstream_timeout");
    let records = store.snapshot().keys().filter(|k| k.starts_with("agents/ledger/")).count();
    assert_eq!(records, 2);
}

#[test]
fn not_configured_names_the_variable() {
    let store = MemoryStore::new();
    let upstream = Scripted::default();
    let missing = ConfigError::Missing("agents_upstream");
    let out = complete_of(run(handle(&request("/v1/x", "{}", "c", "r"), Err(&missing), &ctx(&store, &upstream))));
    assert_eq!(out.status, 500);
    assert!(String::from_utf8_lossy(&out.body).contains("not configured: set agents_upstream"));
    let report = Inbound { method: "GET".into(), path: "/agents/_usage".into(), ..Default::default() };
    let out = complete_of(run(handle(&report, Ok(&config(false)), &ctx(&store, &upstream))));
    assert!(String::from_utf8_lossy(&out.body).contains("not configured: set admin_token"));
}

#[test]
fn dot_segments_never_reach_the_upstream() {
    let store = MemoryStore::new();
    let upstream = Scripted::default();
    let cfg = config(false);
    for path in ["/../admin", "/v1/./x", "/%2E%2e/secret", "/v1/.."] {
        let out = complete_of(run(handle(&request(path, "{}", "c", "r"), Ok(&cfg), &ctx(&store, &upstream))));
        assert_eq!(out.status, 400, "{path}");
    }
    assert!(upstream.requests.borrow().is_empty());
}

#[test]
fn done_ends_the_stream_even_if_the_upstream_stays_open() {
    let store = MemoryStore::new();
    let upstream = Scripted::default();
    upstream.push_stream(vec![
        Ok(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\ndata: [DONE]\n\n"
            .to_vec()),
        // The upstream never closes: the next read would time out.
        Err(OutboundError::Timeout),
    ]);
    let req = request("/v1/chat/completions", "{}", "c", "r-done");
    let (sink, summary) = stream_through(&req, &config(false), &store, &upstream);
    assert!(summary.contains("outcome=billable"), "{summary}");
    assert!(!sink.aborted);
    assert!(String::from_utf8_lossy(&sink.chunks.concat()).ends_with("data: [DONE]\n\n"));
}

#[test]
fn stream_usage_is_asked_for_only_when_needed() {
    assert_eq!(ask_for_stream_usage("POST", "/v1/chat/completions", br#"{"stream":false}"#), None);
    assert_eq!(ask_for_stream_usage("POST", "/v1/embeddings", br#"{"stream":true}"#), None);
    assert_eq!(
        ask_for_stream_usage(
            "POST",
            "/v1/chat/completions",
            br#"{"stream":true,"stream_options":{"include_usage":true}}"#
        ),
        None
    );
    let amended = ask_for_stream_usage("POST", "/v1/completions", br#"{"stream":true,"stream_options":{"x":1}}"#)
        .expect("amended");
    assert_eq!(amended, br#"{"stream":true,"stream_options":{"x":1,"include_usage":true}}"#);
}

#[test]
fn instants_in_three_forms() {
    assert_eq!(parse_instant("1709690865879"), Some(1_709_690_865_879));
    assert_eq!(parse_instant("20240306T000000Z"), Some(1_709_683_200_000));
    assert_eq!(parse_instant("2024-03-06"), Some(1_709_683_200_000));
    assert_eq!(parse_instant("yesterday"), None);
}
