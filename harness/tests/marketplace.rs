//! The mock marketplace OpenAPI over real HTTP on 127.0.0.1: the AK/SK check against the published and computed
//! vectors and against core's signer, the usage push's body signature, canonical form and records, the license
//! API, the canned orders, failure injection (status, hang, close), the control routes and the log lines.

use bytes::Bytes;
use harness::VirtualClock;
use harness::marketplace::{
    Endpoint, Failure, LICENSE_ACTIVATE_PATH, LICENSE_HEARTBEAT_PATH, LicenseSpec, MarketplaceConfig, MockMarketplace,
    QUERY_ORDER_PATH, SEED_LICENSE, SEED_LICENSE_NOT_RECEIVED, USAGE_PUSH_PATH,
};
use http_body_util::{BodyExt as _, Full};
use koogallery_core::signing::apig::{ApigRequest, ApigSigner};
use koogallery_core::signing::canonical_json::sorted_compact;
use koogallery_core::signing::keys::SecretKey;
use koogallery_core::signing::usage;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// 2024-03-17T14:42:37Z: the API Gateway vectors' `X-Sdk-Date` (test-vectors §9).
const VECTOR_MS: u64 = 1_710_686_557_000;
const SIG_9_1: &str = "77595ad624b6e4e49990b8c4e84bf1c287457fca61069c4e60b9b6765b52053d";
const SIG_9_2: &str = "df37ba3315950b108c9be5a4933a5fc864d004b012050c179dc3d22a78c99301";
/// The recorded `MOCKPERIODYEARNEW` answer of protocol §9.3.
const RECORDED_PERIOD_YEAR_NEW: &str = r#"{"resultCode":"MKT.0000","resultMsg":"Success","orderInfo":{"orderId":"MOCKPERIODYEARNEW","orderType":"NEW","createTime":"20241121090846","orderLine":[{"orderLineId":"MOCKPERIODYEARNEW-000001","chargingMode":"PERIOD","periodType":"year","periodNumber":1,"expireTime":"20251121235959","productInfo":[{"productId":"OFFI846204237451911168","skuCode":"0a4d1578-5295-46a7-92d4-7c803dccc51d","linearValue":50,"productName":"MOCK测试商品,测试规格,基础版,包周期"}],"extendParams":[{"name":"emailDomainName","value":"test.xxxx.com"},{"name":"ip","value":"127.0.0.1"}],"currency":"100","currencyAfterDiscount":"100"}],"buyerInfo":{"mobilePhone":"18688888888","email":null,"customerId":"459bbbec25d24749b2eb83be37b602a8","customerName":"mock_user_01","customerRealName":"测试用户1","customerType":0,"userId":null,"userName":null},"extendParams":[]}}"#;

// ---------------------------------------------------------------------------------------------------------------
// An HTTP/1.1 client that sends exactly the headers given (no Host of its own: the signature covers it).

struct Answer {
    status: u16,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `(status, code)`: the code under `error_code` or `resultCode`.
    fn code(&self) -> (u16, String) {
        let json = self.json();
        let code = json.get("error_code").or_else(|| json.get("resultCode")).and_then(Value::as_str);
        (self.status, code.unwrap_or_default().to_owned())
    }
}

type Headers = Vec<(String, String)>;

/// Sends one request on a fresh connection; `Err` when the connection ends without an answer.
async fn try_send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Answer, hyper::Error> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let mut request = http::Request::builder().method(method).uri(target);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request.body(Full::new(Bytes::copy_from_slice(body))).expect("a request");
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer { status, body })
}

async fn send(addr: SocketAddr, method: &str, target: &str, headers: &[(String, String)], body: &[u8]) -> Answer {
    try_send(addr, method, target, headers, body).await.expect("an answer")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).expect("clock")
}

fn owned(headers: &[(&str, &str)]) -> Headers {
    headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Requests as the components build them: core's ApigSigner, core's usage signature and canonical JSON.

/// A component's keys and clock.
struct Signer {
    ak: &'static str,
    sk: &'static str,
    isv_key: &'static str,
    now_ms: u64,
}

impl Signer {
    fn new() -> Self {
        Self { ak: "mock-ak", sk: "mock-sk", isv_key: "mock-isv-key", now_ms: now_ms() }
    }

    /// The headers of `method target` with `extra` headers and `body`, signed by core's `ApigSigner`.
    fn headers(
        &self,
        mock: &MockMarketplace,
        method: &str,
        target: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Headers {
        let mut request = ApigRequest::new(method, format!("{}{target}", mock.base_url()));
        request.headers.push(("Content-Type".into(), "application/json;charset=UTF-8".into()));
        request.headers.extend(owned(extra));
        request.body = body.to_vec();
        ApigSigner::new(self.ak, SecretKey::new(self.sk)).sign_at(&mut request, self.now_ms);
        request.headers
    }

    /// The body-signature headers over `body`.
    fn usage_headers(&self, body: &[u8], nonce: &str) -> Vec<(&'static str, String)> {
        let ts = self.now_ms.to_string();
        let signature = usage::signature(&SecretKey::new(self.isv_key), &ts, nonce, body);
        vec![("signature", signature), ("ts", ts), ("nonce", nonce.to_owned())]
    }

    /// Pushes `body` (sent as given) with correct signatures.
    async fn push_body(&self, mock: &MockMarketplace, body: &[u8]) -> Answer {
        let usage = self.usage_headers(body, "6c63c221-1f6b-4141-8ff4-22f5dfe82b65");
        let extra: Vec<(&str, &str)> = usage.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let headers = self.headers(mock, "POST", USAGE_PUSH_PATH, &extra, body);
        send(mock.addr(), "POST", USAGE_PUSH_PATH, &headers, body).await
    }

    /// Pushes `records` as a component does: sorted compact JSON, signed.
    async fn push(&self, mock: &MockMarketplace, records: &[Value]) -> Answer {
        self.push_body(mock, &sorted_compact(&json!({ "usage_records": records }))).await
    }

    async fn get(&self, mock: &MockMarketplace, target: &str) -> Answer {
        let headers = self.headers(mock, "GET", target, &[], b"");
        send(mock.addr(), "GET", target, &headers, b"").await
    }

    async fn post(&self, mock: &MockMarketplace, path: &str, body: Value) -> Answer {
        let body = body.to_string();
        let headers = self.headers(mock, "POST", path, &[], body.as_bytes());
        send(mock.addr(), "POST", path, &headers, body.as_bytes()).await
    }
}

fn record(sn: &str, value: Value) -> Value {
    json!({
        "instance_id": "10e758d0-31ad-4c4b-8f1b-81d03469a10e",
        "record_time": "20240306T020000Z",
        "begin_time": "20240306T010000Z",
        "end_time": "20240306T015959Z",
        "usage_value": value,
        "metering_sn": sn,
    })
}

async fn start(config: MarketplaceConfig) -> MockMarketplace {
    MockMarketplace::start(SocketAddr::from(([127, 0, 0, 1], 0)), config).await.expect("starts")
}

// ---------------------------------------------------------------------------------------------------------------
// AK/SK signature.

/// The request of test-vectors §9.1 (published), its `x-stage` value replaceable.
fn vector_9_1_headers(x_stage: &str) -> Headers {
    owned(&[
        ("content-type", "application/json"),
        ("host", "mkt.myhuaweicloud.com"),
        ("x-sdk-date", "20240317T144237Z"),
        ("x-stage", x_stage),
        (
            "authorization",
            &format!(
                "SDK-HMAC-SHA256 Access=vector-ak, SignedHeaders=content-type;host;x-sdk-date;x-stage, Signature={SIG_9_1}"
            ),
        ),
    ])
}

#[tokio::test]
async fn published_vector_9_1_is_accepted_over_http_and_a_changed_header_refused() {
    let mock = start(MarketplaceConfig::new("vector-ak", "123", "k").pinned_at(VECTOR_MS)).await;
    // Signed correctly: past the AK/SK check, the empty body is what is refused.
    let answer = send(mock.addr(), "POST", LICENSE_ACTIVATE_PATH, &vector_9_1_headers("RELEASE"), b"").await;
    assert_eq!(answer.code(), (400, "95000004".to_owned()), "{}", answer.text());
    let answer = send(mock.addr(), "POST", LICENSE_ACTIVATE_PATH, &vector_9_1_headers("RELEASF"), b"").await;
    assert_eq!(answer.code(), (403, "92020001".to_owned()));
    assert_eq!(answer.json()["error_msg"], "Unauthorized");
    let answer = send(mock.addr(), "POST", LICENSE_ACTIVATE_PATH, &vector_9_1_headers("RELEASE"), b"{}").await;
    assert_eq!(answer.code(), (403, "92020001".to_owned()), "the body is signed too");
    let received = mock.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[0].auth, Ok(()));
    assert_eq!(received[0].ak.as_deref(), Some("vector-ak"));
    assert_eq!(received[1].auth, Err("signature mismatch".to_owned()));
    assert_eq!(received[2].auth, Err("signature mismatch".to_owned()));
}

#[tokio::test]
async fn computed_vector_9_2_gets_the_recorded_order_verbatim() {
    let mock = start(MarketplaceConfig::new("vector-ak", "123", "k").pinned_at(VECTOR_MS)).await;
    let headers = |signature: &str| {
        owned(&[
            ("content-type", "application/json"),
            ("host", "mkt.myhuaweicloud.com"),
            ("x-sdk-date", "20240317T144237Z"),
            (
                "authorization",
                &format!(
                    "SDK-HMAC-SHA256 Access=vector-ak, SignedHeaders=content-type;host;x-sdk-date, Signature={signature}"
                ),
            ),
        ])
    };
    let target = format!("{QUERY_ORDER_PATH}?orderId=MOCKPERIODYEARNEW&orderLineId=MOCKPERIODYEARNEW-000001");
    let answer = send(mock.addr(), "GET", &target, &headers(SIG_9_2), b"").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), RECORDED_PERIOD_YEAR_NEW);
    // One byte of the query changed after signing.
    let changed = target.replace("000001", "000002");
    let answer = send(mock.addr(), "GET", &changed, &headers(SIG_9_2), b"").await;
    assert_eq!(answer.code(), (401, "MKT.0154".to_owned()));
    assert_eq!(answer.json()["resultMsg"], "Illegal token");
    // One hex digit of the signature changed.
    let answer = send(mock.addr(), "GET", &target, &headers(&SIG_9_2.replacen('d', "e", 1)), b"").await;
    assert_eq!(answer.code(), (401, "MKT.0154".to_owned()));
}

#[tokio::test]
async fn requests_signed_by_cores_signer_are_accepted_on_every_endpoint() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    let order =
        signer.get(&mock, &format!("{QUERY_ORDER_PATH}?orderId=MOCKONDEMAND&orderLineId=MOCKONDEMAND-000001")).await;
    assert_eq!(order.code(), (200, "MKT.0000".to_owned()), "{}", order.text());
    // A query that needs encoding: spaces and non-ASCII, signed encoded by core and re-encoded by the mock.
    let odd = signer.get(&mock, &format!("{QUERY_ORDER_PATH}?orderId=NO%20SUCH%E4%B8%AD&x=a%2Bb&x=")).await;
    assert_eq!(odd.code(), (200, "MKT.0101".to_owned()), "{}", odd.text());
    let push = signer.push(&mock, &[record("sn-core-1", json!("1.5"))]).await;
    assert_eq!(push.code(), (200, "MKT.0000".to_owned()), "{}", push.text());
    let activate = signer.post(&mock, LICENSE_ACTIVATE_PATH, json!({ "license": SEED_LICENSE })).await;
    assert_eq!(activate.code(), (200, "92020000".to_owned()));
    let heartbeat = signer.post(&mock, LICENSE_HEARTBEAT_PATH, json!({ "license": SEED_LICENSE })).await;
    assert_eq!(heartbeat.code(), (200, "92020000".to_owned()));
    for r in mock.received() {
        assert_eq!(r.auth, Ok(()), "{:?}", r.endpoint);
        assert_eq!(r.ak.as_deref(), Some("mock-ak"));
        assert!(!r.injected);
    }
    assert_eq!(mock.received().len(), 5);
}

#[tokio::test]
async fn wrong_keys_missing_authorization_and_stale_dates_are_refused() {
    let mock = start(MarketplaceConfig::default()).await;
    let target = format!("{QUERY_ORDER_PATH}?orderId=MOCKONDEMAND");
    let wrong_sk = Signer { sk: "mock-sk2", ..Signer::new() };
    assert_eq!(wrong_sk.get(&mock, &target).await.code(), (401, "MKT.0154".to_owned()));
    let wrong_ak = Signer { ak: "other-ak", ..Signer::new() };
    assert_eq!(wrong_ak.get(&mock, &target).await.code(), (401, "MKT.0154".to_owned()));
    let stale = Signer { now_ms: now_ms() - 16 * 60_000, ..Signer::new() };
    assert_eq!(stale.get(&mock, &target).await.code(), (401, "MKT.0154".to_owned()));
    let ahead = Signer { now_ms: now_ms() + 16 * 60_000, ..Signer::new() };
    assert_eq!(ahead.get(&mock, &target).await.code(), (401, "MKT.0154".to_owned()));
    let fresh_enough = Signer { now_ms: now_ms() - 10 * 60_000, ..Signer::new() };
    assert_eq!(fresh_enough.get(&mock, &target).await.code(), (200, "MKT.0000".to_owned()));
    let unsigned = owned(&[("host", &mock.addr().to_string())]);
    assert_eq!(send(mock.addr(), "GET", &target, &unsigned, b"").await.code(), (401, "MKT.0154".to_owned()));
    // A usage push with the wrong SK is refused before its body is looked at.
    let push = wrong_sk.push(&mock, &[record("sn-1", json!("1"))]).await;
    assert_eq!(push.code(), (401, "MKT.0154".to_owned()));
    assert!(mock.usage_batches().is_empty());

    let verdicts: Vec<Result<(), String>> = mock.received().into_iter().map(|r| r.auth).collect();
    assert_eq!(verdicts[0], Err("signature mismatch".to_owned()));
    assert_eq!(verdicts[1], Err("unknown access key".to_owned()));
    assert!(verdicts[2].as_ref().is_err_and(|e| e.contains("x-sdk-date is 96")), "{:?}", verdicts[2]);
    assert_eq!(verdicts[5], Err("no Authorization header".to_owned()));

    // Without the date check, the stale request passes.
    let lenient = start(MarketplaceConfig::default().without_date_check()).await;
    assert_eq!(stale.get(&lenient, &target).await.code(), (200, "MKT.0000".to_owned()));
}

#[tokio::test]
async fn the_mock_can_share_a_components_virtual_clock() {
    let clock = VirtualClock::at_ms(VECTOR_MS);
    let shared = clock.clone();
    let mock = start(MarketplaceConfig::default().with_clock(move || shared.now_ms())).await;
    let signer = Signer { now_ms: VECTOR_MS, ..Signer::new() };
    let target = format!("{QUERY_ORDER_PATH}?orderId=MOCKONDEMAND");
    assert_eq!(signer.get(&mock, &target).await.code(), (200, "MKT.0000".to_owned()));
    clock.advance_ms(16 * 60_000);
    assert_eq!(signer.get(&mock, &target).await.code(), (401, "MKT.0154".to_owned()));
    // License times follow the same clock: activated at 2024-03-17 14:58:37.
    let signer = Signer { now_ms: clock.now_ms(), ..Signer::new() };
    signer.post(&mock, LICENSE_ACTIVATE_PATH, json!({ "license": SEED_LICENSE })).await;
    let license = mock.license(SEED_LICENSE).expect("the seed license");
    assert_eq!(license.activate_time.as_deref(), Some("20240317145837"));
}

// ---------------------------------------------------------------------------------------------------------------
// Usage push.

#[tokio::test]
async fn an_accepted_push_is_recorded_with_its_metering_sns() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    let records = [record("sn-1", json!("12.5")), record("sn-2", json!(0.0001))];
    let answer = signer.push(&mock, &records).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({ "error_code": "MKT.0000", "error_msg": "Success" }));
    let batches = mock.usage_batches();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].metering_sns, ["sn-1", "sn-2"]);
    assert_eq!(batches[0].records[1]["usage_value"], json!(0.0001));
    assert_eq!(batches[0].records[0]["instance_id"], "10e758d0-31ad-4c4b-8f1b-81d03469a10e");
    let received = &mock.received()[0];
    assert_eq!((received.body_signature.clone(), received.record_count), (Some(Ok(())), Some(2)));
    assert_eq!(received.header("nonce"), Some("6c63c221-1f6b-4141-8ff4-22f5dfe82b65"));
}

#[tokio::test]
async fn a_duplicate_push_shows_in_the_metering_sn_counts() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    let batch = [record("sn-a", json!("1")), record("sn-b", json!("2"))];
    assert_eq!(signer.push(&mock, &batch).await.status, 200);
    assert_eq!(signer.push(&mock, &batch[..1]).await.status, 200);
    let counts = mock.metering_sn_counts();
    assert_eq!(counts.get("sn-a"), Some(&2));
    assert_eq!(counts.get("sn-b"), Some(&1));
    assert_eq!(mock.usage_batches().len(), 2);
}

#[tokio::test]
async fn body_signature_problems_are_0102() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    let body = sorted_compact(&json!({ "usage_records": [record("sn-1", json!("12.5"))] }));
    let changed = sorted_compact(&json!({ "usage_records": [record("sn-1", json!("99.5"))] }));
    let addr = mock.addr();
    let send_with = |usage: Vec<(&'static str, String)>, sent: Vec<u8>| {
        let extra: Vec<(&str, &str)> = usage.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let headers = signer.headers(&mock, "POST", USAGE_PUSH_PATH, &extra, &sent);
        async move { send(addr, "POST", USAGE_PUSH_PATH, &headers, &sent).await }
    };
    // The body changed after the body signature (the AK/SK signature covers the body sent).
    let answer = send_with(signer.usage_headers(&body, "n-1"), changed.clone()).await;
    assert_eq!(answer.code(), (400, "MKT.0102".to_owned()), "{}", answer.text());
    assert_eq!(answer.json()["error_msg"], "Invalid body sign: signature mismatch");
    // Signed with another ISV key.
    let other = Signer { isv_key: "other-isv-key", ..Signer::new() };
    let answer = send_with(other.usage_headers(&body, "n-2"), body.clone()).await;
    assert_eq!(answer.code(), (400, "MKT.0102".to_owned()));
    // Each header missing in turn.
    for missing in ["signature", "ts", "nonce"] {
        let mut usage = signer.usage_headers(&body, "n-3");
        usage.retain(|(n, _)| *n != missing);
        let answer = send_with(usage, body.clone()).await;
        assert_eq!(answer.code(), (400, "MKT.0102".to_owned()), "without {missing}");
        assert!(answer.text().contains(&format!("header {missing} is missing")), "{}", answer.text());
    }
    assert!(mock.usage_batches().is_empty());
    // And the same headers, unchanged, are accepted.
    assert_eq!(send_with(signer.usage_headers(&body, "n-4"), body.clone()).await.code(), (200, "MKT.0000".to_owned()));
}

#[tokio::test]
async fn bodies_not_sorted_or_not_compact_are_refused() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    // `record` lists `record_time` before `begin_time`; serde_json keeps that order here (preserve_order).
    let unsorted = serde_json::to_vec(&json!({ "usage_records": [record("sn-1", json!("1"))] })).expect("json");
    assert_ne!(unsorted, sorted_compact(&serde_json::from_slice(&unsorted).expect("json")));
    let answer = signer.push_body(&mock, &unsorted).await;
    assert_eq!(answer.code(), (400, "MKT.0101".to_owned()));
    assert_eq!(
        answer.json()["error_msg"],
        r#"Invalid parameter: body is not compact JSON with keys sorted at every level ("record_time" before "begin_time")"#
    );
    let sorted = sorted_compact(&json!({ "usage_records": [record("sn-1", json!("1"))] }));
    let pretty = serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&sorted).expect("json")).expect("json");
    assert_eq!(signer.push_body(&mock, &pretty).await.code(), (400, "MKT.0101".to_owned()));
    let mut trailing = sorted.clone();
    trailing.push(b'\n');
    assert_eq!(signer.push_body(&mock, &trailing).await.code(), (400, "MKT.0101".to_owned()));
    assert_eq!(signer.push_body(&mock, b"not json").await.code(), (400, "MKT.0101".to_owned()));
    assert!(mock.usage_batches().is_empty());
    assert_eq!(signer.push_body(&mock, &sorted).await.code(), (200, "MKT.0000".to_owned()));
}

#[tokio::test]
async fn invalid_records_are_0101_naming_the_problem() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    let message = |answer: Answer| {
        assert_eq!(answer.code(), (400, "MKT.0101".to_owned()), "{}", answer.text());
        answer.json()["error_msg"].as_str().unwrap_or_default().to_owned()
    };
    let ok = record("sn-1", json!("1"));
    let too_precise = record("sn-2", json!("1.23456"));
    assert_eq!(
        message(signer.push(&mock, &[ok.clone(), too_precise]).await),
        "Invalid parameter: usage_records[1].usage_value: more than 4 decimals"
    );
    assert_eq!(
        message(signer.push(&mock, &[record("sn-3", json!("0"))]).await),
        "Invalid parameter: usage_records[0].usage_value: must be > 0"
    );
    let mut no_sn = ok.clone();
    no_sn.as_object_mut().expect("object").remove("metering_sn");
    assert_eq!(message(signer.push(&mock, &[no_sn]).await), "Invalid parameter: usage_records[0].metering_sn: missing");
    let mut bad_time = ok.clone();
    bad_time["begin_time"] = json!("2024-03-06 01:00:00");
    assert!(message(signer.push(&mock, &[bad_time]).await).contains("usage_records[0].begin_time"));
    assert_eq!(message(signer.push(&mock, &[]).await), "Invalid parameter: usage_records is empty");
    assert!(mock.usage_batches().is_empty());
    assert!(mock.metering_sn_counts().is_empty(), "nothing of a refused batch is counted");
    assert_eq!(mock.received().iter().map(|r| r.code.clone().unwrap_or_default()).collect::<Vec<_>>(), ["MKT.0101"; 5]);
}

#[tokio::test]
async fn more_than_1000_records_is_9003_and_1000_is_accepted() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    let records: Vec<Value> = (0..1001).map(|i| record(&format!("sn-{i}"), json!("1"))).collect();
    let answer = signer.push(&mock, &records).await;
    assert_eq!(answer.code(), (500, "MKT.9003".to_owned()));
    assert!(answer.text().contains("records > limit"));
    assert_eq!(mock.received()[0].record_count, Some(1001));
    assert_eq!(signer.push(&mock, &records[..1000]).await.code(), (200, "MKT.0000".to_owned()));
    assert_eq!(mock.usage_batches()[0].records.len(), 1000);
}

// ---------------------------------------------------------------------------------------------------------------
// Failure injection.

#[tokio::test]
async fn an_injected_503_then_success() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    mock.fail_next(Endpoint::UsagePush, 1, Failure::Status { status: 503, code: "MKT.0999".into() });
    let batch = [record("sn-retry", json!("3"))];
    let first = signer.push(&mock, &batch).await;
    assert_eq!(first.status, 503);
    assert_eq!(first.json(), json!({ "error_code": "MKT.0999", "error_msg": "injected failure" }));
    assert!(mock.usage_batches().is_empty(), "an injected failure accepts nothing");
    assert!(mock.metering_sn_counts().is_empty());
    let second = signer.push(&mock, &batch).await;
    assert_eq!(second.code(), (200, "MKT.0000".to_owned()));
    assert_eq!(mock.metering_sn_counts().get("sn-retry"), Some(&1));
    let received = mock.received();
    assert_eq!(
        (received[0].injected, received[0].status, received[0].code.as_deref()),
        (true, Some(503), Some("MKT.0999"))
    );
    assert_eq!(received[0].auth, Ok(()), "verdicts are computed for injected calls too");
    assert_eq!(received[0].body_signature, Some(Ok(())));
    assert!(!received[1].injected);
}

#[tokio::test]
async fn injected_failures_queue_in_order_and_always_lasts_until_cleared() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    let target = format!("{QUERY_ORDER_PATH}?orderId=MOCKONDEMAND");
    mock.fail_next(Endpoint::QueryOrder, 2, Failure::Status { status: 500, code: "MKT.0999".into() });
    mock.fail_next(Endpoint::QueryOrder, 1, Failure::Status { status: 429, code: "MKT.0150".into() });
    // Another endpoint is not affected.
    let heartbeat = signer.post(&mock, LICENSE_HEARTBEAT_PATH, json!({ "license": SEED_LICENSE })).await;
    assert_eq!(heartbeat.code(), (200, "92020011".to_owned()));
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(signer.get(&mock, &target).await.code());
    }
    let expected = [(500, "MKT.0999"), (500, "MKT.0999"), (429, "MKT.0150"), (200, "MKT.0000")];
    assert_eq!(seen, expected.map(|(s, c)| (s, c.to_owned())));
    mock.fail_always(Endpoint::LicenseActivate, Failure::Status { status: 502, code: "92020001".into() });
    assert_eq!(signer.get(&mock, &target).await.code(), (200, "MKT.0000".to_owned()), "only activate fails");
    for _ in 0..3 {
        let answer = signer.post(&mock, LICENSE_ACTIVATE_PATH, json!({ "license": SEED_LICENSE })).await;
        assert_eq!(answer.code(), (502, "92020001".to_owned()));
        assert_eq!(answer.json()["error_msg"], "injected failure");
    }
    assert!(!mock.license(SEED_LICENSE).expect("seed").activated, "an injected failure changes nothing");
    mock.clear_failures();
    let answer = signer.post(&mock, LICENSE_ACTIVATE_PATH, json!({ "license": SEED_LICENSE })).await;
    assert_eq!(answer.code(), (200, "92020000".to_owned()));
}

#[tokio::test]
async fn a_hang_makes_the_client_time_out() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    mock.fail_next(Endpoint::QueryOrder, 1, Failure::Hang);
    let target = format!("{QUERY_ORDER_PATH}?orderId=MOCKONDEMAND");
    let headers = signer.headers(&mock, "GET", &target, &[], b"");
    let hung = tokio::time::timeout(Duration::from_millis(400), send(mock.addr(), "GET", &target, &headers, b"")).await;
    assert!(hung.is_err(), "no answer within the client's timeout");
    let received = mock.received();
    assert_eq!((received[0].injected, received[0].status, received[0].code.clone()), (true, None, None));
    // The mock still serves other calls.
    assert_eq!(signer.get(&mock, &target).await.code(), (200, "MKT.0000".to_owned()));
}

#[tokio::test]
async fn a_close_drops_the_connection_without_an_answer() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    mock.fail_next(Endpoint::UsagePush, 1, Failure::Close);
    let body = sorted_compact(&json!({ "usage_records": [record("sn-1", json!("1"))] }));
    let usage = signer.usage_headers(&body, "n");
    let extra: Vec<(&str, &str)> = usage.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let headers = signer.headers(&mock, "POST", USAGE_PUSH_PATH, &extra, &body);
    let result =
        tokio::time::timeout(Duration::from_secs(5), try_send(mock.addr(), "POST", USAGE_PUSH_PATH, &headers, &body))
            .await
            .expect("the mock closes at once");
    assert!(result.is_err(), "no HTTP answer");
    assert!(mock.usage_batches().is_empty());
    assert_eq!(signer.push_body(&mock, &body).await.code(), (200, "MKT.0000".to_owned()));
}

// ---------------------------------------------------------------------------------------------------------------
// Licenses.

#[tokio::test]
async fn license_activation_and_heartbeats() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    let license = json!({ "license": SEED_LICENSE, "real_effect_time": "20240601000000" });
    let answer = signer.post(&mock, LICENSE_ACTIVATE_PATH, license.clone()).await;
    assert_eq!(answer.code(), (200, "92020000".to_owned()));
    let json = answer.json();
    let info = json["data"]["license_code_info"].as_str().expect("license_code_info is a JSON string");
    assert_eq!(
        info,
        r#"{"status":"ALIVE","expire_time":"20301231235959","product_id":"OFFI-LICENSE","amount":2,"order_id":"CS123"}"#
    );
    // Core's client reads it.
    let parsed: koogallery_core::wire::license::ActivateResponse =
        serde_json::from_slice(&answer.body).expect("core parses");
    let outcome = koogallery_core::wire::license::LicenseOutcome::classify(answer.status, parsed.error_code.as_deref());
    assert_eq!(outcome, koogallery_core::wire::license::LicenseOutcome::Success);
    assert_eq!(parsed.data.and_then(|d| d.license_code_info).and_then(|i| i.amount), Some(2));

    let again = signer.post(&mock, LICENSE_ACTIVATE_PATH, license.clone()).await;
    assert_eq!(again.code(), (200, "92020003".to_owned()));
    assert_eq!(again.json()["error_msg"], "illegal state");

    let beat = signer.post(&mock, LICENSE_HEARTBEAT_PATH, json!({ "license": SEED_LICENSE })).await;
    assert_eq!(beat.code(), (200, "92020000".to_owned()));
    let data = &beat.json()["data"];
    assert_eq!((data["license_code"].as_str(), data["status"].as_str()), (Some(SEED_LICENSE), Some("ALIVE")));
    assert_eq!(data["expire_time"], "20301231235959");
    assert_eq!(data["activate_time"].as_str().map(str::len), Some(14));

    assert!(mock.set_license_status(SEED_LICENSE, "RELEASED"));
    assert!(!mock.set_license_status("NO-SUCH", "RELEASED"));
    let beat = signer.post(&mock, LICENSE_HEARTBEAT_PATH, json!({ "license": SEED_LICENSE })).await;
    assert_eq!(beat.json()["data"]["status"], "RELEASED");
    let state = mock.license(SEED_LICENSE).expect("seed");
    assert!(state.activated);
    assert_eq!((state.heartbeats, state.real_effect_time.as_deref()), (2, Some("20240601000000")));
}

#[tokio::test]
async fn license_errors_follow_the_documented_codes() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    let activate = |body: Value| signer.post(&mock, LICENSE_ACTIVATE_PATH, body);
    assert_eq!(activate(json!({ "license": SEED_LICENSE_NOT_RECEIVED })).await.code(), (200, "92020004".to_owned()));
    assert_eq!(activate(json!({ "license": "NO-SUCH-LICENSE" })).await.code(), (200, "92020005".to_owned()));
    assert_eq!(activate(json!({})).await.code(), (200, "92020002".to_owned()));
    assert_eq!(activate(json!({ "license": "" })).await.code(), (200, "92020002".to_owned()));
    assert_eq!(activate(json!({ "license": "x".repeat(65) })).await.code(), (200, "92020002".to_owned()));
    let bad_time = json!({ "license": SEED_LICENSE, "real_effect_time": "2024-06-01" });
    assert_eq!(activate(bad_time).await.code(), (200, "92020002".to_owned()));

    let not_json = signer.headers(&mock, "POST", LICENSE_ACTIVATE_PATH, &[], b"{license");
    let answer = send(mock.addr(), "POST", LICENSE_ACTIVATE_PATH, &not_json, b"{license").await;
    assert_eq!(answer.code(), (400, "95000004".to_owned()));
    let mut text = ApigRequest::new("POST", format!("{}{LICENSE_ACTIVATE_PATH}", mock.base_url()));
    text.headers.push(("Content-Type".into(), "text/plain".into()));
    text.body = br#"{"license":"MOCK-LICENSE-0001"}"#.to_vec();
    ApigSigner::new("mock-ak", SecretKey::new("mock-sk")).sign_at(&mut text, now_ms());
    let answer = send(mock.addr(), "POST", LICENSE_ACTIVATE_PATH, &text.headers, &text.body).await;
    assert_eq!(answer.code(), (415, "95000003".to_owned()));
    let get = signer.headers(&mock, "GET", LICENSE_HEARTBEAT_PATH, &[], b"");
    let answer = send(mock.addr(), "GET", LICENSE_HEARTBEAT_PATH, &get, b"").await;
    assert_eq!(answer.code(), (405, "95000002".to_owned()));
    let wrong_sk = Signer { sk: "nope", ..Signer::new() };
    let answer = wrong_sk.post(&mock, LICENSE_HEARTBEAT_PATH, json!({ "license": SEED_LICENSE })).await;
    assert_eq!(answer.code(), (403, "92020001".to_owned()));

    let heartbeat = |code: &str| signer.post(&mock, LICENSE_HEARTBEAT_PATH, json!({ "license": code }));
    assert_eq!(heartbeat("NO-SUCH-LICENSE").await.code(), (200, "92020005".to_owned()));
    let spec = LicenseSpec {
        product_id: "OFFI-OLD".into(),
        order_id: "CS9".into(),
        amount: 1,
        expire_time: "20200101000000".into(),
        received: true,
    };
    mock.add_license("OLD-LICENSE", spec);
    assert_eq!(heartbeat("OLD-LICENSE").await.code(), (200, "92020011".to_owned()));
    assert_eq!(activate(json!({ "license": "OLD-LICENSE" })).await.code(), (200, "92020000".to_owned()));
    let beat = heartbeat("OLD-LICENSE").await;
    assert_eq!(beat.json()["data"]["status"], "EXPIRED", "past its expiry by the mock's clock");
    // Nothing above activated the seed license.
    assert!(!mock.license(SEED_LICENSE).expect("seed").activated);
}

// ---------------------------------------------------------------------------------------------------------------
// Orders.

#[tokio::test]
async fn the_nine_mock_orders_answer_as_their_scenario() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    let expected = [
        ("MOCKPERIODYEARNEW", "NEW", "PERIOD"),
        ("MOCKONETIMENEW", "NEW", "ONE_TIME"),
        ("MOCKONDEMAND", "NEW", "ON_DEMAND"),
        ("MOCKONDEMANDPKG", "NEW", "ON_DEMAND_PKG"),
        ("MOCKPERIODDAYTRIAL", "TRIAL", "PERIOD"),
        ("MOCKMONTYTRIALTOFORMAL", "TRIAL_TO_FORMAL", "PERIOD"),
        ("MOCKMONTYUNSUBSCRIBE", "UNSUBSCRIBE", "PERIOD"),
        ("MOCKMONTYRENEW", "RENEW", "PERIOD"),
        ("MOCKMONTYCHANGE", "CHANGE", "PERIOD"),
    ];
    assert_eq!(expected.map(|(id, _, _)| id), koogallery_core::wire::order::MOCK_ORDER_IDS);
    let mut products = Vec::new();
    for (id, order_type, charging_mode) in expected {
        let answer = signer.get(&mock, &format!("{QUERY_ORDER_PATH}?orderId={id}&orderLineId={id}-000001")).await;
        assert_eq!(answer.code(), (200, "MKT.0000".to_owned()), "{id}");
        let json = answer.json();
        let order = &json["orderInfo"];
        assert_eq!((order["orderId"].as_str(), order["orderType"].as_str()), (Some(id), Some(order_type)));
        let line = &order["orderLine"][0];
        assert_eq!(line["orderLineId"], format!("{id}-000001"));
        assert_eq!(line["chargingMode"], charging_mode, "{id}");
        products.push(line["productInfo"][0]["productId"].as_str().expect("productId").to_owned());
        let parsed: koogallery_core::wire::order::QueryOrderResponse =
            serde_json::from_slice(&answer.body).expect("core parses");
        assert!(parsed.is_success());
        assert!(parsed.order_info.and_then(|o| o.line(&format!("{id}-000001")).cloned()).is_some());
    }
    assert!(products.contains(&"OFFI-MOCKONDEMAND".to_owned()));
    products.sort();
    products.dedup();
    assert_eq!(products.len(), 9, "a distinct productId per order");
    // Without orderLineId: the whole order.
    assert_eq!(
        signer.get(&mock, &format!("{QUERY_ORDER_PATH}?orderId=MOCKPERIODYEARNEW")).await.text(),
        RECORDED_PERIOD_YEAR_NEW
    );
}

#[tokio::test]
async fn unknown_orders_lines_and_bad_queries() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    let answer = signer.get(&mock, &format!("{QUERY_ORDER_PATH}?orderId=CS0000")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({ "resultCode": "MKT.0101", "resultMsg": "order not found" }));
    let wrong_line = signer.get(&mock, &format!("{QUERY_ORDER_PATH}?orderId=MOCKONDEMAND&orderLineId=X-000001")).await;
    assert_eq!(wrong_line.code(), (200, "MKT.0101".to_owned()));
    assert_eq!(signer.get(&mock, QUERY_ORDER_PATH).await.code(), (400, "MKT.0101".to_owned()));
    let post = signer.post(&mock, QUERY_ORDER_PATH, json!({})).await;
    assert_eq!(post.code(), (405, "MKT.0150".to_owned()));

    let order = json!({
        "orderId": "CS-TEST-1",
        "orderType": "NEW",
        "orderLine": [
            { "orderLineId": "CS-TEST-1-000001", "chargingMode": "PERIOD" },
            { "orderLineId": "CS-TEST-1-000002", "chargingMode": "ON_DEMAND" },
        ],
    });
    mock.add_order("CS-TEST-1", order);
    let line = signer.get(&mock, &format!("{QUERY_ORDER_PATH}?orderId=CS-TEST-1&orderLineId=CS-TEST-1-000002")).await;
    let lines = line.json()["orderInfo"]["orderLine"].clone();
    assert_eq!(lines, json!([{ "orderLineId": "CS-TEST-1-000002", "chargingMode": "ON_DEMAND" }]));
    mock.add_order("MOCKONDEMAND", json!({ "orderId": "MOCKONDEMAND", "orderType": "CHANGE" }));
    let replaced = signer.get(&mock, &format!("{QUERY_ORDER_PATH}?orderId=MOCKONDEMAND")).await;
    assert_eq!(replaced.json()["orderInfo"]["orderType"], "CHANGE");
}

// ---------------------------------------------------------------------------------------------------------------
// Control routes, unknown paths, logs, Debug.

#[tokio::test]
async fn control_routes_inject_and_report_without_secrets() {
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    let host = owned(&[("host", &mock.addr().to_string()), ("content-type", "application/json")]);
    let control = |method: &'static str, route: &'static str, body: Value| {
        let host = host.clone();
        let addr = mock.addr();
        async move { send(addr, method, route, &host, body.to_string().as_bytes()).await }
    };
    let fail = json!({ "endpoint": "usage", "times": 2, "status": 500, "code": "MKT.0999" });
    assert_eq!(control("POST", "/_mock/fail", fail).await.status, 200);
    let batch = [record("sn-x", json!("1"))];
    assert_eq!(signer.push(&mock, &batch).await.code(), (500, "MKT.0999".to_owned()));
    assert_eq!(signer.push(&mock, &batch).await.code(), (500, "MKT.0999".to_owned()));
    assert_eq!(signer.push(&mock, &batch).await.code(), (200, "MKT.0000".to_owned()));
    assert_eq!(signer.push(&mock, &batch).await.code(), (200, "MKT.0000".to_owned()));

    let usage = control("GET", "/_mock/usage", Value::Null).await.json();
    assert_eq!(
        usage,
        json!({ "batches": [{ "metering_sns": ["sn-x"] }, { "metering_sns": ["sn-x"] }], "counts": { "sn-x": 2 } })
    );
    let received = control("GET", "/_mock/received", Value::Null).await;
    let list = received.json()["received"].clone();
    assert_eq!(list.as_array().map(Vec::len), Some(4), "control calls are not recorded");
    assert_eq!(
        list[0],
        json!({
            "endpoint": "usage", "method": "POST", "path": USAGE_PUSH_PATH, "status": 500, "code": "MKT.0999",
            "auth_ok": true, "body_signature_ok": true, "records": 1, "injected": true,
        })
    );
    let text = received.text();
    for secret in ["SDK-HMAC-SHA256", "Signature", "signature\":\"", "mock-ak", "nonce", "sn-x"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    let hang = json!({ "endpoint": "order", "hang": true, "always": true });
    assert_eq!(control("POST", "/_mock/fail", hang).await.status, 200);
    let target = format!("{QUERY_ORDER_PATH}?orderId=MOCKONDEMAND");
    let hung = tokio::time::timeout(Duration::from_millis(300), signer.get(&mock, &target)).await;
    assert!(hung.is_err());
    assert_eq!(control("POST", "/_mock/clear", Value::Null).await.json(), json!({ "ok": true }));
    assert_eq!(signer.get(&mock, &target).await.code(), (200, "MKT.0000".to_owned()));

    for bad in [
        json!({ "endpoint": "nope", "status": 500 }),
        json!({ "endpoint": "usage" }),
        json!({ "endpoint": "usage", "status": 500, "times": 0 }),
    ] {
        assert_eq!(control("POST", "/_mock/fail", bad.clone()).await.status, 400, "{bad}");
    }
    assert_eq!(control("GET", "/_mock/fail", Value::Null).await.status, 405);
    assert_eq!(control("GET", "/_mock/nothing", Value::Null).await.status, 404);
}

#[tokio::test]
async fn unknown_paths_are_404_json_and_not_recorded() {
    let mock = start(MarketplaceConfig::default()).await;
    let headers = owned(&[("host", &mock.addr().to_string())]);
    let answer = send(mock.addr(), "GET", "/api/mkp-openapi-public/global/v2/order/query", &headers, b"").await;
    assert_eq!(answer.code(), (404, "404".to_owned()));
    assert!(mock.received().is_empty());
}

/// A log writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("the log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn log_lines_carry_method_path_and_status_only() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    // The test runtime has one thread: the mock's tasks log through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    let mock = start(MarketplaceConfig::default()).await;
    let signer = Signer::new();
    assert_eq!(signer.push(&mock, &[record("sn-secret-1", json!("7"))]).await.status, 200);
    let wrong = Signer { sk: "wrong", ..Signer::new() };
    assert_eq!(wrong.get(&mock, &format!("{QUERY_ORDER_PATH}?orderId=MOCKONDEMAND")).await.status, 401);
    assert_eq!(signer.post(&mock, LICENSE_ACTIVATE_PATH, json!({ "license": SEED_LICENSE })).await.status, 200);
    drop(mock);
    let log = String::from_utf8(captured.0.lock().expect("the log buffer").clone()).expect("text");
    assert!(log.contains("harness::marketplace"), "{log}");
    assert!(log.contains(&format!("path={USAGE_PUSH_PATH}")) && log.contains("status=200"), "{log}");
    assert!(log.contains("status=401"), "{log}");
    for secret in [
        "mock-ak",
        "mock-sk",
        "SDK-HMAC",
        "sn-secret-1",
        "orderId",
        "MOCKONDEMAND",
        SEED_LICENSE,
        "nonce",
        "usage_records",
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn config_debug_redacts_the_keys() {
    let config = MarketplaceConfig::new("ak-visible", "sk-hidden", "isv-hidden");
    let text = format!("{config:?}");
    assert!(text.contains("ak-visible"));
    assert!(!text.contains("sk-hidden") && !text.contains("isv-hidden"), "{text}");
    assert!(text.contains("[REDACTED]"));
}

#[test]
fn a_background_mock_serves_synchronous_callers() {
    let mock = MockMarketplace::start_in_background(MarketplaceConfig::default()).expect("starts");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let answer = runtime.block_on(Signer::new().get(&mock, &format!("{QUERY_ORDER_PATH}?orderId=MOCKONETIMENEW")));
    assert_eq!(answer.json()["orderInfo"]["orderLine"][0]["chargingMode"], "ONE_TIME");
    assert!(mock.base_url().starts_with("http://127.0.0.1:"));
}
