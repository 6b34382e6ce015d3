//! `POST /license/activate` and `POST /license/heartbeat` for the seller's installed software, which must not hold
//! the seller's AK/SK: the body is checked, sent AK/SK-signed to the marketplace OpenAPI (§8.1, §8.2; the fallback
//! domain after a network error or a `5xx`), and the answer is mapped to a clear JSON answer — HTTP status first,
//! then `error_code` (§8.3: `92020001` comes with 200, 403 and 500).
//!
//! | Marketplace | Answer |
//! |---|---|
//! | 200 `92020000` | `200 {"ok":true,"code":"92020000",…,"license":{…}}` |
//! | 200 `92020002`, 400 `95000001`/`95000004`, `92020020` | `400 invalid_request` / `invalid_license` |
//! | 200 `92020005` | `404 license_not_found` |
//! | 200 `92020003` | `409 already_activated` |
//! | 200 `92020004` | `409 not_received` (the buyer has not received it yet) |
//! | 200 `92020011` | `409 not_activated` |
//! | 401/403 | `502 marketplace_refused_credentials` (the seller's `openapi_ak`/`openapi_sk`) |
//! | 5xx, 200 `92020001`, no answer | `503 marketplace_unavailable` (try again later) |
//! | anything else | `502 marketplace_error` with the code |

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
                LicenseErrorCode::InvalidParam
                | LicenseErrorCode::ReqParamInvalid
                | LicenseErrorCode::NotReadable
                | LicenseErrorCode::ContentTypeNotSupported
                | LicenseErrorCode::MethodNotSupported => {
                    (400, "invalid_request", "the marketplace refused the request")
                }
                _ => (502, "marketplace_error", "the marketplace answered with an unknown code"),
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
            Ok(r) => match r.validate() {
                Ok(()) => (serde_json::to_vec(&r).unwrap_or_default(), r.license),
                Err(e) => return (refusal(400, "invalid_request", &e.to_string(), None), "invalid body".to_owned()),
            },
            Err(_) => return bad_body("{\"license\":\"…\",\"real_effect_time\"?:\"yyyyMMddHHmmss\"}"),
        },
        Call::Heartbeat => match serde_json::from_slice::<HeartbeatRequest>(&req.body) {
            Ok(r) => match r.validate() {
                Ok(()) => (serde_json::to_vec(&r).unwrap_or_default(), r.license),
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
    match call {
        Call::Activate => {
            let parsed: ActivateResponse = serde_json::from_slice(&reply.body).unwrap_or_default();
            let outcome = LicenseOutcome::classify(reply.status, parsed.error_code.as_deref());
            let summary = format!("activate license={code_label} HTTP {} {:?}", reply.status, parsed.error_code);
            if outcome != LicenseOutcome::Success {
                return (
                    map_failure(&outcome, parsed.error_code.as_deref(), &clean(parsed.error_msg.as_deref())),
                    summary,
                );
            }
            let info = parsed.data.and_then(|d| d.license_code_info);
            if let Err(e) = state::activated(ctx.store, ctx.random, ctx.clock.now_ms(), &license, info.as_ref()).await {
                // Activated at the marketplace: say so; only our own record is behind (the next heartbeat has it).
                return (
                    success(parsed.error_code.as_deref(), json!(info)),
                    format!("{summary}; record not stored: {e}"),
                );
            }
            (success(parsed.error_code.as_deref(), json!(info)), summary)
        }
        Call::Heartbeat => {
            let parsed: HeartbeatResponse = serde_json::from_slice(&reply.body).unwrap_or_default();
            let outcome = LicenseOutcome::classify(reply.status, parsed.error_code.as_deref());
            let summary = format!("heartbeat license={code_label} HTTP {} {:?}", reply.status, parsed.error_code);
            if outcome != LicenseOutcome::Success {
                return (
                    map_failure(&outcome, parsed.error_code.as_deref(), &clean(parsed.error_msg.as_deref())),
                    summary,
                );
            }
            (success(parsed.error_code.as_deref(), json!(parsed.data)), summary)
        }
    }
}

fn success(code: Option<&str>, license: Value) -> Outbound {
    answer(200, &json!({"ok": true, "code": code, "license": license}))
}

fn bad_body(shape: &str) -> (Outbound, String) {
    (refusal(400, "invalid_request", &format!("expected {shape}"), None), "unreadable body".to_owned())
}
