//! Opening the stores an app uses: explicit builder stores, then `runtime-config.toml`, then the `default` fallback.

use super::backend::{KvBackend, KvError};
use super::file::FileKv;
use super::memory::MemoryKv;
use super::redis::RedisKv;
use crate::runtime_config::{KvStoreConfig, RuntimeConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The state directory `up` uses without `--state-dir`, relative to the manifest directory (as `spin up`).
pub const DEFAULT_STATE_DIR: &str = ".spin";

/// The `default` store's file name inside the state directory.
pub const STORE_FILE_NAME: &str = "key_value.redb";

/// Where the `up` default store lives without `--state-dir`, relative to the manifest directory
/// (`DEFAULT_STATE_DIR/STORE_FILE_NAME`; a unit test keeps the three in step).
pub const DEFAULT_STORE_FILE: &str = ".spin/key_value.redb";

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

impl From<FileKv> for KvStore {
    fn from(f: FileKv) -> Self {
        Self::Backend(Arc::new(f))
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

/// Creates the backend `config` names. Redis connects lazily, so this does no network I/O.
///
/// # Errors
/// The backend's error (an unopenable file, a malformed Redis URL).
pub fn open(config: &KvStoreConfig) -> Result<Arc<dyn KvBackend>, KvError> {
    Ok(match config {
        KvStoreConfig::Spin { path: Some(path) } => Arc::new(FileKv::open(path)?),
        KvStoreConfig::Spin { path: None } | KvStoreConfig::Memory => Arc::new(MemoryKv::new()),
        KvStoreConfig::Redis { url } => Arc::new(RedisKv::new(url)?),
    })
}

/// A one-line description of `config` for start-up output (credentials redacted).
pub fn describe(config: &KvStoreConfig) -> String {
    match config {
        KvStoreConfig::Spin { path: Some(p) } => format!("file {}", p.display()),
        KvStoreConfig::Spin { path: None } => "in-memory (type = \"spin\" without path)".to_owned(),
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

/// Opens every configured store: `explicit` builder stores, then `runtime_config`, then the `default` fallback (a
/// file `default_file` when given, else memory).
///
/// # Errors
/// The first label whose backend cannot be opened.
pub fn open_stores(
    runtime_config: &RuntimeConfig,
    explicit: BTreeMap<String, KvStore>,
    default_file: Option<&Path>,
) -> Result<OpenedStores, StoreOpenError> {
    let mut stores: BTreeMap<String, Arc<dyn KvBackend>> = BTreeMap::new();
    let mut memory = BTreeMap::new();
    let mut described = BTreeMap::new();
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
        let backend = open(config).map_err(|source| StoreOpenError { label: label.clone(), source })?;
        described.insert(label.clone(), describe(config));
        stores.insert(label.clone(), backend);
    }
    if !stores.contains_key("default") {
        let config = match default_file {
            Some(path) => KvStoreConfig::Spin { path: Some(path.to_path_buf()) },
            None => KvStoreConfig::Memory,
        };
        if default_file.is_some() {
            let backend = open(&config).map_err(|source| StoreOpenError { label: "default".to_owned(), source })?;
            stores.insert("default".to_owned(), backend);
        } else {
            let m = MemoryKv::new();
            stores.insert("default".to_owned(), Arc::new(m.clone()));
            memory.insert("default".to_owned(), m);
        }
        described.insert("default".to_owned(), describe(&config));
    }
    Ok(OpenedStores { backends: stores, memory, descriptions: described })
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_STATE_DIR, DEFAULT_STORE_FILE, STORE_FILE_NAME};

    #[test]
    fn default_store_file_is_the_store_file_in_the_default_state_dir() {
        assert_eq!(DEFAULT_STORE_FILE, format!("{DEFAULT_STATE_DIR}/{STORE_FILE_NAME}"));
    }
}
