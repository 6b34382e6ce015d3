use std::cell::RefCell;
use std::collections::VecDeque;

use super::order::{QUERY_ORDER_PATH, QueryOrderError, query_order};
use super::*;
use crate::ports::FixedClock;
use crate::signing::apig;
use crate::signing::window::TimestampWindow;

const NOW: u64 = 1_710_686_557_000; // 2024-03-17T14:42:37Z

/// A backend answering from a script and recording every call.
#[derive(Default)]
struct Scripted {
    replies: RefCell<VecDeque<Result<OutboundReply, OutboundError>>>,
    calls: RefCell<Vec<apig::ApigRequest>>,
}

impl Scripted {
    fn new(replies: Vec<Result<OutboundReply, OutboundError>>) -> Self {
        Self { replies: RefCell::new(replies.into()), calls: RefCell::default() }
    }
    fn next(&self) -> Result<OutboundReply, OutboundError> {
        self.replies.borrow_mut().pop_front().unwrap_or(Err(OutboundError::Transport("script ended".into())))
    }
}

impl Backend for Scripted {
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        _timeout_ms: u64,
    ) -> Result<OutboundReply, OutboundError> {
        self.calls.borrow_mut().push(apig::ApigRequest {
            method: "POST".into(),
            url: url.into(),
            headers: headers.to_vec(),
            body: body.to_vec(),
        });
        self.next()
    }
    async fn get(
        &self,
        url: &str,
        headers: &[(String, String)],
        _timeout_ms: u64,
    ) -> Result<OutboundReply, OutboundError> {
        self.calls.borrow_mut().push(apig::ApigRequest {
            method: "GET".into(),
            url: url.into(),
            headers: headers.to_vec(),
            body: Vec::new(),
        });
        self.next()
    }
}

fn ok(status: u16, body: &str) -> Result<OutboundReply, OutboundError> {
    Ok(OutboundReply { status, body: body.as_bytes().to_vec() })
}

fn config() -> OpenApiConfig {
    let vars = [
        ("openapi_ak", "my-ak"),
        ("openapi_sk", "my-sk"),
        ("openapi_endpoint", "https://primary.example/"),
        ("openapi_fallback_endpoint", "https://fallback.example"),
    ];
    OpenApiConfig::from_variables(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned())).expect("valid")
}

fn deadline() -> Deadline {
    Deadline::after(&FixedClock(NOW), 5_000)
}

/// Checks a recorded call's AK/SK signature as the marketplace would (with core's verifier; the harness mock has
/// an independent one).
fn assert_signed(req: &apig::ApigRequest, host: &str) {
    assert_eq!(req.header("host"), Some(host));
    let sk = |ak: &str| (ak == "my-ak").then(|| SecretKey::new("my-sk"));
    assert_eq!(apig::verify(req, sk, NOW, TimestampWindow::default()), Ok("my-ak".to_owned()));
}

#[test]
fn configuration() {
    let get = |pairs: &'static [(&'static str, &'static str)]| {
        move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned())
    };
    assert_eq!(OpenApiConfig::from_variables(get(&[])).err(), Some(ConfigError::Missing("openapi_ak")));
    assert_eq!(
        OpenApiConfig::from_variables(get(&[("openapi_ak", "a")])).err(),
        Some(ConfigError::Missing("openapi_sk"))
    );
    let cfg = OpenApiConfig::from_variables(get(&[("openapi_ak", "a"), ("openapi_sk", "s")])).expect("defaults");
    assert_eq!(cfg.endpoint, DEFAULT_ENDPOINT);
    assert_eq!(cfg.fallback_endpoint.as_deref(), Some(DEFAULT_FALLBACK_ENDPOINT));
    for local in ["http://127.0.0.1:9500", "http://localhost:1", "http://[::1]:8080/", "http://127.1.2.3"] {
        let vars = [("openapi_ak", "a"), ("openapi_sk", "s"), ("openapi_endpoint", local)];
        let cfg = OpenApiConfig::from_variables(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()));
        assert_eq!(cfg.map(|c| c.endpoint).ok().as_deref(), Some(local.trim_end_matches('/')), "{local}");
    }
    for remote in [
        "http://mkt.myhuaweicloud.com",
        "http://127.0.0.1.evil.example",
        "http://user@127.0.0.1",
        "ftp://x",
        "https://",
    ] {
        let vars = [("openapi_ak", "a"), ("openapi_sk", "s"), ("openapi_endpoint", remote)];
        let cfg = OpenApiConfig::from_variables(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()));
        assert!(matches!(cfg, Err(ConfigError::Invalid { name: "openapi_endpoint", .. })), "{remote}");
    }
    let vars = [("openapi_ak", "a"), ("openapi_sk", "s"), ("openapi_fallback_endpoint", "none")];
    let cfg = OpenApiConfig::from_variables(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()));
    assert_eq!(cfg.map(|c| c.fallback_endpoint).ok(), Some(None));
    // Another site has no fallback unless one is named: signed data never goes to the CN fallback by default.
    let vars = [("openapi_ak", "a"), ("openapi_sk", "s"), ("openapi_endpoint", "https://mkt.myhuaweicloud.eu")];
    let cfg = OpenApiConfig::from_variables(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()));
    assert_eq!(cfg.map(|c| c.fallback_endpoint).ok(), Some(None));
}

#[test]
fn debug_hides_the_secret_key() {
    let text = format!("{:?}", config());
    assert!(text.contains("my-ak") && !text.contains("my-sk"), "{text}");
}

#[test]
fn an_answer_from_the_endpoint_is_final() {
    for status in [200, 400, 401, 404] {
        let backend = Scripted::new(vec![ok(status, "{}")]);
        let request = ApiRequest { method: "POST", path_and_query: "/p", headers: &[], body: b"{}" };
        let reply = pollster::block_on(call(&config(), &request, &backend, &FixedClock(NOW), &deadline()));
        assert_eq!(reply, Ok(ApiReply { status, body: b"{}".to_vec(), fallback: false, fallback_error: None }));
        let calls = backend.calls.borrow();
        assert_eq!(calls.len(), 1, "no fallback after HTTP {status}");
        assert_eq!(calls[0].url, "https://primary.example/p");
        assert_signed(&calls[0], "primary.example");
    }
}

#[test]
fn network_errors_and_5xx_go_to_the_fallback_signed_for_its_host() {
    let failures = [Err(OutboundError::Transport("refused".into())), Err(OutboundError::Timeout), ok(503, "busy")];
    for failure in failures {
        let backend = Scripted::new(vec![failure, ok(200, "yes")]);
        let extra = [("ts".to_owned(), "1".to_owned())];
        let request = ApiRequest { method: "POST", path_and_query: "/p?q=1", headers: &extra, body: b"{\"a\":1}" };
        let reply = pollster::block_on(call(&config(), &request, &backend, &FixedClock(NOW), &deadline()));
        assert_eq!(reply, Ok(ApiReply { status: 200, body: b"yes".to_vec(), fallback: true, fallback_error: None }));
        let calls = backend.calls.borrow();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].url, "https://fallback.example/p?q=1");
        assert_eq!(calls[1].body, b"{\"a\":1}");
        assert_signed(&calls[0], "primary.example");
        assert_signed(&calls[1], "fallback.example");
        let signed =
            calls[1].headers.iter().find(|(k, _)| k == "Authorization").map(|(_, v)| v.clone()).unwrap_or_default();
        assert!(signed.contains("SignedHeaders=content-type;host;ts;x-sdk-date"), "{signed}");
    }
}

#[test]
fn both_endpoints_failing() {
    let backend = Scripted::new(vec![ok(502, "bad gateway"), Err(OutboundError::Timeout)]);
    let request = ApiRequest { method: "POST", path_and_query: "/p", headers: &[], body: b"" };
    let reply = pollster::block_on(call(&config(), &request, &backend, &FixedClock(NOW), &deadline()));
    assert_eq!(
        reply.map(|r| (r.status, r.fallback, r.fallback_error)),
        Ok((502, false, Some("outbound request timed out".to_owned()))),
        "the 5xx is the answer to judge"
    );

    let backend = Scripted::new(vec![Err(OutboundError::Transport("reset".into())), ok(500, "down")]);
    let reply = pollster::block_on(call(&config(), &request, &backend, &FixedClock(NOW), &deadline()));
    assert_eq!(reply.map(|r| (r.status, r.fallback)), Ok((500, true)));

    let backend = Scripted::new(vec![Err(OutboundError::Transport("reset".into())), Err(OutboundError::Timeout)]);
    let reply = pollster::block_on(call(&config(), &request, &backend, &FixedClock(NOW), &deadline()));
    let err = reply.expect_err("unreachable");
    assert_eq!(err.to_string(), "outbound request failed: reset; fallback: outbound request timed out");

    let mut no_fallback = config();
    no_fallback.fallback_endpoint = None;
    let backend = Scripted::new(vec![Err(OutboundError::Timeout)]);
    let reply = pollster::block_on(call(&no_fallback, &request, &backend, &FixedClock(NOW), &deadline()));
    assert_eq!(reply.map_err(|e| e.fallback), Err(None));
    assert_eq!(backend.calls.borrow().len(), 1);
}

#[test]
fn nothing_is_sent_without_time_left() {
    let backend = Scripted::new(vec![ok(200, "")]);
    let request = ApiRequest { method: "GET", path_and_query: "/p", headers: &[], body: b"" };
    let spent = Deadline::after(&FixedClock(NOW), 100);
    let reply = pollster::block_on(call(&config(), &request, &backend, &FixedClock(NOW), &spent));
    assert!(reply.is_err());
    assert!(backend.calls.borrow().is_empty());
}

#[test]
fn query_order_request_and_answers() {
    let answer = r#"{"resultCode":"MKT.0000","resultMsg":"Success","orderInfo":{"orderId":"MOCKONDEMAND","orderLine":[{"orderLineId":"MOCKONDEMAND-000001","chargingMode":"ON_DEMAND","productInfo":[{"productId":"P1","linearValue":"3"}]}]}}"#;
    let backend = Scripted::new(vec![ok(200, answer)]);
    let order = pollster::block_on(query_order(
        &config(),
        "MOCK ONDEMAND",
        Some("MOCKONDEMAND-000001"),
        &backend,
        &FixedClock(NOW),
        &deadline(),
    ))
    .expect("success");
    let line = order.order_info.as_ref().and_then(|o| o.line("MOCKONDEMAND-000001")).expect("line");
    assert_eq!(line.product_id(), Some("P1"));
    let calls = backend.calls.borrow();
    assert_eq!(calls[0].method, "GET");
    assert_eq!(
        calls[0].url,
        format!("https://primary.example{QUERY_ORDER_PATH}?orderId=MOCK%20ONDEMAND&orderLineId=MOCKONDEMAND-000001")
    );
    assert_signed(&calls[0], "primary.example");

    let refused = Scripted::new(vec![ok(200, r#"{"resultCode":"MKT.0101","resultMsg":"no"}"#)]);
    let got = pollster::block_on(query_order(&config(), "X", None, &refused, &FixedClock(NOW), &deadline()));
    assert_eq!(got, Err(QueryOrderError::Refused { code: "MKT.0101".into() }));
    for body in ["<html>", "{}", r#"{"error_code":"APIGW.0101"}"#, r#"{"resultCode":" "}"#] {
        let unreadable = Scripted::new(vec![ok(200, body)]);
        let got = pollster::block_on(query_order(&config(), "X", None, &unreadable, &FixedClock(NOW), &deadline()));
        assert_eq!(got, Err(QueryOrderError::Unreadable), "{body}");
    }
    let long = format!(r#"{{"resultCode":"MKT.0101\n{}"}}"#, "x".repeat(100));
    let refused = Scripted::new(vec![ok(200, &long)]);
    let got = pollster::block_on(query_order(&config(), "X", None, &refused, &FixedClock(NOW), &deadline()));
    let Err(QueryOrderError::Refused { code }) = got else { panic!("{got:?}") };
    assert_eq!(code.len(), 32, "a code reaches logs short and printable: {code}");
    assert!(code.starts_with("MKT.0101x"));
    let status = Scripted::new(vec![ok(403, "{}")]);
    let got = pollster::block_on(query_order(&config(), "X", None, &status, &FixedClock(NOW), &deadline()));
    assert_eq!(got, Err(QueryOrderError::Status(403)));
}
