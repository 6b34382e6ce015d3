//! The embedded file backend (`type = "spin"`), on redb: state that survives restarts of `harness up`.

use super::backend::{KvBackend, KvError, incremented};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("spin_key_value");

/// A store in one database file. Each operation is its own transaction; writes are durable when they return.
///
/// redb locks the file: one process (and one open `FileKv`) per file at a time.
#[derive(Clone)]
pub struct FileKv {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for FileKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKv").field("path", &self.path).finish_non_exhaustive()
    }
}

impl FileKv {
    /// Opens (or creates, with its parent directories) the database at `path`.
    ///
    /// # Errors
    /// [`KvError::File`] if the directory cannot be created or the file cannot be opened (e.g. another process
    /// holds it).
    pub fn open(path: &Path) -> Result<Self, KvError> {
        let err = |message: String| KvError::File { path: path.display().to_string(), message };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create directory: {e}")))?;
        }
        let db = Database::create(path).map_err(|e| err(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| err(e.to_string()))?;
        txn.open_table(TABLE).map_err(|e| err(e.to_string()))?;
        txn.commit().map_err(|e| err(e.to_string()))?;
        Ok(Self { db: Arc::new(db), path: path.to_owned() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a blocking database operation off the async executor.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, String> + Send + 'static,
    ) -> Result<T, KvError> {
        let db = Arc::clone(&self.db);
        let path = self.path.display().to_string();
        match tokio::task::spawn_blocking(move || f(&db)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(message)) => Err(KvError::File { path, message }),
            Err(e) => Err(KvError::File { path, message: format!("worker failed: {e}") }),
        }
    }
}

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

#[async_trait]
impl KvBackend for FileKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let key = key.to_owned();
        self.run(move |db| {
            let txn = db.begin_read().map_err(s)?;
            let table = txn.open_table(TABLE).map_err(s)?;
            Ok(table.get(key.as_str()).map_err(s)?.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.run(move |db| {
            let txn = db.begin_write().map_err(s)?;
            {
                let mut table = txn.open_table(TABLE).map_err(s)?;
                table.insert(key.as_str(), value.as_slice()).map_err(s)?;
            }
            txn.commit().map_err(s)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        let key = key.to_owned();
        self.run(move |db| {
            let txn = db.begin_write().map_err(s)?;
            {
                let mut table = txn.open_table(TABLE).map_err(s)?;
                table.remove(key.as_str()).map_err(s)?;
            }
            txn.commit().map_err(s)
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.get(key).await?.is_some())
    }

    async fn swap_if(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, KvError> {
        let (key, expected, value) = (key.to_owned(), expected.map(<[u8]>::to_vec), value.to_vec());
        // One write transaction: redb admits one writer at a time, so nothing changes between read and write.
        self.run(move |db| {
            let txn = db.begin_write().map_err(s)?;
            let swapped = {
                let mut table = txn.open_table(TABLE).map_err(s)?;
                let current = table.get(key.as_str()).map_err(s)?.map(|v| v.value().to_vec());
                let equal = current == expected;
                if equal {
                    table.insert(key.as_str(), value.as_slice()).map_err(s)?;
                }
                equal
            };
            if swapped {
                txn.commit().map_err(s)?
            } else {
                txn.abort().map_err(s)?
            }
            Ok(swapped)
        })
        .await
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        let key = key.to_owned();
        // A counter error is not a file error: it comes out of the worker as it is, after the transaction aborts.
        self.run(move |db| {
            let txn = db.begin_write().map_err(s)?;
            let outcome = {
                let mut table = txn.open_table(TABLE).map_err(s)?;
                let current = table.get(key.as_str()).map_err(s)?.map(|v| v.value().to_vec());
                let outcome = incremented(current.as_deref(), delta);
                if let Ok(n) = &outcome {
                    table.insert(key.as_str(), n.to_string().as_bytes()).map_err(s)?;
                }
                outcome
            };
            if outcome.is_ok() {
                txn.commit().map_err(s)?
            } else {
                txn.abort().map_err(s)?
            }
            Ok(outcome)
        })
        .await?
    }

    async fn get_keys(&self) -> Result<Vec<String>, KvError> {
        self.run(|db| {
            let txn = db.begin_read().map_err(s)?;
            let table = txn.open_table(TABLE).map_err(s)?;
            let mut keys = Vec::new();
            for entry in table.iter().map_err(s)? {
                let (k, _) = entry.map_err(s)?;
                keys.push(k.value().to_owned());
            }
            Ok(keys)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen() {
        let dir = std::env::temp_dir().join(format!("harness-filekv-{}", uuid::Uuid::new_v4()));
        let path = dir.join("nested/kv.redb");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let kv = FileKv::open(&path).expect("open");
            kv.set("a", b"1").await.expect("set");
            kv.set("b", b"2").await.expect("set");
            kv.delete("b").await.expect("delete");
            kv.delete("never-there").await.expect("delete absent");
        });
        rt.block_on(async {
            let kv = FileKv::open(&path).expect("reopen");
            assert_eq!(kv.get("a").await.expect("get"), Some(b"1".to_vec()));
            assert!(!kv.exists("b").await.expect("exists"));
            assert_eq!(kv.get_keys().await.expect("keys"), ["a"]);
        });
        let _ = std::fs::remove_dir_all(dir);
    }
}
