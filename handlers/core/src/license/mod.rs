//! License products (授权码 2.0, §8) as a component.
//!
//! | Route | Who calls | What it does |
//! |---|---|---|
//! | `POST /license` (V2 signed) | the marketplace | the three license callbacks ([`callback`]): expiry update, FREEZE/UNFREEZE, release; `000003` for an unknown license where it applies |
//! | `POST /license/activate` | the seller's software | activates a code at the marketplace ([`proxy`]) and records it |
//! | `POST /license/heartbeat` | the seller's software | asks the marketplace about a code ([`proxy`]) |
//!
//! The software never holds the seller's AK/SK: the component signs for it. When `license_client_token` is set the
//! two proxy routes need `Authorization: Bearer <license_client_token>`.

pub mod callback;
pub mod proxy;
pub mod state;

use crate::http::{Inbound, Outbound, bearer_matches};
use crate::openapi::OpenApiConfig;
use crate::ports::{Backend, Clock, Random, Store};
use crate::produce::{ConfigError, Ctx, ProduceConfig};
use crate::signing::keys::SecretKey;
pub use callback::CallbackKind;

/// Every variable the license component reads.
pub const VARIABLES: &[&str] = &[
    "access_keys",
    "timestamp_window_ms",
    "accept_second_timestamps",
    "nonce_cache",
    "openapi_endpoint",
    "openapi_fallback_endpoint",
    "openapi_ak",
    "openapi_sk",
    "license_client_token",
    "license_activities",
];

/// How long a proxied call may take, the fallback endpoint included.
pub const DEADLINE_MS: u64 = 10_000;

/// Options of the license component.
#[derive(Debug, Clone)]
pub struct LicenseConfig {
    /// The basic-interface keys, timestamp window and replay cache (the callbacks' V2 transport).
    pub basic: ProduceConfig,
    /// The marketplace OpenAPI, or why it is not configured (only the proxy routes need it).
    pub openapi: Result<OpenApiConfig, ConfigError>,
    /// The bearer the seller's software must present on the proxy routes, when set.
    pub client_token: Option<SecretKey>,
    /// Activity names that decide the callback kind (`license_activities`), besides the fields.
    pub activities: Vec<(String, CallbackKind)>,
}

impl LicenseConfig {
    /// Reads the configuration through `get` (trimmed; empty counts as unset).
    ///
    /// # Errors
    /// [`ConfigError`] for a missing or invalid `access_keys`, an invalid shared option or `license_activities`
    /// (`expiry=<name>,status=<name>,release=<name>`, any of them). Missing OpenAPI credentials are kept in
    /// [`Self::openapi`]: the callbacks work without them.
    pub fn from_variables(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let basic = ProduceConfig::from_variables(&get)?;
        let mut activities = Vec::new();
        for pair in var("license_activities").unwrap_or_default().split(',').filter(|p| !p.trim().is_empty()) {
            let invalid = ConfigError::Invalid {
                name: "license_activities",
                reason: "expected expiry=<activity>,status=<activity>,release=<activity>",
            };
            let (kind, name) = pair.split_once('=').ok_or(invalid.clone())?;
            let kind = match kind.trim() {
                "expiry" => CallbackKind::Expiry,
                "status" => CallbackKind::Status,
                "release" => CallbackKind::Release,
                _ => return Err(invalid),
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(invalid);
            }
            activities.push((name.to_owned(), kind));
        }
        Ok(Self {
            basic,
            openapi: OpenApiConfig::from_variables(&get),
            client_token: var("license_client_token").map(SecretKey::new),
            activities,
        })
    }
}

/// The component's answer and its log line (no license code in full, no key, no token).
#[derive(Debug)]
pub struct Answer {
    /// The HTTP answer.
    pub response: Outbound,
    /// What happened, for the log.
    pub summary: String,
}

/// A license code as logged: its first four characters.
pub(crate) fn log_safe_code(code: &str) -> String {
    let head: String = code.chars().filter(char::is_ascii_alphanumeric).take(4).collect();
    format!("{head}…")
}

fn json_error(status: u16, error: &str, message: &str) -> Outbound {
    let body = serde_json::json!({"ok": false, "error": error, "message": message});
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if status == 401 {
        headers.push(("www-authenticate".to_owned(), "Bearer".to_owned()));
    }
    Outbound { status, headers, body: body.to_string().into_bytes() }
}

/// Answers one request to the license component.
pub async fn handle<S: Store, B: Backend, C: Clock, R: Random>(
    req: &Inbound,
    cfg: Result<&LicenseConfig, &ConfigError>,
    ctx: &Ctx<'_, S, B, C, R>,
) -> Answer {
    let cfg = match cfg {
        Ok(cfg) => cfg,
        Err(e) => {
            let response = json_error(500, "not_configured", &e.not_configured());
            return Answer { response, summary: format!("{} not configured", req.path) };
        }
    };
    let path = req.path.trim_end_matches('/');
    let call = if path.ends_with("/license/activate") {
        Some(proxy::Call::Activate)
    } else if path.ends_with("/license/heartbeat") {
        Some(proxy::Call::Heartbeat)
    } else if path.ends_with("/license") {
        None
    } else {
        return Answer {
            response: json_error(404, "not_found", "no such route"),
            summary: format!("{path} not found"),
        };
    };
    if req.method != "POST" {
        let response = json_error(405, "method_not_allowed", "use POST");
        return Answer { response, summary: format!("{} {path} not allowed", req.method) };
    }
    let Some(call) = call else {
        let handled = callback::handle(req, cfg, ctx).await;
        return Answer { response: handled.response, summary: handled.summary.to_string() };
    };
    if let Some(token) = &cfg.client_token
        && !bearer_matches(req, token.as_bytes())
    {
        let response = json_error(401, "unauthorized", "missing or wrong bearer token (license_client_token)");
        return Answer { response, summary: format!("{path} unauthorized") };
    }
    let (response, summary) = proxy::handle(call, req, cfg, ctx).await;
    Answer { response, summary }
}

#[cfg(test)]
mod tests;
