//! Configuration of the SSO component, read from Spin variables.

use zeroize::Zeroizing;

use crate::crypto::rsa_secret::ClientSecretKey;
use crate::produce::ConfigError;
use crate::signing::error::hmac_sha256;

/// Every variable the SSO component reads.
pub const VARIABLES: &[&str] =
    &["sso_redirect_uri", "sso_app_url", "sso_session_secret", "sso_session_ttl_s", "rsa_private_key"];

/// Default session lifetime: a working day.
pub const DEFAULT_SESSION_TTL_S: u64 = 8 * 3600;

/// Shortest secret accepted for `sso_session_secret`: it keys the cookie MAC and the token seal.
const MIN_SECRET_BYTES: usize = 32;

/// Options of the SSO component. Build with [`SsoConfig::from_variables`].
#[derive(Clone)]
pub struct SsoConfig {
    /// The callback URL registered with OneAccess (`…/sso/callback`); sent as `redirect_uri`.
    pub redirect_uri: String,
    /// Where a logged-in user lands: an absolute URL, or a path on the component's host.
    pub app_url: String,
    /// Session lifetime in seconds (absolute, from login).
    pub session_ttl_s: u64,
    /// Decrypts the `applicationSync` client secret when OneAccess needs it.
    pub rsa_private_key: ClientSecretKey,
    /// Whether cookies carry `Secure`: always, except when the callback is on `http://127.0.0.1` or
    /// `http://localhost` (local runs, where a browser would drop a `Secure` cookie set over HTTP).
    pub secure_cookies: bool,
    cookie_key: Zeroizing<[u8; 32]>,
    seal_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SsoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConfig")
            .field("redirect_uri", &self.redirect_uri)
            .field("app_url", &self.app_url)
            .field("session_ttl_s", &self.session_ttl_s)
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

/// The origin (`scheme://host[:port]`) of an absolute `http(s)` URL, lower-cased, if it is one.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .map(|r| ("https", r))
        .or_else(|| lower.strip_prefix("http://").map(|r| ("http", r)));
    let (scheme, rest) = rest?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || authority.contains('\\') {
        return None;
    }
    Some(format!("{scheme}://{authority}"))
}

fn is_local_http(url: &str) -> bool {
    matches!(origin_of(url), Some(o) if ["http://127.0.0.1", "http://localhost"].iter().any(|l| o == *l || o.starts_with(&format!("{l}:"))))
}

/// One key derived from the session secret per use, so a MAC key never doubles as an encryption key.
fn derive(secret: &[u8], label: &str) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hmac_sha256(secret, &[label.as_bytes()]))
}

impl SsoConfig {
    /// Reads the configuration through `get` (a variable lookup; empty values count as unset).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable. `sso_redirect_uri`, `sso_app_url`,
    /// `sso_session_secret` and `rsa_private_key` are required.
    pub fn from_variables(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let secret = Zeroizing::new(var("sso_session_secret").ok_or(ConfigError::Missing("sso_session_secret"))?);
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                name: "sso_session_secret",
                reason: "expected at least 32 characters (e.g. openssl rand -hex 32)",
            });
        }
        let redirect_uri = var("sso_redirect_uri").ok_or(ConfigError::Missing("sso_redirect_uri"))?;
        let Some(origin) = origin_of(&redirect_uri) else {
            return Err(ConfigError::Invalid { name: "sso_redirect_uri", reason: "expected an absolute http(s) URL" });
        };
        let secure_cookies = !is_local_http(&redirect_uri);
        if secure_cookies && !origin.starts_with("https://") {
            return Err(ConfigError::Invalid {
                name: "sso_redirect_uri",
                reason: "expected https (http only on 127.0.0.1 or localhost)",
            });
        }
        let app_url = var("sso_app_url").ok_or(ConfigError::Missing("sso_app_url"))?;
        if origin_of(&app_url).is_none() && !is_local_path(&app_url) {
            return Err(ConfigError::Invalid {
                name: "sso_app_url",
                reason: "expected an absolute http(s) URL or a path starting with /",
            });
        }
        let session_ttl_s = match var("sso_session_ttl_s") {
            None => DEFAULT_SESSION_TTL_S,
            Some(v) => {
                v.parse::<u64>().ok().filter(|s| (60..=30 * 86_400).contains(s)).ok_or(ConfigError::Invalid {
                    name: "sso_session_ttl_s",
                    reason: "expected seconds between 60 and 2592000",
                })?
            }
        };
        let rsa_pem = var("rsa_private_key").ok_or(ConfigError::Missing("rsa_private_key"))?;
        let rsa_private_key = ClientSecretKey::from_pem(&rsa_pem).map_err(|_| ConfigError::Invalid {
            name: "rsa_private_key",
            reason: "expected an RSA private key in PEM (PKCS#8 or PKCS#1)",
        })?;
        Ok(Self {
            redirect_uri,
            app_url,
            session_ttl_s,
            rsa_private_key,
            secure_cookies,
            cookie_key: derive(secret.as_bytes(), "koogallery-edge sso cookie mac v1"),
            seal_key: derive(secret.as_bytes(), "koogallery-edge sso token seal v1"),
        })
    }

    /// The key of the cookie MACs.
    pub(crate) fn cookie_key(&self) -> &[u8; 32] {
        &self.cookie_key
    }

    /// The key that seals refresh tokens at rest.
    pub(crate) fn seal_key(&self) -> &[u8; 32] {
        &self.seal_key
    }

    /// `sso_app_url` as an absolute URL (a path is taken on the callback's origin).
    pub fn absolute_app_url(&self) -> String {
        if origin_of(&self.app_url).is_some() {
            self.app_url.clone()
        } else {
            format!("{}{}", origin_of(&self.redirect_uri).unwrap_or_default(), self.app_url)
        }
    }

    /// Whether `url` may be the target of a logout: an absolute URL on the origin of `sso_app_url` or of the
    /// callback (never elsewhere: an open redirect would lend the seller's name to phishing).
    pub fn allows_redirect(&self, url: &str) -> bool {
        if url.chars().any(|c| c.is_control() || c == ' ') {
            return false;
        }
        let Some(origin) = origin_of(url) else { return false };
        [self.absolute_app_url(), self.redirect_uri.clone()].iter().any(|u| origin_of(u).as_deref() == Some(&origin))
    }
}

/// A path on this host (`/…`, not `//…`, which a browser reads as another host).
fn is_local_path(s: &str) -> bool {
    s.starts_with('/') && !s.starts_with("//") && !s.contains('\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = include_str!("../../../../tests/fixtures/kit_rsa3072_private.pem");

    fn config(pairs: &[(&str, &str)]) -> Result<SsoConfig, ConfigError> {
        let map: std::collections::HashMap<&str, &str> = pairs.iter().copied().collect();
        SsoConfig::from_variables(|k| map.get(k).map(|v| (*v).to_owned()))
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("sso_redirect_uri", "https://isv.example.com/sso/callback"),
            ("sso_app_url", "/app"),
            ("sso_session_secret", "0123456789abcdef0123456789abcdef"),
            ("rsa_private_key", PEM),
        ]
    }

    #[test]
    fn each_required_variable_is_named_when_missing() {
        for name in ["sso_redirect_uri", "sso_app_url", "sso_session_secret", "rsa_private_key"] {
            let vars: Vec<_> = base().into_iter().filter(|(k, _)| *k != name).collect();
            assert!(matches!(config(&vars), Err(ConfigError::Missing(n)) if n == name), "{name}");
        }
    }

    #[test]
    fn cookies_are_secure_except_on_local_http_and_plain_http_elsewhere_is_refused() {
        let cfg = config(&base()).expect("valid");
        assert!(cfg.secure_cookies);
        assert_eq!(cfg.session_ttl_s, DEFAULT_SESSION_TTL_S);
        assert_eq!(cfg.absolute_app_url(), "https://isv.example.com/app");
        let mut local = base();
        local[0].1 = "http://127.0.0.1:3000/sso/callback";
        assert!(!config(&local).expect("valid").secure_cookies);
        let mut plain = base();
        plain[0].1 = "http://isv.example.com/sso/callback";
        assert!(matches!(config(&plain), Err(ConfigError::Invalid { name: "sso_redirect_uri", .. })));
        let mut short = base();
        short[2].1 = "too-short";
        assert!(matches!(config(&short), Err(ConfigError::Invalid { name: "sso_session_secret", .. })));
    }

    #[test]
    fn logout_redirects_stay_on_the_sellers_origins() {
        let cfg = config(&base()).expect("valid");
        assert!(cfg.allows_redirect("https://isv.example.com/bye"));
        for bad in [
            "https://evil.example.com/",
            "//evil.example.com",
            "/bye",
            "https://isv.example.com@evil.com/",
            "javascript:alert(1)",
        ] {
            assert!(!cfg.allows_redirect(bad), "{bad}");
        }
    }
}
