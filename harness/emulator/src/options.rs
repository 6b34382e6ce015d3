//! What the user asks the emulator to do, and the checks made before the first request is sent.
//!
//! Flags are validated up front (URL shape, keys, concurrency), so a typo is reported once, clearly, instead of as
//! forty failed rules.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use koogallery_core::signing::keys::{KeyError, KeyRing, SecretKey};

/// Default number of concurrent duplicate `newInstance` calls (rule `new.concurrent`).
pub const DEFAULT_CONCURRENCY: usize = 20;

/// Default timestamp window assumed for the endpoint, in milliseconds (the protocol's 60 s).
pub const DEFAULT_WINDOW_MS: u64 = 60_000;

/// Options of one emulator run, as the harness's `emulate` subcommand fills them from its flags.
///
/// Build it with a struct literal ending in `..Default::default()`, so that fields added later do not break the
/// caller. Keys print as `[REDACTED]` in `Debug`.
#[derive(Clone)]
pub struct EmulateOptions {
    /// The production URL to test, e.g. `http://127.0.0.1:3000/produce` (plain `http://`; no query string).
    pub url: String,
    /// The basic-interface key(s), comma-separated: the first signs requests, any may sign answers (rotation).
    pub key: String,
    /// Also run the legacy V1 (GET + `authToken`) rules; reported as skipped otherwise.
    pub v1: bool,
    /// The production address the kit syncs are posted under (`{kit_url}/produceAPI/v2/<name>`). Kit rules are
    /// skipped unless both this and [`Self::kit_key`] are given.
    pub kit_url: Option<String>,
    /// The kit key(s) (a different key from [`Self::key`]), comma-separated; the first signs `x-sign`.
    pub kit_key: Option<String>,
    /// The merchant's RSA public key (PEM) for the `applicationSync` `clientSecret`. Without it the secret cannot
    /// be encrypted for the endpoint, and `000101` ("cannot decrypt the secret") is accepted as well as `000000`.
    pub kit_rsa_public_key: Option<String>,
    /// Where to run the emulator's own webhook receiver (`127.0.0.1:8787`), standing in for the seller's backend:
    /// start the endpoint with `backend_url = http://<this address>` and the same [`Self::backend_secret`]. The
    /// `kit.events*` rules read the events it receives; they are skipped without it.
    pub backend_listen: Option<String>,
    /// The endpoint's `backend_secret`, to verify each event's `webhook-signature` (`whsec_` + Base64 is decoded,
    /// any other text is the key's bytes, as the endpoint reads it). Required with [`Self::backend_listen`].
    pub backend_secret: Option<String>,
    /// How many concurrent duplicate `newInstance` calls to fire (at least 2).
    pub concurrency: usize,
    /// The endpoint's timestamp window in milliseconds; stale requests are crafted just outside it (±window+1 s).
    pub timestamp_window_ms: u64,
    /// Write the report as JSON to this file.
    pub json_out: Option<PathBuf>,
    /// Write the report as a self-contained HTML page to this file.
    pub html_out: Option<PathBuf>,
    /// Print one progress line per rule to stderr while running.
    pub progress: bool,
}

impl Default for EmulateOptions {
    fn default() -> Self {
        Self {
            url: String::new(),
            key: String::new(),
            v1: false,
            kit_url: None,
            kit_key: None,
            kit_rsa_public_key: None,
            backend_listen: None,
            backend_secret: None,
            concurrency: DEFAULT_CONCURRENCY,
            timestamp_window_ms: DEFAULT_WINDOW_MS,
            json_out: None,
            html_out: None,
            progress: true,
        }
    }
}

impl fmt::Debug for EmulateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulateOptions")
            .field("url", &self.url)
            .field("key", &"[REDACTED]")
            .field("v1", &self.v1)
            .field("kit_url", &self.kit_url)
            .field("kit_key", &self.kit_key.as_ref().map(|_| "[REDACTED]"))
            .field("kit_rsa_public_key", &self.kit_rsa_public_key.as_ref().map(|_| "<pem>"))
            .field("backend_listen", &self.backend_listen)
            .field("backend_secret", &self.backend_secret.as_ref().map(|_| "[REDACTED]"))
            .field("concurrency", &self.concurrency)
            .field("timestamp_window_ms", &self.timestamp_window_ms)
            .field("json_out", &self.json_out)
            .field("html_out", &self.html_out)
            .field("progress", &self.progress)
            .finish()
    }
}

/// Why the options cannot be used. Messages name the flag, never a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// The URL does not parse or lacks a host.
    #[error("{flag} is not a usable URL: {reason}")]
    BadUrl {
        /// Which option (`url`, `kit_url`).
        flag: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Only `http://` is spoken; put a TLS-terminating proxy in front of an `https://` endpoint.
    #[error("{0} must use http:// (https is not supported by the emulator)")]
    UnsupportedScheme(&'static str),
    /// A key list is empty or has a blank entry.
    #[error("{flag} is invalid")]
    Key {
        /// Which option (`key`, `kit_key`).
        flag: &'static str,
        /// The key-list problem (never the key).
        source: KeyError,
    },
    /// `kit_url` and `kit_key` must be given together.
    #[error("kit_url and kit_key must be given together")]
    KitIncomplete,
    /// `backend_listen` is not a socket address (`IP:port`).
    #[error("backend_listen is not an IP:port address")]
    BadListen,
    /// `backend_listen` needs `backend_secret` (to verify the events), and the secret may not be blank.
    #[error("backend_listen needs a non-blank backend_secret")]
    BackendSecret,
    /// Fewer than two concurrent calls cannot show convergence.
    #[error("concurrency must be at least 2")]
    Concurrency,
}

/// An `http://host:port/path` split into the parts requests need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `http://host:port`, without a trailing slash.
    pub origin: String,
    /// The path, starting with `/`.
    pub path: String,
}

impl Target {
    /// Parses an `http://` URL without a query string.
    pub(crate) fn parse(flag: &'static str, url: &str) -> Result<Self, OptionsError> {
        let uri: http::Uri = url.trim().parse().map_err(|_| OptionsError::BadUrl { flag, reason: "does not parse" })?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(OptionsError::UnsupportedScheme(flag)),
            None => return Err(OptionsError::BadUrl { flag, reason: "needs http://" }),
        }
        let authority = uri.authority().ok_or(OptionsError::BadUrl { flag, reason: "has no host" })?;
        if uri.query().is_some() {
            return Err(OptionsError::BadUrl { flag, reason: "must not have a query string (signatures go there)" });
        }
        let path = match uri.path() {
            "" => "/".to_owned(),
            p => p.to_owned(),
        };
        Ok(Self { origin: format!("http://{authority}"), path })
    }

    /// The path of a kit sync under this production address (`…/produceAPI/v2/<name>`).
    pub(crate) fn kit_path(&self, sync: &str) -> String {
        let base = self.path.trim_end_matches('/');
        if base.ends_with("/produceAPI/v2") { format!("{base}/{sync}") } else { format!("{base}/produceAPI/v2/{sync}") }
    }

    /// The path of a kit V1 sync under this production address (`…/produceAPI/<name>`).
    pub(crate) fn kit_v1_path(&self, sync: &str) -> String {
        let base = self.path.trim_end_matches('/');
        let base = base.strip_suffix("/v2").filter(|b| b.ends_with("/produceAPI")).unwrap_or(base);
        if base.ends_with("/produceAPI") { format!("{base}/{sync}") } else { format!("{base}/produceAPI/{sync}") }
    }
}

/// Options after validation.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub target: Target,
    pub keys: KeyRing,
    pub kit: Option<(Target, KeyRing)>,
    /// Where the webhook receiver listens, and the secret events are verified with.
    pub backend: Option<(SocketAddr, SecretKey)>,
}

impl EmulateOptions {
    /// Validates the options without sending anything.
    pub(crate) fn check(&self) -> Result<Checked, OptionsError> {
        let target = Target::parse("url", &self.url)?;
        let keys = KeyRing::parse_list(&self.key).map_err(|source| OptionsError::Key { flag: "key", source })?;
        let kit = match (&self.kit_url, &self.kit_key) {
            (None, None) => None,
            (Some(url), Some(key)) => {
                let t = Target::parse("kit_url", url)?;
                let k = KeyRing::parse_list(key).map_err(|source| OptionsError::Key { flag: "kit_key", source })?;
                Some((t, k))
            }
            _ => return Err(OptionsError::KitIncomplete),
        };
        let backend = match &self.backend_listen {
            None => None,
            Some(listen) => {
                let addr: SocketAddr = listen.trim().parse().map_err(|_| OptionsError::BadListen)?;
                match self.backend_secret.as_deref().filter(|s| !s.trim().is_empty()) {
                    Some(secret) => Some((addr, SecretKey::new(secret))),
                    None => return Err(OptionsError::BackendSecret),
                }
            }
        };
        if self.concurrency < 2 {
            return Err(OptionsError::Concurrency);
        }
        Ok(Checked { target, keys, kit, backend })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(url: &str) -> EmulateOptions {
        EmulateOptions { url: url.into(), key: "k".into(), ..Default::default() }
    }

    #[test]
    fn url_is_split_into_origin_and_path() {
        let c = opts("http://127.0.0.1:3000/produce").check().map(|c| c.target);
        assert_eq!(c, Ok(Target { origin: "http://127.0.0.1:3000".into(), path: "/produce".into() }));
        let c = opts("http://localhost").check().map(|c| c.target.path);
        assert_eq!(c, Ok("/".to_owned()));
    }

    #[test]
    fn unusable_urls_are_refused_with_the_flag_named() {
        assert_eq!(opts("https://a/produce").check().err(), Some(OptionsError::UnsupportedScheme("url")));
        assert!(matches!(opts("http://a/p?x=1").check(), Err(OptionsError::BadUrl { flag: "url", .. })));
        assert!(matches!(opts("/produce").check(), Err(OptionsError::BadUrl { flag: "url", .. })));
        assert!(matches!(opts("not a url").check(), Err(OptionsError::BadUrl { flag: "url", .. })));
    }

    #[test]
    fn keys_kit_pairing_and_concurrency_are_checked() {
        let blank = EmulateOptions { url: "http://a/p".into(), key: "k1,,k2".into(), ..Default::default() };
        assert!(matches!(blank.check(), Err(OptionsError::Key { flag: "key", .. })));
        let half = EmulateOptions { kit_url: Some("http://a/p".into()), ..opts("http://a/p") };
        assert_eq!(half.check().err(), Some(OptionsError::KitIncomplete));
        let one = EmulateOptions { concurrency: 1, ..opts("http://a/p") };
        assert_eq!(one.check().err(), Some(OptionsError::Concurrency));
    }

    #[test]
    fn kit_paths_follow_the_production_address() {
        let t = Target { origin: "http://a".into(), path: "/produce".into() };
        assert_eq!(t.kit_path("tenantSync"), "/produce/produceAPI/v2/tenantSync");
        let t = Target { origin: "http://a".into(), path: "/".into() };
        assert_eq!(t.kit_path("authSync"), "/produceAPI/v2/authSync");
        let t = Target { origin: "http://a".into(), path: "/x/produceAPI/v2/".into() };
        assert_eq!(t.kit_path("allOrgSync"), "/x/produceAPI/v2/allOrgSync");
    }

    #[test]
    fn kit_v1_paths_follow_the_production_address() {
        let t = Target { origin: "http://a".into(), path: "/produce".into() };
        assert_eq!(t.kit_v1_path("tenantSync"), "/produce/produceAPI/tenantSync");
        let t = Target { origin: "http://a".into(), path: "/".into() };
        assert_eq!(t.kit_v1_path("authSync"), "/produceAPI/authSync");
        let t = Target { origin: "http://a".into(), path: "/x/produceAPI/v2/".into() };
        assert_eq!(t.kit_v1_path("allOrgSync"), "/x/produceAPI/allOrgSync");
        let t = Target { origin: "http://a".into(), path: "/x/produceAPI".into() };
        assert_eq!(t.kit_v1_path("allOrgSync"), "/x/produceAPI/allOrgSync");
    }

    #[test]
    fn the_receiver_needs_an_address_and_a_secret() {
        let listen = |addr: &str, secret: Option<&str>| EmulateOptions {
            backend_listen: Some(addr.into()),
            backend_secret: secret.map(str::to_owned),
            ..opts("http://a/p")
        };
        let ok = listen("127.0.0.1:8787", Some("whsec_x")).check().map(|c| c.backend.map(|(a, _)| a.port()));
        assert_eq!(ok.ok().flatten(), Some(8787));
        assert_eq!(listen("localhost:8787", Some("s")).check().err(), Some(OptionsError::BadListen));
        assert_eq!(listen("127.0.0.1:8787", None).check().err(), Some(OptionsError::BackendSecret));
        assert_eq!(listen("127.0.0.1:8787", Some(" ")).check().err(), Some(OptionsError::BackendSecret));
        let secret_only = EmulateOptions { backend_secret: Some("s".into()), ..opts("http://a/p") };
        assert!(secret_only.check().is_ok_and(|c| c.backend.is_none()), "an unused secret (from the env) is fine");
    }

    #[test]
    fn debug_redacts_keys() {
        let o = EmulateOptions { kit_key: Some("kit-secret".into()), ..opts("http://a/p") };
        let o = EmulateOptions { key: "basic-secret".into(), backend_secret: Some("hook-secret".into()), ..o };
        let s = format!("{o:?}");
        assert!(!s.contains("basic-secret") && !s.contains("kit-secret") && s.contains("[REDACTED]"));
        assert!(!s.contains("hook-secret"));
    }
}
