//! The application under a real runner: `harness up` or `spin up` as a child process, with the same `spin.toml`,
//! the same built components and the same variables, so one suite can run against both and compare them.
//!
//! * [`RunnerKind`] and [`locate`]: which binary runs the app (Spin from `SPIN`, `PATH` or the project workspace's
//!   `../shared/tools/spin`; the harness from `target/release/harness`).
//! * [`Runner::start`]: a fresh temporary `--state-dir`, a free port, variables as `SPIN_VARIABLE_<NAME>` (nothing
//!   inherited), the `default` store on the runner's own file store or on Redis ([`Store`]), and optionally a
//!   pinned wall clock ([`PinnedClock`], libfaketime), so recorded requests can be re-signed at recorded times.
//! * [`Runner::send`], and [`harness::cassette::Target`] for cassettes; [`Runner::stop`] returns the final
//!   key-value state ([`StateDump`]) read from the runner's own storage (the SQLite file both runners keep in the
//!   state directory, or Redis).
//!
//! Nothing here is a copy of either runner: the processes are the real binaries, unmodified. Set
//! `KEEP_RUNNER_STATE=1` to keep each runner's state directory (`runner.log`, store files) after the test.

mod binary;
mod client;
mod clock;
mod process;
mod redis_server;
mod state;

pub use binary::{Located, RunnerKind, SPIN_REQUIRED_ENV, locate, spin_or_skip, workspace_root};
pub use client::HttpClient;
pub use clock::PinnedClock;
pub use process::{Runner, RunnerOptions};
pub use redis_server::RedisServer;
pub use state::{StateDump, Store};
