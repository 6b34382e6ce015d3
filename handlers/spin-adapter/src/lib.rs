//! The one place that knows about Spin: spin-sdk requests, key-value, variables and outbound HTTP, adapted to the
//! plain values and traits of `koogallery-core`.
//!
//! A component is a few lines:
//!
//! ```ignore
//! spin_adapter::http_component!(spin_adapter::serve_produce);
//! ```
//!
//! Invariant: every request gets a complete answer. Configuration errors and store failures become a JSON error
//! answer (logged by kind, never with values); nothing here panics or traps on input.
//!
//! Framing: every response and every outbound request carries an explicit `content-length`. Without it Spin sends
//! both chunked (the harness buffered and did not), so a backend or proxy that refuses chunked bodies would work
//! locally and fail in production; with it both runners put the same bytes on the wire (ARCHITECTURE.md).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt as _;
use futures::channel::mpsc;
use futures_util::future::{Either, select};
use http_body::Frame;
use http_body_util::{BodyExt, Full, Limited};
use koogallery_core::agents::{self, AgentsConfig, Answer};
use koogallery_core::http::{Inbound, MAX_BODY_BYTES, Outbound};
use koogallery_core::kit::{self, KitConfig};
use koogallery_core::license::{self, LicenseConfig};
use koogallery_core::ports::{Backend, Clock as _, OsRandom, OutboundError, OutboundReply, SystemClock};
use koogallery_core::ports::{ChunkSink, ChunkSource, SinkClosed, Upstream, UpstreamHead, UpstreamRequest};
use koogallery_core::ports::{Store, StoreError, Swap};
use koogallery_core::produce::{self, ConfigError, Ctx, ProduceConfig};
use koogallery_core::sso::{self, SsoConfig};
use koogallery_core::usage::{self, UsageConfig};
use spin_sdk::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

pub use koogallery_core::wire::kit::KitSync;
pub use spin_sdk::http::{IntoResponse, Request};

#[doc(hidden)]
pub mod __private {
    pub use spin_sdk;
}

/// Exports `handler` (an `async fn(Request) -> impl IntoResponse`) as the component's `wasi:http/handler`.
///
/// This is what spin-sdk's `#[http_service]` expands to, spelled with paths through this crate so that component
/// crates do not depend on spin-sdk themselves.
#[macro_export]
macro_rules! http_component {
    ($handler:path) => {
        mod __koogallery_http_export {
            use $crate::__private::spin_sdk;
            struct Spin;
            spin_sdk::wasip3::http::service::export!(Spin);
            impl spin_sdk::wasip3::exports::http::handler::Guest for Spin {
                async fn handle(
                    request: spin_sdk::wasip3::http::types::Request,
                ) -> ::std::result::Result<
                    spin_sdk::wasip3::http::types::Response,
                    spin_sdk::wasip3::http::types::ErrorCode,
                > {
                    let request = <$crate::Request as spin_sdk::http::FromRequest>::from_request(request)?;
                    spin_sdk::http::IntoResponse::into_response($handler(request).await)
                }
            }
        }
    };
}

/// Exports a kit sync component: `kit_component!(TenantSync)` serves `tenantSync` through [`serve_kit`].
#[macro_export]
macro_rules! kit_component {
    ($sync:ident) => {
        async fn serve_sync(request: $crate::Request) -> $crate::SpinResponse {
            $crate::serve_kit(request, $crate::KitSync::$sync).await
        }
        $crate::http_component!(super::serve_sync);
    };
}

/// The response type every component returns: status, headers and the exact signed body.
pub type SpinResponse = (StatusCode, HeaderMap, Full<Bytes>);

/// Answers the basic SaaS production interface (`handlers/produce`); kit syncs sent to the production URL are
/// answered by the kit logic with the kit configuration.
pub async fn serve_produce(req: Request) -> SpinResponse {
    let started = std::time::Instant::now();
    let route = req.uri().path().to_owned();
    let inbound = match inbound(req).await {
        Ok(i) => i,
        Err(status) => return plain_error(status, "request body could not be read"),
    };
    if kit::is_kit_request(&inbound) {
        let needs_rsa = kit::sync_of_body(&inbound.body) == Some(KitSync::ApplicationSync);
        let cfg = kit_config("produce", needs_rsa).await;
        let store = open_store("produce").await;
        let ctx = Ctx { store: &store, backend: &SpinBackend, clock: &SystemClock, random: &OsRandom };
        let handled = kit::handle_at_production_url(&inbound, cfg.as_deref(), &ctx).await;
        log_handled("produce", &inbound, &route, &handled, &store, started);
        return response(handled.response);
    }
    let cfg = match produce_config().await {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("produce: configuration error: {e}");
            return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &e);
        }
    };
    let store = open_store("produce").await;
    let ctx = Ctx { store: &store, backend: &SpinBackend, clock: &SystemClock, random: &OsRandom };
    let handled = produce::handle(&inbound, cfg, &ctx).await;
    log_handled("produce", &inbound, &route, &handled, &store, started);
    response(handled.response)
}

/// Answers one joint-operation kit sync (`handlers/tenant-sync` and the four others): the component serves `sync`.
pub async fn serve_kit(req: Request, sync: KitSync) -> SpinResponse {
    let started = std::time::Instant::now();
    let route = req.uri().path().to_owned();
    let name = sync.as_str();
    let inbound = match inbound(req).await {
        Ok(i) => i,
        Err(status) => return plain_error(status, "request body could not be read"),
    };
    let cfg = kit_config(name, sync == KitSync::ApplicationSync).await;
    let store = open_store(name).await;
    let ctx = Ctx { store: &store, backend: &SpinBackend, clock: &SystemClock, random: &OsRandom };
    let handled = kit::handle(&inbound, sync, cfg.as_deref(), &ctx).await;
    log_handled(name, &inbound, &route, &handled, &store, started);
    response(handled.response)
}

/// Answers the OneAccess single sign-on routes (`handlers/sso`).
pub async fn serve_sso(req: Request) -> SpinResponse {
    let started = std::time::Instant::now();
    let route = req.uri().path().to_owned();
    let inbound = match inbound(req).await {
        Ok(i) => i,
        Err(status) => return plain_error(status, "request body could not be read"),
    };
    let cfg = sso_config().await;
    if let Err(e) = &cfg {
        eprintln!("sso: configuration error: {e}");
    }
    let store = open_store("sso").await;
    let ctx = Ctx { store: &store, backend: &SpinBackend, clock: &SystemClock, random: &OsRandom };
    let answer = sso::handle(&inbound, cfg.as_ref().map(|c| *c), &ctx).await;
    eprintln!("sso: {} {route} {} in {:?}", inbound.method, answer.summary, started.elapsed());
    response(answer.response)
}

/// Answers the usage routes (`handlers/usage`): intake, flush, requeue, status; every request also pushes what is
/// due to the marketplace OpenAPI.
pub async fn serve_usage(req: Request) -> SpinResponse {
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, usage::MAX_REQUEST_BYTES + 1).collect().await {
        Ok(c) => c.to_bytes().to_vec(),
        Err(_) => vec![0; usage::MAX_REQUEST_BYTES + 1],
    };
    let inbound = inbound_from(&parts, body);
    let cfg = usage_config().await;
    if let Err(e) = &cfg {
        eprintln!("usage: configuration error: {e}");
    }
    let store = open_store("usage").await;
    let ctx = Ctx { store: &store, backend: &SpinBackend, clock: &SystemClock, random: &OsRandom };
    let answer = usage::handle(&inbound, cfg.as_ref().map(|c| *c), &ctx).await;
    eprintln!("usage: {} {} in {:?}", inbound.method, answer.summary, started.elapsed());
    response(answer.response)
}

/// Answers the license routes (`handlers/license`): the marketplace's license callbacks and the activate/heartbeat
/// proxy for the seller's software.
pub async fn serve_license(req: Request) -> SpinResponse {
    let started = std::time::Instant::now();
    let route = req.uri().path().to_owned();
    let inbound = match inbound(req).await {
        Ok(i) => i,
        Err(status) => return plain_error(status, "request body could not be read"),
    };
    let cfg = license_config().await;
    if let Err(e) = &cfg {
        eprintln!("license: configuration error: {e}");
    }
    let store = open_store("license").await;
    let ctx = Ctx { store: &store, backend: &SpinBackend, clock: &SystemClock, random: &OsRandom };
    let answer = license::handle(&inbound, cfg.as_ref().map(|c| *c), &ctx).await;
    eprintln!("license: {} {route} {} in {:?}", inbound.method, answer.summary, started.elapsed());
    response(answer.response)
}

/// The license configuration, parsed once per instance once it is complete (like [`produce_config`]).
static LICENSE_CONFIG: std::sync::OnceLock<LicenseConfig> = std::sync::OnceLock::new();

async fn license_config() -> Result<&'static LicenseConfig, ConfigError> {
    if let Some(cfg) = LICENSE_CONFIG.get() {
        return Ok(cfg);
    }
    let vars = Variables::load(license::VARIABLES).await.map_err(ConfigError::Unavailable)?;
    let cfg = LicenseConfig::from_variables(|n| vars.get(n))?;
    Ok(LICENSE_CONFIG.get_or_init(|| cfg))
}

/// The usage configuration, parsed once per instance once it is complete (like [`produce_config`]).
static USAGE_CONFIG: std::sync::OnceLock<UsageConfig> = std::sync::OnceLock::new();

async fn usage_config() -> Result<&'static UsageConfig, ConfigError> {
    if let Some(cfg) = USAGE_CONFIG.get() {
        return Ok(cfg);
    }
    let vars = Variables::load(usage::VARIABLES).await.map_err(ConfigError::Unavailable)?;
    let cfg = UsageConfig::from_variables(|n| vars.get(n))?;
    Ok(USAGE_CONFIG.get_or_init(|| cfg))
}

/// The SSO configuration, parsed once per instance once it is complete (like [`produce_config`]).
static SSO_CONFIG: std::sync::OnceLock<SsoConfig> = std::sync::OnceLock::new();

async fn sso_config() -> Result<&'static SsoConfig, ConfigError> {
    if let Some(cfg) = SSO_CONFIG.get() {
        return Ok(cfg);
    }
    let vars = Variables::load(sso::VARIABLES).await.map_err(ConfigError::Unavailable)?;
    let cfg = SsoConfig::from_variables(|n| vars.get(n))?;
    Ok(SSO_CONFIG.get_or_init(|| cfg))
}

/// Opens the `default` store; a failure is logged here and answered by the handler (`000005`).
async fn open_store(component: &str) -> KvStore {
    let store = KvStore::open_default().await;
    if let Some(e) = store.open_error() {
        eprintln!("{component}: key-value store unavailable: {e}");
    }
    store
}

/// One log line per request: the handler's summary (free of secrets and personal data), conflicts, time taken.
fn log_handled(
    component: &str,
    inbound: &Inbound,
    route: &str,
    handled: &produce::Handled,
    store: &KvStore,
    started: std::time::Instant,
) {
    let conflicts = match store.conflicts() {
        0 => String::new(),
        n => format!(" cas_conflicts={n}"),
    };
    eprintln!("{component}: {} {route} {}{conflicts} in {:?}", inbound.method, handled.summary, started.elapsed());
}

/// The kit syncs' configuration, parsed once per instance like [`produce_config`] once `kit_access_keys` is valid
/// (an unset or invalid variable, or a variable provider that failed, is read again by the next request). The RSA
/// key may still be missing or invalid then: only `applicationSync` needs it, and that sync alone reads the one
/// variable again ([`kit_config`]), so setting it takes effect at once while the other syncs read nothing.
static KIT_CONFIG: std::sync::OnceLock<KitConfig> = std::sync::OnceLock::new();

/// A configuration for one request: the instance's cached one, or one read for this request only.
enum Loaded<T: 'static> {
    Cached(&'static T),
    Fresh(Box<T>),
}

impl<T> std::ops::Deref for Loaded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Self::Cached(t) => t,
            Self::Fresh(t) => t,
        }
    }
}

/// The kit configuration, or why there is none (the handler answers "not configured: …"); logged when missing.
/// `needs_rsa`: the request is an `applicationSync`, which decrypts with `rsa_private_key`.
async fn kit_config(component: &str, needs_rsa: bool) -> Result<Loaded<KitConfig>, ConfigError> {
    let Some(cfg) = KIT_CONFIG.get() else {
        // Read for this request: the RSA key, set or not, is as fresh as it gets.
        let loaded = match Variables::load(kit::VARIABLES).await {
            Ok(vars) => KitConfig::from_variables(|n| vars.get(n)),
            Err(name) => Err(ConfigError::Unavailable(name)),
        };
        let cfg = loaded.inspect_err(|e| eprintln!("{component}: configuration error: {e}"))?;
        return Ok(Loaded::Cached(KIT_CONFIG.get_or_init(|| cfg)));
    };
    if cfg.rsa_private_key.is_ok() || !needs_rsa {
        return Ok(Loaded::Cached(cfg));
    }
    // Without the RSA key only applicationSync is refused, and its answer names the variable: no log line here.
    let fresh = match Variables::load(&["rsa_private_key"]).await {
        Ok(vars) => cfg.with_rsa_private_key(vars.get("rsa_private_key")),
        Err(name) => KitConfig { rsa_private_key: Err(ConfigError::Unavailable(name)), ..cfg.clone() },
    };
    Ok(Loaded::Fresh(Box::new(fresh)))
}

/// The production interface's configuration, parsed once per instance.
///
/// Spin 4 reuses an instance for up to 128 requests (16 at once) and drops it after 1 s idle, so a variable changed
/// at its provider (a rotated key in Vault, say) reaches the component with the next instance, not the next
/// request. What is cached is immutable and the same for every request; nothing per request lives in a static.
/// Nothing is cached from a failed read: a configuration error or a variable provider that failed (only
/// `undefined` reads as unset) makes every request read the variables again until they are right.
static PRODUCE_CONFIG: std::sync::OnceLock<ProduceConfig> = std::sync::OnceLock::new();

async fn produce_config() -> Result<&'static ProduceConfig, String> {
    if let Some(cfg) = PRODUCE_CONFIG.get() {
        return Ok(cfg);
    }
    let vars = Variables::load(produce::VARIABLES)
        .await
        .map_err(|name| format!("variable {name} could not be read from its provider"))?;
    let cfg = ProduceConfig::from_variables(|n| vars.get(n)).map_err(|e| e.to_string())?;
    // Two first requests running at once on one instance may both parse; the first to finish is kept for the
    // instance (the other request still uses what it read).
    Ok(PRODUCE_CONFIG.get_or_init(|| cfg))
}

/// Reads a spin-sdk request into an [`Inbound`], refusing bodies over [`MAX_BODY_BYTES`] with `413`.
///
/// # Errors
/// The HTTP status to answer with when the body is too large or cannot be read.
pub async fn inbound(req: Request) -> Result<Inbound, StatusCode> {
    let (parts, body) = req.into_parts();
    // One byte over the limit lets core see "too large" and answer with a signed 000002.
    let limited = Limited::new(body, MAX_BODY_BYTES + 1);
    let body = match limited.collect().await {
        Ok(c) => c.to_bytes().to_vec(),
        Err(_) => vec![0; MAX_BODY_BYTES + 1],
    };
    Ok(inbound_from(&parts, body))
}

fn inbound_from(parts: &http::request::Parts, body: Vec<u8>) -> Inbound {
    let headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    Inbound {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers,
        body,
    }
}

/// Turns an [`Outbound`] into a spin-sdk response with exactly its bytes and their `content-length`.
pub fn response(out: Outbound) -> SpinResponse {
    let mut headers = HeaderMap::new();
    for (k, v) in &out.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            headers.append(k, v);
        }
    }
    let status = StatusCode::from_u16(out.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    sized(status, headers, Bytes::from(out.body))
}

/// A response whose `content-length` states the body's size (replacing any the handler set), so no runner frames
/// it as chunked.
fn sized(status: StatusCode, mut headers: HeaderMap, body: Bytes) -> SpinResponse {
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    (status, headers, Full::new(body))
}

/// A JSON error for faults that happen before a handler can sign (no key available, unreadable body).
fn plain_error(status: StatusCode, message: &str) -> SpinResponse {
    let body = serde_like_json(message);
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json;charset=UTF-8"));
    sized(status, headers, Bytes::from(body))
}

fn serde_like_json(message: &str) -> String {
    let escaped: String = message
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .map(|c| if c == '"' || c == '\\' { ' ' } else { c })
        .collect();
    format!(r#"{{"resultCode":"000005","resultMsg":"{escaped}"}}"#)
}

/// Spin variables read together. Undefined variables read as unset.
pub struct Variables(HashMap<String, String>);

impl Variables {
    /// Fetches each named variable the component declares.
    ///
    /// # Errors
    /// The name of a variable whose provider failed (or whose name is invalid): only `undefined` reads as unset,
    /// so a provider outage never turns into a default value.
    pub async fn load(names: &[&str]) -> Result<Self, String> {
        let mut map = HashMap::new();
        for name in names {
            match spin_sdk::variables::get(name).await {
                Ok(v) => {
                    map.insert((*name).to_owned(), v);
                }
                Err(spin_sdk::variables::Error::Undefined(_)) => {}
                Err(_) => return Err((*name).to_owned()),
            }
        }
        Ok(Self(map))
    }

    /// A variable's value, if set.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// The `default` Spin key-value store as a core [`Store`]: plain reads and writes through `spin:key-value`,
/// compare-and-swap through `wasi:keyvalue/atomics@0.2.0-draft2` (Spin backs both with the same store).
///
/// A store that cannot be opened still answers, with an error on every operation, so the handler replies with a
/// signed `000005` and the marketplace retries.
pub struct KvStore {
    opened: Result<(spin_sdk::key_value::Store, wasi_kv::store::Bucket), StoreError>,
    conflicts: std::cell::Cell<u32>,
}

use spin_sdk::experimental::wasi::keyvalue as wasi_kv;

impl KvStore {
    /// Opens the component's `default` store through both interfaces.
    pub async fn open_default() -> Self {
        let spin = spin_sdk::key_value::Store::open_default().await.map_err(kv_error);
        let bucket = wasi_kv::store::open("default").map_err(wasi_error);
        let opened = match (spin, bucket) {
            (Ok(s), Ok(b)) => Ok((s, b)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        Self { opened, conflicts: std::cell::Cell::new(0) }
    }

    /// Why the store could not be opened, if it could not.
    pub fn open_error(&self) -> Option<&StoreError> {
        self.opened.as_ref().err()
    }

    /// How many compare-and-swap conflicts this request met (retried by the handler), for the log line.
    pub fn conflicts(&self) -> u32 {
        self.conflicts.get()
    }

    fn spin(&self) -> Result<&spin_sdk::key_value::Store, StoreError> {
        self.opened.as_ref().map(|(s, _)| s).map_err(Clone::clone)
    }

    fn bucket(&self) -> Result<&wasi_kv::store::Bucket, StoreError> {
        self.opened.as_ref().map(|(_, b)| b).map_err(Clone::clone)
    }
}

fn kv_error(e: spin_sdk::key_value::Error) -> StoreError {
    StoreError(format!("{e:?}"))
}

fn wasi_error(e: wasi_kv::store::Error) -> StoreError {
    StoreError(format!("{e:?}"))
}

impl Store for KvStore {
    type Cas = wasi_kv::atomics::Cas;

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.spin()?.get(key).await.map_err(kv_error)
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.spin()?.set(key, value).await.map_err(kv_error)
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.spin()?.delete(key).await.map_err(kv_error)
    }
    async fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.spin()?.get_keys().await.collect().await.map_err(kv_error)
    }
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        wasi_kv::atomics::increment(self.bucket()?, key, delta).map_err(wasi_error)
    }
    async fn begin_swap(&self, key: &str) -> Result<(Option<Vec<u8>>, Self::Cas), StoreError> {
        let cas = wasi_kv::atomics::Cas::new(self.bucket()?, key).map_err(wasi_error)?;
        let current = cas.current().map_err(wasi_error)?;
        Ok((current, cas))
    }
    async fn swap(&self, cas: Self::Cas, value: &[u8]) -> Result<Swap<Self::Cas>, StoreError> {
        match wasi_kv::atomics::swap(cas, value) {
            Ok(()) => Ok(Swap::Written),
            Err(wasi_kv::atomics::CasError::CasFailed(cas)) => {
                self.conflicts.set(self.conflicts.get().saturating_add(1));
                let current = cas.current().map_err(wasi_error)?;
                Ok(Swap::Conflict { current, cas })
            }
            Err(wasi_kv::atomics::CasError::StoreError(e)) => Err(wasi_error(e)),
        }
    }
    async fn pause(&self, ms: u64) {
        spin_sdk::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Outbound HTTP through Spin (`wasi:http/client`); each call waits at most the time core gives it.
pub struct SpinBackend;

impl Backend for SpinBackend {
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<OutboundReply, OutboundError> {
        send(http::Method::POST, url, headers, Some(body), timeout_ms).await
    }

    async fn get(
        &self,
        url: &str,
        headers: &[(String, String)],
        timeout_ms: u64,
    ) -> Result<OutboundReply, OutboundError> {
        send(http::Method::GET, url, headers, None, timeout_ms).await
    }
}

/// One outbound call through Spin, bounded by `timeout_ms`; a body is sent with its explicit length.
async fn send(
    method: http::Method,
    url: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    timeout_ms: u64,
) -> Result<OutboundReply, OutboundError> {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (k, v) in headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("content-length")) {
        builder = builder.header(k.as_str(), v.as_str());
    }
    if let Some(body) = body {
        // Explicit length: Spin would otherwise send the body chunked, which some backends refuse.
        builder = builder.header(http::header::CONTENT_LENGTH, body.len());
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(body.unwrap_or_default())))
        .map_err(|_| OutboundError::Transport("invalid request".into()))?;
    let call = async {
        let resp = spin_sdk::http::send(request).await.map_err(|e| match e {
            spin_sdk::wasip3::http::types::ErrorCode::HttpRequestDenied => OutboundError::Denied,
            other => OutboundError::Transport(format!("{other:?}")),
        })?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default();
        Ok(OutboundReply { status, body })
    };
    let timer = spin_sdk::time::sleep(Duration::from_millis(timeout_ms));
    match select(std::pin::pin!(call), std::pin::pin!(timer)).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(OutboundError::Timeout),
    }
}

/// The Agents gateway's configuration, parsed once per instance once it is complete (like [`produce_config`]).
static AGENTS_CONFIG: std::sync::OnceLock<AgentsConfig> = std::sync::OnceLock::new();

async fn agents_config() -> Result<&'static AgentsConfig, ConfigError> {
    if let Some(cfg) = AGENTS_CONFIG.get() {
        return Ok(cfg);
    }
    let vars = Variables::load(agents::VARIABLES).await.map_err(ConfigError::Unavailable)?;
    let cfg = AgentsConfig::from_variables(|n| vars.get(n))?;
    Ok(AGENTS_CONFIG.get_or_init(|| cfg))
}

/// A response body that is either complete or written chunk by chunk by a spawned relay.
pub type AgentsBody = http_body_util::Either<Full<Bytes>, RelayedBody>;

/// A streamed response body: the chunks a relay sends, then a normal end — or an error when the relay aborted, so
/// the client sees the answer cut short whatever was still queued (a flag, not a queued error frame, which a full
/// queue could not take).
pub struct RelayedBody {
    chunks: mpsc::Receiver<Bytes>,
    aborted: std::rc::Rc<std::cell::Cell<bool>>,
}

impl http_body::Body for RelayedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        use futures::Stream as _;
        match std::pin::Pin::new(&mut self.chunks).poll_next(cx) {
            std::task::Poll::Ready(Some(chunk)) => std::task::Poll::Ready(Some(Ok(Frame::data(chunk)))),
            std::task::Poll::Ready(None) if self.aborted.get() => {
                std::task::Poll::Ready(Some(Err(std::io::Error::other("the upstream stream ended abnormally"))))
            }
            std::task::Poll::Ready(None) => std::task::Poll::Ready(None),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

/// Answers the Agents-gateway routes (`handlers/agents`): JWT check, forwarding with the usage guarantee, the
/// ledger. A streamed answer is written by a task spawned on the component's own executor, so its chunks leave as
/// the upstream sends them; the task ends with the stream.
pub async fn serve_agents(req: Request) -> http::Response<AgentsBody> {
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let cfg = agents_config().await;
    if let Err(e) = &cfg {
        eprintln!("agents: configuration error: {e}");
    }
    // Configuration, path and token first: a caller without a valid token cannot make the component read a body.
    let head_only = inbound_from(&parts, Vec::new());
    if let Err((response, summary)) = agents::precheck(&head_only, cfg.as_ref().map(|c| *c), SystemClock.now_ms()) {
        eprintln!("agents: {} {summary} in {:?}", parts.method, started.elapsed());
        return complete_response(response);
    }
    let body = match Limited::new(body, agents::MAX_REQUEST_BYTES).collect().await {
        Ok(c) => c.to_bytes().to_vec(),
        Err(_) => {
            let message = r#"{"error":{"message":"request body too large or unreadable","type":"invalid_request_error","code":"request_too_large"}}"#;
            let out = Outbound {
                status: 413,
                headers: vec![("content-type".into(), "application/json".into())],
                body: message.as_bytes().to_vec(),
            };
            eprintln!("agents: {} {} refused: body too large or unreadable", parts.method, parts.uri.path());
            return complete_response(out);
        }
    };
    let inbound = Inbound { body, ..head_only };
    let store = open_store("agents").await;
    let ctx = Ctx { store: &store, backend: &SpinUpstream, clock: &SystemClock, random: &OsRandom };
    match agents::handle(&inbound, cfg.as_ref().map(|c| *c), &ctx).await {
        Answer::Complete { response, summary } => {
            eprintln!("agents: {} {summary} in {:?}", inbound.method, started.elapsed());
            complete_response(response)
        }
        Answer::Stream(relay) => {
            let (tx, rx) = mpsc::channel(8);
            let aborted = std::rc::Rc::new(std::cell::Cell::new(false));
            let body = RelayedBody { chunks: rx, aborted: std::rc::Rc::clone(&aborted) };
            let mut response = http::Response::new(http_body_util::Either::Right(body));
            *response.status_mut() = StatusCode::from_u16(relay.head.status).unwrap_or(StatusCode::BAD_GATEWAY);
            *response.headers_mut() = header_map(&relay.head.headers);
            let method = inbound.method.clone();
            drop(store);
            spin_sdk::wasip3::spawn(async move {
                let store = open_store("agents").await;
                let mut sink = ChannelSink { chunks: tx, aborted };
                let summary = relay.run(&mut sink, &store, &SystemClock).await;
                eprintln!("agents: {method} {summary} in {:?}", started.elapsed());
            });
            response
        }
    }
}

fn header_map(headers: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            map.append(k, v);
        }
    }
    map
}

fn complete_response(out: Outbound) -> http::Response<AgentsBody> {
    let (status, headers, body) = response(out);
    let mut response = http::Response::new(http_body_util::Either::Left(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The response body's writing end.
struct ChannelSink {
    chunks: mpsc::Sender<Bytes>,
    aborted: std::rc::Rc<std::cell::Cell<bool>>,
}

impl ChunkSink for ChannelSink {
    async fn send(&mut self, chunk: Vec<u8>, timeout_ms: u64) -> Result<(), SinkClosed> {
        let send = self.chunks.send(Bytes::from(chunk));
        let timer = spin_sdk::time::sleep(Duration::from_millis(timeout_ms));
        match select(std::pin::pin!(send), std::pin::pin!(timer)).await {
            Either::Left((sent, _)) => sent.map_err(|_| SinkClosed),
            Either::Right(_) => Err(SinkClosed),
        }
    }

    fn abort(&mut self) {
        self.aborted.set(true);
        self.chunks.close_channel();
    }
}

/// Outbound HTTP whose answer streams, through Spin (`wasi:http/client`).
struct SpinUpstream;

/// An upstream answer's body as it arrives.
struct SpinChunks(spin_sdk::wasip3::http_compat::IncomingResponseBody);

impl ChunkSource for SpinChunks {
    async fn next_chunk(&mut self, timeout_ms: u64) -> Result<Option<Vec<u8>>, OutboundError> {
        loop {
            let frame = {
                let next = self.0.frame();
                let timer = spin_sdk::time::sleep(Duration::from_millis(timeout_ms));
                match select(std::pin::pin!(next), std::pin::pin!(timer)).await {
                    Either::Left((frame, _)) => frame,
                    Either::Right(_) => return Err(OutboundError::Timeout),
                }
            };
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(OutboundError::Transport(format!("{e:?}"))),
                Some(Ok(frame)) => {
                    // Trailers and empty frames carry nothing to pass on.
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Ok(Some(data.to_vec()));
                    }
                }
            }
        }
    }
}

impl Upstream for SpinUpstream {
    type Body = SpinChunks;

    async fn open(
        &self,
        request: &UpstreamRequest,
        timeout_ms: u64,
    ) -> Result<UpstreamHead<SpinChunks>, OutboundError> {
        let method = http::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| OutboundError::Transport("invalid method".into()))?;
        let mut builder = http::Request::builder().method(method.clone()).uri(&request.url);
        for (k, v) in request.headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("content-length")) {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if !request.body.is_empty() || method != http::Method::GET {
            // Explicit length: Spin would otherwise send the body chunked, which some servers refuse.
            builder = builder.header(http::header::CONTENT_LENGTH, request.body.len());
        }
        let outgoing = builder
            .body(Full::new(Bytes::copy_from_slice(&request.body)))
            .map_err(|_| OutboundError::Transport("invalid request".into()))?;
        let call = spin_sdk::http::send(outgoing);
        let timer = spin_sdk::time::sleep(Duration::from_millis(timeout_ms));
        let response = match select(std::pin::pin!(call), std::pin::pin!(timer)).await {
            Either::Left((result, _)) => result.map_err(|e| match e {
                spin_sdk::wasip3::http::types::ErrorCode::HttpRequestDenied => OutboundError::Denied,
                other => OutboundError::Transport(format!("{other:?}")),
            })?,
            Either::Right(_) => return Err(OutboundError::Timeout),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
            .collect();
        Ok(UpstreamHead { status, headers, body: SpinChunks(response.into_body()) })
    }
}
