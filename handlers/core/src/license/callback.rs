//! The marketplace → seller license callbacks (§8.4): update expiry, change status (FREEZE/UNFREEZE), release. Same
//! transport and signature as the basic interface (V2 query signature, `Body-Sign` answers), verified before the
//! body is read; each callback is one compare-and-swap write of the license's record, and repeating it changes
//! nothing.
//!
//! The `activity` names are not published, so a callback is recognised by its fields (`license` with `status`,
//! with `expireTime`, or alone), unless `license_activities` names the activities: then a known name decides, and
//! a body missing the field that callback needs is refused (`000002`). The activity seen is logged either way.

use super::LicenseConfig;
use super::state::{self, LicenseRecord, LicenseState};
use crate::http::{Inbound, MAX_BODY_BYTES};
use crate::ports::atomic::Change;
use crate::ports::{Clock, Random, Store};
use crate::produce::reply::Reply;
use crate::produce::{Ctx, Handled};
use crate::wire::license::{LicenseCallback, parse_license_callback};
use crate::wire::result_code::ResultCode;
use crate::wire::v2::InstanceStatusChange;

const IFACE: &str = "license";

/// The fields a license callback may carry (§8.4, plus the basic interface's common ones). A body that would be read
/// as a release but carries anything else is refused: it is a callback this component does not understand (a
/// renamed status field, say), and a release cannot be undone.
const KNOWN_FIELDS: [&str; 11] = [
    "activity",
    "license",
    "status",
    "expireTime",
    "orderId",
    "orderLineId",
    "productId",
    "scene",
    "testFlag",
    "businessId",
    "timeStamp",
];

/// Why a body cannot be taken as the callback its fields suggest, before anything changes.
fn ambiguity(body: &[u8], kind: CallbackKind) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    for name in ["status", "expireTime"] {
        if let Some(v) = object.get(name)
            && (v.is_null() || v.as_str().is_some_and(|t| t.trim().is_empty()))
        {
            return Some(format!("{name} is empty"));
        }
    }
    if kind == CallbackKind::Release
        && let Some(unknown) = object.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str()))
    {
        return Some(format!("{unknown} is not a license callback field"));
    }
    None
}

/// Which callback an activity name stands for (`license_activities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackKind {
    /// 更新授权码有效期.
    Expiry,
    /// 变更授权码状态.
    Status,
    /// 释放授权码.
    Release,
}

impl CallbackKind {
    fn of(callback: &LicenseCallback) -> Self {
        match callback {
            LicenseCallback::UpdateExpiry(_) => Self::Expiry,
            LicenseCallback::ChangeStatus(_) => Self::Status,
            LicenseCallback::Release(_) => Self::Release,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Expiry => "updateLicenseExpiry",
            Self::Status => "changeLicenseStatus",
            Self::Release => "releaseLicense",
        }
    }
}

/// What a callback did to its record.
enum Applied {
    Done,
    Unknown,
}

/// Answers one license callback.
pub async fn handle<S: Store, B, C: Clock, R: Random>(
    req: &Inbound,
    cfg: &LicenseConfig,
    ctx: &Ctx<'_, S, B, C, R>,
) -> Handled {
    if req.body.len() > MAX_BODY_BYTES {
        let message = format!("request body exceeds {MAX_BODY_BYTES} bytes");
        return Reply::error(IFACE, None, ResultCode::InvalidParameter, message)
            .finish_with(cfg.basic.keys.signing_key(), None);
    }
    let key_index = match crate::produce::v2::verify(req, &cfg.basic, ctx).await {
        Ok(i) => i,
        Err(refusal) => return refusal.finish_with(cfg.basic.keys.signing_key(), None),
    };
    let key = cfg.basic.keys.iter().nth(key_index).unwrap_or_else(|| cfg.basic.keys.signing_key());
    let callback = match parse_license_callback(&req.body) {
        Ok(c) => c,
        Err(e) => return Reply::error(IFACE, None, ResultCode::InvalidParameter, e.to_string()).finish_with(key, None),
    };
    let (seen, license, test) = match &callback {
        LicenseCallback::UpdateExpiry(c) => (c.activity.clone(), c.license.clone(), c.test_flag.is_debug()),
        LicenseCallback::ChangeStatus(c) => (c.activity.clone(), c.license.clone(), c.test_flag.is_debug()),
        LicenseCallback::Release(c) => (c.activity.clone(), c.license.clone(), c.test_flag.is_debug()),
    };
    let by_fields = CallbackKind::of(&callback);
    let named = seen.as_deref().and_then(|a| cfg.activities.iter().find(|(name, _)| name == a).map(|(_, k)| *k));
    let activity = seen.clone().unwrap_or_else(|| by_fields.name().to_owned());
    if let Some(problem) = ambiguity(&req.body, by_fields) {
        return Reply::error(IFACE, Some(&activity), ResultCode::InvalidParameter, problem).finish_with(key, None);
    }
    if named.is_none() && seen.is_some() && !cfg.activities.is_empty() {
        // The names are configured: another one is a callback this component was not told about.
        let message = format!("activity {} is not one of license_activities", super::log_safe_code(&activity));
        return Reply::error(IFACE, Some(&activity), ResultCode::InvalidParameter, message).finish_with(key, None);
    }
    if let Some(kind) = named
        && kind != by_fields
    {
        let message = match kind {
            CallbackKind::Expiry => "expireTime is missing",
            CallbackKind::Status => "status is missing",
            CallbackKind::Release => "a release carries neither status nor expireTime",
        };
        return Reply::error(IFACE, Some(&activity), ResultCode::InvalidParameter, message.to_owned())
            .finish_with(key, None);
    }
    let now = ctx.clock.now_ms();
    let applied =
        state::update(ctx.store, ctx.random, now, test, &license, |current| apply(&callback, current, test, now)).await;
    let reply = match applied {
        Ok(Applied::Done) => Reply::code(IFACE, &activity, ResultCode::Success),
        Ok(Applied::Unknown) => {
            Reply::error(IFACE, Some(&activity), ResultCode::InstanceNotFound, "license not found".to_owned())
        }
        // The store's error names the key, which holds the license code: not logged.
        Err(_) => Reply::code(IFACE, &activity, ResultCode::InternalError).with_reason("key-value store error"),
    };
    let reason = format!(
        "{} by {} license={}",
        by_fields.name(),
        if named.is_some() { "activity" } else { "fields" },
        super::log_safe_code(&license)
    );
    let mut handled = reply.finish_with(key, None);
    if handled.summary.reason.is_none() {
        handled.summary.reason = Some(reason);
    }
    handled
}

/// The change a callback makes: an unknown license is `000003` for an expiry or status change, and is recorded as
/// released by a release (so the release is acknowledged and a late activation cannot revive it here); a released
/// license stays released. Debug traffic (`testFlag=1`) has no activation, so its first callback creates the record.
fn apply(
    callback: &LicenseCallback,
    current: Option<LicenseRecord>,
    test: bool,
    now: u64,
) -> Change<LicenseRecord, Applied> {
    let current = match (current, callback) {
        (Some(rec), _) => Some((rec, false)),
        (None, LicenseCallback::Release(c)) => {
            let mut rec = LicenseRecord::new(&c.license, LicenseState::Released, now);
            rec.order_id.clone_from(&c.order_id);
            return Change::Write(rec, Applied::Done);
        }
        (None, LicenseCallback::UpdateExpiry(c)) if test => {
            Some((LicenseRecord::new(&c.license, LicenseState::Alive, now), true))
        }
        (None, LicenseCallback::ChangeStatus(c)) if test => {
            Some((LicenseRecord::new(&c.license, LicenseState::Alive, now), true))
        }
        (None, _) => None,
    };
    let Some((mut rec, created)) = current else { return Change::Keep(Applied::Unknown) };
    if rec.state == LicenseState::Released {
        return Change::Keep(Applied::Done);
    }
    let before = rec.clone();
    match callback {
        LicenseCallback::UpdateExpiry(c) => {
            rec.expire_ms = Some(c.expire_time_ms);
            rec.order_id = c.order_id.clone().or(rec.order_id);
            rec.product_id = c.product_id.clone().or(rec.product_id);
        }
        LicenseCallback::ChangeStatus(c) => {
            rec.state = match c.status {
                InstanceStatusChange::Freeze => LicenseState::Frozen,
                InstanceStatusChange::Unfreeze => LicenseState::Alive,
            };
        }
        LicenseCallback::Release(_) => rec.state = LicenseState::Released,
    }
    if rec == before && !created {
        return Change::Keep(Applied::Done);
    }
    rec.updated_ms = now;
    Change::Write(rec, Applied::Done)
}
