//! A loaded application: every component compiled once, pre-instantiated, and served one fresh instance per
//! request.
//!
//! The parts: [`AppBuilder`] (configuration and validation, `builder.rs`), the engine and the per-process
//! component cache (`engine.rs`), request execution ([`App::send`], [`App::serve`], `serve.rs`); stores are opened by
//! [`crate::kv`].
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

mod builder;
mod engine;
mod serve;

pub use crate::kv::{DEFAULT_STORE_FILE, KvStore};
pub use builder::{AppBuilder, BuildError};

use crate::clock::VirtualClock;
use crate::kv::MemoryKv;
use crate::manifest::Manifest;
use crate::outbound::{OutboundCall, OutboundHandler, OutboundRecorder};
use crate::routing::Router;
use crate::variables::VariableSource;
use bytes::Bytes;
use engine::LoadedComponent;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Engine;

/// What every clone of an [`App`] shares.
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
