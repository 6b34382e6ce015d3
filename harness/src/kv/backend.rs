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
    /// `store.get-keys`
    GetKeys,
}

impl fmt::Display for KvOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Get => "get",
            Self::Set => "set",
            Self::Delete => "delete",
            Self::Exists => "exists",
            Self::GetKeys => "get-keys",
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
    /// The embedded file store failed.
    #[error("file store {path}: {message}")]
    File {
        /// The database file.
        path: String,
        /// What failed.
        message: String,
    },
    /// Redis failed (connection, protocol or command error).
    #[error("redis: {0}")]
    Redis(String),
}

/// A key-value store: one label's data.
///
/// Implementations must be safe to share between concurrent requests; each method is one atomic operation (the
/// WIT has no transactions).
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
}
