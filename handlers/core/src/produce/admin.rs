//! The operator routes under the production URL, behind `Authorization: Bearer <admin_token>`:
//!
//! - `POST <route>/outbox/drain` — delivers every due event within the request's deadline (for a scheduler: a
//!   cron `curl`, a SpinKube CronJob); answers the counts and how many instances still wait.
//! - `GET <route>/outbox` — lists waiting and dead-lettered events: ids, types, attempts, next try, last error
//!   (never bodies, which hold personal data).
//! - `POST <route>/outbox/redrive` — puts dead-lettered events back in line (after the backend is fixed), then
//!   drains.
//!
//! Without `admin_token` they answer `503` "not configured: set admin_token"; a wrong token `401`. The token is
//! compared in constant time and never logged.

use super::config::ProduceConfig;
use super::ctx::{Ctx, Deadline};
use super::outbox::{self, DeliveryReport};
use super::reply::{Handled, Summary};
use crate::http::{Inbound, Outbound, bearer_matches};
use crate::ports::{Backend, Clock, Random, Store};
use crate::wire::result_code::ResultCode;

/// An operator route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    Drain,
    List,
    Redrive,
}

/// The operator route `req` asks for, if it is one (by path suffix and method; the production URL itself may be
/// mounted anywhere).
pub(super) fn route(req: &Inbound) -> Option<Route> {
    let path = req.path.trim_end_matches('/');
    match (req.method.as_str(), path) {
        ("POST", p) if p.ends_with("/outbox/drain") => Some(Route::Drain),
        ("POST", p) if p.ends_with("/outbox/redrive") => Some(Route::Redrive),
        ("GET", p) if p.ends_with("/outbox") => Some(Route::List),
        _ => None,
    }
}

pub(super) async fn handle<S: Store, B: Backend, C: Clock, R: Random>(
    route: Route,
    req: &Inbound,
    cfg: &ProduceConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    deadline: &Deadline,
) -> Handled {
    let name = match route {
        Route::Drain => "outbox/drain",
        Route::List => "outbox",
        Route::Redrive => "outbox/redrive",
    };
    let Some(token) = &cfg.admin_token else {
        return answer(503, name, serde_json::json!({"error": "not configured: set admin_token"}), None);
    };
    if !bearer_matches(req, token.as_bytes()) {
        return answer(401, name, serde_json::json!({"error": "missing or wrong bearer token"}), None);
    }
    let mut report = DeliveryReport::default();
    let result = match route {
        Route::List => outbox::list(ctx.store)
            .await
            .map(|(waiting, dead)| serde_json::json!({ "waiting": waiting, "deadLettered": dead })),
        Route::Drain | Route::Redrive => {
            let requeued = match route {
                Route::Redrive => outbox::redrive(ctx).await,
                _ => Ok(0),
            };
            match requeued {
                Ok(requeued) => outbox::drain(ctx, cfg, Some(cfg), deadline, &mut report, usize::MAX, usize::MAX)
                    .await
                    .map(|visited| {
                        serde_json::json!({
                            "requeued": requeued,
                            "instancesVisited": visited,
                            "delivered": report.delivered,
                            "failed": report.failed,
                            "deadLettered": report.dead_lettered.len(),
                        })
                    }),
                Err(e) => Err(e),
            }
        }
    };
    let log = (!report.is_empty()).then(|| report.to_string());
    match result {
        Ok(body) => answer(200, name, body, log),
        Err(e) => {
            let mut handled =
                answer(500, name, serde_json::json!({"error": "key-value store unavailable, try again"}), log);
            handled.summary.reason = Some(e.to_string());
            handled
        }
    }
}

fn answer(status: u16, name: &str, body: serde_json::Value, outbox: Option<String>) -> Handled {
    let code = match status {
        200 => ResultCode::Success,
        500 => ResultCode::InternalError,
        _ => ResultCode::AuthFailed,
    };
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if status == 401 {
        headers.push(("www-authenticate".to_owned(), "Bearer".to_owned()));
    }
    Handled {
        response: Outbound { status, headers, body: crate::wire::json_out::to_ascii_json(&body) },
        summary: Summary {
            interface: "admin",
            activity: Some(name.to_owned()),
            result_code: code,
            instance_id: None,
            reason: (status != 200).then(|| format!("HTTP {status}")),
            outbox,
        },
    }
}
