//! The backend contract: [`KvBackend`], its operations and its error.

use async_trait::async_trait;
use std::fmt;

/// A key-value operation, as the guest invoked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KvOp {
    /// `store.get`
    Get,
    /// `store.set`
    Set,
    /// `store.delete`
    Delete,
    /// `store.exists`
    Exists,
    /// `store.get-keys` (and `wasi:keyvalue` `bucket.list-keys`)
    GetKeys,
    /// `wasi:keyvalue/atomics` `swap`: [`KvBackend::swap_if`]
    Swap,
    /// `wasi:keyvalue/atomics` `increment`: [`KvBackend::increment`]
    Increment,
}

impl fmt::Display for KvOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Get => "get",
            Self::Set => "set",
            Self::Delete => "delete",
            Self::Exists => "exists",
            Self::GetKeys => "get-keys",
            Self::Swap => "swap",
            Self::Increment => "increment",
        })
    }
}

/// A backend failure. The guest sees it as `error::other(<Display text>)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// A failure injected by a test through [`crate::kv::MemoryKv::fail_nth`].
    #[error("injected failure on {op}")]
    Injected {
        /// The operation that failed.
        op: KvOp,
    },
    /// The SQLite store (`type = "spin"`, Spin's key-value file) failed: cannot open, locked longer than the busy
    /// timeout, disk full, …
    #[error("SQLite key-value file {path}: {message}")]
    Sqlite {
        /// The database file (`:memory:` for an in-memory store).
        path: String,
        /// What failed.
        message: String,
    },
    /// Redis failed (connection, protocol or command error).
    #[error("redis: {0}")]
    Redis(String),
    /// `increment` found a value that is not the canonical decimal text of an `i64` (what `INCRBY` accepts: no `+`,
    /// no leading zeros, no spaces); Redis's `INCRBY` wording.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// `increment` on a SQLite store found a value that is not a counter as Spin's SQLite store keeps them (the 8
    /// little-endian bytes of an `i64`). Spin 4.1's host panics there (`crates/key-value-spin/src/store.rs`); the
    /// harness answers this error and changes nothing.
    #[error("value is not a counter: {len} bytes, not the 8 little-endian bytes of an i64")]
    NotACounter {
        /// The length of the value found.
        len: usize,
    },
    /// `increment` would leave the `i64` range; Redis's `INCRBY` wording.
    #[error("increment or decrement would overflow")]
    IncrementOverflow,
}

/// Reads a counter as `increment` stores it: the canonical decimal text of an `i64` (what Redis `INCRBY` accepts —
/// no sign `+`, no leading zeros, no spaces), so every backend agrees on which values count.
///
/// # Errors
/// [`KvError::NotAnInteger`] for anything else.
pub(crate) fn parse_counter(value: &[u8]) -> Result<i64, KvError> {
    let text = std::str::from_utf8(value).map_err(|_| KvError::NotAnInteger)?;
    let n: i64 = text.parse().map_err(|_| KvError::NotAnInteger)?;
    if n.to_string() == text { Ok(n) } else { Err(KvError::NotAnInteger) }
}

/// The counter after adding `delta` to `current` (absent = 0), for the stores that keep counters as text.
///
/// # Errors
/// [`KvError::NotAnInteger`] if `current` is not a counter, [`KvError::IncrementOverflow`] if the sum overflows.
pub(crate) fn incremented(current: Option<&[u8]>, delta: i64) -> Result<i64, KvError> {
    let base = current.map_or(Ok(0), parse_counter)?;
    base.checked_add(delta).ok_or(KvError::IncrementOverflow)
}

/// A key-value store: one label's data.
///
/// Implementations must be safe to share between concurrent requests; each method is one atomic operation (the
/// WIT has no transactions), also between processes sharing one backend (several harness nodes on one Redis).
#[async_trait]
pub trait KvBackend: Send + Sync + fmt::Debug + 'static {
    /// The value of `key`, if present.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Sets `key` to `value`, replacing any previous value.
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Removes `key`; removing an absent key is not an error.
    async fn delete(&self, key: &str) -> Result<(), KvError>;
    /// Whether `key` is present.
    async fn exists(&self, key: &str) -> Result<bool, KvError>;
    /// All keys, in no particular order.
    async fn get_keys(&self) -> Result<Vec<String>, KvError>;
    /// Compare-and-swap by value, as one atomic operation: if the value of `key` equals `expected` (`None`: the key
    /// is absent), sets it to `value` and returns `true`; otherwise changes nothing and returns `false`.
    ///
    /// This is what `wasi:keyvalue/atomics` `swap` needs: the guest's `cas` handle holds the value it read.
    async fn swap_if(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, KvError>;
    /// Adds `delta` to the counter at `key` (absent: 0) as one atomic operation and returns the new value. The
    /// counter is stored as the Spin store of the same type stores it, so either runner reads the other's counters:
    /// the decimal text of an `i64` on Redis (`INCRBY`) and in memory, the 8 little-endian bytes of an `i64` in the
    /// SQLite file (`crates/key-value-spin/src/store.rs`).
    ///
    /// # Errors
    /// Besides backend failures, [`KvError::NotAnInteger`] / [`KvError::NotACounter`] when the present value is not
    /// a counter in the store's encoding and [`KvError::IncrementOverflow`]; in all cases nothing changes.
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_canonical_i64_text_as_redis_reads_them() {
        for (text, n) in [("0", 0), ("42", 42), ("-7", -7), ("9223372036854775807", i64::MAX)] {
            assert_eq!(parse_counter(text.as_bytes()).ok(), Some(n), "{text}");
        }
        for bad in ["", "+1", "01", "-0", " 1", "1\n", "1e3", "9223372036854775808", "٣"] {
            assert!(matches!(parse_counter(bad.as_bytes()), Err(KvError::NotAnInteger)), "{bad:?}");
        }
        assert_eq!(incremented(None, -3).ok(), Some(-3));
        assert!(matches!(incremented(Some(b"9223372036854775807"), 1), Err(KvError::IncrementOverflow)));
        assert!(matches!(incremented(Some(b"x"), 0), Err(KvError::NotAnInteger)));
    }
}
