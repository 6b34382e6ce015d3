//! Outbound HTTP: the `allowed_outbound_hosts` allow-list, a pluggable in-process handler, and a recorder.
//!
//! A component's outbound request (`wasi:http/client@0.3.0` `send`) reaches [`OutboundHooks::send_request`]:
//!
//! 1. The URL is checked against the component's [`AllowedHosts`]. A denied request fails at once with the WASI
//!    error `HttpRequestDenied` (what Spin answers); nothing is sent, so a denial can never hang.
//! 2. The call is recorded in the app's [`OutboundRecorder`] (method, URL, headers, body, outcome).
//! 3. If a test installed an [`OutboundHandler`], it answers in-process; otherwise the request goes out for real
//!    through wasmtime-wasi-http's default client.
//!
//! Allow-list entries use Spin's forms: `https://host`, `https://host:8443`, `http://localhost:3000`,
//! `https://*.example.com` (subdomains only), `https://*:*`, `*://host:*`, `http://127.0.0.1:3000..3010`.
//! Without a port the scheme's well-known port is implied (`http` 80, `https` 443); a scheme without a well-known
//! port needs an explicit one. Templates (`"https://{{ host }}"`) are resolved when the app is built; one that
//! resolves to nothing (`""`, `"http://"`, `"https://"`) is dropped, as Spin drops it, so an optional backend can be
//! switched off by setting its variable to `""` (see [`skip_if_resolved_to_nothing`]).
//!
//! ```
//! use harness::outbound::AllowedHosts;
//! let allowed = AllowedHosts::parse(["https://*.example.com", "http://localhost:3000"]).unwrap();
//! assert!(allowed.allows(&"https://api.example.com/x".parse().unwrap()));
//! assert!(!allowed.allows(&"https://example.com/".parse().unwrap()));
//! assert!(!allowed.allows(&"http://localhost:3001/".parse().unwrap()));
//! ```

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use std::sync::{Arc, Mutex, PoisonError};
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

/// Why an `allowed_outbound_hosts` entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllowedHostError {
    /// No `scheme://`.
    #[error("{0:?} has no scheme (write e.g. `https://{0}` or `*://{0}:*`)")]
    NoScheme(String),
    /// The scheme has characters other than letters.
    #[error("scheme {0:?} must be letters or `*`")]
    BadScheme(String),
    /// A `*` somewhere other than a leading `*.` or the whole host.
    #[error("host {0:?}: `*` is allowed only as the whole host or a leading `*.`")]
    BadWildcard(String),
    /// The entry has a path.
    #[error("{0:?} must not have a path")]
    HasPath(String),
    /// No port, and the scheme has no well-known port.
    #[error("{0:?} needs a port: its scheme has no well-known port")]
    NoDefaultPort(String),
    /// The port is not a number, `*` or `a..b`.
    #[error("port {0:?} must be a number, `*`, or a range `a..b`")]
    BadPort(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// Suffix including the leading dot: `.example.com`.
    Subdomain(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    /// Half-open range `start..end`; a single port `p` is `p..p+1`.
    Range(u32, u32),
}

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    original: String,
    /// `None` = any scheme.
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

/// The port a scheme implies when none is written.
fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "redis" => Some(6379),
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "mqtt" => Some(1883),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses one entry (already template-resolved).
    ///
    /// # Errors
    /// An [`AllowedHostError`] naming what is wrong with the entry.
    pub fn parse(entry: &str) -> Result<Self, AllowedHostError> {
        let text = entry.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(AllowedHostError::NoScheme(text.to_owned()));
        };
        let scheme = match scheme {
            "*" => None,
            s if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic()) => Some(s.to_ascii_lowercase()),
            s => return Err(AllowedHostError::BadScheme(s.to_owned())),
        };
        let rest = match rest.split_once('/') {
            Some((authority, "")) => authority,
            Some(_) => return Err(AllowedHostError::HasPath(text.to_owned())),
            None => rest,
        };
        // IPv6 literals keep their brackets; the port is after the last `:` outside them.
        let (host, port) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains(']') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') || domain.is_empty() {
                return Err(AllowedHostError::BadWildcard(host.clone()));
            }
            HostPattern::Subdomain(format!(".{domain}"))
        } else if host.contains('*') || host.is_empty() {
            return Err(AllowedHostError::BadWildcard(host.clone()));
        } else {
            HostPattern::Exact(host)
        };
        let port = match port {
            None | Some("") => {
                let p = scheme
                    .as_deref()
                    .and_then(well_known_port)
                    .ok_or_else(|| AllowedHostError::NoDefaultPort(text.to_owned()))?;
                PortPattern::Range(u32::from(p), u32::from(p) + 1)
            }
            Some("*") => PortPattern::Any,
            Some(p) => match p.split_once("..") {
                Some((a, b)) => {
                    let a: u16 = a.parse().map_err(|_| AllowedHostError::BadPort(p.to_owned()))?;
                    let b: u16 = b.parse().map_err(|_| AllowedHostError::BadPort(p.to_owned()))?;
                    PortPattern::Range(u32::from(a), u32::from(b))
                }
                None => {
                    let n: u16 = p.parse().map_err(|_| AllowedHostError::BadPort(p.to_owned()))?;
                    PortPattern::Range(u32::from(n), u32::from(n) + 1)
                }
            },
        };
        Ok(Self { original: text.to_owned(), scheme, host, port })
    }

    /// Whether this entry allows `scheme://host:port` (`port` defaulted from the scheme when absent).
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.scheme.as_deref().is_some_and(|s| s != scheme) {
            return false;
        }
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Subdomain(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Exact(h) => *h == host,
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Range(a, b) => {
                port.or_else(|| well_known_port(&scheme)).is_some_and(|p| (a..b).contains(&u32::from(p)))
            }
        };
        host_ok && port_ok
    }
}

impl std::fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.original)
    }
}

/// A component's whole allow-list. Empty = no outbound requests at all (Spin's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<AllowedHost>);

impl AllowedHosts {
    /// Parses resolved entries.
    ///
    /// # Errors
    /// The first entry that does not parse.
    pub fn parse<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Result<Self, AllowedHostError> {
        entries.into_iter().map(|e| AllowedHost::parse(e.as_ref())).collect::<Result<Vec<_>, _>>().map(Self)
    }

    /// Whether some entry allows `uri` (which must be absolute: scheme and host).
    pub fn allows(&self, uri: &Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.0.iter().any(|h| h.allows(scheme, host, uri.port_u16()))
    }

    /// The entries.
    pub fn entries(&self) -> &[AllowedHost] {
        &self.0
    }
}

/// An `allowed_outbound_hosts` entry after rendering: `None` when `template` is a template (not a literal) whose
/// value `rendered` is nothing, which is then skipped.
///
/// As Spin (`PartialAllowedHostConfig::parse_or_skip` in crates/outbound-networking-config/src/allowed_hosts.rs):
/// a template whose value is `""`, `"http://"` or `"https://"` is skipped rather than rejected, so
/// `"{{ backend_host }}"` with the variable set to `""` means "no backend". A literal entry is never skipped: an
/// empty literal stays an error when the result is parsed.
pub fn skip_if_resolved_to_nothing(template: &crate::template::Template, rendered: String) -> Option<String> {
    let nothing = matches!(rendered.as_str(), "" | "http://" | "https://");
    (template.is_literal() || !nothing).then_some(rendered)
}

/// Answers outbound requests in-process instead of the network: stub backends, the marketplace, OneAccess.
///
/// Return `Err(ErrorCode)` to make the guest see a transport error (e.g. `ErrorCode::ConnectionRefused`).
#[async_trait::async_trait]
pub trait OutboundHandler: Send + Sync + 'static {
    /// Handles one allowed request (the body is fully read).
    async fn handle(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, ErrorCode>;
}

/// What happened to a recorded outbound call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutboundOutcome {
    /// Refused by `allowed_outbound_hosts`; the guest got `HttpRequestDenied`.
    Denied,
    /// Answered by the installed [`OutboundHandler`].
    Handled,
    /// Sent over the network.
    Sent,
}

/// One outbound call as the guest made it.
#[derive(Debug, Clone)]
pub struct OutboundCall {
    /// The calling component.
    pub component: String,
    /// The request method.
    pub method: http::Method,
    /// The absolute request URL.
    pub uri: Uri,
    /// The request headers.
    pub headers: http::HeaderMap,
    /// The request body (empty for denied calls: the body is not read).
    pub body: Bytes,
    /// What happened.
    pub outcome: OutboundOutcome,
}

/// A shared, inspectable log of outbound calls (cheap to clone; clones share the log).
#[derive(Debug, Clone, Default)]
pub struct OutboundRecorder(Arc<Mutex<Vec<OutboundCall>>>);

impl OutboundRecorder {
    /// A new, empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The calls so far, oldest first.
    pub fn calls(&self) -> Vec<OutboundCall> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Empties the log.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn push(&self, call: OutboundCall) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(call);
    }
}

/// The per-request `WasiHttpHooks`: allow-list, recorder, optional in-process handler.
pub(crate) struct OutboundHooks {
    pub(crate) component: Arc<str>,
    pub(crate) allowed: Arc<AllowedHosts>,
    pub(crate) handler: Option<Arc<dyn OutboundHandler>>,
    pub(crate) recorder: OutboundRecorder,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

fn done() -> Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send> {
    Box::new(async { Ok(()) })
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let component = self.component.to_string();
        let recorder = self.recorder.clone();
        if !self.allowed.allows(request.uri()) {
            tracing::warn!(component = %component, uri = %redact_query(request.uri()), "outbound request denied by allowed_outbound_hosts");
            recorder.push(OutboundCall {
                component,
                method: request.method().clone(),
                uri: request.uri().clone(),
                headers: request.headers().clone(),
                body: Bytes::new(),
                outcome: OutboundOutcome::Denied,
            });
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let handler = self.handler.clone();
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let outcome = if handler.is_some() { OutboundOutcome::Handled } else { OutboundOutcome::Sent };
            recorder.push(OutboundCall {
                component,
                method: parts.method.clone(),
                uri: parts.uri.clone(),
                headers: parts.headers.clone(),
                body: body.clone(),
                outcome,
            });
            match handler {
                Some(h) => {
                    let response = h.handle(http::Request::from_parts(parts, body)).await?;
                    let response = response.map(|b| Full::new(b).map_err(|never| match never {}).boxed_unsync());
                    Ok((response, done()))
                }
                None => {
                    let request = http::Request::from_parts(parts, Full::new(body).map_err(|never| match never {}));
                    let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
                    let io: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send> = Box::new(io);
                    Ok((response.map(BodyExt::boxed_unsync), io))
                }
            }
        })
    }
}

/// The URI without its query string, for logs (queries may carry signatures or tokens).
pub(crate) fn redact_query(uri: &Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(s), Some(a)) => format!("{s}://{a}{}", uri.path()),
        _ => uri.path().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entry: &str, url: &str) -> bool {
        let hosts = AllowedHosts::parse([entry]).expect("entry parses");
        hosts.allows(&url.parse().expect("url parses"))
    }

    #[test]
    fn spin_forms() {
        assert!(allows("https://example.com", "https://example.com/x"));
        assert!(allows("https://example.com", "https://example.com:443/x"));
        assert!(!allows("https://example.com", "http://example.com/x"));
        assert!(!allows("https://example.com", "https://example.com:8443/x"));
        assert!(allows("https://example.com:8443", "https://example.com:8443/x"));
        assert!(allows("http://localhost:3000", "http://localhost:3000/"));
        assert!(!allows("http://localhost:3000", "http://localhost:3001/"));
        assert!(allows("https://*.example.com", "https://a.b.example.com/"));
        assert!(!allows("https://*.example.com", "https://example.com/"));
        assert!(!allows("https://*.example.com", "https://badexample.com/"));
        assert!(allows("https://*:*", "https://anything.test:1234/"));
        assert!(!allows("https://*:*", "http://anything.test/"));
        assert!(allows("*://host.test:*", "http://host.test:81/"));
        assert!(allows("*://host.test:*", "https://host.test/"));
        assert!(allows("http://127.0.0.1:3000..3010", "http://127.0.0.1:3009/"));
        assert!(!allows("http://127.0.0.1:3000..3010", "http://127.0.0.1:3010/"));
        assert!(allows("https://EXAMPLE.com", "https://example.COM/"));
    }

    #[test]
    fn relative_urls_are_never_allowed() {
        assert!(!allows("*://*:*", "/relative"));
    }

    #[test]
    fn templates_resolving_to_nothing_are_skipped_like_spin() {
        use crate::template::Template;
        let vars = |name: &str| -> Result<String, String> {
            match name {
                "empty" => Ok(String::new()),
                "host" => Ok("api.example.com".into()),
                other => Err(format!("missing {other}")),
            }
        };
        let render = |t: &str| {
            let t = Template::parse(t).expect("template");
            t.render(vars).map(|rendered| skip_if_resolved_to_nothing(&t, rendered))
        };
        assert_eq!(render("{{ empty }}"), Ok(None));
        assert_eq!(render("https://{{ empty }}"), Ok(None));
        assert_eq!(render("http://{{empty}}"), Ok(None));
        assert_eq!(render("https://{{ host }}"), Ok(Some("https://api.example.com".into())));
        assert_eq!(render("https://{{ nope }}"), Err("missing nope".into()));
        // Only "", "http://" and "https://" are "nothing": anything else is kept (and then parsed, maybe failing).
        assert_eq!(render("redis://{{ empty }}"), Ok(Some("redis://".into())));
        assert_eq!(render("https://{{ empty }}:8443"), Ok(Some("https://:8443".into())));
        // A literal is never skipped: an empty literal stays an error when parsed.
        assert_eq!(render(""), Ok(Some(String::new())));
        assert!(AllowedHosts::parse([""]).is_err());
        // A list whose only template resolved to nothing allows nothing.
        let entries: Vec<String> =
            ["{{ empty }}", "https://{{ host }}"].iter().filter_map(|t| render(t).expect("ok")).collect();
        let allowed = AllowedHosts::parse(&entries).expect("parses");
        assert_eq!(allowed.entries().len(), 1);
        assert!(allowed.allows(&"https://api.example.com/x".parse().expect("url")));
    }

    #[test]
    fn bad_entries() {
        assert!(matches!(AllowedHost::parse("example.com"), Err(AllowedHostError::NoScheme(_))));
        assert!(matches!(AllowedHost::parse("ht-tp://x"), Err(AllowedHostError::BadScheme(_))));
        assert!(matches!(AllowedHost::parse("https://a.*.com"), Err(AllowedHostError::BadWildcard(_))));
        assert!(matches!(AllowedHost::parse("https://x.com/path"), Err(AllowedHostError::HasPath(_))));
        assert!(matches!(AllowedHost::parse("*://x.com"), Err(AllowedHostError::NoDefaultPort(_))));
        assert!(matches!(AllowedHost::parse("https://x.com:http"), Err(AllowedHostError::BadPort(_))));
        assert!(AllowedHost::parse("https://x.com/").is_ok());
    }
}
