//! Configuration of the kit sync components, read from Spin variables.

use crate::crypto::rsa_secret::ClientSecretKey;
use crate::produce::outbox::DeliveryConfig;
use crate::produce::{BackendTarget, ConfigError, Shared};
use crate::signing::keys::{KeyRing, SecretKey};
use crate::signing::window::TimestampWindow;

/// Every variable the kit components read.
pub const VARIABLES: &[&str] = &[
    "kit_access_keys",
    "rsa_private_key",
    "timestamp_window_ms",
    "accept_second_timestamps",
    "v1_timestamp_window_ms",
    "backend_url",
    "backend_secret",
    "backend_timeout_ms",
    "nonce_cache",
    "request_deadline_ms",
    "outbox_max_attempts",
    "admin_token",
];

/// Options of the kit syncs. Build with [`KitConfig::from_variables`] or [`KitConfig::new`].
#[derive(Debug, Clone)]
pub struct KitConfig {
    /// Kit keys ("联营saas同步接口调试绑定密钥"): the first signs answers, all verify (rotation). Never the
    /// basic-interface key.
    pub keys: KeyRing,
    /// The merchant RSA private key that decrypts `applicationSync`'s `clientSecret`; the error says why it cannot
    /// be used (unset or invalid), which only `applicationSync` answers with, so the other syncs keep working.
    pub rsa_private_key: Result<ClientSecretKey, ConfigError>,
    /// V2 `x-timestamp` window (two-sided).
    pub window: TimestampWindow,
    /// Window on a V1 sync's body `timeStamp` (read as UTC+8); `None` turns the check off.
    pub v1_window: Option<TimestampWindow>,
    /// Forward mode when set.
    pub backend: Option<BackendTarget>,
    /// Reject an `x-nonce` seen before.
    pub nonce_cache: bool,
    /// How long one request may take, backend calls included.
    pub request_deadline_ms: u64,
    /// Failed deliveries after which an event is dead-lettered.
    pub outbox_max_attempts: u32,
    /// Bearer token of the operator routes (served by `produce`); kept for symmetry with its configuration.
    pub admin_token: Option<SecretKey>,
}

impl KitConfig {
    /// Built-in mode with default options, these kit keys and this RSA key (if any).
    pub fn new(keys: KeyRing, rsa_private_key: Option<ClientSecretKey>) -> Self {
        Self::with_shared(keys, rsa_private_key.ok_or(ConfigError::Missing("rsa_private_key")), Shared::defaults())
    }

    fn with_shared(keys: KeyRing, rsa_private_key: Result<ClientSecretKey, ConfigError>, shared: Shared) -> Self {
        Self {
            keys,
            rsa_private_key,
            window: shared.window,
            v1_window: shared.v1_window,
            backend: shared.backend,
            nonce_cache: shared.nonce_cache,
            request_deadline_ms: shared.request_deadline_ms,
            outbox_max_attempts: shared.outbox_max_attempts,
            admin_token: shared.admin_token,
        }
    }

    /// Reads the configuration through `get` (a variable lookup; empty values count as unset).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable; `kit_access_keys` is required. A missing or
    /// invalid `rsa_private_key` is not an error here (see [`Self::rsa_private_key`]).
    pub fn from_variables(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let keys_text = var("kit_access_keys").ok_or(ConfigError::Missing("kit_access_keys"))?;
        let keys = KeyRing::parse_list(&keys_text).map_err(|_| ConfigError::Invalid {
            name: "kit_access_keys",
            reason: "expected a comma-separated list of keys",
        })?;
        let rsa_private_key = rsa_private_key_from(var("rsa_private_key"));
        Ok(Self::with_shared(keys, rsa_private_key, Shared::from_variables(&var)?))
    }

    /// This configuration with `rsa_private_key` read again from `value` (the variable's value, if set): a host that
    /// caches the configuration re-reads only this variable, and only for the sync that needs it.
    pub fn with_rsa_private_key(&self, value: Option<String>) -> Self {
        Self { rsa_private_key: rsa_private_key_from(value), ..self.clone() }
    }
}

/// Parses the `rsa_private_key` variable (empty counts as unset).
fn rsa_private_key_from(value: Option<String>) -> Result<ClientSecretKey, ConfigError> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        None => Err(ConfigError::Missing("rsa_private_key")),
        Some(pem) => ClientSecretKey::from_pem(&pem).map_err(|_| ConfigError::Invalid {
            name: "rsa_private_key",
            reason: "expected an RSA private key in PEM (PKCS#8 or PKCS#1)",
        }),
    }
}

impl DeliveryConfig for KitConfig {
    fn backend(&self) -> Option<&BackendTarget> {
        self.backend.as_ref()
    }
    fn max_attempts(&self) -> u32 {
        self.outbox_max_attempts
    }
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
    fn the_kit_key_is_required_and_a_bad_rsa_key_only_marks_itself() {
        let e = KitConfig::from_variables(lookup(&[("access_keys", "basic")])).err();
        assert_eq!(e, Some(ConfigError::Missing("kit_access_keys")));
        let cfg = KitConfig::from_variables(lookup(&[("kit_access_keys", "k1,k2"), ("rsa_private_key", "nonsense")]))
            .expect("config");
        assert_eq!(cfg.keys.iter().count(), 2);
        let why = cfg.rsa_private_key.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(why.contains("rsa_private_key") && !why.contains("nonsense"), "{why}");
    }
}
