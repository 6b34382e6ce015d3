//! [`App`]: a built application, cheap to clone, and what its clones share.

use super::engine::LoadedComponent;
use crate::clock::VirtualClock;
use crate::kv::MemoryKv;
use crate::manifest::Manifest;
use crate::outbound::{OutboundCall, OutboundRecorder};
use crate::routing::Router;
use crate::variables::VariableSource;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What every clone of an [`App`] shares.
pub(super) struct AppInner {
    pub(super) router: Router,
    pub(super) components: BTreeMap<String, LoadedComponent>,
    pub(super) manifest: Manifest,
    pub(super) memory: BTreeMap<String, MemoryKv>,
    pub(super) store_descriptions: BTreeMap<String, String>,
    pub(super) clock: Option<VirtualClock>,
    pub(super) recorder: OutboundRecorder,
    pub(super) request_timeout: Duration,
    pub(super) missing_variables: Vec<String>,
    pub(super) variable_sources: BTreeMap<String, Option<VariableSource>>,
    pub(super) cas_conflicts: Arc<std::sync::atomic::AtomicUsize>,
    pub(super) instantiations: Arc<std::sync::atomic::AtomicUsize>,
    pub(super) failed_instances: Arc<std::sync::atomic::AtomicUsize>,
}

/// A built application. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct App {
    pub(super) inner: Arc<AppInner>,
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
pub struct Served<B = Bytes> {
    /// The response: complete ([`App::serve`]) or streaming ([`App::serve_streaming`]).
    pub response: http::Response<B>,
    /// The component that answered (`None` for a routing 404).
    pub component: Option<String>,
    /// The matched route as written in the manifest.
    pub route: Option<String>,
}

impl App {
    /// The inspectable in-memory store behind `label`, if that label is memory-backed.
    pub fn memory_kv(&self, label: &str) -> Option<MemoryKv> {
        self.inner.memory.get(label).cloned()
    }

    /// How many `wasi:keyvalue/atomics` swaps were answered `cas-failed` so far (by every component): the
    /// compare-and-swap conflicts the components met and retried.
    pub fn cas_conflicts(&self) -> usize {
        self.inner.cas_conflicts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many component instances were created so far (by every component): with reuse on, far fewer than
    /// requests.
    pub fn instantiations(&self) -> usize {
        self.inner.instantiations.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many instances ended with an error (a trap or a timeout) so far; each failed every request it was
    /// serving at that moment.
    pub fn failed_instances(&self) -> usize {
        self.inner.failed_instances.load(std::sync::atomic::Ordering::Relaxed)
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
