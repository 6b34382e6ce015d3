//! The embedded file backend (`type = "spin"`): Spin's own SQLite key-value file, so `harness up` and `spin up`
//! read and write the same state.
//!
//! The layout is the one of Spin 4.1's `crates/key-value-spin/src/store.rs` (read, not copied): every
//! `type = "spin"` store of one file lives in the table
//! `spin_key_value(store TEXT, key TEXT, value BLOB, PRIMARY KEY (store, key))`, `store` being the store label;
//! values are the guest's bytes as they are; an `increment` counter is the 8 little-endian bytes of an `i64`.
//!
//! Several connections (requests of this process, other harness processes, a `spin up`) may use one file at once:
//! SQLite locks it per transaction, and a connection that finds it locked retries for [`BUSY_TIMEOUT`] (the timeout
//! Spin's connections have: rusqlite sets 5 s on every connection it opens, and Spin keeps that). The journal mode
//! stays SQLite's default (rollback journal), as Spin leaves it: WAL would be written into the file and change it
//! for Spin too.

use super::backend::{KvBackend, KvError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

/// How long an operation waits for a lock another connection (or process) holds before it fails with
/// `database is locked`: Spin's value (rusqlite's default, which `crates/key-value-spin` does not change).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many idle connections are kept per file; a busier moment opens more and closes them afterwards.
const MAX_IDLE: usize = 4;

/// The table, as `crates/key-value-spin/src/store.rs` creates it (so either runner may create the file).
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL,
    key   TEXT NOT NULL,
    value BLOB NOT NULL,

    PRIMARY KEY (store, key)
)";

const SELECT_VALUE: &str = "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2";
const UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
    ON CONFLICT (store, key) DO UPDATE SET value = excluded.value";

/// One label's store in a SQLite key-value file (or in memory), in Spin's layout.
///
/// Cheap to clone; [`SqliteKv::store`] gives another label on the same connections. Each operation is one
/// SQLite transaction, durable when it returns; `swap_if` and `increment` read and write in one `BEGIN IMMEDIATE`
/// transaction, so no other connection or process writes in between.
#[derive(Clone)]
pub struct SqliteKv {
    label: Arc<str>,
    db: Arc<Db>,
}

impl std::fmt::Debug for SqliteKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteKv").field("db", &self.db.name()).field("label", &self.label).finish_non_exhaustive()
    }
}

/// Where the rows live, and the connections to them.
enum Db {
    /// A file: a small pool of connections, so this process's reads run side by side.
    ///
    /// `gate` orders this process's own operations as SQLite's file lock would (reads together, one write at a time
    /// and alone), but queued instead of retried on `SQLITE_BUSY`: contention inside the process costs neither the
    /// busy handler's sleeps (tens of ms under load) nor its timeout. Other processes meet at the file lock; while a
    /// write of this process waits for one, this process's reads wait too.
    File { path: PathBuf, idle: Mutex<Vec<Connection>>, gate: RwLock<()> },
    /// An in-memory database (`type = "spin"` without `path`, as Spin): it exists only in its one connection.
    Memory(Mutex<Connection>),
}

/// Whether an operation writes (see `gate` in [`Db::File`]).
#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
}

/// Why a blocking operation stopped: SQLite failed, or the data is not what the operation needs.
enum Fail {
    Sql(rusqlite::Error),
    Kv(KvError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

/// Locks `m`; a panic elsewhere while it was held leaves nothing half-done here (SQLite rolls back what a dropped
/// transaction did), so a poisoned lock is used as it is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection with Spin's settings (the busy timeout).
fn connect(path: Option<&Path>) -> rusqlite::Result<Connection> {
    let conn = match path {
        Some(p) => Connection::open(p)?,
        None => Connection::open_in_memory()?,
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

impl Db {
    /// The file, or `:memory:`, for messages.
    fn name(&self) -> String {
        match self {
            Db::File { path, .. } => path.display().to_string(),
            Db::Memory(_) => ":memory:".to_owned(),
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> KvError {
        KvError::Sqlite { path: self.name(), message: message.to_string() }
    }

    /// Runs `f` on a connection (blocking).
    fn with<T>(&self, access: Access, f: impl FnOnce(&mut Connection) -> Result<T, Fail>) -> Result<T, KvError> {
        let outcome = match self {
            Db::Memory(conn) => f(&mut lock(conn)),
            Db::File { path, idle, gate } => {
                // A poisoned gate guards no data (see `lock`).
                let _turn = match access {
                    Access::Read => (Some(gate.read().unwrap_or_else(PoisonError::into_inner)), None),
                    Access::Write => (None, Some(gate.write().unwrap_or_else(PoisonError::into_inner))),
                };
                let pooled = lock(idle).pop();
                let mut conn = match pooled {
                    Some(c) => c,
                    None => connect(Some(path)).map_err(|e| self.error(e))?,
                };
                let outcome = f(&mut conn);
                let mut idle = lock(idle);
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
                outcome
            }
        };
        outcome.map_err(|fail| match fail {
            Fail::Sql(e) => self.error(e),
            Fail::Kv(e) => e,
        })
    }
}

/// The value of `key` in `store`, inside whatever transaction `conn` is in.
fn read(conn: &Connection, store: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached(SELECT_VALUE)?.query_row(params![store, key], |row| row.get(0)).optional()
}

/// Sets `key` in `store`, inside whatever transaction `conn` is in.
fn write(conn: &Connection, store: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached(UPSERT)?.execute(params![store, key, value]).map(drop)
}

/// Reads a counter as Spin's SQLite store writes it: the 8 little-endian bytes of an `i64`.
///
/// # Errors
/// [`KvError::NotACounter`] for a value of another length (where Spin 4.1's host panics: `expect("incorrect
/// length")` in `crates/key-value-spin/src/store.rs`).
pub(crate) fn parse_le_counter(value: &[u8]) -> Result<i64, KvError> {
    <[u8; 8]>::try_from(value).map(i64::from_le_bytes).map_err(|_| KvError::NotACounter { len: value.len() })
}

impl SqliteKv {
    /// Opens (or creates, with its parent directories, as Spin does) the SQLite key-value file at `path` and
    /// returns the store `label` in it.
    ///
    /// # Errors
    /// [`KvError::Sqlite`] if the directory cannot be created, or the file cannot be opened or is not a SQLite
    /// database with (or without, then it is created) the `spin_key_value` table.
    pub fn open(path: &Path, label: &str) -> Result<Self, KvError> {
        let err = |message: String| KvError::Sqlite { path: path.display().to_string(), message };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create directory: {e}")))?;
        }
        let conn = connect(Some(path)).map_err(|e| err(e.to_string()))?;
        conn.execute(CREATE_TABLE, []).map_err(|e| err(e.to_string()))?;
        let db = Db::File { path: path.to_owned(), idle: Mutex::new(vec![conn]), gate: RwLock::new(()) };
        Ok(Self { label: label.into(), db: Arc::new(db) })
    }

    /// A store `label` in a new in-memory database, gone when the last handle is dropped: Spin's `type = "spin"`
    /// without `path` (same encoding, notably of counters).
    ///
    /// # Errors
    /// [`KvError::Sqlite`] if SQLite cannot set it up (out of memory).
    pub fn in_memory(label: &str) -> Result<Self, KvError> {
        let err = |e: rusqlite::Error| KvError::Sqlite { path: ":memory:".to_owned(), message: e.to_string() };
        let conn = connect(None).map_err(err)?;
        conn.execute(CREATE_TABLE, []).map_err(err)?;
        Ok(Self { label: label.into(), db: Arc::new(Db::Memory(Mutex::new(conn))) })
    }

    /// The store `label` in the same database, on the same connections (Spin keeps every `type = "spin"` store
    /// of one file in one table, told apart by the `store` column).
    pub fn store(&self, label: &str) -> Self {
        Self { label: label.into(), db: Arc::clone(&self.db) }
    }

    /// The database file; `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        match &*self.db {
            Db::File { path, .. } => Some(path),
            Db::Memory(_) => None,
        }
    }

    /// The store label: the `store` column of this store's rows.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs a blocking database operation on a blocking-pool thread, so the async executor keeps serving other
    /// requests while SQLite works or waits for a lock.
    async fn run<T: Send + 'static>(
        &self,
        access: Access,
        f: impl FnOnce(&str, &mut Connection) -> Result<T, Fail> + Send + 'static,
    ) -> Result<T, KvError> {
        let (db, label) = (Arc::clone(&self.db), Arc::clone(&self.label));
        match tokio::task::spawn_blocking(move || db.with(access, |conn| f(&label, conn))).await {
            Ok(outcome) => outcome,
            Err(e) => Err(self.db.error(format!("worker failed: {e}"))),
        }
    }
}

#[async_trait]
impl KvBackend for SqliteKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let key = key.to_owned();
        self.run(Access::Read, move |store, conn| Ok(read(conn, store, &key)?)).await
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.run(Access::Write, move |store, conn| Ok(write(conn, store, &key, &value)?)).await
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        let key = key.to_owned();
        self.run(Access::Write, move |store, conn| {
            let sql = "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2";
            Ok(conn.prepare_cached(sql)?.execute(params![store, key]).map(drop)?)
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        let key = key.to_owned();
        self.run(Access::Read, move |store, conn| {
            let sql = "SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2";
            Ok(conn.prepare_cached(sql)?.query_row(params![store, key], |_| Ok(())).optional()?.is_some())
        })
        .await
    }

    async fn get_keys(&self) -> Result<Vec<String>, KvError> {
        self.run(Access::Read, |store, conn| {
            let mut query = conn.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?;
            let keys = query.query_map(params![store], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
            Ok(keys)
        })
        .await
    }

    async fn swap_if(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, KvError> {
        let (key, expected, value) = (key.to_owned(), expected.map(<[u8]>::to_vec), value.to_vec());
        // `BEGIN IMMEDIATE` takes the write lock before reading: no connection of any process writes between the
        // comparison and the write. (Spin's own swap is a conditional `UPDATE`, and an upsert when the `cas` saw no
        // value; the harness emulates that on request, in the host: `AppBuilder::spin_sqlite_swap_upsert`.)
        self.run(Access::Write, move |store, conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if read(&tx, store, &key)? != expected {
                return Ok(false); // dropping `tx` rolls it back
            }
            write(&tx, store, &key, &value)?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        let key = key.to_owned();
        self.run(Access::Write, move |store, conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = read(&tx, store, &key)?.as_deref().map_or(Ok(0), parse_le_counter).map_err(Fail::Kv)?;
            // Spin's release build wraps on overflow; an error (as on the other stores) loses nothing silently.
            let next = current.checked_add(delta).ok_or(Fail::Kv(KvError::IncrementOverflow))?;
            write(&tx, store, &key, &next.to_le_bytes())?;
            tx.commit()?;
            Ok(next)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime")
    }

    #[test]
    fn survives_reopen_and_keeps_labels_apart() {
        let dir = std::env::temp_dir().join(format!("harness-sqlitekv-{}", uuid::Uuid::new_v4()));
        let path = dir.join("nested/kv.db");
        let rt = runtime();
        rt.block_on(async {
            let kv = SqliteKv::open(&path, "default").expect("open");
            kv.set("a", b"1").await.expect("set");
            kv.set("b", b"2").await.expect("set");
            kv.delete("b").await.expect("delete");
            kv.delete("never-there").await.expect("delete absent");
            kv.store("other").set("a", b"other").await.expect("set other label");
        });
        rt.block_on(async {
            let kv = SqliteKv::open(&path, "default").expect("reopen");
            assert_eq!(kv.get("a").await.expect("get"), Some(b"1".to_vec()));
            assert!(!kv.exists("b").await.expect("exists"));
            assert!(kv.exists("a").await.expect("exists"));
            assert_eq!(kv.get_keys().await.expect("keys"), ["a"]);
            let other = SqliteKv::open(&path, "other").expect("other label");
            assert_eq!(other.get("a").await.expect("get"), Some(b"other".to_vec()));
            assert!(SqliteKv::open(&path, "third").expect("open").get_keys().await.expect("keys").is_empty());
        });
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn counters_are_eight_little_endian_bytes_and_anything_else_is_an_error() {
        assert_eq!(parse_le_counter(&(-2i64).to_le_bytes()).ok(), Some(-2));
        for bad in [&b""[..], b"1", b"1234567", b"123456789"] {
            assert!(matches!(parse_le_counter(bad), Err(KvError::NotACounter { len }) if len == bad.len()));
        }
        runtime().block_on(async {
            let kv = SqliteKv::in_memory("default").expect("memory");
            assert_eq!(kv.increment("n", 5).await.expect("increment"), 5);
            assert_eq!(kv.get("n").await.expect("get"), Some(5i64.to_le_bytes().to_vec()));
            kv.set("text", b"41").await.expect("set");
            assert!(matches!(kv.increment("text", 1).await, Err(KvError::NotACounter { len: 2 })));
            assert_eq!(kv.get("text").await.expect("get"), Some(b"41".to_vec()), "unchanged");
            kv.set("max", &i64::MAX.to_le_bytes()).await.expect("set");
            assert!(matches!(kv.increment("max", 1).await, Err(KvError::IncrementOverflow)));
            assert!(kv.store("elsewhere").get("n").await.expect("get").is_none(), "labels are apart in memory too");
        });
    }
}
