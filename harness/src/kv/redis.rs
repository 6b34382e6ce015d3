//! The Redis backend (`type = "redis"`): state shared between harness or Spin nodes.

use super::backend::{KvBackend, KvError};
use async_trait::async_trait;
use redis::aio::ConnectionManager;
use std::time::Duration;
use tokio::sync::OnceCell;

/// A Redis-backed store. The connection is opened on first use and re-established automatically, so an app starts
/// even while Redis is still coming up; until it is reachable, operations fail with [`KvError::Redis`].
pub struct RedisKv {
    client: redis::Client,
    /// The URL without credentials, for messages.
    display: String,
    conn: OnceCell<ConnectionManager>,
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv").field("url", &self.display).finish_non_exhaustive()
    }
}

/// `redis://user:pass@host:port/db` without the user-info part.
fn without_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://[REDACTED]@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// `swap_if` as one script, so Redis runs the compare and the write with nothing in between (a script is atomic,
/// also against other clients: several harness nodes on one Redis).
///
/// `KEYS[1]` the key; `ARGV[1]` `"1"` if a value is expected, `"0"` if the key is expected absent; `ARGV[2]` the
/// expected value (ignored when absent); `ARGV[3]` the new value. Returns 1 if it wrote, 0 if not. Lua strings are
/// binary-safe, and `GET` of an absent key is `false`.
const SWAP_IF_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current ~= false then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
";

fn redis_err(e: redis::RedisError) -> KvError {
    KvError::Redis(e.to_string())
}

impl RedisKv {
    /// A store at `url` (`redis://host:port[/db]`); nothing is connected yet.
    ///
    /// # Errors
    /// [`KvError::Redis`] if the URL is malformed.
    pub fn new(url: &str) -> Result<Self, KvError> {
        let client =
            redis::Client::open(url).map_err(|e| KvError::Redis(format!("{}: {e}", without_credentials(url))))?;
        Ok(Self { client, display: without_credentials(url), conn: OnceCell::new() })
    }

    /// The URL, credentials redacted.
    pub fn url(&self) -> &str {
        &self.display
    }

    async fn conn(&self) -> Result<ConnectionManager, KvError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(5)))
                    .set_number_of_retries(2);
                ConnectionManager::new_with_config(self.client.clone(), config)
                    .await
                    .map_err(|e| KvError::Redis(format!("{}: {e}", self.display)))
            })
            .await?;
        Ok(conn.clone())
    }
}

#[async_trait]
impl KvBackend for RedisKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let mut c = self.conn().await?;
        redis::cmd("GET").arg(key).query_async(&mut c).await.map_err(redis_err)
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let mut c = self.conn().await?;
        redis::cmd("SET").arg(key).arg(value).query_async(&mut c).await.map_err(redis_err)
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        let mut c = self.conn().await?;
        let _: i64 = redis::cmd("DEL").arg(key).query_async(&mut c).await.map_err(redis_err)?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        let mut c = self.conn().await?;
        let n: i64 = redis::cmd("EXISTS").arg(key).query_async(&mut c).await.map_err(redis_err)?;
        Ok(n > 0)
    }

    async fn get_keys(&self) -> Result<Vec<String>, KvError> {
        let mut c = self.conn().await?;
        redis::cmd("KEYS").arg("*").query_async(&mut c).await.map_err(redis_err)
    }

    async fn swap_if(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, KvError> {
        let mut c = self.conn().await?;
        let (flag, expected) = match expected {
            Some(v) => ("1", v),
            None => ("0", &[][..]),
        };
        let wrote: i64 = redis::cmd("EVAL")
            .arg(SWAP_IF_SCRIPT)
            .arg(1)
            .arg(key)
            .arg(flag)
            .arg(expected)
            .arg(value)
            .query_async(&mut c)
            .await
            .map_err(redis_err)?;
        Ok(wrote == 1)
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut c = self.conn().await?;
        redis::cmd("INCRBY").arg(key).arg(delta).query_async(&mut c).await.map_err(redis_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_not_displayed() {
        assert_eq!(without_credentials("redis://u:secret@h:6379/0"), "redis://[REDACTED]@h:6379/0");
        assert_eq!(without_credentials("redis://h:6379"), "redis://h:6379");
        assert!(RedisKv::new("not a url").is_err());
    }
}
