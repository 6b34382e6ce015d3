//! Where a runner keeps the `default` key-value store, and reading it back.

use std::collections::BTreeMap;
use std::path::Path;

/// Spin's default key-value file in its state directory (`crates/key-value-spin`: table `spin_key_value`); the
/// harness uses the same file, so both runners read the other's state.
pub const SPIN_STORE_FILE_NAME: &str = "sqlite_key_value.db";

/// The backend of the `default` store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// The runner's own embedded store in its state directory: Spin's SQLite file under either runner.
    RunnerDefault,
    /// Redis at this URL (`runtime-config.toml` `type = "redis"`), shared by every runner pointed at it.
    Redis(String),
}

impl Store {
    /// `default store` or `Redis`, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Store::RunnerDefault => "default store",
            Store::Redis(_) => "Redis",
        }
    }

    /// The runtime config file text, if this store needs one.
    pub(crate) fn runtime_config(&self) -> Option<String> {
        match self {
            Store::RunnerDefault => None,
            Store::Redis(url) => Some(format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{url}\"\n")),
        }
    }
}

/// Every key and value of the `default` store at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateDump(pub BTreeMap<String, Vec<u8>>);

impl StateDump {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.get(key).map(Vec::as_slice)
    }

    /// The value under `key` as JSON (`Null` when absent or not JSON).
    pub fn json(&self, key: &str) -> serde_json::Value {
        self.get(key).and_then(|v| serde_json::from_slice(v).ok()).unwrap_or_default()
    }

    /// Reads the SQLite store both runners keep in their state directory (read-only; the runner may still be
    /// running).
    pub(crate) fn from_state_dir(state_dir: &Path) -> anyhow::Result<Self> {
        let path = state_dir.join(SPIN_STORE_FILE_NAME);
        if !path.exists() {
            return Ok(Self::default()); // Spin creates the file on first use
        }
        let db = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut query = db.prepare("SELECT key, value FROM spin_key_value WHERE store = 'default'")?;
        let rows = query.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?)))?;
        let mut map = BTreeMap::new();
        for row in rows {
            let (k, v) = row?;
            map.insert(k, v);
        }
        Ok(Self(map))
    }

    /// Reads every key of a Redis database.
    pub(crate) fn from_redis(url: &str) -> anyhow::Result<Self> {
        let mut conn = redis::Client::open(url)?.get_connection()?;
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn)?;
        let mut map = BTreeMap::new();
        for key in keys {
            let value: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(&mut conn)?;
            if let Some(v) = value {
                map.insert(key, v);
            }
        }
        Ok(Self(map))
    }
}
