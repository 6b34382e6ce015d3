//! Core called directly, over a memory store: the reference the Wasm component must agree with.

use std::cell::Cell;

use koogallery_core::http::{Inbound, Outbound};
use koogallery_core::ports::MemoryStore;
use koogallery_core::ports::{Clock, NoBackend, OsRandom};
use koogallery_core::produce::{Ctx, ProduceConfig, handle};

use crate::Endpoint;

/// The production interface in-process, built-in mode.
pub struct NativeEndpoint {
    cfg: ProduceConfig,
    store: MemoryStore,
    clock: NativeClock,
}

struct NativeClock(Cell<u64>);

impl Clock for NativeClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

impl NativeEndpoint {
    /// A fresh endpoint with `cfg`, its clock at `now_ms`.
    pub fn new(cfg: ProduceConfig, now_ms: u64) -> Self {
        Self { cfg, store: MemoryStore::new(), clock: NativeClock(Cell::new(now_ms)) }
    }
}

impl Endpoint for NativeEndpoint {
    fn send(&self, req: &Inbound) -> Outbound {
        let ctx = Ctx { store: &self.store, backend: &NoBackend, clock: &self.clock, random: &OsRandom };
        pollster::block_on(handle(req, &self.cfg, &ctx)).response
    }
    fn set_now(&self, ms: u64) {
        self.clock.0.set(ms);
    }
    fn now(&self) -> u64 {
        self.clock.0.get()
    }
    fn keys(&self) -> Vec<String> {
        self.store.snapshot().into_keys().collect()
    }
    fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.store.snapshot().remove(key)
    }
}
