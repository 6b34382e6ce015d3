//! Key-value backends behind `spin:key-value@3.0.0` and `wasi:keyvalue/{store,atomics}@0.2.0-draft2`.
//!
//! Every store label a component opens, through either interface, maps to one [`KvBackend`]. Which backend is chosen by `type` in
//! `runtime-config.toml`, as Spin reads it (see [`crate::runtime_config`]):
//!
//! | `type` | backend | notes |
//! |---|---|---|
//! | `spin` | [`SqliteKv`] at `path` | Spin's SQLite file, table and encoding: shared with `spin up`; no `path` = in memory, like Spin |
//! | `redis` | [`RedisKv`] at `url` | shares state between nodes |
//! | `memory` | [`MemoryKv`] | the harness's own, for tests: inspectable, failure injection |
//!
//! Without a runtime config, `harness up` backs the `default` label with Spin's default file,
//! `<state dir>/sqlite_key_value.db` (`--state-dir`, default `<manifest dir>/.spin/`), so state survives restarts
//! and `spin up` on the same state directory continues where `harness up` stopped (and back).
//!
//! Backend errors reach the guest as `error::other(<message>)` (from `swap`: `store-error(other(<message>))`); the
//! label checks (`access-denied`,
//! `no-such-store`) happen before a backend is involved.

mod backend;
mod memory;
mod open;
mod redis;
mod sqlite;

pub use backend::{KvBackend, KvError, KvOp};
pub use memory::{KvCall, MemoryKv, OpMatch};
pub use open::{
    DEFAULT_STATE_DIR, DEFAULT_STORE_FILE, KvStore, OpenedStores, STORE_FILE_NAME, StoreOpenError, describe, open,
    open_stores,
};
pub use redis::RedisKv;
pub use sqlite::{BUSY_TIMEOUT, SqliteKv};
