//! The key-value store behind every handler, as a trait.
//!
//! Besides `get`, `set` and `delete` the trait offers compare-and-swap ([`Store::begin_swap`], [`Store::swap`]),
//! which Spin hosts provide through `wasi:keyvalue/atomics@0.2.0-draft2`. Handlers never call these directly: every
//! read-modify-write of shared state goes through [`crate::ports::atomic::update`], which adds the bounded retry and
//! the write-token check that keeps it correct on hosts whose swap misreports conflicts (Spin 4.1's Redis store).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A store operation failed; the handler answers `000005` and the marketplace retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key-value store error: {0}")]
pub struct StoreError(pub String);

/// What a [`Store::swap`] did.
#[derive(Debug)]
pub enum Swap<C> {
    /// The value was written.
    Written,
    /// The host reports that the key changed since the swap began. The write may still have happened on a host
    /// with a faulty swap (see [`crate::ports::atomic`]); `current` is the key's value now, `cas` a fresh handle.
    Conflict {
        /// The key's value as read again.
        current: Option<Vec<u8>>,
        /// A handle to retry with.
        cas: C,
    },
}

/// Deletes up to `batch` keys that `expired` picks from the key listing (the sweeps of expiring entries whose keys
/// carry their time); returns how many.
///
/// # Errors
/// [`StoreError`] when the store fails; what was deleted stays deleted.
pub async fn delete_listed<S: Store + ?Sized>(
    store: &S,
    batch: usize,
    expired: impl Fn(&str) -> bool,
) -> Result<usize, StoreError> {
    let keys: Vec<String> = store.keys().await?.into_iter().filter(|k| expired(k)).take(batch).collect();
    for key in &keys {
        store.delete(key).await?;
    }
    Ok(keys.len())
}

/// Byte-valued key-value storage (Spin `key-value` plus `wasi:keyvalue` atomics, Redis, memory).
#[allow(async_fn_in_trait)] // components are single-threaded; no `Send` bound is wanted
pub trait Store {
    /// A compare-and-swap in progress: what the host needs to check that the key did not change.
    type Cas;

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
    /// Every key in the store (Spin lists them all; callers filter by prefix).
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    async fn keys(&self) -> Result<Vec<String>, StoreError>;
    /// Begins a compare-and-swap on `key`: its current value and the handle to [`swap`](Self::swap) with.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    async fn begin_swap(&self, key: &str) -> Result<(Option<Vec<u8>>, Self::Cas), StoreError>;
    /// Adds `delta` to the counter under `key` (a missing key counts as 0) and returns the new value, atomically.
    /// Only for keys that never hold anything but a counter (hosts store it in their own format).
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// Writes `value` if the key still holds what [`begin_swap`](Self::begin_swap) read.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails (not for a conflict, which is [`Swap::Conflict`]).
    async fn swap(&self, cas: Self::Cas, value: &[u8]) -> Result<Swap<Self::Cas>, StoreError>;
    /// Waits about `ms` milliseconds before the caller looks at a key again that another request is writing (see
    /// [`super::atomic::update`]). Stores used by one request at a time return at once.
    async fn pause(&self, ms: u64) {
        let _ = ms;
    }
}

/// An in-process store for native tests and benchmarks, with a correct compare-and-swap.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

/// A [`MemoryStore`] compare-and-swap: the key and the value it had when the swap began.
#[derive(Debug)]
pub struct MemoryCas {
    key: String,
    expected: Option<Vec<u8>>,
}

impl MemoryCas {
    /// The key being swapped.
    pub fn key(&self) -> &str {
        &self.key
    }
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

    fn map(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>>, StoreError> {
        self.entries.lock().map_err(|_| StoreError("poisoned".into()))
    }
}

impl Store for MemoryStore {
    type Cas = MemoryCas;

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map()?.get(key).cloned())
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.map()?.insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.map()?.remove(key);
        Ok(())
    }
    async fn keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.map()?.keys().cloned().collect())
    }
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let mut map = self.map()?;
        let now = match map.get(key) {
            None => 0,
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or_else(|| StoreError(format!("{key} is not a counter")))?,
        };
        let next = now.checked_add(delta).ok_or_else(|| StoreError(format!("{key} would overflow")))?;
        map.insert(key.to_owned(), next.to_string().into_bytes());
        Ok(next)
    }
    async fn begin_swap(&self, key: &str) -> Result<(Option<Vec<u8>>, MemoryCas), StoreError> {
        let current = self.map()?.get(key).cloned();
        Ok((current.clone(), MemoryCas { key: key.to_owned(), expected: current }))
    }
    async fn swap(&self, cas: MemoryCas, value: &[u8]) -> Result<Swap<MemoryCas>, StoreError> {
        let mut map = self.map()?;
        let now = map.get(&cas.key).cloned();
        if now == cas.expected {
            map.insert(cas.key, value.to_vec());
            return Ok(Swap::Written);
        }
        Ok(Swap::Conflict { current: now.clone(), cas: MemoryCas { key: cas.key, expected: now } })
    }
}

impl<S: Store + ?Sized> Store for &S {
    type Cas = S::Cas;

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key).await
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        (**self).set(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        (**self).delete(key).await
    }
    async fn keys(&self) -> Result<Vec<String>, StoreError> {
        (**self).keys().await
    }
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        (**self).increment(key, delta).await
    }
    async fn begin_swap(&self, key: &str) -> Result<(Option<Vec<u8>>, S::Cas), StoreError> {
        (**self).begin_swap(key).await
    }
    async fn swap(&self, cas: S::Cas, value: &[u8]) -> Result<Swap<S::Cas>, StoreError> {
        (**self).swap(cas, value).await
    }
    async fn pause(&self, ms: u64) {
        (**self).pause(ms).await;
    }
}
