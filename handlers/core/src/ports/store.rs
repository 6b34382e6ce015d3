//! The key-value store behind every handler, as a trait.
//!
//! Spin's key-value interface has no compare-and-swap, so this trait deliberately offers only `get`, `set` and
//! `delete`: handlers stay correct under concurrent duplicates by deriving identities deterministically and by
//! writing idempotent merges (see `lifecycle`), never by check-then-insert.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A store operation failed; the handler answers `000005` and the marketplace retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key-value store error: {0}")]
pub struct StoreError(pub String);

/// Byte-valued key-value storage (Spin `key-value`, Redis, memory).
#[allow(async_fn_in_trait)] // components are single-threaded; no `Send` bound is wanted
pub trait Store {
    /// Reads a value.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes a value, replacing any previous one.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Deletes a key; deleting a missing key succeeds.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// An in-process store for native tests and benchmarks.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every entry, for assertions.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.entries.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let map = self.entries.lock().map_err(|_| StoreError("poisoned".into()))?;
        Ok(map.get(key).cloned())
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut map = self.entries.lock().map_err(|_| StoreError("poisoned".into()))?;
        map.insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut map = self.entries.lock().map_err(|_| StoreError("poisoned".into()))?;
        map.remove(key);
        Ok(())
    }
}

impl<S: Store + ?Sized> Store for &S {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key).await
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        (**self).set(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        (**self).delete(key).await
    }
}
