//! Configuration of the production interface, read from Spin variables.

use crate::crypto::aes_cred::AesBits;
use crate::openapi::OpenApiConfig;
use crate::signing::keys::{KeyRing, SecretKey};
use crate::signing::window::TimestampWindow;

/// Every variable the production interface reads, for the adapter to fetch and the README to document.
pub const VARIABLES: &[&str] = &[
    "access_keys",
    "timestamp_window_ms",
    "accept_second_timestamps",
    "v1_timestamp_window_ms",
    "encrypt_type",
    "v2_encrypt_credentials",
    "backend_url",
    "backend_secret",
    "backend_timeout_ms",
    "front_end_url",
    "admin_url",
    "admin_user",
    "memo",
    "nonce_cache",
    "request_deadline_ms",
    "outbox_max_attempts",
    "admin_token",
    "openapi_endpoint",
    "openapi_fallback_endpoint",
    "openapi_ak",
    "openapi_sk",
];

/// Default time one request may take, answer included: the marketplace waits 5 s.
pub const DEFAULT_REQUEST_DEADLINE_MS: u64 = 4_000;

/// Default number of failed deliveries after which an event is dead-lettered.
pub const DEFAULT_OUTBOX_MAX_ATTEMPTS: u32 = 20;

/// Default V1 `timeStamp` window: the longest V1 retry window (3 h, `newInstance`) plus 10 minutes, so that a
/// marketplace retry that repeats the original URL still passes.
pub const DEFAULT_V1_WINDOW_MS: u64 = 3 * 3_600_000 + 600_000;

/// Default login URL template for built-in provisioning; `{instanceId}` and `{orderId}` are substituted.
pub const DEFAULT_FRONT_END_URL: &str = "https://saas.example.com/login?instance={instanceId}";

/// Where forwarded events go (forward mode).
#[derive(Debug, Clone)]
pub struct BackendTarget {
    /// The backend URL events are POSTed to.
    pub url: String,
    /// Secret for the Standard Webhooks signature.
    pub secret: SecretKey,
    /// Per-attempt time budget, further capped by what is left of the request's deadline.
    pub timeout_ms: u64,
}

/// Options of the production interface. Build with [`ProduceConfig::from_variables`] or [`ProduceConfig::new`].
#[derive(Debug, Clone)]
pub struct ProduceConfig {
    /// Basic-interface keys: the first signs, all verify (rotation).
    pub keys: KeyRing,
    /// V2 timestamp window (two-sided).
    pub window: TimestampWindow,
    /// V1 `timeStamp` window, [`DEFAULT_V1_WINDOW_MS`] unless `v1_timestamp_window_ms` says otherwise (`0` turns
    /// it off). The V1 documentation states none, but without one an old URL from a proxy log could be replayed
    /// at any time.
    pub v1_window: Option<TimestampWindow>,
    /// AES key size for V1 credentials (and V2 when [`Self::v2_encrypt_credentials`]).
    pub encrypt_type: AesBits,
    /// Encrypt `userName`/`password` in V2 `queryInstance` answers (plaintext by default, as the V2 demo does).
    pub v2_encrypt_credentials: bool,
    /// Forward mode when set; built-in provisioning otherwise.
    pub backend: Option<BackendTarget>,
    /// Login URL template for built-in provisioning.
    pub front_end_url: String,
    /// Admin URL template for built-in provisioning.
    pub admin_url: Option<String>,
    /// Admin account name for built-in provisioning.
    pub admin_user: String,
    /// Remark returned with login information.
    pub memo: Option<String>,
    /// Reject a nonce seen before (defence in depth on top of the timestamp window).
    pub nonce_cache: bool,
    /// How long one request may take from arrival to answer, backend calls and background delivery included
    /// (below the marketplace's 5 s).
    pub request_deadline_ms: u64,
    /// Failed deliveries after which an event is dead-lettered.
    pub outbox_max_attempts: u32,
    /// Bearer token of the operator routes (`/outbox`, `/outbox/drain`); they answer "not configured" without it.
    pub admin_token: Option<SecretKey>,
    /// The marketplace OpenAPI, set when `openapi_ak` is: `newInstance` and `upgradeInstance` then read the order
    /// with query order (on-demand keying, order details). An error here (say `openapi_sk` unset) is answered by
    /// those two activities alone, with `000005`, so the rest of the interface keeps working.
    pub openapi: Option<Result<OpenApiConfig, ConfigError>>,
}

/// A variable is missing or malformed. Messages name the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable has no value.
    #[error("required variable {0} is not set")]
    Missing(&'static str),
    /// The variable provider (Vault, Azure Key Vault, …) failed to answer for this variable: nothing is assumed.
    #[error("variable {0} could not be read from its provider")]
    Unavailable(String),
    /// A variable's value cannot be used.
    #[error("variable {name} is invalid: {reason}")]
    Invalid {
        /// Variable name.
        name: &'static str,
        /// What is wrong (never the value itself).
        reason: &'static str,
    },
}

impl ConfigError {
    /// What a component answers while it is not configured: "not configured: set <variable>" for a missing one.
    pub fn not_configured(&self) -> String {
        match self {
            Self::Missing(name) => format!("not configured: set {name}"),
            other => format!("not configured: {other}"),
        }
    }
}

impl ProduceConfig {
    /// Built-in mode with default options and these keys.
    pub fn new(keys: KeyRing) -> Self {
        Self {
            keys,
            window: TimestampWindow::default(),
            v1_window: Some(TimestampWindow { window_ms: DEFAULT_V1_WINDOW_MS, ..TimestampWindow::default() }),
            encrypt_type: AesBits::Aes256,
            v2_encrypt_credentials: false,
            backend: None,
            front_end_url: DEFAULT_FRONT_END_URL.to_owned(),
            admin_url: None,
            admin_user: "admin".to_owned(),
            memo: None,
            nonce_cache: true,
            request_deadline_ms: DEFAULT_REQUEST_DEADLINE_MS,
            outbox_max_attempts: DEFAULT_OUTBOX_MAX_ATTEMPTS,
            admin_token: None,
            openapi: None,
        }
    }

    /// Reads the configuration through `get` (a variable lookup; empty values count as unset).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_variables(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let keys_text = var("access_keys").ok_or(ConfigError::Missing("access_keys"))?;
        let keys = KeyRing::parse_list(&keys_text).map_err(|_| ConfigError::Invalid {
            name: "access_keys",
            reason: "expected a comma-separated list of keys",
        })?;
        let mut cfg = Self::new(keys);
        let shared = Shared::from_variables(&var)?;
        cfg.window = shared.window;
        cfg.v1_window = shared.v1_window;
        cfg.backend = shared.backend;
        cfg.nonce_cache = shared.nonce_cache;
        cfg.request_deadline_ms = shared.request_deadline_ms;
        cfg.outbox_max_attempts = shared.outbox_max_attempts;
        cfg.admin_token = shared.admin_token;
        if let Some(v) = var("encrypt_type") {
            cfg.encrypt_type = AesBits::from_encrypt_type(&v)
                .ok_or(ConfigError::Invalid { name: "encrypt_type", reason: "expected 1 (AES-256) or 2 (AES-128)" })?;
        }
        if let Some(v) = var("v2_encrypt_credentials") {
            cfg.v2_encrypt_credentials = parse_bool(&v, "v2_encrypt_credentials")?;
        }
        if let Some(v) = var("front_end_url") {
            cfg.front_end_url = v;
        }
        cfg.admin_url = var("admin_url");
        if let Some(v) = var("admin_user") {
            cfg.admin_user = v;
        }
        cfg.memo = var("memo");
        if var("openapi_ak").is_some() {
            cfg.openapi = Some(OpenApiConfig::from_variables(&get));
        }
        Ok(cfg)
    }
}

/// The options every marketplace-facing component reads the same way: windows, replay cache, forward mode,
/// deadline, outbox and operator token.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) window: TimestampWindow,
    pub(crate) v1_window: Option<TimestampWindow>,
    pub(crate) backend: Option<BackendTarget>,
    pub(crate) nonce_cache: bool,
    pub(crate) request_deadline_ms: u64,
    pub(crate) outbox_max_attempts: u32,
    pub(crate) admin_token: Option<SecretKey>,
}

impl Shared {
    /// The defaults, as with no variable set.
    pub(crate) fn defaults() -> Self {
        Self {
            window: TimestampWindow::default(),
            v1_window: Some(TimestampWindow { window_ms: DEFAULT_V1_WINDOW_MS, ..TimestampWindow::default() }),
            backend: None,
            nonce_cache: true,
            request_deadline_ms: DEFAULT_REQUEST_DEADLINE_MS,
            outbox_max_attempts: DEFAULT_OUTBOX_MAX_ATTEMPTS,
            admin_token: None,
        }
    }

    /// Reads the shared options through `var` (trimmed, empty as unset).
    pub(crate) fn from_variables(var: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let Self { mut window, mut v1_window, mut request_deadline_ms, mut outbox_max_attempts, .. } = Self::defaults();
        if let Some(v) = var("timestamp_window_ms") {
            window.window_ms = parse_u64(&v, "timestamp_window_ms")?;
        }
        if let Some(v) = var("accept_second_timestamps") {
            window.accept_seconds = parse_bool(&v, "accept_second_timestamps")?;
        }
        if let Some(v) = var("v1_timestamp_window_ms") {
            let window_ms = parse_u64(&v, "v1_timestamp_window_ms")?;
            v1_window = (window_ms > 0).then(|| TimestampWindow { window_ms, ..TimestampWindow::default() });
        }
        let mut backend = None;
        if let Some(url) = var("backend_url") {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid { name: "backend_url", reason: "expected an http(s) URL" });
            }
            let secret = var("backend_secret").ok_or(ConfigError::Missing("backend_secret"))?;
            let timeout_ms = match var("backend_timeout_ms") {
                Some(v) => parse_u64(&v, "backend_timeout_ms")?,
                None => 2_000,
            };
            backend = Some(BackendTarget { url, secret: SecretKey::new(secret), timeout_ms });
        }
        let nonce_cache = match var("nonce_cache") {
            Some(v) => parse_bool(&v, "nonce_cache")?,
            None => true,
        };
        if let Some(v) = var("request_deadline_ms") {
            request_deadline_ms = parse_u64(&v, "request_deadline_ms")?;
            if !(500..5_000).contains(&request_deadline_ms) {
                return Err(ConfigError::Invalid {
                    name: "request_deadline_ms",
                    reason: "expected 500 to 4999 (the marketplace waits 5 s)",
                });
            }
        }
        if let Some(v) = var("outbox_max_attempts") {
            outbox_max_attempts = u32::try_from(parse_u64(&v, "outbox_max_attempts")?)
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::Invalid { name: "outbox_max_attempts", reason: "expected 1 or more" })?;
        }
        let admin_token = var("admin_token").map(SecretKey::new);
        Ok(Self { window, v1_window, backend, nonce_cache, request_deadline_ms, outbox_max_attempts, admin_token })
    }
}

fn parse_u64(v: &str, name: &'static str) -> Result<u64, ConfigError> {
    v.parse().map_err(|_| ConfigError::Invalid { name, reason: "expected a whole number" })
}

fn parse_bool(v: &str, name: &'static str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Invalid { name, reason: "expected true or false" }),
    }
}

/// Fills `{instanceId}` and `{orderId}` in a URL template.
pub fn fill_template(template: &str, instance_id: &str, order_id: &str) -> String {
    template.replace("{instanceId}", instance_id).replace("{orderId}", order_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn only_access_keys_gives_built_in_defaults() {
        let cfg = ProduceConfig::from_variables(lookup(&[("access_keys", "k1, k2")])).expect("config");
        assert_eq!(cfg.keys.iter().count(), 2);
        assert!(cfg.backend.is_none());
        assert_eq!(cfg.window.window_ms, 60_000);
        assert_eq!(cfg.encrypt_type, AesBits::Aes256);
    }

    #[test]
    fn errors_name_the_variable_and_never_the_value() {
        assert_eq!(ProduceConfig::from_variables(lookup(&[])).err(), Some(ConfigError::Missing("access_keys")));
        let e = ProduceConfig::from_variables(lookup(&[("access_keys", "k"), ("backend_url", "https://b")])).err();
        assert_eq!(e, Some(ConfigError::Missing("backend_secret")));
        let e = ProduceConfig::from_variables(lookup(&[("access_keys", "k"), ("encrypt_type", "s3cr3t")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("encrypt_type") && !e.contains("s3cr3t"));
    }

    #[test]
    fn template_substitution() {
        assert_eq!(fill_template("https://a/{instanceId}?o={orderId}", "i", "o"), "https://a/i?o=o");
    }
}
