//! When a user last lost admission to an application, so that a login made before it ends for good.
//!
//! A login session (the SSO component) checks the tenant's record on every use; that alone would let a session
//! made before a revoke work again after a later re-grant. So each sync that leaves a user without access (an
//! `authSync` revoke, delete or disable; an application or tenant delete) records the record's `seq` after it
//! under an "ended" key, and a session admitted at an older `seq` is over.
//!
//! Markers are written on repeats too (with the record's current `seq`), so a marker whose write failed (the
//! marketplace was answered `000005`) is written by the retry even though the record needs no change. A later
//! `seq` is always safe: no session can have been admitted while the user had no access. Markers are never
//! deleted (they are written through [`atomic::update`]); there is one per user who ever lost access.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::record::{PREFIX, TenantRecord};
use crate::ports::atomic::{self, Change, Tokened};
use crate::ports::{Random, Store, StoreError};
use crate::wire::kit::{KitRequest, SyncFlag};

/// The `seq` of the tenant's record after the latest sync that ended access at one scope.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Ended {
    seq: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
}

impl Tokened for Ended {
    fn write_tokens(&self) -> &[String] {
        &self.writes
    }
    fn write_tokens_mut(&mut self) -> &mut Vec<String> {
        &mut self.writes
    }
}

/// The key of the marker of one scope: a whole tenant record (`app` and `user` `None`), one application of it,
/// or one user of one application. Hashed: names may hold any character.
fn ended_key(rec: &TenantRecord, app: Option<&str>, user: Option<&str>) -> String {
    let mut h = Sha256::new();
    for part in [Some(rec.instance_id.as_str()), Some(rec.tenant_id.as_str()), app, user] {
        match part {
            Some(p) => {
                h.update([1]);
                h.update(p.as_bytes());
                h.update([0]);
            }
            None => h.update([2]),
        }
    }
    let ns = if rec.test { "test" } else { "live" };
    format!("{PREFIX}{ns}/ended/{}", hex::encode(h.finalize()))
}

/// Records that `request`, now applied (`rec` is the record after it, or as it stands for a repeat), left users
/// without access: each user an `authSync` names who is not authorised now, the application of an
/// `applicationSync` delete, the tenant of a `tenantSync` delete.
///
/// # Errors
/// [`StoreError`] when the store fails; the sync must then not be acknowledged.
pub async fn record_ended<S: Store, R: Random>(
    store: &S,
    random: &R,
    now_ms: u64,
    rec: &TenantRecord,
    request: &KitRequest,
) -> Result<(), StoreError> {
    let mut scopes: Vec<(Option<&str>, Option<&str>)> = Vec::new();
    match request {
        KitRequest::AuthSync(r) => {
            for u in &r.user_list {
                if !rec.is_authorised(&r.app_id, &u.user_name) {
                    scopes.push((Some(r.app_id.as_str()), Some(u.user_name.as_str())));
                }
            }
        }
        KitRequest::ApplicationSync(r) if r.flag == SyncFlag::Delete => scopes.push((Some(r.app_id.as_str()), None)),
        KitRequest::TenantSync(r) if r.flag == SyncFlag::Delete => scopes.push((None, None)),
        _ => {}
    }
    for (app, user) in scopes {
        let key = ended_key(rec, app, user);
        atomic::update(store, random, now_ms, &key, |current: Option<Ended>| match current {
            Some(c) if c.seq >= rec.seq => Change::Keep(()),
            c => Change::Write(Ended { seq: rec.seq, writes: c.map(|c| c.writes).unwrap_or_default() }, ()),
        })
        .await?;
    }
    Ok(())
}

/// Whether a session admitted from `rec` when it was at `since_seq` still stands: the user is authorised now, and
/// no sync ended the access of the user, the application or the tenant after `since_seq`.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn still_admitted<S: Store>(
    store: &S,
    rec: &TenantRecord,
    app_id: &str,
    user_name: &str,
    since_seq: u64,
) -> Result<bool, StoreError> {
    if !rec.is_authorised(app_id, user_name) {
        return Ok(false);
    }
    for (app, user) in [(None, None), (Some(app_id), None), (Some(app_id), Some(user_name))] {
        if let Some(ended) = atomic::read::<_, Ended>(store, &ended_key(rec, app, user)).await?
            && ended.seq > since_seq
        {
            return Ok(false);
        }
    }
    Ok(true)
}
