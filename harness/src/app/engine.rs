//! The wasmtime engine and the per-process component cache: one engine per pool size, each component file compiled
//! once per process, so building many apps (one per test or cassette) costs one compilation.

use super::instances::{ComponentInstances, InstanceSlots};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::handler::ProxyHandler;

/// Engine settings that distinguish engines: pool size and on-disk cache.
pub(super) type EngineKey = (u32, bool);

/// The process's engine for `key`, created on first use. Sharing engines lets every [`App`] in a process (each
/// test, each cassette) reuse compiled components.
///
/// With it come the instance slots of every app on that engine: the pooling allocator's limit is the engine's, so
/// apps sharing it (several in one test process) must wait for a slot rather than fail.
pub(super) fn shared_engine(
    concurrency: u32,
    cache: bool,
) -> wasmtime::Result<(Engine, std::sync::Arc<InstanceSlots>)> {
    type Shared = (Engine, std::sync::Arc<InstanceSlots>);
    static ENGINES: OnceLock<Mutex<HashMap<EngineKey, Shared>>> = OnceLock::new();
    let mut engines = ENGINES.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((e, slots)) = engines.get(&(concurrency, cache)) {
        return Ok((e.clone(), std::sync::Arc::clone(slots)));
    }
    let engine = new_engine(concurrency, cache)?;
    let slots = std::sync::Arc::new(InstanceSlots::new(concurrency as usize));
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

/// How often the engine's epoch advances, as Spin's `DEFAULT_EPOCH_TICK_INTERVAL` (`crates/core/src/lib.rs`).
const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// A new engine: pooling allocator sized for `concurrency` simultaneous instances, epoch interruption on.
fn new_engine(concurrency: u32, cache: bool) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model_async(true);
    // As Spin (`crates/core/src/lib.rs`): epochs tick every 10 ms; each store yields at every tick (see
    // `instances.rs`), so a guest spinning the CPU cannot hold a thread past its request timeout.
    config.epoch_interruption(true);
    let mut pool = PoolingAllocationConfig::default();
    // An instance now serves up to 16 requests at once, each with its own async stack.
    pool.total_component_instances(concurrency)
        .total_core_instances(concurrency.saturating_mul(16))
        .total_memories(concurrency.saturating_mul(4))
        .total_tables(concurrency.saturating_mul(16))
        .total_stacks(concurrency.saturating_mul(32))
        .max_memory_size(256 << 20)
        // Spin's keep-resident settings (`SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT` 2 MiB,
        // `SPIN_WASMTIME_TABLE_KEEP_RESIDENT` 512 KiB): a reused slot keeps its first pages mapped.
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(512 << 10);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    if cache {
        match wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
            Ok(c) => {
                config.cache(Some(c));
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "compile cache unavailable"),
        }
    }
    let engine = Engine::new(&config)?;
    let weak = engine.weak();
    std::thread::Builder::new().name("harness-epoch".to_owned()).spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    })?;
    Ok(engine)
}

/// A routed component: the handler that hands its requests to reused instances (see `instances.rs`).
pub(super) struct LoadedComponent {
    pub(super) handler: ProxyHandler<ComponentInstances>,
}
