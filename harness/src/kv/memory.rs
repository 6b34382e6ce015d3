//! The in-memory backend: what tests seed, inspect, and break on purpose.

use super::backend::{KvBackend, KvError, KvOp, incremented};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Which operations a failure rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpMatch {
    /// Every operation.
    Any,
    /// Only this kind.
    Only(KvOp),
}

impl From<KvOp> for OpMatch {
    fn from(op: KvOp) -> Self {
        Self::Only(op)
    }
}

impl OpMatch {
    fn matches(self, op: KvOp) -> bool {
        match self {
            Self::Any => true,
            Self::Only(o) => o == op,
        }
    }
}

/// One recorded call: the operation, the key (none for `get-keys`), and whether it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvCall {
    /// The operation.
    pub op: KvOp,
    /// The key it was called with.
    pub key: Option<String>,
    /// Whether an injected failure answered it.
    pub failed: bool,
}

#[derive(Debug)]
struct FailRule {
    remaining: usize,
    matcher: OpMatch,
}

#[derive(Debug, Default)]
struct Inner {
    data: BTreeMap<String, Vec<u8>>,
    calls: Vec<KvCall>,
    rules: Vec<FailRule>,
}

/// An in-memory store. Clones share the data, so a test keeps a handle while the app uses another.
///
/// ```
/// use harness::kv::{KvBackend, KvOp, MemoryKv};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let kv = MemoryKv::new();
/// kv.seed("order/1", b"{}");
/// kv.fail_nth(2, KvOp::Get); // the 2nd `get` from now fails
/// assert!(kv.get("order/1").await.is_ok());
/// assert!(kv.get("order/1").await.is_err());
/// assert!(kv.get("order/1").await.is_ok());
/// assert_eq!(kv.keys(), ["order/1"]);
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryKv(Arc<Mutex<Inner>>);

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets `key` directly (not recorded as a call).
    pub fn seed(&self, key: impl Into<String>, value: impl AsRef<[u8]>) {
        self.lock().data.insert(key.into(), value.as_ref().to_vec());
    }

    /// Reads `key` directly (not recorded as a call).
    pub fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().data.get(key).cloned()
    }

    /// The value of `key` as UTF-8 text, if present and valid.
    pub fn text(&self, key: &str) -> Option<String> {
        self.value(key).and_then(|v| String::from_utf8(v).ok())
    }

    /// All keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().data.keys().cloned().collect()
    }

    /// A copy of all entries.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.lock().data.clone()
    }

    /// Removes all data, calls and failure rules.
    pub fn clear(&self) {
        *self.lock() = Inner::default();
    }

    /// The calls the guest made, oldest first.
    pub fn calls(&self) -> Vec<KvCall> {
        self.lock().calls.clone()
    }

    /// Makes the `n`-th matching operation from now (1-based) fail with [`KvError::Injected`]; the guest sees
    /// `error::other("injected failure on <op>")`. The failing operation changes nothing. Rules are independent
    /// and each fires once.
    pub fn fail_nth(&self, n: usize, ops: impl Into<OpMatch>) {
        self.lock().rules.push(FailRule { remaining: n.max(1), matcher: ops.into() });
    }

    /// Records the call and decides whether an injected failure answers it.
    fn enter(&self, inner: &mut Inner, op: KvOp, key: Option<&str>) -> Result<(), KvError> {
        let mut fire = false;
        inner.rules.retain_mut(|rule| {
            if !rule.matcher.matches(op) {
                return true;
            }
            rule.remaining -= 1;
            if rule.remaining == 0 {
                fire = true;
                false
            } else {
                true
            }
        });
        inner.calls.push(KvCall { op, key: key.map(str::to_owned), failed: fire });
        if fire { Err(KvError::Injected { op }) } else { Ok(()) }
    }
}

#[async_trait]
impl KvBackend for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let mut inner = self.lock();
        self.enter(&mut inner, KvOp::Get, Some(key))?;
        Ok(inner.data.get(key).cloned())
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let mut inner = self.lock();
        self.enter(&mut inner, KvOp::Set, Some(key))?;
        inner.data.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        let mut inner = self.lock();
        self.enter(&mut inner, KvOp::Delete, Some(key))?;
        inner.data.remove(key);
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        let mut inner = self.lock();
        self.enter(&mut inner, KvOp::Exists, Some(key))?;
        Ok(inner.data.contains_key(key))
    }

    async fn get_keys(&self) -> Result<Vec<String>, KvError> {
        let mut inner = self.lock();
        self.enter(&mut inner, KvOp::GetKeys, None)?;
        Ok(inner.data.keys().cloned().collect())
    }

    async fn swap_if(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, KvError> {
        let mut inner = self.lock();
        self.enter(&mut inner, KvOp::Swap, Some(key))?;
        if inner.data.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        inner.data.insert(key.to_owned(), value.to_vec());
        Ok(true)
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut inner = self.lock();
        self.enter(&mut inner, KvOp::Increment, Some(key))?;
        let n = incremented(inner.data.get(key).map(Vec::as_slice), delta)?;
        inner.data.insert(key.to_owned(), n.to_string().into_bytes());
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }

    #[test]
    fn any_rule_counts_every_op_and_failing_set_changes_nothing() {
        block(async {
            let kv = MemoryKv::new();
            kv.fail_nth(3, OpMatch::Any);
            kv.set("a", b"1").await.expect("1st op");
            assert!(kv.exists("a").await.expect("2nd op"));
            assert!(matches!(kv.set("a", b"2").await, Err(KvError::Injected { op: KvOp::Set })));
            assert_eq!(kv.value("a"), Some(b"1".to_vec()));
            kv.set("a", b"3").await.expect("rule fired once");
            let calls = kv.calls();
            assert_eq!(calls.len(), 4);
            assert!(calls[2].failed && !calls[3].failed);
        });
    }

    #[test]
    fn op_specific_rule_ignores_other_ops() {
        block(async {
            let kv = MemoryKv::new();
            kv.fail_nth(1, KvOp::Delete);
            kv.set("k", b"v").await.expect("set unaffected");
            assert!(kv.get("k").await.expect("get unaffected").is_some());
            assert!(kv.delete("k").await.is_err());
            assert_eq!(kv.keys(), ["k"]);
        });
    }
}
