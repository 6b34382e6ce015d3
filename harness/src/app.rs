//! A loaded application: every component compiled once, pre-instantiated, and served one fresh instance per
//! request.
//!
//! How to use it (tests and the `up` command do exactly this):
//!
//! 1. Start from the manifest: [`AppBuilder::from_manifest`].
//! 2. Configure what the test controls: variables, key-value stores, the guest's wall clock, an outbound handler.
//! 3. [`AppBuilder::build`] validates everything, compiles the components and returns an [`App`]. A component
//!    file is compiled once per process (keyed by path, size and modification time), so building many apps (one
//!    per test or cassette) costs one compilation.
//! 4. [`App::send`] routes a request as Spin would (adding the `spin-*` headers) and returns the whole response.
//!    `App` is `Clone + Send + Sync`; requests can run concurrently from many tasks.
//!
//! ```no_run
//! use harness::app::AppBuilder;
//! use harness::clock::VirtualClock;
//! # async fn demo() -> anyhow::Result<()> {
//! let clock = VirtualClock::at_ms(1_680_508_066_618);
//! let app = AppBuilder::from_manifest("harness/tests/data/spin.toml")
//!     .variable("api_key", "k")
//!     .kv_memory()
//!     .clock(clock.clone())
//!     .build()
//!     .await?;
//! let req = http::Request::post("/probe/kv/set?key=a").body(bytes::Bytes::from("1"))?;
//! let resp = app.send(req).await?;
//! assert_eq!(resp.status(), 200);
//! assert_eq!(app.memory_kv("default").and_then(|kv| kv.text("a")).as_deref(), Some("1"));
//! # Ok(()) }
//! ```

use crate::clock::VirtualClock;
use crate::host::{self, ComponentContext, HostState};
use crate::kv::{FileKv, KvBackend, KvError, MemoryKv, RedisKv};
use crate::manifest::{Manifest, ManifestError};
use crate::outbound::{AllowedHosts, OutboundCall, OutboundHandler, OutboundHooks, OutboundRecorder};
use crate::routing::Router;
use crate::runtime_config::{KvStoreConfig, RuntimeConfig, RuntimeConfigError};
use crate::variables::{Resolver, VariableError, VariableSource};
use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::p3::bindings::ServicePre;

/// Where the `up` default store lives, relative to the manifest directory.
pub const DEFAULT_STORE_FILE: &str = ".spin/key_value.redb";

/// Why an app could not be built. Each variant names the file, component, label or variable at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The manifest is invalid or a component file is missing.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The runtime config is invalid.
    #[error(transparent)]
    RuntimeConfig(#[from] RuntimeConfigError),
    /// A `--variable` is malformed or undeclared.
    #[error(transparent)]
    Variable(#[from] VariableError),
    /// Required variables have no value (strict mode).
    #[error("missing required variable(s): {}; pass --variable <name>=<value> or set SPIN_VARIABLE_<NAME>", .0.join(", "))]
    MissingVariables(Vec<String>),
    /// A component uses a store label no backend is configured for (strict mode).
    #[error(
        "component `{component}` uses key-value store `{label}`, which is not defined: add [key_value_store.{label}] to the runtime config"
    )]
    UndefinedStore {
        /// The component id.
        component: String,
        /// The label.
        label: String,
    },
    /// A store backend could not be opened.
    #[error("key-value store `{label}`: {source}")]
    Store {
        /// The label.
        label: String,
        /// The backend error.
        source: KvError,
    },
    /// A (template-resolved) `allowed_outbound_hosts` entry is invalid.
    #[error("component `{component}`, allowed_outbound_hosts entry {entry:?}: {reason}")]
    AllowedHost {
        /// The component id.
        component: String,
        /// The resolved entry.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The Wasm engine could not be configured.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// A component failed to compile or link (e.g. it imports something the harness does not provide).
    #[error("component `{component}` ({path}): {message}")]
    Load {
        /// The component id.
        component: String,
        /// Its Wasm file.
        path: PathBuf,
        /// The wasmtime error, with its causes.
        message: String,
    },
}

/// A key-value store handed to the builder.
#[derive(Debug, Clone)]
pub enum KvStore {
    /// An inspectable in-memory store (kept retrievable through [`App::memory_kv`]).
    Memory(MemoryKv),
    /// Any other backend.
    Backend(Arc<dyn KvBackend>),
}

impl From<MemoryKv> for KvStore {
    fn from(m: MemoryKv) -> Self {
        Self::Memory(m)
    }
}

impl From<FileKv> for KvStore {
    fn from(f: FileKv) -> Self {
        Self::Backend(Arc::new(f))
    }
}

impl From<RedisKv> for KvStore {
    fn from(r: RedisKv) -> Self {
        Self::Backend(Arc::new(r))
    }
}

impl From<Arc<dyn KvBackend>> for KvStore {
    fn from(b: Arc<dyn KvBackend>) -> Self {
        Self::Backend(b)
    }
}

/// Configures and builds an [`App`].
#[must_use]
pub struct AppBuilder {
    manifest: PathBuf,
    flags: BTreeMap<String, String>,
    bad_flags: Vec<String>,
    env: Option<BTreeMap<String, String>>,
    stores: BTreeMap<String, KvStore>,
    runtime_config: Option<PathBuf>,
    default_store_file: bool,
    clock: Option<VirtualClock>,
    outbound: Option<Arc<dyn OutboundHandler>>,
    recorder: OutboundRecorder,
    strict: bool,
    guest_stdio: bool,
    max_concurrency: u32,
    request_timeout: Duration,
    compile_cache: bool,
}

impl AppBuilder {
    /// Starts from the manifest at `path`. Defaults: variables from `SPIN_VARIABLE_*` and manifest defaults,
    /// `default` store in memory, real wall clock, real outbound HTTP, lenient about missing variables.
    pub fn from_manifest(path: impl Into<PathBuf>) -> Self {
        Self {
            manifest: path.into(),
            flags: BTreeMap::new(),
            bad_flags: Vec::new(),
            env: None,
            stores: BTreeMap::new(),
            runtime_config: None,
            default_store_file: false,
            clock: None,
            outbound: None,
            recorder: OutboundRecorder::new(),
            strict: false,
            guest_stdio: false,
            max_concurrency: 128,
            request_timeout: Duration::from_secs(60),
            compile_cache: false,
        }
    }

    /// Sets application variable `name` (highest priority, like `--variable`).
    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.flags.insert(name.into(), value.into());
        self
    }

    /// Adds `--variable name=value` flags; a malformed one fails [`AppBuilder::build`].
    pub fn variable_flags<S: AsRef<str>>(mut self, flags: impl IntoIterator<Item = S>) -> Self {
        for f in flags {
            match crate::variables::parse_flag(f.as_ref()) {
                Ok((k, v)) => {
                    self.flags.insert(k, v);
                }
                Err(_) => self.bad_flags.push(f.as_ref().to_owned()),
            }
        }
        self
    }

    /// Replaces the process environment as the source of `SPIN_VARIABLE_*` values (tests cannot safely mutate
    /// the real environment).
    pub fn env_vars<K: Into<String>, V: Into<String>>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self {
        self.env = Some(crate::variables::from_env(vars.into_iter().map(|(k, v)| (k.into(), v.into()))));
        self
    }

    /// Backs the `default` store with a fresh inspectable [`MemoryKv`].
    pub fn kv_memory(self) -> Self {
        self.kv(MemoryKv::new())
    }

    /// Backs the `default` store with `store` (e.g. a [`MemoryKv`] handle the test keeps).
    pub fn kv(self, store: impl Into<KvStore>) -> Self {
        self.kv_label("default", store)
    }

    /// Backs store `label` with `store`. Overrides the runtime config for that label.
    pub fn kv_label(mut self, label: impl Into<String>, store: impl Into<KvStore>) -> Self {
        self.stores.insert(label.into(), store.into());
        self
    }

    /// Reads `[key_value_store.*]` from a `runtime-config.toml`.
    pub fn runtime_config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.runtime_config = Some(path.into());
        self
    }

    /// Backs an otherwise unconfigured `default` store with the file `<manifest dir>/.spin/key_value.redb`
    /// instead of memory (what `harness up` does, so state survives restarts).
    pub fn default_store_file(mut self, yes: bool) -> Self {
        self.default_store_file = yes;
        self
    }

    /// Pins the guest's wall clock (`SystemTime::now()`, `wasi:clocks/wall-clock`) to `clock`.
    pub fn clock(mut self, clock: VirtualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Answers allowed outbound requests in-process instead of over the network.
    pub fn outbound(mut self, handler: Arc<dyn OutboundHandler>) -> Self {
        self.outbound = Some(handler);
        self
    }

    /// Records outbound calls into `recorder` (by default the app has its own; see [`App::outbound_calls`]).
    pub fn recorder(mut self, recorder: OutboundRecorder) -> Self {
        self.recorder = recorder;
        self
    }

    /// Strict mode, as `spin up`: missing required variables and store labels without a backend are build errors
    /// instead of guest-visible `undefined` / `no-such-store`.
    pub fn strict(mut self, yes: bool) -> Self {
        self.strict = yes;
        self
    }

    /// Lets guests write to the host's stdout/stderr (off by default; `up` turns it on).
    pub fn guest_stdio(mut self, yes: bool) -> Self {
        self.guest_stdio = yes;
        self
    }

    /// The number of requests served at once; more wait for a slot. Sizes the pooling allocator.
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// How long one request may run before it is abandoned with an error.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Caches compiled components on disk (wasmtime's cache, `~/.cache/wasmtime`) to cut start-up time.
    pub fn compile_cache(mut self, yes: bool) -> Self {
        self.compile_cache = yes;
        self
    }

    /// Validates the configuration, compiles every routed component once and pre-instantiates it.
    ///
    /// Checks run before anything is compiled: manifest, component files, variables, runtime config, stores,
    /// allow-lists.
    ///
    /// # Errors
    /// A [`BuildError`] naming what is wrong.
    pub async fn build(self) -> Result<App, BuildError> {
        let manifest = Manifest::from_file(&self.manifest)?;
        manifest.check_sources()?;

        if let Some(bad) = self.bad_flags.first() {
            return Err(VariableError::BadFlag(bad.clone()).into());
        }
        let env = match self.env {
            Some(env) => env,
            None => crate::variables::from_env(std::env::vars()),
        };
        let resolver = Resolver::new(&manifest, &self.flags, &env)?;
        let missing: Vec<String> = resolver.missing().into_iter().map(str::to_owned).collect();
        if self.strict && !missing.is_empty() {
            return Err(BuildError::MissingVariables(missing));
        }

        let runtime_config = match &self.runtime_config {
            Some(p) => RuntimeConfig::from_file(p)?,
            None => RuntimeConfig::default(),
        };
        let (stores, memory, store_descriptions) =
            open_stores(&manifest, &runtime_config, self.stores, self.default_store_file)?;
        for c in manifest.components.values() {
            for label in &c.key_value_stores {
                if !stores.contains_key(label) {
                    if self.strict {
                        return Err(BuildError::UndefinedStore { component: c.id.clone(), label: label.clone() });
                    }
                    tracing::warn!(component = %c.id, label = %label, "store not configured: the guest gets no-such-store");
                }
            }
        }
        let stores = Arc::new(stores);

        let engine = shared_engine(self.max_concurrency, self.compile_cache)?;
        let mut linker = Linker::<HostState>::new(&engine);
        host::add_to_linker(&mut linker).map_err(|e| BuildError::Engine(format!("{e:#}")))?;

        let routed: BTreeSet<&str> = manifest.triggers.iter().map(|t| t.component.as_str()).collect();
        let mut components = BTreeMap::new();
        for id in routed {
            let Some(c) = manifest.components.get(id) else { continue };
            let mut entries = Vec::new();
            for t in &c.allowed_outbound_hosts {
                let entry =
                    t.render(|v| resolver.value(v).map(str::to_owned)).map_err(|e| BuildError::AllowedHost {
                        component: id.to_owned(),
                        entry: t.source().to_owned(),
                        reason: e.to_string(),
                    })?;
                entries.push(entry);
            }
            let allowed = AllowedHosts::parse(&entries).map_err(|e| BuildError::AllowedHost {
                component: id.to_owned(),
                entry: entries.join(", "),
                reason: e.to_string(),
            })?;
            let variables =
                resolver.component_values(c).into_iter().map(|(k, v)| (k, v.map_err(|e| e.to_string()))).collect();
            let load_err = |e: wasmtime::Error| BuildError::Load {
                component: id.to_owned(),
                path: c.source.clone(),
                message: format!("{e:#}"),
            };
            let compiled = compile(&engine, (self.max_concurrency, self.compile_cache), &c.source).map_err(load_err)?;
            let pre = linker.instantiate_pre(&compiled).map_err(load_err)?;
            let pre = ServicePre::new(pre).map_err(load_err)?;
            let ctx = ComponentContext {
                id: Arc::from(id),
                kv_labels: c.key_value_stores.iter().cloned().collect(),
                stores: Arc::clone(&stores),
                variables,
            };
            components.insert(
                id.to_owned(),
                LoadedComponent {
                    pre,
                    ctx: Arc::new(ctx),
                    allowed: Arc::new(allowed),
                    environment: c.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                },
            );
        }

        let router = Router::build(&manifest.base, &manifest.triggers);
        for (route, replaced) in router.duplicates() {
            tracing::warn!(route = %route, replaced = %replaced, "duplicate route: the later trigger wins");
        }
        let variable_sources =
            manifest.variables.keys().map(|name| (name.clone(), resolver.source(name))).collect::<BTreeMap<_, _>>();
        Ok(App {
            inner: Arc::new(AppInner {
                engine,
                router,
                components,
                manifest,
                memory,
                store_descriptions,
                clock: self.clock,
                outbound: self.outbound,
                recorder: self.recorder,
                guest_stdio: self.guest_stdio,
                slots: tokio::sync::Semaphore::new(self.max_concurrency as usize),
                request_timeout: self.request_timeout,
                missing_variables: missing,
                variable_sources,
            }),
        })
    }
}

type OpenedStores = (BTreeMap<String, Arc<dyn KvBackend>>, BTreeMap<String, MemoryKv>, BTreeMap<String, String>);

/// Opens every configured store: explicit builder stores, then the runtime config, then the `default` fallback.
fn open_stores(
    manifest: &Manifest,
    runtime_config: &RuntimeConfig,
    explicit: BTreeMap<String, KvStore>,
    default_file: bool,
) -> Result<OpenedStores, BuildError> {
    let mut stores: BTreeMap<String, Arc<dyn KvBackend>> = BTreeMap::new();
    let mut memory = BTreeMap::new();
    let mut described = BTreeMap::new();
    for (label, store) in explicit {
        match store {
            KvStore::Memory(m) => {
                stores.insert(label.clone(), Arc::new(m.clone()));
                memory.insert(label.clone(), m);
                described.insert(label, "in-memory".to_owned());
            }
            KvStore::Backend(b) => {
                described.insert(label.clone(), format!("{b:?}"));
                stores.insert(label, b);
            }
        }
    }
    for (label, config) in &runtime_config.key_value_stores {
        if stores.contains_key(label) {
            continue;
        }
        let backend = config.open().map_err(|source| BuildError::Store { label: label.clone(), source })?;
        described.insert(label.clone(), config.describe());
        stores.insert(label.clone(), backend);
    }
    if !stores.contains_key("default") {
        let config = if default_file {
            KvStoreConfig::Spin { path: Some(manifest.dir.join(DEFAULT_STORE_FILE)) }
        } else {
            KvStoreConfig::Memory
        };
        if default_file {
            let backend = config.open().map_err(|source| BuildError::Store { label: "default".to_owned(), source })?;
            stores.insert("default".to_owned(), backend);
        } else {
            let m = MemoryKv::new();
            stores.insert("default".to_owned(), Arc::new(m.clone()));
            memory.insert("default".to_owned(), m);
        }
        described.insert("default".to_owned(), config.describe());
    }
    Ok((stores, memory, described))
}

/// Engine settings that distinguish engines: pool size and on-disk cache.
type EngineKey = (u32, bool);

/// The process's engine for `key`, created on first use. Sharing engines lets every [`App`] in a process (each
/// test, each cassette) reuse compiled components.
fn shared_engine(concurrency: u32, cache: bool) -> Result<Engine, BuildError> {
    static ENGINES: OnceLock<Mutex<HashMap<EngineKey, Engine>>> = OnceLock::new();
    let mut engines = ENGINES.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(e) = engines.get(&(concurrency, cache)) {
        return Ok(e.clone());
    }
    let engine = new_engine(concurrency, cache)?;
    engines.insert((concurrency, cache), engine.clone());
    Ok(engine)
}

/// `path` compiled for `engine`, compiled at most once per process per file version (path, size, mtime).
fn compile(engine: &Engine, key: EngineKey, path: &Path) -> wasmtime::Result<Component> {
    type ComponentKey = (EngineKey, PathBuf, u64, Option<std::time::SystemTime>);
    static COMPONENTS: OnceLock<Mutex<HashMap<ComponentKey, Component>>> = OnceLock::new();
    let meta = std::fs::metadata(path)?;
    let canonical = std::fs::canonicalize(path)?;
    let k = (key, canonical, meta.len(), meta.modified().ok());
    let mut components = COMPONENTS.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = components.get(&k) {
        return Ok(c.clone());
    }
    let started = std::time::Instant::now();
    let component = Component::from_file(engine, path)?;
    tracing::debug!(path = %path.display(), compile_ms = started.elapsed().as_millis(), "component compiled");
    components.insert(k, component.clone());
    Ok(component)
}

/// A new engine: pooling allocator sized for `concurrency` simultaneous instances.
fn new_engine(concurrency: u32, cache: bool) -> Result<Engine, BuildError> {
    let mut config = Config::new();
    config.wasm_component_model_async(true);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(concurrency)
        .total_core_instances(concurrency.saturating_mul(16))
        .total_memories(concurrency.saturating_mul(4))
        .total_tables(concurrency.saturating_mul(16))
        .total_stacks(concurrency.saturating_mul(4))
        .max_memory_size(256 << 20);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    if cache {
        match wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
            Ok(c) => {
                config.cache(Some(c));
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "compile cache unavailable"),
        }
    }
    Engine::new(&config).map_err(|e| BuildError::Engine(format!("{e:#}")))
}

struct LoadedComponent {
    pre: ServicePre<HostState>,
    ctx: Arc<ComponentContext>,
    allowed: Arc<AllowedHosts>,
    environment: Vec<(String, String)>,
}

struct AppInner {
    engine: Engine,
    router: Router,
    components: BTreeMap<String, LoadedComponent>,
    manifest: Manifest,
    memory: BTreeMap<String, MemoryKv>,
    store_descriptions: BTreeMap<String, String>,
    clock: Option<VirtualClock>,
    outbound: Option<Arc<dyn OutboundHandler>>,
    recorder: OutboundRecorder,
    guest_stdio: bool,
    slots: tokio::sync::Semaphore,
    request_timeout: Duration,
    missing_variables: Vec<String>,
    variable_sources: BTreeMap<String, Option<VariableSource>>,
}

/// A built application. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("name", &self.inner.manifest.name)
            .field("components", &self.inner.components.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A served request: the response and which route and component produced it.
#[derive(Debug)]
pub struct Served {
    /// The complete response.
    pub response: http::Response<Bytes>,
    /// The component that answered (`None` for a routing 404).
    pub component: Option<String>,
    /// The matched route as written in the manifest.
    pub route: Option<String>,
}

impl App {
    /// Shorthand for [`AppBuilder::from_manifest`].
    pub fn builder(manifest: impl Into<PathBuf>) -> AppBuilder {
        AppBuilder::from_manifest(manifest)
    }

    /// Serves `request` in-process, as from client `127.0.0.1:0`.
    ///
    /// The URI may be a bare path (`/produce?x=1`); the `Host` header (default `localhost`) completes it.
    /// A route miss is a `404`; a guest that returns a WASI HTTP error code is a `500` (both are answers).
    ///
    /// # Errors
    /// The harness could not get an answer: the guest trapped, timed out, or could not be instantiated.
    pub async fn send(&self, request: http::Request<Bytes>) -> anyhow::Result<http::Response<Bytes>> {
        Ok(self.serve(request, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?.response)
    }

    /// Serves `request` from `client`, reporting the route and component (what `up` logs).
    ///
    /// # Errors
    /// As [`App::send`].
    pub async fn serve(&self, mut request: http::Request<Bytes>, client: SocketAddr) -> anyhow::Result<Served> {
        let path = request.uri().path().to_owned();
        let Some(matched) = self.inner.router.route(&path) else {
            let response = http::Response::builder().status(http::StatusCode::NOT_FOUND).body(Bytes::new())?;
            return Ok(Served { response, component: None, route: None });
        };
        let component_id = matched.component().to_owned();
        let route = matched.route().raw_route().to_owned();
        let component = self
            .inner
            .components
            .get(&component_id)
            .with_context(|| format!("component `{component_id}` is routed but not loaded"))?;

        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| request.uri().authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".to_owned());
        let scheme = request.uri().scheme_str().unwrap_or("http").to_owned();
        let path_and_query = request.uri().path_and_query().map_or_else(|| path.clone(), |p| p.as_str().to_owned());
        for (name, value) in matched.spin_headers(&scheme, &host, &path_and_query, client) {
            let value = http::HeaderValue::from_str(&value).with_context(|| format!("header {name}"))?;
            request.headers_mut().insert(name, value);
        }
        let absolute: http::Uri = format!("{scheme}://{host}{path_and_query}")
            .parse()
            .or_else(|_| format!("{scheme}://localhost{path_and_query}").parse())
            .context("request URI")?;
        *request.uri_mut() = absolute;

        let _slot = self.inner.slots.acquire().await.context("app is shutting down")?;
        let run = self.run_component(component, request);
        let response = tokio::time::timeout(self.inner.request_timeout, run)
            .await
            .map_err(|_| {
                anyhow::anyhow!("component `{component_id}` timed out after {:?}", self.inner.request_timeout)
            })?
            .with_context(|| format!("component `{component_id}`"))?;
        Ok(Served { response, component: Some(component_id), route: Some(route) })
    }

    /// One fresh `Store` and instance: run the handler and collect the whole response body.
    async fn run_component(
        &self,
        component: &LoadedComponent,
        request: http::Request<Bytes>,
    ) -> anyhow::Result<http::Response<Bytes>> {
        let mut wasi = WasiCtx::builder();
        if let Some(clock) = &self.inner.clock {
            wasi.wall_clock(clock.clone());
        }
        if self.inner.guest_stdio {
            wasi.inherit_stdout().inherit_stderr();
        }
        wasi.envs(&component.environment);
        let state = HostState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                component: Arc::clone(&component.ctx.id),
                allowed: Arc::clone(&component.allowed),
                handler: self.inner.outbound.clone(),
                recorder: self.inner.recorder.clone(),
            },
            component: Arc::clone(&component.ctx),
        };
        let mut store = Store::new(&self.inner.engine, state);
        let service = component.pre.instantiate_async(&mut store).await.map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let (guest_request, request_io) =
            wasmtime_wasi_http::p3::Request::from_http(&mut store.data_mut().hooks, request.map(Full::new));
        store
            .run_concurrent(async |accessor| -> anyhow::Result<http::Response<Bytes>> {
                let answer = service.handle(accessor, guest_request).await.map_err(|e| anyhow::anyhow!("{e:#}"))?;
                let response = match answer {
                    Ok(r) => r,
                    Err(code) => {
                        let body = Bytes::from(format!("component returned an error: {code:?}"));
                        return Ok(http::Response::builder().status(500).body(body)?);
                    }
                };
                let response = accessor
                    .with(|mut access| response.into_http(&mut access, request_io))
                    .map_err(|e| anyhow::anyhow!("{e:#}"))?;
                let (parts, body) = response.into_parts();
                let body = body.collect().await.map_err(|e| anyhow::anyhow!("response body: {e}"))?.to_bytes();
                Ok(http::Response::from_parts(parts, body))
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}"))?
    }

    /// The inspectable in-memory store behind `label`, if that label is memory-backed.
    pub fn memory_kv(&self, label: &str) -> Option<MemoryKv> {
        self.inner.memory.get(label).cloned()
    }

    /// Outbound calls made by all components so far.
    pub fn outbound_calls(&self) -> Vec<OutboundCall> {
        self.inner.recorder.calls()
    }

    /// The outbound recorder (shared with the app).
    pub fn recorder(&self) -> &OutboundRecorder {
        &self.inner.recorder
    }

    /// The guest wall clock, if pinned.
    pub fn clock(&self) -> Option<&VirtualClock> {
        self.inner.clock.as_ref()
    }

    /// The routing table.
    pub fn router(&self) -> &Router {
        &self.inner.router
    }

    /// The validated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// Store label → backend description (for start-up output; credentials redacted).
    pub fn store_descriptions(&self) -> &BTreeMap<String, String> {
        &self.inner.store_descriptions
    }

    /// Required variables that had no value (non-strict builds only; components using them get `undefined`).
    pub fn missing_variables(&self) -> &[String] {
        &self.inner.missing_variables
    }

    /// Where each application variable's value came from (`None`: missing).
    pub fn variable_sources(&self) -> &BTreeMap<String, Option<VariableSource>> {
        &self.inner.variable_sources
    }

    /// The manifest path's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.manifest.dir
    }
}
