//! Where instance records live and how they are read.

use super::config::ProduceConfig;
use crate::lifecycle::{InstanceRecord, Provisioning};
use crate::ports::atomic::{self, Change};
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

/// Key of the instance an order line was keyed to when that is not its own order-line key (an on-demand line keyed
/// on `orderId` + `productId`): later requests for the line find it without asking the marketplace again.
pub fn line_key(test: bool, order_id: &str, order_line_id: &str) -> String {
    // The order ID's length keeps the key unambiguous whatever characters the IDs hold.
    format!("{}/line/{}:{order_id}/{order_line_id}", namespace(test), order_id.len())
}

/// What [`line_key`] holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LineInstance {
    instance_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
}

crate::tokened!(LineInstance, writes);

/// The instance recorded for an order line under [`line_key`], if any.
pub(crate) async fn line_instance<S: Store>(
    store: &S,
    test: bool,
    order_id: &str,
    order_line_id: &str,
) -> Result<Option<String>, StoreError> {
    let line: Option<LineInstance> = atomic::read(store, &line_key(test, order_id, order_line_id)).await?;
    Ok(line.map(|l| l.instance_id))
}

/// Records `instance_id` for an order line unless one is recorded already; returns the one that stands (the first
/// recorded wins, so racing requests agree).
pub(crate) async fn record_line_instance<S: Store, R: crate::ports::Random>(
    store: &S,
    random: &R,
    now_ms: u64,
    test: bool,
    order_id: &str,
    order_line_id: &str,
    instance_id: &str,
) -> Result<String, StoreError> {
    let key = line_key(test, order_id, order_line_id);
    atomic::update(store, random, now_ms, &key, |current: Option<LineInstance>| match current {
        Some(line) => Change::Keep(line.instance_id),
        None => Change::Write(
            LineInstance { instance_id: instance_id.to_owned(), writes: Vec::new() },
            instance_id.to_owned(),
        ),
    })
    .await
}
