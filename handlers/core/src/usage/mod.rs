//! On-demand usage for the marketplace (§9.4) as a component: the seller's backend submits usage records, the
//! component numbers them, keeps them in a key-value outbox and pushes them to the marketplace OpenAPI until the
//! marketplace has accepted each one.
//!
//! | Route | What it does |
//! |---|---|
//! | `POST /usage/records` | takes `{"records":[{record_id?, instance_id, begin_time, end_time, usage_value, relate_pkg_instance?}]}` ([`intake`]); answers each record's `metering_sn`; pushes |
//! | `POST /usage/flush` | pushes now, back-off or not (for a cron job) |
//! | `POST /usage/requeue` | puts parked batches back in line (after the cause is fixed), then pushes |
//! | `GET /usage/status` | pending, sent, failed (parked) counts, the oldest pending record's age, the last error |
//!
//! Every route needs `Authorization: Bearer <admin_token>`. Spin has no timers, so requests push what is due, within
//! [`DEADLINE_MS`]: every accepted submission, status read, flush and requeue, and also requests refused for their
//! token or sent to an unknown route (a malformed submission does not push); a seller whose backend submits hourly
//! gets hourly pushes, and a cron `POST /usage/flush` covers quiet periods.
//!
//! The push itself ([`outbox`]) signs each batch twice as the marketplace requires: the body signature of §4.7
//! (`signature`/`ts`/`nonce`, keyed with the basic-interface key, the first of `access_keys`) over the exact
//! bytes sent, then the API Gateway AK/SK signature over every header ([`crate::openapi`]).

pub mod intake;
pub mod outbox;

use serde_json::{Value, json};

use crate::http::{Inbound, Outbound, bearer_matches};
use crate::openapi::OpenApiConfig;
use crate::ports::{Backend, Clock, Random, Store};
use crate::produce::{ConfigError, Ctx, Deadline};
use crate::signing::keys::{KeyRing, SecretKey};
use intake::Intake;
use outbox::{Mode, PushReport};

/// Every variable the usage component reads.
pub const VARIABLES: &[&str] =
    &["access_keys", "admin_token", "openapi_endpoint", "openapi_fallback_endpoint", "openapi_ak", "openapi_sk"];

/// How long one request may take, pushing included.
pub const DEADLINE_MS: u64 = 10_000;

/// The largest submission read (about 3 000 records' worth; at most
/// [`intake::MAX_RECORDS_PER_SUBMISSION`] are taken).
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Options of the usage component.
#[derive(Debug, Clone)]
pub struct UsageConfig {
    /// Where pushes go and the AK/SK they are signed with.
    pub openapi: OpenApiConfig,
    /// The basic-interface key ("ISV对接密钥", the first of `access_keys`): keys the body signature.
    pub body_key: SecretKey,
    /// The bearer token of every route.
    pub admin_token: SecretKey,
}

impl UsageConfig {
    /// Reads the configuration through `get` (trimmed; empty counts as unset).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable: `access_keys`, `openapi_ak`, `openapi_sk` and
    /// `admin_token` are required.
    pub fn from_variables(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let keys = var("access_keys").ok_or(ConfigError::Missing("access_keys"))?;
        let keys = KeyRing::parse_list(&keys).map_err(|_| ConfigError::Invalid {
            name: "access_keys",
            reason: "expected a comma-separated list of keys",
        })?;
        let openapi = OpenApiConfig::from_variables(&get)?;
        let admin_token = var("admin_token").ok_or(ConfigError::Missing("admin_token"))?;
        Ok(Self { openapi, body_key: keys.signing_key().clone(), admin_token: SecretKey::new(admin_token) })
    }
}

/// The component's answer and its log line (counts and outcomes only: no record, token or signature).
#[derive(Debug)]
pub struct Answer {
    /// The HTTP answer.
    pub response: Outbound,
    /// What happened, for the log.
    pub summary: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Records,
    Flush,
    Requeue,
    Status,
}

fn route(path: &str) -> Option<(Route, &'static str)> {
    let path = path.trim_end_matches('/');
    [
        ("/usage/records", Route::Records, "POST"),
        ("/usage/flush", Route::Flush, "POST"),
        ("/usage/requeue", Route::Requeue, "POST"),
        ("/usage/status", Route::Status, "GET"),
    ]
    .into_iter()
    .find(|(suffix, _, _)| path.ends_with(suffix))
    .map(|(_, route, method)| (route, method))
}

fn json_answer(status: u16, body: &Value) -> Outbound {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if status == 401 {
        headers.push(("www-authenticate".to_owned(), "Bearer".to_owned()));
    }
    Outbound { status, headers, body: body.to_string().into_bytes() }
}

fn error(status: u16, code: &str, message: &str) -> Outbound {
    json_answer(status, &json!({"error": code, "message": message}))
}

fn report_json(report: &Result<PushReport, crate::ports::StoreError>) -> Value {
    match report {
        Ok(r) => json!({
            "sent": r.sent,
            "batches": r.batches,
            "parked": r.parked,
            "skipped": r.skipped.map(|s| match s {
                outbox::Skipped::Empty => "nothing_pending",
                outbox::Skipped::NotDue => "backing_off",
                outbox::Skipped::Busy => "another_push_running",
            }),
            "error": r.error,
        }),
        Err(_) => json!({"error": "key-value store unavailable"}),
    }
}

fn report_text(report: &Result<PushReport, crate::ports::StoreError>) -> String {
    match report {
        Ok(r) => r.to_string(),
        Err(e) => format!("push failed: {e}"),
    }
}

/// Answers one request to the usage component, then pushes what is due.
pub async fn handle<S: Store, B: Backend, C: Clock, R: Random>(
    req: &Inbound,
    cfg: Result<&UsageConfig, &ConfigError>,
    ctx: &Ctx<'_, S, B, C, R>,
) -> Answer {
    let cfg = match cfg {
        Ok(cfg) => cfg,
        Err(e) => {
            let response = error(500, "not_configured", &e.not_configured());
            return Answer { response, summary: format!("{} not configured", req.path) };
        }
    };
    let deadline = Deadline::after(ctx.clock, DEADLINE_MS);
    let Some((route, method)) = route(&req.path) else {
        let push = outbox::push(ctx, cfg, &deadline, Mode::Due).await;
        let summary = format!("{} not found; {}", req.path, report_text(&push));
        return Answer { response: error(404, "not_found", "no such route"), summary };
    };
    if !bearer_matches(req, cfg.admin_token.as_bytes()) {
        let push = outbox::push(ctx, cfg, &deadline, Mode::Due).await;
        let response = error(401, "unauthorized", "missing or wrong bearer token (admin_token)");
        return Answer { response, summary: format!("{} unauthorized; {}", req.path, report_text(&push)) };
    }
    if req.method != method {
        let response = error(405, "method_not_allowed", &format!("use {method}"));
        return Answer { response, summary: format!("{} {} not allowed", req.method, req.path) };
    }
    match route {
        Route::Records => records(req, cfg, ctx, &deadline).await,
        Route::Flush | Route::Requeue => {
            let mode = if route == Route::Requeue { Mode::Requeue } else { Mode::Flush };
            let push = outbox::push(ctx, cfg, &deadline, mode).await;
            let pending = outbox::pending(ctx.store).await.map(|p| p.len()).ok();
            let requeued = push.as_ref().ok().and_then(|r| r.requeued);
            let body = json!({"requeued": requeued, "push": report_json(&push), "pending": pending});
            let summary = format!("{} {}", req.path, report_text(&push));
            Answer { response: json_answer(200, &body), summary }
        }
        Route::Status => {
            let push = outbox::push(ctx, cfg, &deadline, Mode::Due).await;
            match outbox::status(ctx.store, ctx.clock.now_ms()).await {
                Ok(status) => {
                    Answer { response: json_answer(200, &status), summary: format!("status; {}", report_text(&push)) }
                }
                Err(e) => store_failed(req, &e),
            }
        }
    }
}

fn store_failed(req: &Inbound, e: &crate::ports::StoreError) -> Answer {
    Answer {
        response: error(503, "store_unavailable", "key-value store unavailable, try again"),
        summary: format!("{} store error: {e}", req.path),
    }
}

/// A submission refused as a whole, each bad record named.
fn refused(status: u16, code: &str, problems: &[intake::RecordProblem]) -> Answer {
    let message = format!("{} record(s) refused; nothing was stored", problems.len());
    let body = json!({"error": code, "message": message, "records": problems});
    Answer { response: json_answer(status, &body), summary: format!("records refused: {} {code}", problems.len()) }
}

async fn records<S: Store, B: Backend, C: Clock, R: Random>(
    req: &Inbound,
    cfg: &UsageConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    deadline: &Deadline,
) -> Answer {
    if req.body.len() > MAX_REQUEST_BYTES {
        return Answer {
            response: error(413, "too_large", &format!("at most {MAX_REQUEST_BYTES} bytes per submission")),
            summary: "records refused: too large".to_owned(),
        };
    }
    let intake = match intake::submit(&req.body, ctx).await {
        Ok(intake) => intake,
        Err(e) => return store_failed(req, &e),
    };
    match intake {
        Intake::Malformed(why) => {
            Answer { response: error(400, "invalid_body", &why), summary: "records refused: malformed".to_owned() }
        }
        Intake::Invalid(problems) => refused(400, "invalid_records", &problems),
        Intake::Conflict(problems) => refused(409, "conflicting_records", &problems),
        Intake::Accepted(accepted) => {
            let queued = accepted.iter().filter(|a| a.status == intake::RecordStatus::Queued).count();
            let push = outbox::push(ctx, cfg, deadline, Mode::Due).await;
            let body = json!({
                "accepted": accepted.len(),
                "queued": queued,
                "records": accepted,
                "push": report_json(&push),
            });
            let summary = format!("records accepted={} queued={queued}; {}", accepted.len(), report_text(&push));
            Answer { response: json_answer(200, &body), summary }
        }
    }
}

#[cfg(test)]
mod tests;
