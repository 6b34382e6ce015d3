//! `runtime-config.toml`: which backend serves each key-value store label, as `spin up --runtime-config-file`
//! reads it.
//!
//! ```toml
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//!
//! [key_value_store.sso]
//! type = "spin"            # Spin's SQLite key-value file
//! path = ".spin/sso.db"    # relative to this file's directory
//!
//! [key_value_store.scratch]
//! type = "memory"          # the harness's own in-memory store
//! ```
//!
//! This module only reads the file; [`crate::kv::open_stores`] opens the backends it names.
//!
//! Other top-level keys Spin knows (`sqlite_database`, `variables_provider`, `llm_compute`, …) are ignored with a
//! warning: the same file must work for both Spin and the harness. A top-level key Spin does not know is refused
//! with Spin's message, `unused runtime config key(s): …`, so a typo (`[key_value_stores.x]`) fails here as it
//! would under `spin up` instead of silently leaving a store unconfigured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a runtime config was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeConfigError {
    /// The file could not be read.
    #[error("cannot read runtime config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("invalid runtime config {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error.
        source: Box<toml::de::Error>,
    },
    /// Top-level keys that Spin does not read (Spin refuses them too, with this wording).
    #[error("invalid runtime config {path}: unused runtime config key(s): {}", keys.join(", "))]
    UnusedKeys {
        /// The file.
        path: PathBuf,
        /// The unknown keys, sorted.
        keys: Vec<String>,
    },
    /// A store section is malformed or uses an unsupported `type`.
    #[error("runtime config [key_value_store.{label}]: {reason}")]
    Store {
        /// The store label.
        label: String,
        /// What is wrong.
        reason: String,
    },
}

/// The top-level keys `spin up` reads from a runtime config; any other key makes Spin fail with "unused runtime
/// config key(s)". Spin tracks which keys its factors looked up and refuses the rest after loading
/// (`TomlKeyTracker::validate_all_keys_used` in Spin's crates/factors/src/runtime_config/toml.rs, called from
/// crates/runtime-config/src/lib.rs; the keys are the `table.get(..)` calls of crates/runtime-config/src/lib.rs,
/// crates/runtime-config/src/variables.rs and each factor's `runtime_config/spin.rs`).
///
/// `config_provider` (the old name of `variables_provider`) is read only when `variables_provider` is absent.
const SPIN_KEYS: &[&str] = &[
    "state_dir",
    "log_dir",
    "max_instance_memory",
    "key_value_store",
    "sqlite_database",
    "variables_provider",
    "config_provider",
    "llm_compute",
    "outbound_networking",
    "client_tls",
    "outbound_http",
    "outbound_mqtt",
    "outbound_mysql",
    "outbound_pg",
    "outbound_redis",
];

/// The top-level keys of `doc` that Spin would leave unread, sorted.
fn unused_keys(doc: &toml::Table) -> Vec<String> {
    doc.keys()
        .filter(|k| {
            !SPIN_KEYS.contains(&k.as_str()) || (*k == "config_provider" && doc.contains_key("variables_provider"))
        })
        .cloned()
        .collect()
}

/// The backend a label is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KvStoreConfig {
    /// `type = "spin"`: Spin's SQLite key-value file at `path`, or in memory without a path (as Spin does).
    Spin {
        /// The database file, resolved against the runtime config's directory.
        path: Option<PathBuf>,
    },
    /// `type = "redis"`.
    Redis {
        /// `redis://host:port[/db]`.
        url: String,
    },
    /// `type = "memory"`: harness only.
    Memory,
}

/// A parsed runtime config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `[key_value_store.<label>]` sections.
    pub key_value_stores: BTreeMap<String, KvStoreConfig>,
}

impl RuntimeConfig {
    /// Reads `path`; relative store paths are resolved against its directory.
    ///
    /// # Errors
    /// A [`RuntimeConfigError`] naming the file or the store section.
    pub fn from_file(path: &Path) -> Result<Self, RuntimeConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| RuntimeConfigError::Read { path: path.to_owned(), source })?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Self::parse(&text, path, dir)
    }

    /// Parses `text` as if read from `path`, with relative paths under `dir`.
    ///
    /// # Errors
    /// As [`RuntimeConfig::from_file`], without the read error.
    pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Self, RuntimeConfigError> {
        let doc: toml::Table = toml::from_str(text)
            .map_err(|source| RuntimeConfigError::Parse { path: path.to_owned(), source: Box::new(source) })?;
        let unused = unused_keys(&doc);
        if !unused.is_empty() {
            return Err(RuntimeConfigError::UnusedKeys { path: path.to_owned(), keys: unused });
        }
        let mut config = Self::default();
        for (section, value) in &doc {
            if section != "key_value_store" {
                tracing::warn!(section = %section, "runtime config section ignored by the harness");
                continue;
            }
            let Some(stores) = value.as_table() else {
                return Err(RuntimeConfigError::Store { label: "*".into(), reason: "must be a table".into() });
            };
            for (label, store) in stores {
                let parsed = parse_store(store, dir)
                    .map_err(|reason| RuntimeConfigError::Store { label: label.clone(), reason })?;
                config.key_value_stores.insert(label.clone(), parsed);
            }
        }
        Ok(config)
    }
}

fn parse_store(store: &toml::Value, dir: &Path) -> Result<KvStoreConfig, String> {
    let table = store.as_table().ok_or("must be a table")?;
    let get = |k: &str| -> Result<Option<&str>, String> {
        match table.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("`{k}` must be a string")),
        }
    };
    match get("type")? {
        Some("spin") => Ok(KvStoreConfig::Spin { path: get("path")?.map(|p| dir.join(p)) }),
        Some("redis") => {
            let url = get("url")?.ok_or("type = \"redis\" needs `url`")?;
            Ok(KvStoreConfig::Redis { url: url.to_owned() })
        }
        Some("memory") => Ok(KvStoreConfig::Memory),
        Some(other) => Err(format!(
            "type = {other:?} is not supported by the harness (supported: \"spin\", \"redis\", \"memory\")"
        )),
        None => Err("missing `type`".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuntimeConfig, RuntimeConfigError> {
        RuntimeConfig::parse(text, Path::new("rc.toml"), Path::new("/etc/app"))
    }

    #[test]
    fn reads_spins_store_types() {
        let rc = parse(
            r#"
[key_value_store.default]
type = "redis"
url = "redis://127.0.0.1:6379"
[key_value_store.sso]
type = "spin"
path = ".spin/sso.db"
[key_value_store.tmp]
type = "spin"
[key_value_store.t]
type = "memory"
[sqlite_database.default]
type = "libsql"
"#,
        )
        .expect("valid");
        let s = &rc.key_value_stores;
        assert_eq!(s["default"], KvStoreConfig::Redis { url: "redis://127.0.0.1:6379".into() });
        assert_eq!(s["sso"], KvStoreConfig::Spin { path: Some(PathBuf::from("/etc/app/.spin/sso.db")) });
        assert_eq!(s["tmp"], KvStoreConfig::Spin { path: None });
        assert_eq!(s["t"], KvStoreConfig::Memory);
    }

    #[test]
    fn refuses_keys_spin_does_not_read_with_spins_wording() {
        let e = parse("bar = 2\n[key_value_stores.x]\ntype = \"memory\"\n[foo]\na = 1\n").expect_err("unknown keys");
        assert!(
            matches!(&e, RuntimeConfigError::UnusedKeys { keys, .. } if keys == &["bar", "foo", "key_value_stores"])
        );
        assert!(e.to_string().ends_with("unused runtime config key(s): bar, foo, key_value_stores"), "{e}");
        assert!(e.to_string().contains("rc.toml"), "{e}");
        // Both names of the variables provider table: Spin reads `config_provider` only without the new name.
        let both = "[[variables_provider]]\ntype = \"env\"\n[[config_provider]]\ntype = \"env\"\n";
        let e = parse(both).expect_err("config_provider unread");
        assert!(e.to_string().ends_with("unused runtime config key(s): config_provider"), "{e}");
        assert!(parse("[[config_provider]]\ntype = \"env\"\n").is_ok());
    }

    #[test]
    fn accepts_every_key_spin_reads() {
        let text = r#"
state_dir = ".spin"
log_dir = "logs"
max_instance_memory = 1000000
[key_value_store.default]
type = "memory"
[sqlite_database.default]
type = "spin"
[[variables_provider]]
type = "env"
[llm_compute]
type = "remote_http"
[outbound_networking]
block_networks = ["private"]
[[client_tls]]
component_ids = ["c"]
hosts = ["h"]
[outbound_http]
max_connections = 1
[outbound_mqtt]
max_connections = 1
[outbound_mysql]
max_connections = 1
[outbound_pg]
max_connections = 1
[outbound_redis]
max_connections = 1
"#;
        let rc = parse(text).expect("every key Spin reads is accepted");
        assert_eq!(rc.key_value_stores["default"], KvStoreConfig::Memory);
        let doc: toml::Table = toml::from_str(text).expect("toml");
        assert_eq!(doc.len(), SPIN_KEYS.len() - 1, "the sample covers every key but config_provider");
    }

    #[test]
    fn rejects_unsupported_or_incomplete_stores() {
        let e = parse("[key_value_store.x]\ntype = \"azure_cosmos\"\n").expect_err("unsupported");
        assert!(e.to_string().contains("azure_cosmos"), "{e}");
        let e = parse("[key_value_store.x]\ntype = \"redis\"\n").expect_err("no url");
        assert!(e.to_string().contains("needs `url`"), "{e}");
        assert!(parse("[key_value_store.x]\npath = \"a\"\n").is_err());
    }
}
