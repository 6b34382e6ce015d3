//! A loaded application: every component compiled once, pre-instantiated, and served by instances reused as Spin 4
//! reuses them (up to 128 requests each, 16 at once; see `instances.rs`).
//!
//! The parts: [`AppBuilder`] (configuration and validation, `builder.rs`), the engine and the per-process
//! component cache (`engine.rs`), instance reuse (`instances.rs`), request execution ([`App::send`], [`App::serve`], `serve.rs`); stores are opened by
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

mod application;
mod builder;
mod engine;
mod instances;
mod serve;

pub use crate::kv::{DEFAULT_STORE_FILE, KvStore};
pub use application::{App, Served};
pub use builder::{AppBuilder, BuildError};
pub(crate) use serve::full_body;
