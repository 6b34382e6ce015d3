//! Calls to the marketplace OpenAPI (merchant → marketplace, protocol §9): where they go, how they are signed, and
//! the fallback domain.
//!
//! Every call is API-Gateway signed with the seller's AK/SK ([`crate::signing::apig`]), `Host` and `X-Sdk-Date`
//! included, for the endpoint it is sent to. A network error, a timeout or a `5xx` from `openapi_endpoint` is tried
//! once more at `openapi_fallback_endpoint` within the same deadline (the marketplace publishes
//! `mkt.myhuaweicloud.cn` as the fallback of `mkt.myhuaweicloud.com`); anything else is the answer.
//!
//! Plain `http://` endpoints are accepted only on loopback addresses (tests and local runs against
//! `harness marketplace`): production calls are HTTPS, with the host's certificate and host-name verification.
//!
//! 1. Read [`OpenApiConfig::from_variables`] (the adapter does, once per instance).
//! 2. [`call`] with an [`ApiRequest`]; judge the [`ApiReply`] by the endpoint's own codes.

pub mod order;

use std::fmt;

use crate::ports::{Backend, Clock, OutboundError, OutboundReply};
use crate::produce::{ConfigError, Deadline};
use crate::signing::apig::{ApigRequest, ApigSigner};
use crate::signing::keys::SecretKey;

/// Every variable the OpenAPI client reads.
pub const VARIABLES: &[&str] = &["openapi_endpoint", "openapi_fallback_endpoint", "openapi_ak", "openapi_sk"];

/// The marketplace OpenAPI in China (§9.1).
pub const DEFAULT_ENDPOINT: &str = "https://mkt.myhuaweicloud.com";
/// Its published fallback domain.
pub const DEFAULT_FALLBACK_ENDPOINT: &str = "https://mkt.myhuaweicloud.cn";

/// One call waits at most this long, even when the deadline leaves more (a second endpoint may still be tried).
pub const CALL_TIMEOUT_MS: u64 = 8_000;
/// A call is not started with less than this left of the deadline.
pub const MIN_CALL_MS: u64 = 300;

/// Where OpenAPI calls go and the AK/SK they are signed with.
#[derive(Clone)]
pub struct OpenApiConfig {
    /// Base URL (`scheme://host[:port]`, no trailing `/`).
    pub endpoint: String,
    /// Tried when [`Self::endpoint`] fails with a network error, a timeout or a `5xx`: `openapi_fallback_endpoint`,
    /// by default [`DEFAULT_FALLBACK_ENDPOINT`] when the endpoint is [`DEFAULT_ENDPOINT`], else none; `none` turns it
    /// off.
    pub fallback_endpoint: Option<String>,
    /// The AK/SK signer.
    pub signer: ApigSigner,
}

impl fmt::Debug for OpenApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenApiConfig")
            .field("endpoint", &self.endpoint)
            .field("fallback_endpoint", &self.fallback_endpoint)
            .field("ak", &self.signer.ak())
            .finish_non_exhaustive()
    }
}

/// Whether `url`'s host is a loopback address (`127.0.0.0/8`, `localhost`, `[::1]`).
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let host = host.to_ascii_lowercase();
    host == "localhost" || host == "[::1]" || host.strip_prefix("127.").is_some_and(|r| r.split('.').count() == 3)
}

/// Checks an endpoint variable: `https://host[:port]`, or `http://` on loopback; returned without trailing `/`.
fn endpoint(name: &'static str, url: &str) -> Result<String, ConfigError> {
    let url = url.trim_end_matches('/');
    let host_part = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).unwrap_or("");
    if host_part.is_empty() || host_part.contains(['?', '#', ' ', '@']) {
        return Err(ConfigError::Invalid { name, reason: "expected https://host[:port]" });
    }
    if url.starts_with("https://") || is_loopback_http(url) {
        Ok(url.to_owned())
    } else {
        Err(ConfigError::Invalid { name, reason: "expected https:// (plain http:// only on a loopback address)" })
    }
}

impl OpenApiConfig {
    /// Reads the configuration through `get` (trimmed; empty counts as unset).
    ///
    /// # Errors
    /// [`ConfigError::Missing`] for `openapi_ak` or `openapi_sk`; [`ConfigError::Invalid`] for an endpoint that is
    /// not `https://` (or loopback `http://`).
    pub fn from_variables(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let ak = var("openapi_ak").ok_or(ConfigError::Missing("openapi_ak"))?;
        let sk = var("openapi_sk").ok_or(ConfigError::Missing("openapi_sk"))?;
        let primary = var("openapi_endpoint").unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let primary = endpoint("openapi_endpoint", &primary)?;
        // The published fallback belongs to the CN site: another site (international, EU, a local mock) has none
        // unless one is named, so signed data never goes to a site it was not meant for.
        let fallback = var("openapi_fallback_endpoint")
            .or_else(|| (primary == DEFAULT_ENDPOINT).then(|| DEFAULT_FALLBACK_ENDPOINT.to_owned()));
        let fallback_endpoint = match fallback {
            Some(f) if !f.eq_ignore_ascii_case("none") => Some(endpoint("openapi_fallback_endpoint", &f)?),
            _ => None,
        };
        Ok(Self { endpoint: primary, fallback_endpoint, signer: ApigSigner::new(ak, SecretKey::new(sk)) })
    }
}

/// One OpenAPI call before signing.
#[derive(Clone)]
pub struct ApiRequest<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// Path and query, e.g. `/api/mkp-openapi-public/global/v1/order/query?orderId=…` (already encoded).
    pub path_and_query: &'a str,
    /// Headers besides `Host`, `X-Sdk-Date`, `Authorization` and `Content-Type` (usage push: `signature`, `ts`,
    /// `nonce`), all signed.
    pub headers: &'a [(String, String)],
    /// The exact body bytes.
    pub body: &'a [u8],
}

impl fmt::Debug for ApiRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path_and_query.split('?').next().unwrap_or("");
        f.debug_struct("ApiRequest").field("method", &self.method).field("path", &path).finish_non_exhaustive()
    }
}

/// The HTTP answer to an OpenAPI call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiReply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Whether the fallback endpoint answered.
    pub fallback: bool,
    /// Why the fallback gave no answer, when this is the endpoint's `5xx` and the fallback was tried in vain.
    pub fallback_error: Option<String>,
}

/// No HTTP answer came from either endpoint; the texts say why, per endpoint, free of secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{primary}{}", .fallback.as_ref().map(|f| format!("; fallback: {f}")).unwrap_or_default())]
pub struct Unreachable {
    /// Why the primary endpoint gave no answer (or its `5xx`).
    pub primary: String,
    /// The same for the fallback, when it was tried.
    pub fallback: Option<String>,
}

/// Whether an outcome sends the call on to the fallback endpoint: no answer, or a `5xx`.
fn try_fallback(result: &Result<OutboundReply, OutboundError>) -> bool {
    match result {
        Ok(reply) => reply.status >= 500,
        Err(_) => true,
    }
}

fn describe(result: &Result<OutboundReply, OutboundError>) -> String {
    match result {
        Ok(reply) => format!("HTTP {}", reply.status),
        Err(e) => e.to_string(),
    }
}

async fn send_to<B: Backend, C: Clock>(
    cfg: &OpenApiConfig,
    base: &str,
    request: &ApiRequest<'_>,
    backend: &B,
    clock: &C,
    timeout_ms: u64,
) -> Result<OutboundReply, OutboundError> {
    let mut signed = ApigRequest::new(request.method, format!("{base}{}", request.path_and_query));
    signed.headers.push(("Content-Type".to_owned(), "application/json;charset=UTF-8".to_owned()));
    signed.headers.extend(request.headers.iter().cloned());
    signed.body = request.body.to_vec();
    cfg.signer.sign_at(&mut signed, clock.now_ms());
    let url = signed.url.clone();
    if request.method.eq_ignore_ascii_case("GET") {
        backend.get(&url, &signed.headers, timeout_ms).await
    } else {
        backend.post(&url, &signed.headers, &signed.body, timeout_ms).await
    }
}

/// Sends `request` to the endpoint, then — after a network error, a timeout or a `5xx` — to the fallback, each
/// attempt signed for its own host and bounded by what is left of `deadline` (at most [`CALL_TIMEOUT_MS`]; the
/// endpoint at most half of it when there is a fallback).
///
/// # Errors
/// [`Unreachable`] when neither endpoint gave an HTTP answer below 500 in time; a `5xx` from the last endpoint
/// tried is returned as an [`ApiReply`], so the caller can read its code.
pub async fn call<B: Backend, C: Clock>(
    cfg: &OpenApiConfig,
    request: &ApiRequest<'_>,
    backend: &B,
    clock: &C,
    deadline: &Deadline,
) -> Result<ApiReply, Unreachable> {
    let budget = |d: &Deadline| d.remaining_ms(clock).min(CALL_TIMEOUT_MS);
    if budget(deadline) < MIN_CALL_MS {
        return Err(Unreachable { primary: "no time left in this request".to_owned(), fallback: None });
    }
    // With a fallback to try, the endpoint gets half of what is left, so a hanging endpoint leaves the fallback time.
    let first_budget = if cfg.fallback_endpoint.is_some() {
        (deadline.remaining_ms(clock) / 2).clamp(MIN_CALL_MS, CALL_TIMEOUT_MS)
    } else {
        budget(deadline)
    };
    let first = send_to(cfg, &cfg.endpoint, request, backend, clock, first_budget).await;
    let Some(fallback) = cfg.fallback_endpoint.as_deref().filter(|_| try_fallback(&first)) else {
        return finish(first, None);
    };
    if budget(deadline) < MIN_CALL_MS {
        return finish(first, Some("not tried: no time left in this request".to_owned()));
    }
    let second = send_to(cfg, fallback, request, backend, clock, budget(deadline)).await;
    match second {
        Ok(reply) => Ok(ApiReply { status: reply.status, body: reply.body, fallback: true, fallback_error: None }),
        Err(e) => finish(first, Some(e.to_string())),
    }
}

/// The endpoint's answer when there is one (a `5xx` included), else [`Unreachable`]; `fallback_error` says why the
/// fallback did not answer instead.
fn finish(
    result: Result<OutboundReply, OutboundError>,
    fallback_error: Option<String>,
) -> Result<ApiReply, Unreachable> {
    let primary = describe(&result);
    match result {
        Ok(reply) => Ok(ApiReply { status: reply.status, body: reply.body, fallback: false, fallback_error }),
        Err(_) => Err(Unreachable { primary, fallback: fallback_error }),
    }
}

#[cfg(test)]
mod tests;
