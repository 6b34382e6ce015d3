//! Configuration of the Agents-gateway component, read from Spin variables.

use zeroize::Zeroizing;

use crate::produce::ConfigError;
use crate::signing::agents_jwt::JwtVerifier;
use crate::signing::keys::SecretKey;

/// Every variable the Agents-gateway component reads.
pub const VARIABLES: &[&str] =
    &["agents_keys", "agents_upstream", "agents_upstream_key", "agents_deadline_s", "admin_token"];

/// Default time one request may take at the upstream, streaming included: long generations stream for minutes.
pub const DEFAULT_DEADLINE_S: u64 = 120;

/// Options of the Agents-gateway component. Build with [`AgentsConfig::from_variables`].
#[derive(Clone)]
pub struct AgentsConfig {
    /// Verifies the gateway's JWTs with the `AK:SK` pairs of `agents_keys`.
    pub verifier: JwtVerifier,
    /// The configured access keys, for logs and checks (never the secrets).
    pub access_keys: Vec<String>,
    /// Base URL of the model server or agent framework, without a trailing `/`; the path after `/agents` is
    /// appended.
    pub upstream: String,
    /// Sent upstream as `Authorization: Bearer …` when set (the gateway's own JWT never is).
    pub upstream_key: Option<Zeroizing<String>>,
    /// How long one request may take at the upstream, its whole stream included, in milliseconds.
    pub deadline_ms: u64,
    /// Bearer token of `GET /agents/_usage`; without it that route answers "not configured".
    pub admin_token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for AgentsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentsConfig")
            .field("access_keys", &self.access_keys)
            .field("upstream", &self.upstream)
            .field("upstream_key", &self.upstream_key.is_some())
            .field("deadline_ms", &self.deadline_ms)
            .field("admin_token", &self.admin_token.is_some())
            .finish()
    }
}

impl AgentsConfig {
    /// Reads the configuration through `get` (a variable lookup; empty values count as unset).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable: `agents_keys` and `agents_upstream` are
    /// required.
    pub fn from_variables(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let keys_text = Zeroizing::new(var("agents_keys").ok_or(ConfigError::Missing("agents_keys"))?);
        let pairs = parse_keys(&keys_text)?;
        let upstream = var("agents_upstream").ok_or(ConfigError::Missing("agents_upstream"))?;
        let upstream = parse_upstream(&upstream)?;
        let deadline_s = match var("agents_deadline_s") {
            None => DEFAULT_DEADLINE_S,
            Some(v) => v.parse::<u64>().ok().filter(|s| (1..=3600).contains(s)).ok_or(ConfigError::Invalid {
                name: "agents_deadline_s",
                reason: "must be a whole number of seconds from 1 to 3600",
            })?,
        };
        Ok(Self {
            access_keys: pairs.iter().map(|(ak, _)| ak.clone()).collect(),
            verifier: JwtVerifier::new(pairs),
            upstream,
            upstream_key: var("agents_upstream_key").map(Zeroizing::new),
            deadline_ms: deadline_s * 1000,
            admin_token: var("admin_token").map(Zeroizing::new),
        })
    }
}

/// `AK:SK[,AK:SK…]`: each pair split at its first `:`, neither part empty, no access key twice.
fn parse_keys(text: &str) -> Result<Vec<(String, SecretKey)>, ConfigError> {
    let invalid = |reason| ConfigError::Invalid { name: "agents_keys", reason };
    let mut keys: Vec<(String, SecretKey)> = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (ak, sk) = pair.split_once(':').ok_or(invalid("each entry must be AK:SK"))?;
        let (ak, sk) = (ak.trim(), sk.trim());
        if ak.is_empty() || sk.is_empty() {
            return Err(invalid("each entry must be AK:SK with neither part empty"));
        }
        if keys.iter().any(|(k, _)| k == ak) {
            return Err(invalid("an access key appears twice"));
        }
        keys.push((ak.to_owned(), SecretKey::new(sk)));
    }
    if keys.is_empty() {
        return Err(invalid("no AK:SK pair"));
    }
    Ok(keys)
}

/// An `http(s)://host[:port][/base]` URL without query or fragment, trailing `/` removed.
fn parse_upstream(url: &str) -> Result<String, ConfigError> {
    let invalid = |reason| ConfigError::Invalid { name: "agents_upstream", reason };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or(invalid("must start with http:// or https://"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || url.contains(['?', '#', ' ']) {
        return Err(invalid("must be a base URL: scheme, host, optional port and path, no query"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<AgentsConfig, ConfigError> {
        AgentsConfig::from_variables(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn required_variables_are_named() {
        assert_eq!(cfg(&[]).err(), Some(ConfigError::Missing("agents_keys")));
        assert_eq!(cfg(&[("agents_keys", "a:b")]).err(), Some(ConfigError::Missing("agents_upstream")));
        let ok = cfg(&[("agents_keys", "ak1:sk:with:colons, ak2:sk2"), ("agents_upstream", "http://127.0.0.1:8000/")])
            .expect("valid");
        assert_eq!(ok.access_keys, ["ak1", "ak2"]);
        let token = crate::signing::agents_jwt::sign(
            "ak1",
            &SecretKey::new("sk:with:colons"),
            1_000_000_000_000,
            1_000_000_300_000,
        );
        assert!(ok.verifier.verify(&token, 1_000_000_000_000).is_ok());
        assert_eq!(ok.upstream, "http://127.0.0.1:8000");
        assert_eq!(ok.deadline_ms, 120_000);
        assert!(ok.upstream_key.is_none() && ok.admin_token.is_none());
    }

    #[test]
    fn invalid_values_are_refused_without_echoing_them() {
        for (keys, upstream, deadline) in [
            ("nocolon", "http://u", "5"),
            ("a:", "http://u", "5"),
            ("a:b,a:c", "http://u", "5"),
            ("a:b", "ftp://u", "5"),
            ("a:b", "http://u?x=1", "5"),
            ("a:b", "http://", "5"),
            ("a:b", "http://u", "0"),
            ("a:b", "http://u", "soon"),
        ] {
            let e = cfg(&[("agents_keys", keys), ("agents_upstream", upstream), ("agents_deadline_s", deadline)])
                .expect_err(keys);
            assert!(matches!(e, ConfigError::Invalid { .. }), "{keys} {upstream} {deadline}: {e}");
            assert!(!e.to_string().contains("sk"), "{e}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let c = cfg(&[("agents_keys", "ak:TOPSECRET"), ("agents_upstream", "http://u"), ("admin_token", "ADMIN")])
            .expect("valid");
        let text = format!("{c:?}");
        assert!(!text.contains("TOPSECRET") && !text.contains("ADMIN"), "{text}");
    }
}
