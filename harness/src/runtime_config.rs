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
//! Other sections Spin knows (`sqlite_database`, `variables_provider`, `llm_compute`, …) are ignored with a warning:
//! the same file must work for both Spin and the harness.

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
    /// A store section is malformed or uses an unsupported `type`.
    #[error("runtime config [key_value_store.{label}]: {reason}")]
    Store {
        /// The store label.
        label: String,
        /// What is wrong.
        reason: String,
    },
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
    fn rejects_unsupported_or_incomplete_stores() {
        let e = parse("[key_value_store.x]\ntype = \"azure_cosmos\"\n").expect_err("unsupported");
        assert!(e.to_string().contains("azure_cosmos"), "{e}");
        let e = parse("[key_value_store.x]\ntype = \"redis\"\n").expect_err("no url");
        assert!(e.to_string().contains("needs `url`"), "{e}");
        assert!(parse("[key_value_store.x]\npath = \"a\"\n").is_err());
    }
}
