//! # harness: a local Spin host for the KooGallery components
//!
//! A wasmtime 48 host that runs the project's Spin (spin-sdk 7, WASIp3) components without a Spin binary, plus the
//! test driver built on it. The same [`app::App`] backs the `harness up` command (the local runner), the
//! integration tests (in-process, with a virtual clock, inspectable key-value stores and a stubbed network), and
//! the `replay` command.
//!
//! Module map:
//!
//! * [`manifest`], [`template`], [`runtime_config`], [`variables`]: reading `spin.toml` and
//!   `runtime-config.toml` as Spin does, validated before anything is loaded.
//! * [`app`]: the builder, the engine and component cache, request execution ([`App::send`]); [`routing`]:
//!   Spin's route matching and `spin-*` headers.
//! * [`kv`]: key-value backends (memory, file, Redis) and opening them from the runtime config; [`outbound`]:
//!   allow-list, handler, recorder; [`clock`]: the guest's wall clock.
//! * [`cassette`]: recorded requests and their replay (the `replay` command and the conformance tests).
//! * [`oneaccess`]: a mock OneAccess (the tenant's identity provider) for the SSO component's tests and the
//!   `oneaccess` command.
//! * [`upstream`]: a mock OpenAI-compatible model server for the agents gateway's tests and the `upstream` command.
//! * [`marketplace`]: a mock marketplace OpenAPI (query order, usage push, license activate/heartbeat) that verifies
//!   the AK/SK and body signatures with its own code, for the usage and license tests and the `marketplace` command.
//! * [`exit_codes`] and [`main`]: the `harness` binary. Its commands, the HTTP server of `up` and the request
//!   samples of `sign` are private to the binary.

pub mod app;
pub mod cassette;
pub mod clock;
pub mod exit_codes;
pub mod kv;
pub mod manifest;
pub mod marketplace;
pub mod oneaccess;
pub mod outbound;
pub mod routing;
pub mod runtime_config;
pub mod template;
pub mod upstream;
pub mod variables;

mod cli;
mod commands;
mod host;
mod mock_server;
mod server;

pub use app::{App, AppBuilder};
pub use clock::VirtualClock;
pub use kv::{KvBackend, KvOp, MemoryKv};
pub use outbound::{OutboundHandler, OutboundRecorder};

/// Runs the `harness` command line on the process arguments and returns the exit code (see [`exit_codes`]).
pub fn main() -> i32 {
    use clap::Parser as _;
    cli::Cli::parse().run()
}
