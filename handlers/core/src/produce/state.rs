//! Where instance records live and how they are read.

use super::config::ProduceConfig;
use crate::lifecycle::{InstanceRecord, Provisioning};
use crate::ports::atomic;
use crate::ports::{Store, StoreError};

/// Store namespace: debug traffic (`testFlag=1`) never touches production records.
pub fn namespace(test: bool) -> &'static str {
    if test { "test" } else { "live" }
}

/// Key of an instance record.
pub fn instance_key(test: bool, instance_id: &str) -> String {
    format!("{}/instance/{instance_id}", namespace(test))
}

/// Loads a record; an unreadable record is a store error (never silently replaced).
pub async fn load<S: Store>(store: &S, test: bool, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
    atomic::read(store, &instance_key(test, instance_id)).await
}

/// The provisioning mode the configuration selects.
pub fn mode(cfg: &ProduceConfig) -> Provisioning {
    if cfg.backend.is_some() { Provisioning::Forward } else { Provisioning::BuiltIn }
}

/// Loads a record from the namespace `test` names, or else from the other one: the marketplace does not always send
/// the same `testFlag` for one instance (a debug case saved from a production order, or the reverse), and an
/// instance must not look unknown because of it.
pub async fn find<S: Store>(store: &S, test: bool, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
    match load(store, test, instance_id).await? {
        Some(rec) => Ok(Some(rec)),
        None => load(store, !test, instance_id).await,
    }
}
