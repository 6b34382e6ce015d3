//! The wasmtime engine and the per-process component cache: one engine per pool size, each component file compiled
//! once per process, so building many apps (one per test or cassette) costs one compilation.

use crate::host::{ComponentContext, HostState};
use crate::outbound::AllowedHosts;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::p3::bindings::ServicePre;

/// Engine settings that distinguish engines: pool size and on-disk cache.
pub(super) type EngineKey = (u32, bool);

/// The process's engine for `key`, created on first use. Sharing engines lets every [`App`] in a process (each
/// test, each cassette) reuse compiled components.
///
/// With it comes the one semaphore of instance slots for every app on that engine: the pooling allocator's limit is
/// the engine's, so apps sharing it (several in one test process) must wait for a slot rather than fail.
pub(super) fn shared_engine(
    concurrency: u32,
    cache: bool,
) -> wasmtime::Result<(Engine, std::sync::Arc<tokio::sync::Semaphore>)> {
    type Shared = (Engine, std::sync::Arc<tokio::sync::Semaphore>);
    static ENGINES: OnceLock<Mutex<HashMap<EngineKey, Shared>>> = OnceLock::new();
    let mut engines = ENGINES.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((e, slots)) = engines.get(&(concurrency, cache)) {
        return Ok((e.clone(), std::sync::Arc::clone(slots)));
    }
    let engine = new_engine(concurrency, cache)?;
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency as usize));
    engines.insert((concurrency, cache), (engine.clone(), std::sync::Arc::clone(&slots)));
    Ok((engine, slots))
}

/// `path` compiled for `engine`, compiled at most once per process per file version (path, size, mtime).
pub(super) fn compile(engine: &Engine, key: EngineKey, path: &Path) -> wasmtime::Result<Component> {
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
fn new_engine(concurrency: u32, cache: bool) -> wasmtime::Result<Engine> {
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
    Engine::new(&config)
}

/// A routed component, pre-instantiated, with what each of its instances is given.
pub(super) struct LoadedComponent {
    pub(super) pre: ServicePre<HostState>,
    pub(super) ctx: Arc<ComponentContext>,
    pub(super) allowed: Arc<AllowedHosts>,
    pub(super) environment: Vec<(String, String)>,
}
