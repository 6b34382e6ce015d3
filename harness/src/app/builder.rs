//! [`AppBuilder`]: what a test or a command controls, validated before anything is compiled.

use super::application::{App, AppInner};
use super::engine::{LoadedComponent, compile, shared_engine};
use super::instances::{ComponentInstances, Reuse};
use crate::clock::VirtualClock;
use crate::host::{self, ComponentContext, HostState};
use crate::kv::{DEFAULT_STATE_DIR, KvError, KvStore, MemoryKv, STORE_FILE_NAME, StoreOpenError, open_stores};
use crate::manifest::{Manifest, ManifestError};
use crate::outbound::{AllowedHosts, OutboundHandler, OutboundRecorder};
use crate::routing::Router;
use crate::runtime_config::{RuntimeConfig, RuntimeConfigError};
use crate::variables::{Resolver, VariableError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::Linker;
use wasmtime_wasi_http::handler::ProxyHandler;
use wasmtime_wasi_http::p3::bindings::ServicePre;

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
    state_dir: Option<PathBuf>,
    clock: Option<VirtualClock>,
    outbound: Option<Arc<dyn OutboundHandler>>,
    recorder: OutboundRecorder,
    strict: bool,
    guest_stdio: bool,
    max_concurrency: u32,
    reuse: Reuse,
    request_timeout: Duration,
    compile_cache: bool,
    spin_redis_swap_defect: bool,
    spin_sqlite_swap_upsert: bool,
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
            state_dir: None,
            clock: None,
            outbound: None,
            recorder: OutboundRecorder::new(),
            strict: false,
            guest_stdio: false,
            max_concurrency: 128,
            reuse: Reuse::default(),
            request_timeout: Duration::from_secs(60),
            compile_cache: false,
            spin_redis_swap_defect: false,
            spin_sqlite_swap_upsert: false,
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

    /// Backs an otherwise unconfigured `default` store with Spin's SQLite file `<state dir>/sqlite_key_value.db`
    /// instead of memory (what `harness up` does, so state survives restarts and is shared with `spin up`).
    pub fn default_store_file(mut self, yes: bool) -> Self {
        self.default_store_file = yes;
        self
    }

    /// The application state directory (`spin up --state-dir`); default `<manifest dir>/.spin`. Only the file
    /// store of [`AppBuilder::default_store_file`] lives there.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
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

    /// The number of instances alive at once (each serving up to [`AppBuilder::max_instance_concurrent_reuse_count`]
    /// requests); a request needing another instance waits for a slot. Sizes the pooling allocator.
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// Requests one instance serves before it is dropped, as `spin up --max-instance-reuse-count` (default 128,
    /// Spin's for WASIp3 components). With [`AppBuilder::max_instance_concurrent_reuse_count`] 1, `1` gives every
    /// request a fresh instance.
    pub fn max_instance_reuse_count(mut self, n: usize) -> Self {
        self.reuse.max_requests = n.max(1);
        self
    }

    /// Requests one instance serves at the same time, as `spin up --max-instance-concurrent-reuse-count` (default
    /// 16).
    pub fn max_instance_concurrent_reuse_count(mut self, n: usize) -> Self {
        self.reuse.max_concurrent = n.max(1);
        self
    }

    /// How long an idle instance is kept for the next request, as `spin up --idle-instance-timeout` (default 1 s).
    pub fn idle_instance_timeout(mut self, timeout: Duration) -> Self {
        self.reuse.idle_timeout = timeout;
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

    /// Behaves like Spin 4.1.0-pre0 on Redis, whose `wasi:keyvalue/atomics` `swap` runs `MULTI`/`SET`/`EXEC` and
    /// then an `UNWATCH <key>` that Redis rejects, so every swap reports `cas-failed` even when its write went
    /// through. When on, every `swap` (on any store, so tests need no Redis) does its real compare-and-set and then
    /// answers `cas-failed` with a fresh `cas` whatever the outcome; components must survive that. Off by default.
    pub fn spin_redis_swap_defect(mut self, yes: bool) -> Self {
        self.spin_redis_swap_defect = yes;
        self
    }

    /// Makes a `wasi:keyvalue/atomics` `swap` on a key that had no value write unconditionally and succeed, as Spin
    /// 4.1.0-pre0's SQLite store does (its swap from "absent" is an upsert, so two first writes both succeed), on
    /// every store. Off by default; for testing that components do not rely on create-if-absent by swap.
    pub fn spin_sqlite_swap_upsert(mut self, yes: bool) -> Self {
        self.spin_sqlite_swap_upsert = yes;
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
            Some(env) => crate::variables::EnvSource::Fixed(env),
            None => crate::variables::EnvSource::process(),
        };
        let resolver = Resolver::with_env(&manifest, &self.flags, env)?;
        let missing: Vec<String> = resolver.missing().into_iter().map(str::to_owned).collect();
        if self.strict && !missing.is_empty() {
            return Err(BuildError::MissingVariables(missing));
        }

        let runtime_config = match &self.runtime_config {
            Some(p) => RuntimeConfig::from_file(p)?,
            None => RuntimeConfig::default(),
        };
        let default_file = self.default_store_file.then(|| {
            self.state_dir.clone().unwrap_or_else(|| manifest.dir.join(DEFAULT_STATE_DIR)).join(STORE_FILE_NAME)
        });
        let opened = open_stores(&runtime_config, self.stores, default_file.as_deref())?;
        let (stores, memory, store_descriptions) = (opened.backends, opened.memory, opened.descriptions);
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

        let (engine, slots) = shared_engine(self.max_concurrency, self.compile_cache)
            .map_err(|e| BuildError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::<HostState>::new(&engine);
        host::add_to_linker(&mut linker).map_err(|e| BuildError::Engine(format!("{e:#}")))?;

        let routed: BTreeSet<&str> = manifest.triggers.iter().map(|t| t.component.as_str()).collect();
        let mut components = BTreeMap::new();
        let cas_conflicts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let instantiations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let failed_instances = Arc::new(std::sync::atomic::AtomicUsize::new(0));
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
                entries.extend(crate::outbound::skip_if_resolved_to_nothing(t, entry));
            }
            let allowed = AllowedHosts::parse(&entries).map_err(|e| BuildError::AllowedHost {
                component: id.to_owned(),
                entry: entries.join(", "),
                reason: e.to_string(),
            })?;
            let variables = resolver.component_variables(c);
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
                spin_redis_swap_defect: self.spin_redis_swap_defect,
                spin_sqlite_swap_upsert: self.spin_sqlite_swap_upsert,
                cas_conflicts: Arc::clone(&cas_conflicts),
            };
            let instances = ComponentInstances {
                engine: engine.clone(),
                pre,
                ctx: Arc::new(ctx),
                allowed: Arc::new(allowed),
                environment: c.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                clock: self.clock.clone(),
                guest_stdio: self.guest_stdio,
                outbound: self.outbound.clone(),
                recorder: self.recorder.clone(),
                slots: Arc::clone(&slots),
                reuse: self.reuse,
                request_timeout: self.request_timeout,
                instantiations: Arc::clone(&instantiations),
                failed_instances: Arc::clone(&failed_instances),
            };
            components.insert(id.to_owned(), LoadedComponent { handler: ProxyHandler::new(instances) });
        }

        let router = Router::build(&manifest.base, &manifest.triggers);
        for (route, replaced) in router.duplicates() {
            tracing::warn!(route = %route, replaced = %replaced, "duplicate route: the later trigger wins");
        }
        let variable_sources =
            manifest.variables.keys().map(|name| (name.clone(), resolver.source(name))).collect::<BTreeMap<_, _>>();
        Ok(App {
            inner: Arc::new(AppInner {
                cas_conflicts,
                instantiations,
                failed_instances,
                router,
                components,
                manifest,
                memory,
                store_descriptions,
                clock: self.clock,
                recorder: self.recorder,
                request_timeout: self.request_timeout,
                missing_variables: missing,
                variable_sources,
            }),
        })
    }
}

impl From<StoreOpenError> for BuildError {
    fn from(e: StoreOpenError) -> Self {
        Self::Store { label: e.label, source: e.source }
    }
}

impl App {
    /// Shorthand for [`AppBuilder::from_manifest`].
    pub fn builder(manifest: impl Into<PathBuf>) -> AppBuilder {
        AppBuilder::from_manifest(manifest)
    }
}
