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
//! * [`routing`]: Spin's route matching and `spin-*` headers.
//! * [`app`]: engine, pre-instantiated components, one instance per request.
//! * [`kv`]: key-value backends (memory, file, Redis); [`outbound`]: allow-list, handler, recorder;
//!   [`clock`]: the guest's wall clock.
//! * [`cli`], [`commands`], [`exit_codes`], [`server`]: the `harness` binary; [`signing`], [`samples`],
//!   [`cassette`]: `sign` and `replay`.

pub mod app;
pub mod cassette;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod exit_codes;
pub mod kv;
pub mod manifest;
pub mod outbound;
pub mod routing;
pub mod runtime_config;
pub mod samples;
pub mod server;
pub mod signing;
pub mod template;
pub mod variables;

mod host;

pub use app::{App, AppBuilder};
pub use clock::VirtualClock;
pub use kv::{KvBackend, KvOp, MemoryKv};
pub use outbound::{OutboundHandler, OutboundRecorder};
