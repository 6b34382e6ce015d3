//! The instance lifecycle as a pure function: `apply(record, event, now) -> Transition`.
//!
//! 1. The handler reads the [`InstanceRecord`] (if any) from the store.
//! 2. It builds an [`Event`] from the verified marketplace request.
//! 3. [`apply`] decides the next record, the answer and the effects (events to forward to the seller's backend).
//! 4. The handler writes the record back only when [`Transition::changed`] says so.
//!
//! The handler runs `apply` inside an atomic update ([`crate::ports::atomic::update`]), so concurrent events on one
//! instance are applied one after the other, each to the record the previous one left. Every rule is also
//! idempotent: a repeated event is recognised (by state, or by its key in the bounded [`InstanceRecord::applied`]
//! history) and changes nothing, which is what makes re-deciding after a compare-and-swap conflict safe.
//!
//! Invariants (checked by property tests):
//! - a released production instance never becomes active, frozen or pending again (a released debug instance is
//!   created again by `newInstance`, for the daily dial test);
//! - repeating any event changes nothing the second time;
//! - an instance belongs to exactly one (orderId, orderLineId) and its id never changes.
//!
//! ```
//! use koogallery_core::lifecycle::{apply, Event, Provisioning, Status};
//! let create = Event::Create { order_id: "CS1".into(), order_line_id: "CS1-000001".into(), product_id: None, details: None };
//! let t = apply(None, "i-1", false, &create, Provisioning::BuiltIn, 1_000);
//! assert!(t.changed);
//! let record = t.record.expect("created");
//! assert_eq!(record.status, Status::Active);
//! let again = apply(Some(record.clone()), "i-1", false, &create, Provisioning::BuiltIn, 2_000);
//! assert!(!again.changed);
//! ```

use serde::{Deserialize, Serialize};

/// How many applied event keys a record remembers. The marketplace retries for at most three hours, a handful of
/// times, so this bounds the record while still recognising every realistic retry.
pub const HISTORY_LIMIT: usize = 64;

/// The `refreshInstance` scene of a plain renewal.
pub const RENEWAL: &str = "RENEWAL";

/// Scenes that extend the subscription: a late retry of an older one must not move the expiry backwards. Any other
/// scene (a cancellation of a renewal period, a change, one not yet documented) sets the expiry it carries.
const EXTENDING_SCENES: [&str; 2] = [RENEWAL, "TRIAL_TO_FORMAL"];

/// Schema version of [`InstanceRecord`], stored with each record so later versions can migrate.
pub const RECORD_VERSION: u32 = 1;

/// Where an instance is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Status {
    /// Waiting for the seller's backend to accept the creation event (forward mode).
    Pending {
        /// The marketplace froze it before provisioning finished.
        frozen: bool,
    },
    /// In service.
    Active,
    /// Frozen on expiry; data is kept until release.
    Frozen,
    /// Released: terminal. Kept as a tombstone so retries and reordered events cannot revive it.
    Released {
        /// When the release was applied (ms epoch).
        at_ms: u64,
    },
}

impl Status {
    /// Whether the instance has been released.
    pub fn is_released(&self) -> bool {
        matches!(self, Status::Released { .. })
    }
}

/// Login information stored for an instance (plaintext at rest; encrypted per response where the protocol asks).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StoredAppInfo {
    /// Front-end / login URL.
    pub front_end_url: String,
    /// Admin console URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    /// Admin account name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Admin password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Free-text remark shown to the buyer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

impl std::fmt::Debug for StoredAppInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAppInfo")
            .field("front_end_url", &self.front_end_url)
            .field("admin_url", &self.admin_url)
            .field("user_name", &self.user_name.as_ref().map(|_| "[REDACTED]"))
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// An order line that touched this instance (creation, renewal, upgrade, release).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLineRef {
    /// What the order did.
    pub kind: String,
    /// KooGallery order id.
    pub order_id: String,
    /// Order line id, when the request carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_line_id: Option<String>,
}

/// An event waiting to reach the seller's backend (forward mode). Kept in the record until delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingDelivery {
    /// Stable event id (`webhook-id`), the same on every attempt.
    pub id: String,
    /// Event type, e.g. `instance.created`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The exact JSON body to POST.
    pub body: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Earliest time (ms epoch) a background delivery tries again; the instance's own requests do not wait.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_try_ms: u64,
    /// Why the last attempt failed (HTTP status or transport error; never a body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the event was given up on after too many attempts (dead-lettered), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_at_ms: Option<u64>,
    /// Until when (ms epoch) a request that is sending the event right now holds it, so concurrent requests do not
    /// all send it too; an expired lease (a request that died) is simply taken over.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub leased_until_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// Everything the handler keeps about one instance, stored as JSON under `{ns}/instance/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRecord {
    /// Schema version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The instance id given to the marketplace.
    pub instance_id: String,
    /// Debug traffic (`testFlag=1`) lives in its own namespace and is marked here too.
    pub test: bool,
    /// The creating order.
    pub order_id: String,
    /// The creating order line.
    pub order_line_id: String,
    /// Current lifecycle state.
    pub status: Status,
    /// Product id, when known (query order, V1 request, refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Expiry (ms epoch), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_ms: Option<u64>,
    /// Login information, once provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_info: Option<StoredAppInfo>,
    /// Extra order details from the request (V1 parameters, order-in-body variant); never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// Order lines that touched this instance, oldest first (bounded).
    #[serde(default)]
    pub order_lines: Vec<OrderLineRef>,
    /// Keys of applied events, oldest first, at most [`HISTORY_LIMIT`].
    #[serde(default)]
    pub applied: Vec<String>,
    /// Number of state changes applied; part of forwarded event ids.
    #[serde(default)]
    pub seq: u32,
    /// How many times a released debug instance was created again (the daily dial test); part of event ids, so a
    /// new life's events never reuse an earlier life's ids.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub generation: u32,
    /// Events not yet accepted by the backend, in the order they happened.
    #[serde(default)]
    pub outbox: Vec<PendingDelivery>,
    /// Events given up on after too many failed attempts, for an operator to see (and re-drive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dead_letters: Vec<PendingDelivery>,
    /// Creation time (ms epoch).
    pub created_ms: u64,
    /// Last change (ms epoch).
    pub updated_ms: u64,
    /// Tokens of the latest writes, which tell an update whether its own compare-and-swap went through
    /// ([`crate::ports::atomic`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<String>,
}

impl crate::ports::atomic::Tokened for InstanceRecord {
    fn write_tokens(&self) -> &[String] {
        &self.writes
    }
    fn write_tokens_mut(&mut self) -> &mut Vec<String> {
        &mut self.writes
    }
}

/// A marketplace request, reduced to what the lifecycle needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `newInstance`: create the instance for an order line.
    Create {
        /// Order id.
        order_id: String,
        /// Order line id (V1 has none; the handler passes its own key).
        order_line_id: String,
        /// Product id when known.
        product_id: Option<String>,
        /// Extra request details to keep.
        details: Option<serde_json::Value>,
    },
    /// `refreshInstance`: new expiry for an order (renewal, trial to formal, cancellation).
    Renew {
        /// The renewal order (the idempotency key).
        order_id: String,
        /// Its order line, when given.
        order_line_id: Option<String>,
        /// The scene as sent (`RENEWAL`, `TRIAL_TO_FORMAL`, …).
        scene: String,
        /// New expiry (ms epoch).
        expire_ms: u64,
        /// New product id, when the product changed.
        product_id: Option<String>,
        /// Whether the renewal also ends a freeze. V1 has no unfreeze call, so a V1 renewal does; V2 sends
        /// `updateInstanceStatus UNFREEZE` after a renewal in the freeze period and leaves this `false`.
        unfreezes: bool,
    },
    /// `updateInstanceStatus FREEZE` / V1 `expireInstance`.
    Freeze,
    /// `updateInstanceStatus UNFREEZE`.
    Unfreeze,
    /// `releaseInstance`.
    Release {
        /// The unsubscription order, when given.
        order_id: Option<String>,
    },
    /// `upgradeInstance` / V1 `upgrade`: a new specification under a new order.
    Upgrade {
        /// The upgrade order (the idempotency key).
        order_id: String,
        /// Its order line, when given.
        order_line_id: Option<String>,
        /// New product id, when given.
        product_id: Option<String>,
        /// Extra request details (sku, linear values).
        details: Option<serde_json::Value>,
    },
}

impl Event {
    /// The key recorded in [`InstanceRecord::applied`], or `None` for events made idempotent by state alone.
    pub fn key(&self) -> Option<String> {
        match self {
            Event::Create { .. } => Some("create".to_owned()),
            // A cancellation (`UNSUBSCRIBE_RENEWAL_PERIOD`) names the renewal order it cancels, so the scene is part
            // of the key; plain renewals keep the short form.
            Event::Renew { order_id, scene, .. } if scene.eq_ignore_ascii_case(RENEWAL) => {
                Some(format!("renew/{order_id}"))
            }
            Event::Renew { order_id, scene, .. } => Some(format!("renew/{}/{order_id}", scene.to_ascii_uppercase())),
            Event::Upgrade { order_id, .. } => Some(format!("upgrade/{order_id}")),
            Event::Freeze | Event::Unfreeze | Event::Release { .. } => None,
        }
    }

    /// The event type forwarded to the backend.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Create { .. } => "instance.created",
            Event::Renew { .. } => "instance.renewed",
            Event::Freeze => "instance.frozen",
            Event::Unfreeze => "instance.unfrozen",
            Event::Release { .. } => "instance.released",
            Event::Upgrade { .. } => "instance.upgraded",
        }
    }
}

/// Whether instances are provisioned by the seller's backend or by the handler itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioning {
    /// No backend: the instance is active at once.
    BuiltIn,
    /// Events are forwarded; a new instance stays pending until the backend accepts it.
    Forward,
}

/// What the marketplace should be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied, or already applied: `000000`.
    Done,
    /// The event needs an instance and there is none: `000003`.
    NotFound,
}

/// The result of [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The record to store (`None` only when there was none and none was created).
    pub record: Option<InstanceRecord>,
    /// Whether `record` differs from the input and must be written.
    pub changed: bool,
    /// The answer.
    pub outcome: Outcome,
    /// Events forwarded to the backend by this transition (already appended to the record's outbox).
    pub forwarded: Vec<String>,
}

/// Applies `event` to `record` at time `now_ms`. Pure: no I/O, no randomness.
///
/// `instance_id` and `test` are used only when `event` creates the record.
pub fn apply(
    record: Option<InstanceRecord>,
    instance_id: &str,
    test: bool,
    event: &Event,
    mode: Provisioning,
    now_ms: u64,
) -> Transition {
    // The daily dial test replays the product's saved debug cases, a release among them; a debug (`testFlag=1`)
    // instance is therefore created again by its `newInstance`, while a production release stays final.
    if let (Some(old), Event::Create { .. }) = (&record, event)
        && old.test
        && old.status.is_released()
    {
        let mut t = create(instance_id, test, event, mode, now_ms, old.seq, old.generation.saturating_add(1));
        if let Some(rec) = t.record.as_mut() {
            // Events of the previous life that have not reached the backend yet still go first.
            let mut outbox = old.outbox.clone();
            outbox.append(&mut rec.outbox);
            rec.outbox = outbox;
            rec.dead_letters.clone_from(&old.dead_letters);
        }
        return t;
    }
    let Some(mut rec) = record else {
        return match event {
            Event::Create { .. } => create(instance_id, test, event, mode, now_ms, 0, 0),
            // Releasing something unknown is success (idempotent release); everything else needs an instance.
            Event::Release { .. } => {
                Transition { record: None, changed: false, outcome: Outcome::Done, forwarded: vec![] }
            }
            _ => Transition { record: None, changed: false, outcome: Outcome::NotFound, forwarded: vec![] },
        };
    };

    let unchanged = |rec: InstanceRecord| Transition {
        record: Some(rec),
        changed: false,
        outcome: Outcome::Done,
        forwarded: vec![],
    };

    if let Some(key) = event.key()
        && rec.applied.contains(&key)
    {
        return unchanged(rec);
    }
    // A released instance is terminal: nothing revives or alters it, and retries still get success.
    if rec.status.is_released() {
        return unchanged(rec);
    }

    let mut thawed = false;
    match event {
        Event::Create { .. } => return unchanged(rec),
        Event::Renew { order_id, order_line_id, scene, expire_ms, product_id, unfreezes } => {
            let extends = EXTENDING_SCENES.iter().any(|s| scene.eq_ignore_ascii_case(s));
            rec.expire_ms = Some(match rec.expire_ms {
                Some(current) if extends => current.max(*expire_ms),
                _ => *expire_ms,
            });
            if *unfreezes {
                let before = rec.status.clone();
                rec.status = match rec.status {
                    Status::Frozen => Status::Active,
                    Status::Pending { .. } => Status::Pending { frozen: false },
                    ref other => other.clone(),
                };
                thawed = rec.status != before;
            }
            if product_id.is_some() {
                rec.product_id.clone_from(product_id);
            }
            push_order_line(&mut rec, scene.to_ascii_lowercase(), order_id, order_line_id.as_deref());
        }
        Event::Freeze => match rec.status {
            Status::Active => rec.status = Status::Frozen,
            Status::Pending { frozen: false } => rec.status = Status::Pending { frozen: true },
            _ => return unchanged(rec),
        },
        Event::Unfreeze => match rec.status {
            Status::Frozen => rec.status = Status::Active,
            Status::Pending { frozen: true } => rec.status = Status::Pending { frozen: false },
            _ => return unchanged(rec),
        },
        Event::Release { order_id } => {
            rec.status = Status::Released { at_ms: now_ms };
            if let Some(order_id) = order_id {
                push_order_line(&mut rec, "release".into(), order_id, None);
            }
        }
        Event::Upgrade { order_id, order_line_id, product_id, details } => {
            if product_id.is_some() {
                rec.product_id.clone_from(product_id);
            }
            if details.is_some() {
                rec.details.clone_from(details);
            }
            push_order_line(&mut rec, "upgrade".into(), order_id, order_line_id.as_deref());
        }
    }
    let mut forwarded = finish(&mut rec, event, mode, now_ms);
    if thawed && mode == Provisioning::Forward {
        // The backend learns of the end of the freeze as it would from UNFREEZE.
        forwarded.push(queue(&mut rec, &Event::Unfreeze, now_ms));
    }
    Transition { record: Some(rec), changed: true, outcome: Outcome::Done, forwarded }
}

/// A new record for a `Create` event; `seq` and `generation` continue a released debug instance's when it is
/// created again (so its events get new ids).
fn create(
    instance_id: &str,
    test: bool,
    event: &Event,
    mode: Provisioning,
    now_ms: u64,
    seq: u32,
    generation: u32,
) -> Transition {
    let Event::Create { order_id, order_line_id, product_id, details } = event else {
        return Transition { record: None, changed: false, outcome: Outcome::NotFound, forwarded: vec![] };
    };
    let mut rec = InstanceRecord {
        v: RECORD_VERSION,
        instance_id: instance_id.to_owned(),
        test,
        order_id: order_id.clone(),
        order_line_id: order_line_id.clone(),
        status: match mode {
            Provisioning::BuiltIn => Status::Active,
            Provisioning::Forward => Status::Pending { frozen: false },
        },
        product_id: product_id.clone(),
        expire_ms: None,
        app_info: None,
        details: details.clone(),
        order_lines: vec![OrderLineRef {
            kind: "new".into(),
            order_id: order_id.clone(),
            order_line_id: Some(order_line_id.clone()),
        }],
        applied: Vec::new(),
        seq,
        generation,
        outbox: Vec::new(),
        dead_letters: Vec::new(),
        created_ms: now_ms,
        updated_ms: now_ms,
        writes: Vec::new(),
    };
    let forwarded = finish(&mut rec, event, mode, now_ms);
    Transition { record: Some(rec), changed: true, outcome: Outcome::Done, forwarded }
}

/// Marks a pending instance as provisioned with the backend's (or built-in) login information.
///
/// Idempotent: an instance that is not pending is returned unchanged (`false`).
pub fn provisioned(rec: &mut InstanceRecord, app_info: StoredAppInfo, now_ms: u64) -> bool {
    match rec.status {
        Status::Pending { frozen } => {
            rec.status = if frozen { Status::Frozen } else { Status::Active };
            rec.app_info = Some(app_info);
            rec.updated_ms = now_ms;
            true
        }
        _ => false,
    }
}

fn push_order_line(rec: &mut InstanceRecord, kind: String, order_id: &str, order_line_id: Option<&str>) {
    rec.order_lines.push(OrderLineRef {
        kind,
        order_id: order_id.to_owned(),
        order_line_id: order_line_id.map(str::to_owned),
    });
    if rec.order_lines.len() > HISTORY_LIMIT {
        // Keep the creating line (index 0) and the most recent ones.
        rec.order_lines.remove(1);
    }
}

/// Records the event as applied, bumps the sequence and, in forward mode, queues the backend event.
fn finish(rec: &mut InstanceRecord, event: &Event, mode: Provisioning, now_ms: u64) -> Vec<String> {
    if let Some(key) = event.key() {
        rec.applied.push(key);
        if rec.applied.len() > HISTORY_LIMIT {
            rec.applied.remove(0);
        }
    }
    rec.seq = rec.seq.saturating_add(1);
    rec.updated_ms = now_ms;
    if mode == Provisioning::BuiltIn {
        return Vec::new();
    }
    vec![queue(rec, event, now_ms)]
}

/// Queues `event` for the backend with its id and body; returns the id.
fn queue(rec: &mut InstanceRecord, event: &Event, now_ms: u64) -> String {
    let id = event_id(&rec.instance_id, &event_identity(event, rec.seq, rec.generation));
    let body = backend_event_body(&id, rec, event, now_ms);
    rec.outbox.push(PendingDelivery {
        id: id.clone(),
        kind: event.kind().to_owned(),
        body,
        attempts: 0,
        next_try_ms: 0,
        last_error: None,
        dead_at_ms: None,
        leased_until_ms: 0,
    });
    id
}

/// What makes an event itself: its key when it has one (the creation, a renewal or upgrade order), else its kind
/// and the record's sequence number after it (freeze, unfreeze and release are told apart by position only, and
/// updates are serialised by compare-and-swap, so no two transitions share a sequence number); plus the record's
/// generation once a debug instance has been created again.
fn event_identity(event: &Event, seq: u32, generation: u32) -> String {
    let own = match event {
        Event::Create { .. } => "create".to_owned(),
        _ => event.key().unwrap_or_else(|| format!("{}/{seq}", event.kind())),
    };
    // A debug instance created again after its release starts a new life: none of its events reuses an id.
    if generation == 0 { own } else { format!("{own}@{generation}") }
}
/// The stable id of an event (`webhook-id`): a UUID v5 of the instance and the event's identity, the same on every
/// delivery attempt and different for any two different events, so the backend can deduplicate on it.
pub fn event_id(instance_id: &str, identity: &str) -> String {
    let name = format!("koogallery-edge/event/{}:{instance_id}/{identity}", instance_id.len());
    format!("evt_{}", uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).simple())
}

/// The normalised JSON the backend receives (Standard Webhooks payload: `type`, `timestamp`, `data`).
fn backend_event_body(id: &str, rec: &InstanceRecord, event: &Event, now_ms: u64) -> String {
    let mut data = serde_json::json!({
        "instanceId": rec.instance_id,
        "orderId": rec.order_id,
        "orderLineId": rec.order_line_id,
        "testFlag": rec.test,
        "status": rec.status,
    });
    if let Some(obj) = data.as_object_mut() {
        if let Some(p) = &rec.product_id {
            obj.insert("productId".into(), p.clone().into());
        }
        if let Some(e) = rec.expire_ms {
            obj.insert("expireTime".into(), e.into());
        }
        match event {
            Event::Renew { order_id, scene, .. } => {
                obj.insert("scene".into(), scene.clone().into());
                obj.insert("eventOrderId".into(), order_id.clone().into());
            }
            Event::Upgrade { order_id, .. } => {
                obj.insert("eventOrderId".into(), order_id.clone().into());
            }
            Event::Release { order_id: Some(order_id) } => {
                obj.insert("eventOrderId".into(), order_id.clone().into());
            }
            _ => {}
        }
        // A creation carries the details kept with the instance; an upgrade only its own (its order), never an
        // earlier order's.
        let details = match event {
            Event::Create { .. } => rec.details.as_ref(),
            Event::Upgrade { details, .. } => details.as_ref(),
            _ => None,
        };
        if let Some(d) = details {
            obj.insert("details".into(), d.clone());
        }
    }
    let body = serde_json::json!({
        "id": id,
        "type": event.kind(),
        "timestamp": now_ms,
        "data": data,
    });
    body.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create() -> Event {
        Event::Create { order_id: "CS1".into(), order_line_id: "CS1-000001".into(), product_id: None, details: None }
    }

    fn created(mode: Provisioning) -> InstanceRecord {
        apply(None, "i-1", false, &create(), mode, 10).record.expect("created")
    }

    #[test]
    fn built_in_create_is_active_and_forwards_nothing() {
        let t = apply(None, "i-1", false, &create(), Provisioning::BuiltIn, 10);
        assert_eq!(t.record.as_ref().map(|r| &r.status), Some(&Status::Active));
        assert!(t.forwarded.is_empty());
    }

    #[test]
    fn forward_create_is_pending_with_one_outbox_event() {
        let t = apply(None, "i-1", false, &create(), Provisioning::Forward, 10);
        let rec = t.record.expect("record");
        assert_eq!(rec.status, Status::Pending { frozen: false });
        assert_eq!(rec.outbox.len(), 1);
        assert_eq!(t.forwarded, vec![rec.outbox[0].id.clone()]);
        assert_eq!(rec.outbox[0].id, event_id("i-1", "create"));
    }

    #[test]
    fn events_on_unknown_instances() {
        assert_eq!(apply(None, "x", false, &Event::Freeze, Provisioning::BuiltIn, 1).outcome, Outcome::NotFound);
        let release = apply(None, "x", false, &Event::Release { order_id: None }, Provisioning::BuiltIn, 1);
        assert_eq!(release.outcome, Outcome::Done);
        assert!(release.record.is_none() && !release.changed);
    }

    #[test]
    fn renewal_is_idempotent_per_order() {
        let renew = Event::Renew {
            order_id: "R1".into(),
            order_line_id: None,
            scene: "RENEWAL".into(),
            expire_ms: 99,
            product_id: None,
            unfreezes: false,
        };
        let first = apply(Some(created(Provisioning::BuiltIn)), "i-1", false, &renew, Provisioning::BuiltIn, 20);
        assert!(first.changed);
        let rec = first.record.expect("record");
        assert_eq!(rec.expire_ms, Some(99));
        let second = apply(Some(rec.clone()), "i-1", false, &renew, Provisioning::BuiltIn, 30);
        assert!(!second.changed);
        assert_eq!(second.record, Some(rec));
    }

    #[test]
    fn freeze_unfreeze_by_state() {
        let rec = created(Provisioning::BuiltIn);
        let frozen = apply(Some(rec), "i-1", false, &Event::Freeze, Provisioning::BuiltIn, 20).record.expect("r");
        assert_eq!(frozen.status, Status::Frozen);
        let again = apply(Some(frozen.clone()), "i-1", false, &Event::Freeze, Provisioning::BuiltIn, 21);
        assert!(!again.changed);
        let thawed = apply(Some(frozen), "i-1", false, &Event::Unfreeze, Provisioning::BuiltIn, 22).record.expect("r");
        assert_eq!(thawed.status, Status::Active);
        assert!(!apply(Some(thawed), "i-1", false, &Event::Unfreeze, Provisioning::BuiltIn, 23).changed);
    }

    #[test]
    fn released_never_comes_back() {
        let rec = created(Provisioning::BuiltIn);
        let released = apply(Some(rec), "i-1", false, &Event::Release { order_id: None }, Provisioning::BuiltIn, 20)
            .record
            .expect("r");
        for e in [create(), Event::Unfreeze, Event::Freeze, Event::Release { order_id: Some("U".into()) }] {
            let t = apply(Some(released.clone()), "i-1", false, &e, Provisioning::BuiltIn, 30);
            assert!(!t.changed, "{e:?}");
            assert_eq!(t.outcome, Outcome::Done);
            assert!(t.record.expect("r").status.is_released());
        }
    }

    #[test]
    fn pending_then_frozen_then_provisioned_stays_frozen() {
        let rec = created(Provisioning::Forward);
        let mut rec = apply(Some(rec), "i-1", false, &Event::Freeze, Provisioning::Forward, 20).record.expect("r");
        assert!(provisioned(&mut rec, StoredAppInfo::default(), 30));
        assert_eq!(rec.status, Status::Frozen);
        assert!(!provisioned(&mut rec, StoredAppInfo::default(), 31));
    }

    #[test]
    fn history_is_bounded() {
        let mut rec = created(Provisioning::BuiltIn);
        for i in 0..200u64 {
            let e = Event::Renew {
                order_id: format!("R{i}"),
                order_line_id: None,
                scene: "RENEWAL".into(),
                expire_ms: i,
                product_id: None,
                unfreezes: false,
            };
            rec = apply(Some(rec), "i-1", false, &e, Provisioning::BuiltIn, i).record.expect("r");
        }
        assert_eq!(rec.applied.len(), HISTORY_LIMIT);
        assert!(rec.order_lines.len() <= HISTORY_LIMIT);
        assert_eq!(rec.order_lines[0].kind, "new");
    }

    fn renew(order: &str, scene: &str, expire_ms: u64, unfreezes: bool) -> Event {
        Event::Renew {
            order_id: order.into(),
            order_line_id: None,
            scene: scene.into(),
            expire_ms,
            product_id: None,
            unfreezes,
        }
    }

    #[test]
    fn cancelling_a_renewal_is_not_taken_for_a_repeat_of_it() {
        let rec = created(Provisioning::Forward);
        let renewed = apply(Some(rec), "i-1", false, &renew("R1", "RENEWAL", 2_000, false), Provisioning::Forward, 20);
        let rec = renewed.record.expect("r");
        let cancel = renew("R1", "UNSUBSCRIBE_RENEWAL_PERIOD", 1_000, false);
        let t = apply(Some(rec), "i-1", false, &cancel, Provisioning::Forward, 30);
        assert!(t.changed, "the cancellation is applied");
        let rec = t.record.expect("r");
        assert_eq!(rec.expire_ms, Some(1_000), "a cancellation shortens the subscription");
        assert_eq!(rec.outbox.last().map(|e| e.kind.as_str()), Some("instance.renewed"));
        assert!(!apply(Some(rec), "i-1", false, &cancel, Provisioning::Forward, 40).changed, "its retry is not");
    }

    #[test]
    fn a_late_older_renewal_does_not_move_the_expiry_back() {
        let rec = created(Provisioning::BuiltIn);
        let rec = apply(Some(rec), "i-1", false, &renew("R2", "RENEWAL", 3_000, false), Provisioning::BuiltIn, 20)
            .record
            .expect("r");
        let late = apply(Some(rec), "i-1", false, &renew("R1", "RENEWAL", 2_000, false), Provisioning::BuiltIn, 30);
        assert!(late.changed, "recorded as applied");
        assert_eq!(late.record.expect("r").expire_ms, Some(3_000));
    }

    #[test]
    fn a_renewal_that_unfreezes_ends_a_freeze_and_one_that_does_not_leaves_it() {
        let rec = created(Provisioning::BuiltIn);
        let frozen = apply(Some(rec), "i-1", false, &Event::Freeze, Provisioning::BuiltIn, 20).record.expect("r");
        let v2 =
            apply(Some(frozen.clone()), "i-1", false, &renew("R1", "RENEWAL", 9, false), Provisioning::BuiltIn, 30);
        assert_eq!(v2.record.expect("r").status, Status::Frozen);
        let v1 = apply(Some(frozen), "i-1", false, &renew("R1", "RENEWAL", 9, true), Provisioning::BuiltIn, 30);
        assert_eq!(v1.record.expect("r").status, Status::Active);
    }

    #[test]
    fn different_events_never_share_an_id_and_a_retry_keeps_its_id() {
        let mut rec = created(Provisioning::Forward);
        let events = [
            renew("R1", "RENEWAL", 5, false),
            renew("R2", "RENEWAL", 6, false),
            Event::Freeze,
            Event::Unfreeze,
            Event::Freeze,
            renew("R2", "UNSUBSCRIBE_RENEWAL_PERIOD", 5, false),
            Event::Release { order_id: None },
        ];
        for (i, e) in events.iter().enumerate() {
            rec = apply(Some(rec), "i-1", false, e, Provisioning::Forward, 100 + i as u64).record.expect("r");
        }
        let ids: std::collections::BTreeSet<&str> = rec.outbox.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), rec.outbox.len(), "{:?}", rec.outbox);
        assert_eq!(rec.outbox.len(), events.len() + 1);
        // The same renewal applied to a record that never saw it (another node's copy) gets the same id.
        let other = apply(Some(created(Provisioning::Forward)), "i-1", false, &events[1], Provisioning::Forward, 7);
        assert_eq!(other.record.expect("r").outbox[1].id, rec.outbox[2].id);
    }

    #[test]
    fn a_released_debug_instance_is_created_again_but_a_production_one_is_not() {
        for (test, comes_back) in [(true, true), (false, false)] {
            let rec = apply(None, "i-1", test, &create(), Provisioning::Forward, 10).record.expect("r");
            let release = Event::Release { order_id: None };
            let released = apply(Some(rec), "i-1", test, &release, Provisioning::Forward, 20).record.expect("r");
            let again = apply(Some(released.clone()), "i-1", test, &create(), Provisioning::Forward, 30);
            let rec = again.record.expect("r");
            assert_eq!(!rec.status.is_released(), comes_back, "test={test}");
            if comes_back {
                let first = released.outbox[0].id.clone();
                let new = rec.outbox.last().map(|e| e.id.clone()).unwrap_or_default();
                assert_ne!(first, new, "the new creation has its own event id");
                assert_eq!(rec.outbox.len(), released.outbox.len() + 1, "earlier undelivered events are kept");
                assert!(rec.seq > released.seq);
            }
        }
    }

    #[test]
    fn a_v1_renewal_that_ends_a_freeze_tells_the_backend_so() {
        let rec = created(Provisioning::Forward);
        let rec = apply(Some(rec), "i-1", false, &Event::Freeze, Provisioning::Forward, 20).record.expect("r");
        let t = apply(Some(rec), "i-1", false, &renew("R1", "RENEWAL", 9, true), Provisioning::Forward, 30);
        let kinds: Vec<&str> =
            t.record.as_ref().map(|r| r.outbox.iter().map(|e| e.kind.as_str()).collect()).unwrap_or_default();
        assert_eq!(kinds, ["instance.created", "instance.frozen", "instance.renewed", "instance.unfrozen"]);
        assert_eq!(t.forwarded.len(), 2);
    }

    #[test]
    fn a_new_life_of_a_debug_instance_never_reuses_an_event_id() {
        let life = |rec: Option<InstanceRecord>| {
            let rec = apply(rec, "i-1", true, &create(), Provisioning::Forward, 10).record.expect("r");
            let rec = apply(Some(rec), "i-1", true, &renew("R1", "RENEWAL", 9, false), Provisioning::Forward, 20)
                .record
                .expect("r");
            apply(Some(rec), "i-1", true, &Event::Release { order_id: None }, Provisioning::Forward, 30)
                .record
                .expect("r")
        };
        let first = life(None);
        let second = life(Some(first.clone()));
        let ids: std::collections::BTreeSet<&str> = second.outbox.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), second.outbox.len(), "both lives' events, all ids different: {:?}", second.outbox);
        assert_eq!(second.outbox.len(), 2 * first.outbox.len());
    }
}
