//! The `agents` component through the harness (wasmtime) against the harness's mock OpenAI-compatible upstream over
//! real HTTP: the JWT accept/reject matrix, usage normalisation for each upstream shape, server-sent events passed
//! through as they arrive (measured: the first event reaches the client while the upstream still holds the rest),
//! the usage on a stream's final event, the ledger's totals after a mixed run, and upstream failures.
//!
//! The mock computes and records the usage it reported with its own code; the assertions compare the component's
//! answers and ledger with what the mock says it sent.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use conformance::{Endpoint, WasmEndpoint, WasmOptions};
use harness::upstream::{MockUpstream, ReportedUsage, UpstreamConfig};
use http_body_util::{BodyExt, Full};
use koogallery_core::http::{Inbound, Outbound};
use koogallery_core::signing::agents_jwt;
use koogallery_core::signing::keys::SecretKey;
use serde_json::{Value, json};
use wasmtime_wasi_http::WasiBody;

const AK: &str = "gateway-ak";
const SK: &str = "gateway-sk-0123456789";
const UPSTREAM_KEY: &str = "upstream-secret";
const ADMIN: &str = "admin-token-for-agents";

struct World {
    ep: WasmEndpoint,
    mock: MockUpstream,
}

impl World {
    fn new() -> Self {
        Self::with(UpstreamConfig { api_key: Some(UPSTREAM_KEY.into()), chunk_delay: Duration::from_millis(20) }, &[])
    }

    fn with(config: UpstreamConfig, extra: &[(&str, &str)]) -> Self {
        let mock = MockUpstream::start_in_background(config).unwrap_or_else(|e| panic!("mock: {e:#}"));
        let mut variables: Vec<(String, String)> = vec![
            ("agents_keys".into(), format!("other-ak:other-sk,{AK}:{SK}")),
            ("agents_upstream".into(), mock.base_url()),
            ("agents_upstream_key".into(), UPSTREAM_KEY.into()),
            ("agents_upstream_hosts".into(), "http://127.0.0.1:*".into()),
            ("admin_token".into(), ADMIN.into()),
        ];
        for (k, v) in extra {
            variables.retain(|(name, _)| name != k);
            variables.push(((*k).to_owned(), (*v).to_owned()));
        }
        let ep = WasmEndpoint::new(WasmOptions { variables, ..Default::default() }).unwrap_or_else(|e| panic!("{e:#}"));
        Self { ep, mock }
    }

    fn token(&self) -> String {
        let now = self.ep.now();
        agents_jwt::sign(AK, &SecretKey::new(SK), now, now + 300_000)
    }

    fn request(&self, path: &str, body: &Value, request_id: &str, customer: &str) -> Inbound {
        Inbound {
            method: "POST".into(),
            path: format!("/agents{path}"),
            query: String::new(),
            headers: vec![
                ("authorization".into(), format!("Bearer {}", self.token())),
                ("content-type".into(), "application/json".into()),
                ("x-request-id".into(), request_id.into()),
                ("x-customer-id".into(), customer.into()),
                ("x-customer-name".into(), "Buyer Co".into()),
            ],
            body: body.to_string().into_bytes(),
        }
    }

    fn chat(&self, model: &str, request_id: &str, customer: &str) -> Outbound {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "where is Nanjing please"}], "max_tokens": 4});
        self.ep.send(&self.request("/v1/chat/completions", &body, request_id, customer))
    }

    /// Serves `req` with the response body streaming back as the component writes it.
    fn open_stream(&self, req: &Inbound) -> (http::response::Parts, WasiBody) {
        let request =
            conformance::to_http(req).map(|b: Bytes| Full::new(b).map_err(|never| match never {}).boxed_unsync());
        let app = self.ep.app();
        let served = self
            .ep
            .runtime()
            .block_on(app.serve_streaming(request, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
            .unwrap_or_else(|e| panic!("serve: {e:#}"));
        served.response.into_parts()
    }

    /// The next data chunk of `body` within `wait`; `Ok(None)` at its end, `Err` when the body failed.
    fn next_chunk(&self, body: &mut WasiBody, wait: Duration) -> Result<Option<Bytes>, String> {
        self.ep.runtime().block_on(async {
            loop {
                match tokio::time::timeout(wait, body.frame()).await {
                    Err(_) => return Err(format!("no chunk within {wait:?}")),
                    Ok(None) => return Ok(None),
                    Ok(Some(Err(e))) => return Err(format!("body error: {e:?}")),
                    Ok(Some(Ok(frame))) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        })
    }

    fn report(&self, query: &str, bearer: Option<&str>) -> Outbound {
        let headers = bearer.map(|b| vec![("authorization".to_owned(), format!("Bearer {b}"))]).unwrap_or_default();
        self.ep.send(&Inbound {
            method: "GET".into(),
            path: "/agents/_usage".into(),
            query: query.into(),
            headers,
            body: vec![],
        })
    }
}

fn json_of(out: &Outbound) -> Value {
    serde_json::from_slice(&out.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.body)))
}

fn usage_of(v: &Value) -> ReportedUsage {
    let n = |k: &str| v["usage"][k].as_u64().unwrap_or_else(|| panic!("usage.{k} missing in {v}"));
    ReportedUsage {
        prompt_tokens: n("prompt_tokens"),
        completion_tokens: n("completion_tokens"),
        total_tokens: n("total_tokens"),
    }
}

/// The data of each event of an SSE text, in order.
fn data_events(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

#[test]
fn jwt_accept_and_reject_matrix() {
    let w = World::new();
    let now = w.ep.now();
    let sign = |ak: &str, sk: &str, ts: u64, exp: u64| agents_jwt::sign(ak, &SecretKey::new(sk), ts, exp);
    let raw = |header: &str, payload: &Value, sk: &str| {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!("{}.{}", b64.encode(header), b64.encode(payload.to_string()));
        let mac = {
            use sha2::Digest as _;
            // HMAC-SHA256 written out (RFC 2104) so the test does not use the code under test.
            let mut key = [0u8; 64];
            key[..sk.len()].copy_from_slice(sk.as_bytes());
            let ipad: Vec<u8> = key.iter().map(|b| b ^ 0x36).collect();
            let opad: Vec<u8> = key.iter().map(|b| b ^ 0x5c).collect();
            let inner = sha2::Sha256::new().chain_update(&ipad).chain_update(input.as_bytes()).finalize();
            sha2::Sha256::new().chain_update(&opad).chain_update(inner).finalize()
        };
        format!("{input}.{}", b64.encode(mac))
    };
    let hs256 = r#"{"alg":"HS256","sign_type":"SIGN"}"#;
    let good = sign(AK, SK, now, now + 300_000);
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("valid, Bearer", Some(format!("Bearer {good}")), 200, ""),
        ("valid, bare token", Some(good.clone()), 200, ""),
        ("valid, exp in seconds", Some(sign(AK, SK, now / 1000, now / 1000 + 300)), 200, ""),
        (
            "valid, hand-made HS256",
            Some(raw(hs256, &json!({"api_key": AK, "exp": now + 60_000, "timestamp": now}), SK)),
            200,
            "",
        ),
        ("no header", None, 401, "missing_token"),
        ("empty Bearer", Some("Bearer ".into()), 401, "missing_token"),
        ("malformed", Some("Bearer a.b".into()), 401, "malformed_token"),
        ("wrong SK", Some(sign(AK, "not-the-sk", now, now + 300_000)), 401, "bad_signature"),
        ("unknown AK", Some(sign("stranger", SK, now, now + 300_000)), 401, "unknown_api_key"),
        ("expired, ms", Some(sign(AK, SK, now - 600_000, now - 300_000)), 401, "token_expired"),
        ("expired, s", Some(sign(AK, SK, (now - 600_000) / 1000, (now - 300_000) / 1000)), 401, "token_expired"),
        ("timestamp in the future", Some(sign(AK, SK, now + 120_000, now + 400_000)), 401, "token_not_yet_valid"),
        (
            "alg none",
            Some(raw(r#"{"alg":"none"}"#, &json!({"api_key": AK, "exp": now + 60_000, "timestamp": now}), SK)),
            401,
            "unsupported_alg",
        ),
        (
            "alg HS512",
            Some(raw(
                r#"{"alg":"HS512","sign_type":"SIGN"}"#,
                &json!({"api_key": AK, "exp": now + 60_000, "timestamp": now}),
                SK,
            )),
            401,
            "unsupported_alg",
        ),
        ("no api_key", Some(raw(hs256, &json!({"exp": now + 60_000, "timestamp": now}), SK)), 401, "missing_api_key"),
        ("no exp nor timestamp", Some(raw(hs256, &json!({"api_key": AK}), SK)), 401, "missing_expiry"),
        (
            "exp not a number",
            Some(raw(hs256, &json!({"api_key": AK, "exp": "later", "timestamp": now}), SK)),
            401,
            "malformed_token",
        ),
        (
            "payload tampered",
            Some({
                let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
                parts[1] = {
                    use base64::Engine as _;
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(json!({"api_key": AK, "exp": now + 9_999_999, "timestamp": now}).to_string())
                };
                parts.join(".")
            }),
            401,
            "bad_signature",
        ),
    ];
    for (name, authorization, status, code) in cases {
        let before = w.mock.received().len();
        let mut req = w.request("/v1/chat/completions", &json!({"model": "gpt-mock", "messages": []}), name, "c-jwt");
        req.headers.retain(|(k, _)| k != "authorization");
        if let Some(a) = authorization {
            req.headers.push(("authorization".into(), a));
        }
        let out = w.ep.send(&req);
        assert_eq!(out.status, status, "{name}: {}", String::from_utf8_lossy(&out.body));
        let forwarded = w.mock.received().len() - before;
        if status == 401 {
            assert_eq!(json_of(&out)["error"]["code"], code, "{name}");
            assert_eq!(out.header("www-authenticate"), Some("Bearer"), "{name}");
            assert_eq!(forwarded, 0, "{name}: a refused request reached the upstream");
            assert!(!String::from_utf8_lossy(&out.body).contains(SK));
        } else {
            assert_eq!(forwarded, 1, "{name}");
        }
    }
}

#[test]
fn the_upstream_gets_its_key_and_the_gateway_headers_never_the_jwt() {
    let w = World::new();
    let out = w.chat("gpt-mock", "req-headers", "cust-h");
    assert_eq!(out.status, 200, "{}", String::from_utf8_lossy(&out.body));
    let got = w.mock.received().pop().expect("received");
    assert_eq!(got.path, "/v1/chat/completions");
    assert_eq!(got.header("authorization"), Some(format!("Bearer {UPSTREAM_KEY}").as_str()));
    assert_eq!(got.header("x-request-id"), Some("req-headers"));
    assert_eq!(got.header("x-customer-id"), Some("cust-h"));
    assert_eq!(got.header("x-customer-name"), Some("Buyer Co"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert!(
        !got.headers.iter().any(|(_, v)| v.to_str().unwrap_or("").contains(&w.token()[..20])),
        "the JWT leaked upstream"
    );
    assert!(!got.include_usage_requested, "a non-streaming request is sent as it came");
}

#[test]
fn usage_is_top_level_for_every_upstream_shape() {
    let w = World::new();
    for (model, status) in [
        ("gpt-mock", "reported"),
        ("usage-input-output", "normalised"),
        ("usage-nested", "normalised"),
        ("usage-gemini", "normalised"),
        ("usage-extra", "reported"),
    ] {
        let out = w.chat(model, &format!("shape-{model}"), "c-shapes");
        assert_eq!(out.status, 200, "{model}");
        assert_eq!(out.header("x-usage-status"), Some(status), "{model}");
        let body = json_of(&out);
        let reported = w.mock.received().pop().and_then(|r| r.reported_usage).expect("mock reported usage");
        assert_eq!(usage_of(&body), reported, "{model}: the component's usage is the upstream's");
        if model == "usage-extra" {
            assert_eq!(body["usage"]["image_count"], 2, "factors are kept");
            assert_eq!(body["usage"]["video_duration"], 3.5);
        }
        if model == "usage-nested" {
            assert!(body["response"]["output_text"].is_string(), "the rest of the body is unchanged: {body}");
        }
    }
    // Without usage: passed through unchanged, flagged, never invented.
    let out = w.chat("no-usage", "shape-none", "c-shapes");
    assert_eq!(out.status, 200);
    assert_eq!(out.header("x-usage-status"), Some("missing"));
    assert!(json_of(&out).get("usage").is_none(), "no usage may be invented");
}

#[test]
fn sse_first_event_arrives_before_the_upstream_finishes_and_the_last_carries_usage() {
    let w = World::new();
    let body = json!({"model": "gated", "stream": true, "messages": [{"role": "user", "content": "stream to me now"}], "max_tokens": 6});
    let sent_at = Instant::now();
    let (parts, mut stream) = w.open_stream(&w.request("/v1/chat/completions", &body, "sse-gated", "c-sse"));
    assert_eq!(parts.status, 200);
    assert!(
        parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").starts_with("text/event-stream")
    );
    // The mock holds everything after its first event until the gate opens: a buffering runner or component would
    // never deliver this chunk.
    let first =
        w.next_chunk(&mut stream, Duration::from_secs(10)).expect("the first event, while the upstream holds the rest");
    let first_at = Instant::now();
    let first = first.expect("a first chunk");
    let held = w.mock.received().pop().expect("received");
    assert!(held.finished_at.is_none(), "the upstream had not finished when the first event arrived");
    let upstream_first = held.first_event_at.expect("the mock wrote its first event");
    eprintln!(
        "agents sse: time to first chunk {:?} (upstream wrote it {:?} after the request; through the component +{:?})",
        first_at - sent_at,
        upstream_first - sent_at,
        first_at.saturating_duration_since(upstream_first)
    );
    assert!(String::from_utf8_lossy(&first).starts_with("data: "), "{first:?}");
    assert!(held.include_usage_requested, "the component asked the upstream for usage");

    w.mock.release_gate();
    let mut text = String::from_utf8_lossy(&first).into_owned();
    let mut chunks = 1;
    while let Some(chunk) = w.next_chunk(&mut stream, Duration::from_secs(10)).expect("the rest of the stream") {
        text.push_str(&String::from_utf8_lossy(&chunk));
        chunks += 1;
    }
    assert!(chunks > 2, "events arrive as separate chunks ({chunks})");
    let events = data_events(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "[DONE] is kept, last");
    let last: Value = serde_json::from_str(&events[events.len() - 2]).expect("final data event");
    let reported = w.mock.received().pop().and_then(|r| r.reported_usage).expect("usage reported");
    assert_eq!(usage_of(&last), reported);
    assert_eq!(last["choices"], json!([]));
}

#[test]
fn streams_of_every_shape_end_with_usage_or_pass_unchanged() {
    let w = World::new();
    for (model, expect_usage) in
        [("usage-anthropic", true), ("usage-every-chunk", true), ("crlf", true), ("no-usage", false)]
    {
        let body = json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 3});
        let (parts, mut stream) =
            w.open_stream(&w.request("/v1/chat/completions", &body, &format!("sse-{model}"), "c-sse"));
        assert_eq!(parts.status, 200, "{model}");
        let mut raw = Vec::new();
        while let Some(chunk) =
            w.next_chunk(&mut stream, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{model}: {e}"))
        {
            raw.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(raw).expect("utf8");
        let events = data_events(&text);
        let last_data = events.iter().rev().find(|e| e.as_str() != "[DONE]").expect("a data event");
        let last: Value = serde_json::from_str(last_data).expect("json");
        let received = w.mock.received().pop().expect("received");
        if expect_usage {
            let reported = received.reported_usage.expect("usage reported");
            assert_eq!(usage_of(&last), reported, "{model}: {text}");
        } else {
            assert!(last.get("usage").is_none(), "{model}: no usage may be invented");
        }
        if model == "crlf" {
            assert!(text.ends_with("\r\n\r\n"), "line endings kept");
        }
    }
}

#[test]
fn a_stream_that_breaks_off_is_cut_short_for_the_client() {
    let w = World::new();
    let body = json!({"model": "error-mid-stream", "stream": true, "messages": [], "max_tokens": 5});
    let (_, mut stream) = w.open_stream(&w.request("/v1/chat/completions", &body, "sse-broken", "c-broken"));
    let mut text = String::new();
    let end = loop {
        match w.next_chunk(&mut stream, Duration::from_secs(10)) {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk)),
            other => break other,
        }
    };
    assert!(end.is_err(), "the body must end with an error, not look complete: {end:?}");
    assert!(text.contains("event: error") && text.contains("upstream_broken"), "{text}");
    let totals = json_of(&w.report("customer=c-broken", Some(ADMIN)));
    assert_eq!(totals["outcomes"]["stream_broken"], 1, "{totals}");
    assert_eq!(totals["billable"], 0);
}

#[test]
fn ledger_totals_after_a_mixed_run() {
    let w = World::new();
    let mut expected = ReportedUsage::default();
    let mut add = |u: ReportedUsage| {
        expected.prompt_tokens += u.prompt_tokens;
        expected.completion_tokens += u.completion_tokens;
        expected.total_tokens += u.total_tokens;
    };
    for (i, model) in ["gpt-mock", "usage-input-output", "usage-gemini", "gpt-mock"].iter().enumerate() {
        assert_eq!(w.chat(model, &format!("mix-{i}"), "c-mix").status, 200);
        add(w.mock.received().pop().and_then(|r| r.reported_usage).expect("usage"));
    }
    // A retry with the same X-Request-Id replaces its record: counted once.
    assert_eq!(w.chat("gpt-mock", "mix-0", "c-mix").status, 200);
    assert_eq!(w.chat("no-usage", "mix-none", "c-mix").status, 200);
    assert_eq!(w.chat("error-500", "mix-500", "c-mix").status, 500);
    let body =
        json!({"model": "gpt-mock", "stream": true, "messages": [{"role": "user", "content": "x y"}], "max_tokens": 2});
    let (_, mut stream) = w.open_stream(&w.request("/v1/chat/completions", &body, "mix-stream", "c-mix"));
    while w.next_chunk(&mut stream, Duration::from_secs(10)).expect("stream").is_some() {}
    add(w.mock.received().pop().and_then(|r| r.reported_usage).expect("stream usage"));
    // Another customer's request is not in c-mix's totals.
    assert_eq!(w.chat("gpt-mock", "other-1", "c-other").status, 200);

    assert_eq!(w.report("customer=c-mix", None).status, 401);
    assert_eq!(w.report("customer=c-mix", Some("wrong")).status, 401);
    let totals = json_of(&w.report("customer=c-mix", Some(ADMIN)));
    assert_eq!(totals["requests"], 7, "{totals}");
    assert_eq!(totals["billable"], 5, "{totals}");
    assert_eq!(totals["unbillable"], 2, "{totals}");
    assert_eq!(totals["outcomes"]["no_usage"], 1);
    assert_eq!(totals["outcomes"]["upstream_error"], 1);
    assert_eq!(totals["usage"]["total_tokens"], expected.total_tokens, "{totals}");
    assert_eq!(totals["usage"]["prompt_tokens"], expected.prompt_tokens);
    assert_eq!(totals["usage"]["completion_tokens"], expected.completion_tokens);
    let all = json_of(&w.report("", Some(ADMIN)));
    assert_eq!((all["requests"].as_u64(), all["customers"].as_u64()), (Some(8), Some(2)), "{all}");
    let none = json_of(&w.report(&format!("customer=c-mix&to={}", w.ep.now() - 1), Some(ADMIN)));
    assert_eq!(none["requests"], 0, "the period bounds the totals: {none}");
    assert_eq!(w.report("customer=c-mix&from=tomorrow", Some(ADMIN)).status, 400);
}

#[test]
fn upstream_down_slow_or_failing() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port");
    let w = World::with(
        UpstreamConfig::default(),
        &[("agents_upstream", &format!("http://{closed}")), ("agents_upstream_key", "")],
    );
    let out = w.chat("gpt-mock", "down-1", "c-down");
    assert_eq!(out.status, 502, "{}", String::from_utf8_lossy(&out.body));
    assert_eq!(json_of(&out)["error"]["code"], "upstream_unreachable");

    let w = World::with(UpstreamConfig::default(), &[("agents_deadline_s", "1"), ("agents_upstream_key", "")]);
    let started = Instant::now();
    let out = w.chat("hang", "hang-1", "c-down");
    assert_eq!(out.status, 504, "{}", String::from_utf8_lossy(&out.body));
    assert_eq!(json_of(&out)["error"]["code"], "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(5), "answered at the deadline, not later: {:?}", started.elapsed());
    // The upstream's own errors pass through as they are.
    let out = w.chat("error-400", "e400", "c-down");
    assert_eq!(out.status, 400);
    assert_eq!(json_of(&out)["error"]["type"], "invalid_request_error");

    let w = World::with(UpstreamConfig::default(), &[("agents_upstream_hosts", "https://only.example.com")]);
    let out = w.chat("gpt-mock", "denied-1", "c-down");
    assert_eq!(out.status, 502);
    assert!(String::from_utf8_lossy(&out.body).contains("agents_upstream_hosts"));
}

#[test]
fn not_configured_names_the_variable() {
    let ep = WasmEndpoint::new(WasmOptions::default()).unwrap_or_else(|e| panic!("{e:#}"));
    let out =
        ep.send(&Inbound { method: "POST".into(), path: "/agents/v1/chat/completions".into(), ..Default::default() });
    assert_eq!(out.status, 500);
    assert!(
        String::from_utf8_lossy(&out.body).contains("not configured: set agents_keys"),
        "{}",
        String::from_utf8_lossy(&out.body)
    );
}
