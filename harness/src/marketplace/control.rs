//! The control routes under `/_mock/`: failure injection and inspection over HTTP, for `harness marketplace` runs
//! where no Rust test holds the mock. No authentication (the mock is for local use only); the summaries never carry
//! headers, queries or bodies.

use super::endpoints::{Outcome, State};
use super::{Endpoint, Failure};
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// Answers `route` (the path after `/_mock/`).
pub(super) fn respond(state: &mut State, method: &Method, route: &str, body: &[u8]) -> Outcome {
    let expected = match route {
        "fail" | "clear" => Method::POST,
        "received" | "usage" => Method::GET,
        _ => {
            let body = json!({ "error_code": "404", "error_msg": "no such control route" });
            return Outcome::json(StatusCode::NOT_FOUND, &body);
        }
    };
    if *method != expected {
        let body = json!({ "error_code": "405", "error_msg": format!("use {expected}") });
        return Outcome::json(StatusCode::METHOD_NOT_ALLOWED, &body);
    }
    match route {
        "fail" => match fail(state, body) {
            Ok(done) => Outcome::json(StatusCode::OK, &done),
            Err(why) => Outcome::json(StatusCode::BAD_REQUEST, &json!({ "error_code": "400", "error_msg": why })),
        },
        "clear" => {
            state.clear_failures();
            Outcome::json(StatusCode::OK, &json!({ "ok": true }))
        }
        "received" => Outcome::json(StatusCode::OK, &received(state)),
        _ => Outcome::json(StatusCode::OK, &usage(state)),
    }
}

/// `POST /_mock/fail`: `{"endpoint", "times"?, "always"?, "status"+"code"? | "hang" | "close"}`.
fn fail(state: &mut State, body: &[u8]) -> Result<Value, String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err("the body must be a JSON object".to_owned());
    };
    let name = fields.get("endpoint").and_then(Value::as_str).unwrap_or_default();
    let endpoint = Endpoint::from_name(name)
        .ok_or_else(|| "endpoint must be one of order, usage, activate, heartbeat".to_owned())?;
    let flag = |name: &str| fields.get(name).and_then(Value::as_bool).unwrap_or(false);
    let failure = if flag("hang") {
        Failure::Hang
    } else if flag("close") {
        Failure::Close
    } else {
        let status = fields
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (200..600).contains(s))
            .ok_or_else(|| "status (200-599), hang or close is required".to_owned())?;
        let default_code = if matches!(endpoint, Endpoint::LicenseActivate | Endpoint::LicenseHeartbeat) {
            "92020001"
        } else {
            "MKT.0999"
        };
        let code = fields.get("code").and_then(Value::as_str).unwrap_or(default_code).to_owned();
        Failure::Status { status, code }
    };
    if flag("always") {
        state.fail_always(endpoint, failure);
        return Ok(json!({ "ok": true, "endpoint": endpoint.name(), "always": true }));
    }
    let times = match fields.get("times") {
        None => 1,
        Some(times) => times
            .as_u64()
            .and_then(|t| usize::try_from(t).ok())
            .filter(|t| (1..=1_000_000).contains(t))
            .ok_or_else(|| "times must be a number from 1 to 1000000".to_owned())?,
    };
    state.fail_next(endpoint, times, failure);
    Ok(json!({ "ok": true, "endpoint": endpoint.name(), "times": times }))
}

/// `GET /_mock/received`: one summary a request, in order.
fn received(state: &State) -> Value {
    let list: Vec<Value> = state
        .received
        .iter()
        .map(|r| {
            json!({
                "endpoint": r.endpoint.name(),
                "method": r.method,
                "path": r.path,
                "status": r.status,
                "code": r.code,
                "auth_ok": r.auth.is_ok(),
                "body_signature_ok": r.body_signature.as_ref().map(Result::is_ok),
                "records": r.record_count,
                "injected": r.injected,
            })
        })
        .collect();
    json!({ "received": list })
}

/// `GET /_mock/usage`: the accepted batches' `metering_sn`s and the counts.
fn usage(state: &State) -> Value {
    let batches: Vec<Value> = state.batches.iter().map(|b| json!({ "metering_sns": b.metering_sns })).collect();
    json!({ "batches": batches, "counts": state.sn_counts })
}
