//! Forward mode's durable outbox: events wait in their instance's record until the backend accepts them, and an
//! index of instances with waiting events lets any request, or an external scheduler, deliver them.
//!
//! - **Where events wait.** An event is queued in the same compare-and-swap write as the state change it announces
//!   (`InstanceRecord::outbox`, in order), each with its attempts, next try and last error; so no change is ever
//!   stored without its event. The instance is then listed in the due index (`outbox/due`) before the marketplace
//!   is answered, unless the request delivered everything itself.
//! - **Who delivers.** (a) The request that created the event, and every later request for that instance (the
//!   marketplace's retries and polls), at once; (b) any other request to the component, after its own answer is
//!   decided, for instances whose next try is due, within the request's deadline; (c) `POST <route>/outbox/drain`
//!   with `Authorization: Bearer <admin_token>`, for a scheduler (a cron job, a SpinKube CronJob), so events reach
//!   the backend even when the marketplace never calls again.
//! - **Order.** Per instance, events are sent in the order they happened; a later event waits while an earlier one
//!   fails. After `outbox_max_attempts` failures an event is dead-lettered (moved to
//!   `InstanceRecord::dead_letters`, listed with its reason on `GET <route>/outbox`, logged by kind), which lets
//!   the later ones go.
//! - **Back-off.** Background delivery (b, c) waits `5 s × 2^(attempts−1)`, at most an hour, after a failure.
//! - **The index stays a superset.** Removing an instance from the index re-reads its record afterwards and puts
//!   it back if an event arrived meanwhile, so an event that was answered `000000` is always either delivered or
//!   listed.

use serde::{Deserialize, Serialize};

use super::config::ProduceConfig;
use super::ctx::{Ctx, Deadline};
use super::state::{instance_key, load, namespace};
use crate::lifecycle::{self, InstanceRecord, PendingDelivery, StoredAppInfo};
use crate::ports::atomic::{self, Change, Tokened};
use crate::ports::{Backend, Clock, Random, Store, StoreError};
use crate::webhook::WebhookSigner;

/// Key of the index of instances with events waiting for the backend.
pub const DUE_KEY: &str = "outbox/due";
/// Key of the index of instances with dead-lettered events.
pub const DEAD_KEY: &str = "outbox/dead";

/// A backend call is not started with less than this left of the deadline.
const MIN_CALL_MS: u64 = 250;
/// Kept free at the end of the deadline to write the result and answer.
const ANSWER_MARGIN_MS: u64 = 100;
/// First background retry delay; doubles per failure up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: u64 = 5_000;
const MAX_BACKOFF_MS: u64 = 3_600_000;
/// Dead letters kept per instance (the oldest go first).
const DEAD_LETTER_LIMIT: usize = 64;
/// Instances one marketplace request delivers for in the background, besides its own.
pub const BACKGROUND_INSTANCES: usize = 4;

/// What delivery did during one request, for the log line (kinds and counts only, never bodies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Events the backend accepted.
    pub delivered: u32,
    /// Failed attempts.
    pub failed: u32,
    /// Kinds of the events dead-lettered by this request.
    pub dead_lettered: Vec<String>,
    /// The last failure's reason.
    pub last_error: Option<String>,
}

impl DeliveryReport {
    /// Whether anything happened worth a log field.
    pub fn is_empty(&self) -> bool {
        self.delivered == 0 && self.failed == 0 && self.dead_lettered.is_empty()
    }
}

impl std::fmt::Display for DeliveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "delivered={} failed={}", self.delivered, self.failed)?;
        if !self.dead_lettered.is_empty() {
            write!(f, " dead_lettered={}", self.dead_lettered.join(","))?;
        }
        if let Some(e) = &self.last_error {
            write!(f, " last_error={e:?}")?;
        }
        Ok(())
    }
}

/// A set of instances (`{namespace}/{instanceId}`), kept in one key.
#[derive(Debug, Default, Serialize, Deserialize)]
struct InstanceIndex {
    #[serde(default)]
    instances: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
}

impl Tokened for InstanceIndex {
    fn write_tokens(&self) -> &[String] {
        &self.writes
    }
    fn write_tokens_mut(&mut self) -> &mut Vec<String> {
        &mut self.writes
    }
}

fn entry(test: bool, instance_id: &str) -> String {
    format!("{}/{instance_id}", namespace(test))
}

fn parse_entry(entry: &str) -> Option<(bool, &str)> {
    match entry.split_once('/')? {
        ("live", id) => Some((false, id)),
        ("test", id) => Some((true, id)),
        _ => None,
    }
}

/// Adds an instance to an index (nothing is written when it is listed already).
async fn index_add<S: Store, R: Random>(store: &S, random: &R, key: &str, item: &str) -> Result<(), StoreError> {
    atomic::update(store, random, key, |current: Option<InstanceIndex>| {
        let mut index = current.unwrap_or_default();
        if index.instances.iter().any(|i| i == item) {
            return Change::Keep(());
        }
        index.instances.push(item.to_owned());
        Change::Write(index, ())
    })
    .await
}

async fn index_remove<S: Store, R: Random>(store: &S, random: &R, key: &str, item: &str) -> Result<(), StoreError> {
    atomic::update(store, random, key, |current: Option<InstanceIndex>| match current {
        Some(mut index) if index.instances.iter().any(|i| i == item) => {
            index.instances.retain(|i| i != item);
            Change::Write(index, ())
        }
        _ => Change::Keep(()),
    })
    .await
}

async fn index_read<S: Store>(store: &S, key: &str) -> Result<Vec<String>, StoreError> {
    Ok(atomic::read::<_, InstanceIndex>(store, key).await?.map(|i| i.instances).unwrap_or_default())
}

/// Makes sure an instance whose record still has waiting events is listed in the due index; called before the
/// marketplace is answered.
///
/// # Errors
/// [`StoreError`] when the store fails (the answer becomes `000005`, and the marketplace's retry lists it).
pub async fn ensure_listed<S: Store, B, C, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    rec: &InstanceRecord,
) -> Result<(), StoreError> {
    if rec.outbox.is_empty() {
        return Ok(());
    }
    index_add(ctx.store, ctx.random, DUE_KEY, &entry(rec.test, &rec.instance_id)).await
}

/// The delay before the next background attempt after `attempts` failures.
pub fn backoff_ms(attempts: u32) -> u64 {
    let doublings = attempts.saturating_sub(1).min(20);
    FIRST_BACKOFF_MS.saturating_mul(1 << doublings).min(MAX_BACKOFF_MS)
}

/// Delivers the record's waiting events now (the instance's own request: no back-off), lists the instance in the
/// due index if some remain, and returns the record as stored afterwards.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn deliver_now<S: Store, B: Backend, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &ProduceConfig,
    deadline: &Deadline,
    report: &mut DeliveryReport,
    rec: InstanceRecord,
) -> Result<InstanceRecord, StoreError> {
    let rec = deliver(ctx, cfg, deadline, report, rec, false).await?;
    ensure_listed(ctx, &rec).await?;
    Ok(rec)
}

/// Sends the record's waiting events to the backend in order and returns the record as stored afterwards.
///
/// Stops at a failure (a later event never overtakes an earlier one), when the deadline leaves too little time,
/// or — with `respect_backoff` — at an event whose next try is not due. A `2xx` answer removes the event; for
/// `instance.created` the answer may carry `{"appInfo": {...}}`, the instance's login information. Each result is
/// applied with its own atomic update to the freshest record, so a change made while the backend was answering is
/// kept. Two requests may deliver the same event at once: delivery is at least once, always with the same
/// `webhook-id` and body.
async fn deliver<S: Store, B: Backend, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &ProduceConfig,
    deadline: &Deadline,
    report: &mut DeliveryReport,
    mut rec: InstanceRecord,
    respect_backoff: bool,
) -> Result<InstanceRecord, StoreError> {
    let Some(target) = &cfg.backend else { return Ok(rec) };
    let signer = WebhookSigner::new(&target.secret);
    let key = instance_key(rec.test, &rec.instance_id);
    // Each round sends an event or learns the record changed; bounded in case it keeps changing under us.
    for _ in 0..64 {
        let Some(next) = rec.outbox.first().cloned() else { break };
        if respect_backoff && next.next_try_ms > ctx.clock.now_ms() {
            break;
        }
        let left = deadline.remaining_ms(ctx.clock);
        if left < MIN_CALL_MS + ANSWER_MARGIN_MS {
            break;
        }
        let timeout_ms = target.timeout_ms.min(left - ANSWER_MARGIN_MS);
        // Take the event for the time of the call, unless another request holds it.
        let lease_until = ctx.clock.now_ms().saturating_add(timeout_ms + ANSWER_MARGIN_MS);
        let claim = atomic::update(ctx.store, ctx.random, &key, |current: Option<InstanceRecord>| {
            let Some(mut fresh) = current else { return Change::Keep(Claim::Gone(None)) };
            match fresh.outbox.iter().position(|e| e.id == next.id) {
                Some(0) if fresh.outbox[0].leased_until_ms > ctx.clock.now_ms() => Change::Keep(Claim::Busy),
                Some(0) => {
                    fresh.outbox[0].leased_until_ms = lease_until;
                    Change::Write(fresh, Claim::Mine)
                }
                // Delivered, dead-lettered, or no longer first: look again.
                _ => Change::Keep(Claim::Gone(Some(Box::new(fresh)))),
            }
        })
        .await?;
        match claim {
            Claim::Mine => {}
            Claim::Busy => break,
            Claim::Gone(Some(fresh)) => {
                rec = *fresh;
                continue;
            }
            Claim::Gone(None) => return Ok(rec),
        }
        let headers = signer.headers(&next.id, next.body.as_bytes(), ctx.clock.now_ms());
        let result = ctx.backend.post(&target.url, &headers, next.body.as_bytes(), timeout_ms).await;
        let failure = match &result {
            Ok(reply) if (200..300).contains(&reply.status) => None,
            Ok(reply) => Some(format!("HTTP {}", reply.status)),
            Err(e) => Some(e.to_string()),
        };
        let (failure, app_info) = match &result {
            Ok(reply) if failure.is_none() && next.kind == CREATED => match backend_app_info(&reply.body, cfg, &rec) {
                Ok(info) => (None, Some(info)),
                // An answer the marketplace would refuse is not accepted: the event stays, with the reason.
                Err(reason) => (Some(reason), None),
            },
            _ => (failure, None),
        };
        let now = ctx.clock.now_ms();
        let max_attempts = cfg.outbox_max_attempts;
        let outcome = atomic::update(ctx.store, ctx.random, &key, |current: Option<InstanceRecord>| {
            let Some(mut fresh) = current else { return Change::Keep(None) };
            let Some(pos) = fresh.outbox.iter().position(|e| e.id == next.id) else {
                // Delivered (or dead-lettered) by someone else meanwhile.
                return Change::Keep(Some((fresh, Step::Continue)));
            };
            fresh.outbox[pos].leased_until_ms = 0;
            let step = match &failure {
                None => {
                    fresh.outbox.remove(pos);
                    if let Some(info) = &app_info {
                        lifecycle::provisioned(&mut fresh, info.clone(), now);
                    }
                    Step::Delivered
                }
                Some(reason) => {
                    let event = &mut fresh.outbox[pos];
                    event.attempts = event.attempts.saturating_add(1);
                    event.last_error = Some(reason.clone());
                    event.next_try_ms = now.saturating_add(backoff_ms(event.attempts));
                    if event.attempts >= max_attempts {
                        let mut dead = fresh.outbox.remove(pos);
                        dead.dead_at_ms = Some(now);
                        dead.leased_until_ms = 0;
                        fresh.dead_letters.push(dead);
                        if fresh.dead_letters.len() > DEAD_LETTER_LIMIT {
                            fresh.dead_letters.remove(0);
                        }
                        Step::DeadLettered
                    } else {
                        Step::Failed
                    }
                }
            };
            Change::Write(fresh.clone(), Some((fresh, step)))
        })
        .await?;
        let Some((fresh, step)) = outcome else { return Ok(rec) };
        rec = fresh;
        match step {
            Step::Continue => {}
            Step::Delivered => report.delivered += 1,
            Step::Failed => {
                report.failed += 1;
                report.last_error = failure;
                break;
            }
            Step::DeadLettered => {
                report.failed += 1;
                report.last_error = failure;
                report.dead_lettered.push(next.kind.clone());
                index_add(ctx.store, ctx.random, DEAD_KEY, &entry(rec.test, &rec.instance_id)).await?;
            }
        }
    }
    Ok(rec)
}

enum Claim {
    /// This request sends the event.
    Mine,
    /// Another request is sending it.
    Busy,
    /// It is no longer the first waiting event (or the record is gone); the fresh record, if any.
    Gone(Option<Box<InstanceRecord>>),
}

enum Step {
    Continue,
    Delivered,
    Failed,
    DeadLettered,
}

const CREATED: &str = "instance.created";

/// Longest `AppInfo` fields the marketplace accepts (protocol §2.4), in characters.
const APP_INFO_LIMITS: [(&str, usize); 5] =
    [("frontEndUrl", 512), ("adminUrl", 512), ("userName", 128), ("password", 128), ("memo", 1024)];

/// Login information after the backend accepted `instance.created`: the `appInfo` it answered
/// (`{"appInfo": {"frontEndUrl": ..., ...}}`), or else the URL templates **without** credentials — a password
/// nobody's system knows would lock the buyer out.
///
/// # Errors
/// The reason, when the answered `appInfo` has a field longer than the marketplace accepts.
fn backend_app_info(body: &[u8], cfg: &ProduceConfig, rec: &InstanceRecord) -> Result<StoredAppInfo, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Reply {
        app_info: Option<StoredAppInfo>,
    }
    let answered = serde_json::from_slice::<Reply>(body).ok().and_then(|r| r.app_info);
    if let Some(info) = &answered {
        let fields = [
            Some(&info.front_end_url),
            info.admin_url.as_ref(),
            info.user_name.as_ref(),
            info.password.as_ref(),
            info.memo.as_ref(),
        ];
        for ((name, limit), value) in APP_INFO_LIMITS.iter().zip(fields) {
            if value.is_some_and(|v| v.chars().count() > *limit) {
                return Err(format!("backend appInfo.{name} is longer than {limit} characters"));
            }
        }
    }
    Ok(answered.filter(|a| !a.front_end_url.is_empty()).unwrap_or_else(|| StoredAppInfo {
        front_end_url: super::config::fill_template(&cfg.front_end_url, &rec.instance_id, &rec.order_id),
        admin_url: cfg.admin_url.as_deref().map(|t| super::config::fill_template(t, &rec.instance_id, &rec.order_id)),
        user_name: None,
        password: None,
        memo: cfg.memo.clone(),
    }))
}

/// Asks the backend a question that is not an event (a change check, an order notification), within the deadline,
/// signed like events: `Ok` with the reply when it answered in time, or the failure's reason.
///
/// # Errors
/// The reason the call failed (no backend, deadline too near, transport), for the log and the answer.
pub async fn ask<S, B: Backend, C: Clock, R>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &ProduceConfig,
    deadline: &Deadline,
    id: &str,
    body: &str,
) -> Result<crate::ports::OutboundReply, String> {
    let Some(target) = &cfg.backend else { return Err("no backend configured".into()) };
    let left = deadline.remaining_ms(ctx.clock);
    if left < MIN_CALL_MS + ANSWER_MARGIN_MS {
        return Err("no time left before the deadline".into());
    }
    let headers = WebhookSigner::new(&target.secret).headers(id, body.as_bytes(), ctx.clock.now_ms());
    let timeout_ms = target.timeout_ms.min(left - ANSWER_MARGIN_MS);
    ctx.backend.post(&target.url, &headers, body.as_bytes(), timeout_ms).await.map_err(|e| e.to_string())
}

/// Delivers due events of listed instances until `max_instances` were delivered to or `max_reads` records were
/// read, or the deadline is near; instances left with nothing waiting leave the index. The walk starts at a place
/// that moves with the clock, so a long index is covered across requests, not just its head.
///
/// Returns how many instances were delivered to.
///
/// # Errors
/// [`StoreError`] when the store fails; what was delivered stays delivered.
pub async fn drain<S: Store, B: Backend, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &ProduceConfig,
    deadline: &Deadline,
    report: &mut DeliveryReport,
    max_instances: usize,
    max_reads: usize,
) -> Result<usize, StoreError> {
    if cfg.backend.is_none() {
        return Ok(0);
    }
    let listed = index_read(ctx.store, DUE_KEY).await?;
    if listed.is_empty() {
        return Ok(0);
    }
    let start = usize::try_from(ctx.clock.now_ms() / 1000).unwrap_or(0) % listed.len();
    let (mut visited, mut reads) = (0, 0);
    for item in listed[start..].iter().chain(&listed[..start]) {
        if visited >= max_instances
            || reads >= max_reads
            || deadline.remaining_ms(ctx.clock) < MIN_CALL_MS + ANSWER_MARGIN_MS
        {
            break;
        }
        let Some((test, id)) = parse_entry(item) else {
            index_remove(ctx.store, ctx.random, DUE_KEY, item).await?;
            continue;
        };
        reads += 1;
        let rec = match load(ctx.store, test, id).await? {
            Some(rec) if rec.outbox.first().is_some_and(|e| e.next_try_ms <= ctx.clock.now_ms()) => {
                visited += 1;
                Some(deliver(ctx, cfg, deadline, report, rec, true).await?)
            }
            other => other,
        };
        if rec.as_ref().is_none_or(|r| r.outbox.is_empty()) {
            index_remove(ctx.store, ctx.random, DUE_KEY, item).await?;
            // An event may have been queued between the read and the removal: list it again then.
            if let Some(again) = load(ctx.store, test, id).await? {
                ensure_listed(ctx, &again).await?;
            }
        }
    }
    Ok(visited)
}

/// One waiting or dead-lettered event, as the operator route lists it (no body: it holds personal data).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedEvent {
    /// The instance.
    pub instance_id: String,
    /// Debug traffic.
    pub test: bool,
    /// The event id (`webhook-id`).
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Failed attempts.
    pub attempts: u32,
    /// Next background try (ms epoch), for waiting events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_try_ms: Option<u64>,
    /// When it was dead-lettered (ms epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_at_ms: Option<u64>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

fn listed(rec: &InstanceRecord, e: &PendingDelivery, waiting: bool) -> ListedEvent {
    ListedEvent {
        instance_id: rec.instance_id.clone(),
        test: rec.test,
        id: e.id.clone(),
        kind: e.kind.clone(),
        attempts: e.attempts,
        next_try_ms: waiting.then_some(e.next_try_ms),
        dead_at_ms: e.dead_at_ms,
        last_error: e.last_error.clone(),
    }
}

/// Every waiting and every dead-lettered event, for the operator route.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn list<S: Store>(store: &S) -> Result<(Vec<ListedEvent>, Vec<ListedEvent>), StoreError> {
    let mut waiting = Vec::new();
    for item in index_read(store, DUE_KEY).await? {
        let Some((test, id)) = parse_entry(&item) else { continue };
        if let Some(rec) = load(store, test, id).await? {
            waiting.extend(rec.outbox.iter().map(|e| listed(&rec, e, true)));
        }
    }
    let mut dead = Vec::new();
    for item in index_read(store, DEAD_KEY).await? {
        let Some((test, id)) = parse_entry(&item) else { continue };
        if let Some(rec) = load(store, test, id).await? {
            dead.extend(rec.dead_letters.iter().map(|e| listed(&rec, e, false)));
        }
    }
    Ok((waiting, dead))
}

/// Puts every dead-lettered event back in front of its instance's outbox (attempts reset) and lists the instances
/// as due; returns how many events were re-queued. For an operator, once the backend is fixed.
///
/// # Errors
/// [`StoreError`] when the store fails; what was re-queued stays re-queued.
pub async fn redrive<S: Store, B, C, R: Random>(ctx: &Ctx<'_, S, B, C, R>) -> Result<usize, StoreError> {
    let mut requeued = 0;
    for item in index_read(ctx.store, DEAD_KEY).await? {
        let Some((test, id)) = parse_entry(&item) else { continue };
        let moved =
            atomic::update(ctx.store, ctx.random, &instance_key(test, id), |current: Option<InstanceRecord>| {
                let Some(mut rec) = current.filter(|r| !r.dead_letters.is_empty()) else { return Change::Keep(None) };
                let mut dead: Vec<PendingDelivery> = std::mem::take(&mut rec.dead_letters);
                for e in &mut dead {
                    e.attempts = 0;
                    e.next_try_ms = 0;
                    e.dead_at_ms = None;
                }
                let n = dead.len();
                dead.append(&mut rec.outbox);
                rec.outbox = dead;
                Change::Write(rec.clone(), Some((rec, n)))
            })
            .await?;
        if let Some((rec, n)) = moved {
            ensure_listed(ctx, &rec).await?;
            requeued += n;
        }
        index_remove(ctx.store, ctx.random, DEAD_KEY, &item).await?;
        // A letter may have died between the move and the removal: list it again then.
        if load(ctx.store, test, id).await?.is_some_and(|r| !r.dead_letters.is_empty()) {
            index_add(ctx.store, ctx.random, DEAD_KEY, &item).await?;
        }
    }
    Ok(requeued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_seconds_up_to_an_hour() {
        let delays: Vec<u64> = (1..=12).map(backoff_ms).collect();
        assert_eq!(&delays[..4], &[5_000, 10_000, 20_000, 40_000]);
        assert_eq!(delays[11], MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(u32::MAX), MAX_BACKOFF_MS);
    }

    #[test]
    fn index_entries_round_trip() {
        assert_eq!(parse_entry(&entry(true, "abc")), Some((true, "abc")));
        assert_eq!(parse_entry(&entry(false, "a/b")), Some((false, "a/b")));
        assert_eq!(parse_entry("other/x"), None);
    }
}
