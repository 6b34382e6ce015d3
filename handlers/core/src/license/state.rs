//! What is known of each license, in key-value: `{live|test}/license/<code>`, one compare-and-swap write per change.

use serde::{Deserialize, Serialize};

use crate::ports::atomic::{self, Change};
use crate::ports::{Random, Store, StoreError};
use crate::produce::namespace;
use crate::tokened;
use crate::wire::license::{LicenseCodeInfo, LicenseStatus};

/// Where a license stands, as this component last heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenseState {
    /// Activated and in use.
    Alive,
    /// Frozen by the marketplace (`FREEZE`), until `UNFREEZE`.
    Frozen,
    /// Released: terminal.
    Released,
}

/// One license record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseRecord {
    /// The license code.
    pub license: String,
    /// Its state.
    pub state: LicenseState,
    /// Expiry (ms since the epoch), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_ms: Option<u64>,
    /// Order, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Product, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Licensed amount, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// When it was activated through this component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_ms: Option<u64>,
    /// Last change.
    pub updated_ms: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
}
tokened!(LicenseRecord, writes);

impl LicenseRecord {
    /// A record for a license first heard of now.
    pub fn new(license: &str, state: LicenseState, now_ms: u64) -> Self {
        Self {
            license: license.to_owned(),
            state,
            expire_ms: None,
            order_id: None,
            product_id: None,
            amount: None,
            activated_ms: None,
            updated_ms: now_ms,
            writes: Vec::new(),
        }
    }
}

/// Key of a license record.
pub fn license_key(test: bool, license: &str) -> String {
    format!("{}/license/{license}", namespace(test))
}

/// Reads a license record.
///
/// # Errors
/// [`StoreError`] when the store fails or the record is unreadable.
pub async fn load<S: Store>(store: &S, test: bool, license: &str) -> Result<Option<LicenseRecord>, StoreError> {
    atomic::read(store, &license_key(test, license)).await
}

/// Changes a license record atomically: `change` sees the current record (or `None`) and says what to store.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn update<S: Store, R: Random, O>(
    store: &S,
    random: &R,
    now_ms: u64,
    test: bool,
    license: &str,
    change: impl FnMut(Option<LicenseRecord>) -> Change<LicenseRecord, O>,
) -> Result<O, StoreError> {
    atomic::update(store, random, now_ms, &license_key(test, license), change).await
}

/// Records a successful activation (the marketplace's `license_code_info`): the license is alive from now on unless
/// the marketplace released it meanwhile.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn activated<S: Store, R: Random>(
    store: &S,
    random: &R,
    now_ms: u64,
    license: &str,
    info: Option<&LicenseCodeInfo>,
) -> Result<(), StoreError> {
    update(store, random, now_ms, false, license, |current| {
        let mut rec = current.unwrap_or_else(|| LicenseRecord::new(license, LicenseState::Alive, now_ms));
        if let Some(info) = info {
            rec.expire_ms = info
                .expire_time
                .as_deref()
                .and_then(|t| crate::wire::time::parse_compact_utc(t).ok())
                .or(rec.expire_ms);
            rec.order_id = info.order_id.clone().or(rec.order_id);
            rec.product_id = info.product_id.clone().or(rec.product_id);
            rec.amount = info.amount.or(rec.amount);
        }
        rec.activated_ms = rec.activated_ms.or(Some(now_ms));
        rec.updated_ms = now_ms;
        Change::Write(rec, ())
    })
    .await
}

/// Records what a successful heartbeat said: a license this component did not know is recorded (alive, or released),
/// and a `RELEASED` license is released here too; otherwise the record is kept (the heartbeat reports no freeze).
/// Returns the record as it stands.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn heard<S: Store, R: Random>(
    store: &S,
    random: &R,
    now_ms: u64,
    license: &str,
    status: Option<&LicenseStatus>,
) -> Result<LicenseRecord, StoreError> {
    update(store, random, now_ms, false, license, |current| {
        let released = status == Some(&LicenseStatus::Released);
        match current {
            Some(rec) if !released || rec.state == LicenseState::Released => Change::Keep(rec),
            Some(mut rec) => {
                rec.state = LicenseState::Released;
                rec.updated_ms = now_ms;
                Change::Write(rec.clone(), rec)
            }
            None => {
                let state = if released { LicenseState::Released } else { LicenseState::Alive };
                let rec = LicenseRecord::new(license, state, now_ms);
                Change::Write(rec.clone(), rec)
            }
        }
    })
    .await
}
