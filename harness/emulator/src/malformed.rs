//! Correctly signed requests with bad bodies: not JSON, not an object, an unknown activity, a missing or
//! over-long field, and a 1 MiB body. Each must get a signed `000002` (or a prompt `413` for the oversize body),
//! never a crash, a hang or a bare `500`.

use koogallery_core::marketplace::fresh_uuid;
use koogallery_core::marketplace::samples::{self, Charging, OrderLine, TEST_FLAG, encode};
use koogallery_core::signing::canonical_json::sorted_compact;
use serde_json::json;

use crate::bodies::{follow_up, run_order};
use crate::rules::Recorder;
use crate::session::{Answer, Finding, Session, expect, expect_invalid_naming, in_time};

/// Size of the oversize body: far above any handler's cap, small enough to send quickly.
pub(crate) const OVERSIZE_BYTES: usize = 1 << 20;

/// Runs the `body.*` rules in rule order.
pub(crate) async fn run(s: &Session, rec: &mut Recorder) {
    rec.record("body.malformed_json", malformed_json(s).await.into());
    rec.record("body.not_object", not_object(s).await.into());
    rec.record("body.unknown_activity", unknown_activity(s).await.into());
    rec.record("body.missing_field", missing_field(s).await.into());
    rec.record("body.overlong_field", overlong_field(s).await.into());
    rec.record("body.oversize", oversize(s).await.into());
}

async fn malformed_json(s: &Session) -> Result<String, Finding> {
    let order = run_order(&s.run, "M1", Charging::Period);
    let body = format!(r#"{{"activity":"orderNotify","orderId":"{}","orderLineId":"#, order.order_id);
    expect(&s.v2("orderNotify", "truncated JSON", body.as_bytes()).await, "000002")?;
    expect(&s.v2("-", "not JSON at all", b"activity=orderNotify&testFlag=1").await, "000002")?;
    Ok("truncated JSON and form data answered 000002".to_owned())
}

async fn not_object(s: &Session) -> Result<String, Finding> {
    for (note, body) in
        [("JSON array", &br#"["orderNotify"]"#[..]), ("JSON string", br#""orderNotify""#), ("JSON null", b"null")]
    {
        expect(&s.v2("-", note, body).await, "000002")?;
    }
    Ok("array, string and null answered 000002".to_owned())
}

async fn unknown_activity(s: &Session) -> Result<String, Finding> {
    let body = sorted_compact(
        &json!({ "activity": "emulatorUnknownActivity", "instanceId": fresh_uuid(), "testFlag": TEST_FLAG }),
    );
    let answer = s.v2("emulatorUnknownActivity", "unknown activity", &body).await;
    expect_invalid_naming(&answer, "activity").map(|()| message(&answer))
}

async fn missing_field(s: &Session) -> Result<String, Finding> {
    let order = run_order(&s.run, "M2", Charging::Period);
    let no_line = sorted_compact(&json!({
        "activity": "newInstance", "businessId": fresh_uuid(), "orderId": order.order_id, "testFlag": TEST_FLAG,
    }));
    let answer = s.v2("newInstance", "orderLineId missing", &no_line).await;
    expect_invalid_naming(&answer, "orderLineId")?;
    let (o, l) = follow_up(&order, "R1");
    let no_expiry = sorted_compact(&json!({
        "activity": "refreshInstance", "instanceId": fresh_uuid(), "orderId": o, "orderLineId": l,
        "scene": "RENEWAL", "testFlag": TEST_FLAG,
    }));
    let second = s.v2("refreshInstance", "expireTime missing", &no_expiry).await;
    expect_invalid_naming(&second, "expireTime")?;
    Ok(format!("{}; {}", message(&answer), message(&second)))
}

async fn overlong_field(s: &Session) -> Result<String, Finding> {
    let order = run_order(&s.run, "M3", Charging::Period);
    let long_order = format!("{}{}", order.order_id, "X".repeat(65usize.saturating_sub(order.order_id.len())));
    let over = OrderLine { order_id: long_order, ..order.clone() };
    let answer =
        s.v2("newInstance", "orderId of 65 characters", &encode(&samples::new_instance(&over, &fresh_uuid()))).await;
    expect_invalid_naming(&answer, "orderId")?;
    let long_business = "B".repeat(65);
    let second = s
        .v2("newInstance", "businessId of 65 characters", &encode(&samples::new_instance(&order, &long_business)))
        .await;
    expect_invalid_naming(&second, "businessId")?;
    Ok(format!("{}; {}", message(&answer), message(&second)))
}

async fn oversize(s: &Session) -> Result<String, Finding> {
    let order = run_order(&s.run, "M4", Charging::Period);
    let head = format!(
        r#"{{"activity":"newInstance","businessId":"{}","orderId":"{}","orderLineId":"{}","padding":""#,
        fresh_uuid(),
        order.order_id,
        order.line_id
    );
    let tail = format!(r#"","testFlag":"{TEST_FLAG}"}}"#);
    let pad = OVERSIZE_BYTES.saturating_sub(head.len() + tail.len());
    let body = format!("{head}{}{tail}", "x".repeat(pad));
    let req = s.sign_v2(body.as_bytes());
    let answer = s.send(req, s.label("POST", "newInstance", "1 MiB body"), true).await;
    judge_oversize(&answer)
}

fn judge_oversize(answer: &Answer) -> Result<String, Finding> {
    if !in_time(answer.raw.elapsed) {
        return Err(Finding::at(answer, format!("no answer within 5 s: {}", answer.describe())));
    }
    match answer.status() {
        Some(413) => Ok("HTTP 413".to_owned()),
        Some(200) => expect(answer, "000002").map(|()| message(answer)),
        _ => Err(Finding::at(answer, format!("expected 000002 or HTTP 413, got {}", answer.describe()))),
    }
}

fn message(answer: &Answer) -> String {
    format!("000002 {:?}", answer.message())
}
