//! Drivers for the conformance tests: one [`Endpoint`] trait with a native implementation (core called directly)
//! and a Wasm implementation (the `produce` component in the harness), so every scenario runs against both and the
//! two must agree.

mod backend;
mod cassettes;
pub mod model;
mod native;
mod scenario;
mod wasm;

pub use backend::{FlakyBackend, Outage, RouteHost};
pub use cassettes::replay_cassette_dir;
pub use native::NativeEndpoint;
pub use scenario::{Lifecycle, code, json};
pub use wasm::{WasmEndpoint, WasmOptions, from_http, to_http, workspace_root};

use koogallery_core::http::{Inbound, Outbound};

/// The key every test signs with (test-vectors `AK`).
pub const AK: &str = "1234567890abcdef1234567890abcdef";

/// Something that answers production-interface requests, with a clock and a store the test can inspect.
pub trait Endpoint {
    /// Sends one request and returns the answer.
    fn send(&self, req: &Inbound) -> Outbound;
    /// Sets the wall clock the handler sees (ms epoch).
    fn set_now(&self, ms: u64);
    /// The handler's current wall clock (ms epoch).
    fn now(&self) -> u64;
    /// Every key in the store.
    fn keys(&self) -> Vec<String>;
    /// A stored value.
    fn value(&self, key: &str) -> Option<Vec<u8>>;
}
