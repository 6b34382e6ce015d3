//! Opening the stores an app uses: explicit builder stores, then `runtime-config.toml`, then the `default` fallback.

use super::backend::{KvBackend, KvError};
use super::memory::MemoryKv;
use super::redis::RedisKv;
use super::sqlite::SqliteKv;
use crate::runtime_config::{KvStoreConfig, RuntimeConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The state directory `up` uses without `--state-dir`, relative to the manifest directory (as `spin up`).
pub const DEFAULT_STATE_DIR: &str = ".spin";

/// The `default` store's file name inside the state directory: Spin's (`DEFAULT_SPIN_STORE_FILENAME` in
/// `crates/runtime-config/src/lib.rs`), so `harness up` and `spin up` on one state directory share the store.
pub const STORE_FILE_NAME: &str = "sqlite_key_value.db";

/// Where the `up` default store lives without `--state-dir`, relative to the manifest directory
/// (`DEFAULT_STATE_DIR/STORE_FILE_NAME`; a unit test keeps the three in step).
pub const DEFAULT_STORE_FILE: &str = ".spin/sqlite_key_value.db";

/// A key-value store handed to the builder.
#[derive(Debug, Clone)]
pub enum KvStore {
    /// An inspectable in-memory store (kept retrievable through [`crate::App::memory_kv`]).
    Memory(MemoryKv),
    /// Any other backend.
    Backend(Arc<dyn KvBackend>),
}

impl From<MemoryKv> for KvStore {
    fn from(m: MemoryKv) -> Self {
        Self::Memory(m)
    }
}

impl From<SqliteKv> for KvStore {
    fn from(s: SqliteKv) -> Self {
        Self::Backend(Arc::new(s))
    }
}

impl From<RedisKv> for KvStore {
    fn from(r: RedisKv) -> Self {
        Self::Backend(Arc::new(r))
    }
}

impl From<Arc<dyn KvBackend>> for KvStore {
    fn from(b: Arc<dyn KvBackend>) -> Self {
        Self::Backend(b)
    }
}

/// Creates the backend `config` names for the store `label` (a SQLite file holds every label's rows, told apart
/// by label). Redis connects lazily, so this does no network I/O.
///
/// # Errors
/// The backend's error (an unopenable file, a malformed Redis URL).
pub fn open(label: &str, config: &KvStoreConfig) -> Result<Arc<dyn KvBackend>, KvError> {
    Ok(match config {
        KvStoreConfig::Spin { path: Some(path) } => Arc::new(SqliteKv::open(path, label)?),
        KvStoreConfig::Spin { path: None } => Arc::new(SqliteKv::in_memory(label)?),
        KvStoreConfig::Memory => Arc::new(MemoryKv::new()),
        KvStoreConfig::Redis { url } => Arc::new(RedisKv::new(url)?),
    })
}

/// A one-line description of `config` for start-up output (credentials redacted).
pub fn describe(config: &KvStoreConfig) -> String {
    match config {
        KvStoreConfig::Spin { path: Some(p) } => format!("SQLite file {} (Spin's format)", p.display()),
        KvStoreConfig::Spin { path: None } => "in-memory SQLite (type = \"spin\" without path, as Spin)".to_owned(),
        KvStoreConfig::Memory => "in-memory".to_owned(),
        KvStoreConfig::Redis { url } => match RedisKv::new(url) {
            Ok(r) => format!("redis {}", r.url()),
            Err(_) => "redis (invalid url)".to_owned(),
        },
    }
}

/// A store label whose backend could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("key-value store `{label}`: {source}")]
pub struct StoreOpenError {
    /// The label.
    pub label: String,
    /// The backend error.
    pub source: KvError,
}

/// Every store of an app, by label.
#[derive(Debug, Default)]
pub struct OpenedStores {
    /// The backend serving each label.
    pub backends: BTreeMap<String, Arc<dyn KvBackend>>,
    /// The labels backed by an inspectable in-memory store.
    pub memory: BTreeMap<String, MemoryKv>,
    /// A start-up description of each label's backend.
    pub descriptions: BTreeMap<String, String>,
}

/// Opens every configured store: `explicit` builder stores, then `runtime_config`, then the `default` fallback (the
/// SQLite file `default_file` when given, else memory).
///
/// Labels on the same SQLite file share its connections (Spin keeps them in one table, told apart by label).
///
/// # Errors
/// The first label whose backend cannot be opened; for `default_file`, the message says how to choose another
/// state directory.
pub fn open_stores(
    runtime_config: &RuntimeConfig,
    explicit: BTreeMap<String, KvStore>,
    default_file: Option<&Path>,
) -> Result<OpenedStores, StoreOpenError> {
    let mut stores: BTreeMap<String, Arc<dyn KvBackend>> = BTreeMap::new();
    let mut memory = BTreeMap::new();
    let mut described = BTreeMap::new();
    let mut files = SqliteFiles::default();
    for (label, store) in explicit {
        match store {
            KvStore::Memory(m) => {
                stores.insert(label.clone(), Arc::new(m.clone()));
                memory.insert(label.clone(), m);
                described.insert(label, "in-memory".to_owned());
            }
            KvStore::Backend(b) => {
                described.insert(label.clone(), format!("{b:?}"));
                stores.insert(label, b);
            }
        }
    }
    for (label, config) in &runtime_config.key_value_stores {
        if stores.contains_key(label) {
            continue;
        }
        let opened = match config {
            KvStoreConfig::Spin { path: Some(path) } => files.open(path, label).map(|kv| Arc::new(kv) as _),
            other => open(label, other),
        };
        let backend = opened.map_err(|source| StoreOpenError { label: label.clone(), source })?;
        described.insert(label.clone(), describe(config));
        stores.insert(label.clone(), backend);
    }
    if !stores.contains_key("default") {
        let label = "default".to_owned();
        match default_file {
            Some(path) => {
                let kv = files
                    .open(path, &label)
                    .map_err(|e| StoreOpenError { label: label.clone(), source: with_state_dir_hint(e) })?;
                described.insert(label.clone(), describe(&KvStoreConfig::Spin { path: Some(path.to_path_buf()) }));
                stores.insert(label, Arc::new(kv));
            }
            None => {
                let m = MemoryKv::new();
                stores.insert(label.clone(), Arc::new(m.clone()));
                memory.insert(label.clone(), m);
                described.insert(label, describe(&KvStoreConfig::Memory));
            }
        }
    }
    Ok(OpenedStores { backends: stores, memory, descriptions: described })
}

/// The SQLite files opened so far, so a second label on one file reuses its connections.
#[derive(Default)]
struct SqliteFiles(BTreeMap<PathBuf, SqliteKv>);

impl SqliteFiles {
    fn open(&mut self, path: &Path, label: &str) -> Result<SqliteKv, KvError> {
        if let Some(kv) = self.0.get(path) {
            return Ok(kv.store(label));
        }
        let kv = SqliteKv::open(path, label)?;
        self.0.insert(path.to_owned(), kv.clone());
        Ok(kv)
    }
}

/// Adds to a failure to open the default store file how to put it elsewhere (the file is in the state directory).
fn with_state_dir_hint(e: KvError) -> KvError {
    match e {
        KvError::Sqlite { path, message } => KvError::Sqlite {
            path,
            message: format!("{message} (choose another state directory with `--state-dir <DIR>`)"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_store_file_is_the_store_file_in_the_default_state_dir() {
        assert_eq!(DEFAULT_STORE_FILE, format!("{DEFAULT_STATE_DIR}/{STORE_FILE_NAME}"));
    }

    #[test]
    fn an_unopenable_default_file_is_named_with_the_way_out() {
        let dir = std::env::temp_dir().join(format!("harness-open-{}", uuid::Uuid::new_v4()));
        let file = dir.join("not-a-dir");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(&file, "a file where the state directory should be").expect("file");
        let path = file.join(STORE_FILE_NAME);
        let err = open_stores(&RuntimeConfig::default(), BTreeMap::new(), Some(&path)).expect_err("cannot open");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("--state-dir"), "{message}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
