//! `POST /license/activate` and `POST /license/heartbeat` for the seller's installed software, which must not hold
//! the seller's AK/SK: the body is checked, sent AK/SK-signed to the marketplace OpenAPI (§8.1, §8.2; the fallback
//! domain after a network error or a `5xx`), and the answer is mapped to a clear JSON answer — HTTP status first,
//! then `error_code` (§8.3: `92020001` comes with 200, 403 and 500).
//!
//! | Marketplace | Answer |
//! |---|---|
//! | 200 `92020000` | `200 {"ok":true,"code":"92020000",…,"license":{…}}` |
//! | 200 `92020002`, 400 `95000001`, `92020020` | `400 invalid_request` / `invalid_license` |
//! | 200 `92020005` | `404 license_not_found` |
//! | 200 `92020003` | `409 already_activated` |
//! | 200 `92020004` | `409 not_received` (the buyer has not received it yet) |
//! | 200 `92020011` | `409 not_activated` |
//! | 401/403 | `502 marketplace_refused_credentials` (the seller's `openapi_ak`/`openapi_sk`) |
//! | 5xx, 429, 200 `92020001`, no answer | `503 marketplace_unavailable` (try again later) |
//! | 405/415, `95000002`–`95000004`, anything else | `502 marketplace_error` with the code (the component's own request was refused) |

use serde_json::{Value, json};

use super::{LicenseConfig, state};
use crate::http::{Inbound, Outbound};
use crate::openapi::{self, ApiRequest};
use crate::ports::{Backend, Clock, Random, Store};
use crate::produce::{Ctx, Deadline};
use crate::wire::license::{
    ActivateRequest, ActivateResponse, HeartbeatRequest, HeartbeatResponse, LicenseErrorCode, LicenseOutcome,
};

/// The activation path (§8.1).
pub const ACTIVATE_PATH: &str = "/api/mkp-openapi-public/global/v1/license/activate";
/// The heartbeat path (§8.2).
pub const HEARTBEAT_PATH: &str = "/api/mkp-openapi-public/global/v1/license/heartbeat";

/// Which call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Activate a license code.
    Activate,
    /// Heartbeat / query a license.
    Heartbeat,
}

fn answer(status: u16, body: &Value) -> Outbound {
    Outbound {
        status,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: body.to_string().into_bytes(),
    }
}

fn refusal(status: u16, error: &str, message: &str, code: Option<&str>) -> Outbound {
    answer(status, &json!({"ok": false, "error": error, "message": message, "code": code}))
}

/// The seller-facing answer to a marketplace answer that was not a success.
fn map_failure(outcome: &LicenseOutcome, code: Option<&str>, message: &str) -> Outbound {
    let said = if message.is_empty() { String::new() } else { format!(": {message}") };
    match outcome {
        LicenseOutcome::Success => refusal(500, "internal", "unexpected success", code),
        LicenseOutcome::Unauthorized => refusal(
            502,
            "marketplace_refused_credentials",
            "the marketplace refused the seller's OpenAPI credentials (openapi_ak / openapi_sk)",
            code,
        ),
        LicenseOutcome::ServerError | LicenseOutcome::Rejected(LicenseErrorCode::InternalError) => {
            refusal(503, "marketplace_unavailable", &format!("the marketplace failed, try again later{said}"), code)
        }
        LicenseOutcome::Rejected(c) => {
            let (status, error, what) = match c {
                LicenseErrorCode::NotExist => (404, "license_not_found", "no such license code"),
                LicenseErrorCode::IllegalState => (409, "already_activated", "the license code is already activated"),
                LicenseErrorCode::NotReceived => {
                    (409, "not_received", "the buyer has not received the license code yet")
                }
                LicenseErrorCode::NotActivated => (409, "not_activated", "the license code is not activated"),
                LicenseErrorCode::InvalidCodeExists => (400, "invalid_license", "the license code is invalid"),
                LicenseErrorCode::InvalidParam | LicenseErrorCode::ReqParamInvalid => {
                    (400, "invalid_request", "the marketplace refused the request's fields")
                }
                _ => (502, "marketplace_error", "the marketplace refused the component's request"),
            };
            refusal(status, error, &format!("{what}{said}"), code)
        }
    }
}

/// The marketplace's message, printable and short (it is shown to the software and logged).
fn clean(message: Option<&str>) -> String {
    message.unwrap_or("").chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Sends one activation or heartbeat; returns the answer and a log summary (no license code, no key).
pub async fn handle<S: Store, B: Backend, C: Clock, R: Random>(
    call: Call,
    req: &Inbound,
    cfg: &LicenseConfig,
    ctx: &Ctx<'_, S, B, C, R>,
) -> (Outbound, String) {
    let openapi = match &cfg.openapi {
        Ok(o) => o,
        Err(e) => return (refusal(500, "not_configured", &e.not_configured(), None), "not configured".to_owned()),
    };
    let (body, license) = match call {
        Call::Activate => match serde_json::from_slice::<ActivateRequest>(&req.body) {
            Ok(mut r) => match r.validate() {
                Ok(()) => {
                    r.license = r.license.trim().to_owned();
                    (serde_json::to_vec(&r).unwrap_or_default(), r.license)
                }
                Err(e) => return (refusal(400, "invalid_request", &e.to_string(), None), "invalid body".to_owned()),
            },
            Err(_) => return bad_body("{\"license\":\"…\",\"real_effect_time\"?:\"yyyyMMddHHmmss\"}"),
        },
        Call::Heartbeat => match serde_json::from_slice::<HeartbeatRequest>(&req.body) {
            Ok(mut r) => match r.validate() {
                Ok(()) => {
                    r.license = r.license.trim().to_owned();
                    (serde_json::to_vec(&r).unwrap_or_default(), r.license)
                }
                Err(e) => return (refusal(400, "invalid_request", &e.to_string(), None), "invalid body".to_owned()),
            },
            Err(_) => return bad_body("{\"license\":\"…\",\"heartbeatInfo\"?:{\"thirdPartyAccount\":\"…\"}}"),
        },
    };
    let path = match call {
        Call::Activate => ACTIVATE_PATH,
        Call::Heartbeat => HEARTBEAT_PATH,
    };
    let deadline = Deadline::after(ctx.clock, super::DEADLINE_MS);
    let request = ApiRequest { method: "POST", path_and_query: path, headers: &[], body: &body };
    let reply = match openapi::call(openapi, &request, ctx.backend, ctx.clock, &deadline).await {
        Ok(reply) => reply,
        Err(e) => {
            let out =
                refusal(503, "marketplace_unavailable", "the marketplace could not be reached, try again later", None);
            return (out, format!("marketplace unreachable: {e}"));
        }
    };
    let code_label = super::log_safe_code(&license);
    // The code first, from any JSON: a success must not be lost because a detail of the answer is malformed.
    let value: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    let code: Option<String> = match &value["error_code"] {
        Value::String(c) => Some(c.chars().filter(char::is_ascii_alphanumeric).take(16).collect()),
        Value::Number(n) => Some(n.to_string().chars().take(16).collect()),
        _ => None,
    };
    let message = clean(value["error_msg"].as_str());
    let outcome = match LicenseOutcome::classify(reply.status, code.as_deref()) {
        LicenseOutcome::Rejected(_) if reply.status == 429 => LicenseOutcome::ServerError,
        other => other,
    };
    let summary = format!("{call:?} license={code_label} HTTP {} {}", reply.status, code.as_deref().unwrap_or("-"));
    if outcome != LicenseOutcome::Success {
        return (map_failure(&outcome, code.as_deref(), &message), summary);
    }
    let now = ctx.clock.now_ms();
    match call {
        Call::Activate => {
            let info = serde_json::from_value::<ActivateResponse>(value)
                .ok()
                .and_then(|r| r.data)
                .and_then(|d| d.license_code_info);
            let stored = state::activated(ctx.store, ctx.random, now, &license, info.as_ref()).await;
            // Activated at the marketplace either way; only our record may be behind (the next heartbeat writes it).
            let summary =
                if stored.is_err() { format!("{summary}; record not stored (key-value store error)") } else { summary };
            (success(code.as_deref(), json!(info), None), summary)
        }
        Call::Heartbeat => {
            let info = serde_json::from_value::<HeartbeatResponse>(value).ok().and_then(|r| r.data);
            let seen = info.as_ref().and_then(|i| i.status.clone());
            let local = state::heard(ctx.store, ctx.random, now, &license, seen.as_ref()).await.ok();
            let local = local.map(|r| json!({"state": r.state, "expire_ms": r.expire_ms}));
            (success(code.as_deref(), json!(info), local), summary)
        }
    }
}

/// The success answer: the marketplace's view (`license`), and for a heartbeat this component's (`local`: frozen by a
/// callback, say, which the marketplace's heartbeat does not report).
fn success(code: Option<&str>, license: Value, local: Option<Value>) -> Outbound {
    answer(200, &json!({"ok": true, "code": code, "license": license, "local": local}))
}

fn bad_body(shape: &str) -> (Outbound, String) {
    (refusal(400, "invalid_request", &format!("expected {shape}"), None), "unreadable body".to_owned())
}
