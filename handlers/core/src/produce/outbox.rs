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

use super::config::{BackendTarget, ProduceConfig};
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

/// What an index entry names: an instance (`live/{id}`, `test/{id}`) or a kit tenant record (its store key,
/// `kit/…`).
enum Entry<'a> {
    Instance(bool, &'a str),
    Kit(&'a str),
}

fn parse_entry(entry: &str) -> Option<Entry<'_>> {
    match entry.split_once('/')? {
        ("live", id) => Some(Entry::Instance(false, id)),
        ("test", id) => Some(Entry::Instance(true, id)),
        ("kit", _) => Some(Entry::Kit(entry)),
        _ => None,
    }
}

/// The settings delivery needs, from whichever component's configuration.
pub trait DeliveryConfig {
    /// Where events go; `None` outside forward mode.
    fn backend(&self) -> Option<&BackendTarget>;
    /// Failed deliveries after which an event is dead-lettered.
    fn max_attempts(&self) -> u32;
}

impl DeliveryConfig for ProduceConfig {
    fn backend(&self) -> Option<&BackendTarget> {
        self.backend.as_ref()
    }
    fn max_attempts(&self) -> u32 {
        self.outbox_max_attempts
    }
}

/// A stored record that carries its own events for the backend: an instance record, or a kit tenant record. The
/// events are queued in the same write as the change they announce.
pub trait Outboxed: Serialize + serde::de::DeserializeOwned + Tokened + Clone {
    /// What the backend's answer to an accepted event changes in the record (an instance's `appInfo`).
    type Accepted: Clone;
    /// The store key of the record.
    fn store_key(&self) -> String;
    /// The record's entry in the due and dead indexes.
    fn index_entry(&self) -> String;
    /// Whether it is debug traffic, the instance and, for kit records, the tenant: what an operator is shown.
    fn label(&self) -> (bool, String, Option<String>);
    /// Events waiting for the backend, oldest first.
    fn outbox(&self) -> &Vec<PendingDelivery>;
    /// The same, to change.
    fn outbox_mut(&mut self) -> &mut Vec<PendingDelivery>;
    /// Events given up on.
    fn dead_letters(&self) -> &Vec<PendingDelivery>;
    /// The same, to change.
    fn dead_letters_mut(&mut self) -> &mut Vec<PendingDelivery>;
    /// Applies what an accepted event's answer carried.
    fn accepted(&mut self, accepted: Self::Accepted, now_ms: u64);
}

impl Outboxed for InstanceRecord {
    type Accepted = StoredAppInfo;
    fn store_key(&self) -> String {
        instance_key(self.test, &self.instance_id)
    }
    fn index_entry(&self) -> String {
        entry(self.test, &self.instance_id)
    }
    fn label(&self) -> (bool, String, Option<String>) {
        (self.test, self.instance_id.clone(), None)
    }
    fn outbox(&self) -> &Vec<PendingDelivery> {
        &self.outbox
    }
    fn outbox_mut(&mut self) -> &mut Vec<PendingDelivery> {
        &mut self.outbox
    }
    fn dead_letters(&self) -> &Vec<PendingDelivery> {
        &self.dead_letters
    }
    fn dead_letters_mut(&mut self) -> &mut Vec<PendingDelivery> {
        &mut self.dead_letters
    }
    fn accepted(&mut self, info: StoredAppInfo, now_ms: u64) {
        lifecycle::provisioned(self, info, now_ms);
    }
}

/// How the backend's `2xx` answer to an event is read: `Ok(Some(..))` carries something for the record, `Err`
/// refuses the answer (the event stays, with the reason).
type Judge<'j, T> =
    &'j (dyn Fn(&T, &PendingDelivery, &[u8]) -> Result<Option<<T as Outboxed>::Accepted>, String> + Sync);

/// The judge of instance events: `instance.created`'s answer may carry `appInfo`.
fn instance_judge(
    cfg: &ProduceConfig,
) -> impl Fn(&InstanceRecord, &PendingDelivery, &[u8]) -> Result<Option<StoredAppInfo>, String> + Sync + '_ {
    move |rec, event, body| {
        if event.kind == CREATED { backend_app_info(body, cfg, rec).map(Some) } else { Ok(None) }
    }
}

/// Kit events carry nothing back.
fn kit_judge(
    _: &crate::kit::TenantRecord,
    _: &PendingDelivery,
    _: &[u8],
) -> Result<Option<std::convert::Infallible>, String> {
    Ok(None)
}

/// Adds an instance to an index (nothing is written when it is listed already).
async fn index_add<S: Store, B, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    key: &str,
    item: &str,
) -> Result<(), StoreError> {
    atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), key, |current: Option<InstanceIndex>| {
        let mut index = current.unwrap_or_default();
        if index.instances.iter().any(|i| i == item) {
            return Change::Keep(());
        }
        index.instances.push(item.to_owned());
        Change::Write(index, ())
    })
    .await
}

/// Removes an instance from an index.
async fn index_remove<S: Store, B, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    key: &str,
    item: &str,
) -> Result<(), StoreError> {
    atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), key, |current: Option<InstanceIndex>| match current {
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
pub async fn ensure_listed<S: Store, B, C: Clock, R: Random, T: Outboxed>(
    ctx: &Ctx<'_, S, B, C, R>,
    rec: &T,
) -> Result<(), StoreError> {
    if rec.outbox().is_empty() {
        return Ok(());
    }
    index_add(ctx, DUE_KEY, &rec.index_entry()).await
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
    let rec = deliver(ctx, cfg, &instance_judge(cfg), deadline, report, rec, false).await?;
    ensure_listed(ctx, &rec).await?;
    Ok(rec)
}

/// [`deliver_now`] for a kit tenant record: its waiting events go now, and it is listed if some remain.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn deliver_kit_now<S: Store, B: Backend, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &impl DeliveryConfig,
    deadline: &Deadline,
    report: &mut DeliveryReport,
    rec: crate::kit::TenantRecord,
) -> Result<crate::kit::TenantRecord, StoreError> {
    let rec = deliver(ctx, cfg, &kit_judge, deadline, report, rec, false).await?;
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
async fn deliver<S: Store, B: Backend, C: Clock, R: Random, T: Outboxed>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &impl DeliveryConfig,
    judge: Judge<'_, T>,
    deadline: &Deadline,
    report: &mut DeliveryReport,
    mut rec: T,
    respect_backoff: bool,
) -> Result<T, StoreError> {
    let Some(target) = cfg.backend() else { return Ok(rec) };
    let signer = WebhookSigner::new(&target.secret);
    let key = rec.store_key();
    // Each round sends an event or learns the record changed; bounded in case it keeps changing under us.
    for _ in 0..64 {
        let Some(next) = rec.outbox().first().cloned() else { break };
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
        let claim = atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), &key, |current: Option<T>| {
            let Some(mut fresh) = current else { return Change::Keep(Claim::Gone(None)) };
            match fresh.outbox().iter().position(|e| e.id == next.id) {
                Some(0) if fresh.outbox()[0].leased_until_ms > ctx.clock.now_ms() => Change::Keep(Claim::Busy),
                Some(0) => {
                    fresh.outbox_mut()[0].leased_until_ms = lease_until;
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
        let (failure, accepted) = match &result {
            Ok(reply) if failure.is_none() => match judge(&rec, &next, &reply.body) {
                Ok(accepted) => (None, accepted),
                // An answer the marketplace would refuse is not accepted: the event stays, with the reason.
                Err(reason) => (Some(reason), None),
            },
            _ => (failure, None),
        };
        let now = ctx.clock.now_ms();
        let max_attempts = cfg.max_attempts();
        let outcome = atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), &key, |current: Option<T>| {
            let Some(mut fresh) = current else { return Change::Keep(None) };
            let Some(pos) = fresh.outbox().iter().position(|e| e.id == next.id) else {
                // Delivered (or dead-lettered) by someone else meanwhile.
                return Change::Keep(Some((fresh, Step::Continue)));
            };
            fresh.outbox_mut()[pos].leased_until_ms = 0;
            let step = match &failure {
                None => {
                    fresh.outbox_mut().remove(pos);
                    if let Some(accepted) = &accepted {
                        fresh.accepted(accepted.clone(), now);
                    }
                    Step::Delivered
                }
                Some(reason) => {
                    let event = &mut fresh.outbox_mut()[pos];
                    event.attempts = event.attempts.saturating_add(1);
                    event.last_error = Some(reason.clone());
                    event.next_try_ms = now.saturating_add(backoff_ms(event.attempts));
                    if event.attempts >= max_attempts {
                        let mut dead = fresh.outbox_mut().remove(pos);
                        dead.dead_at_ms = Some(now);
                        dead.leased_until_ms = 0;
                        fresh.dead_letters_mut().push(dead);
                        if fresh.dead_letters().len() > DEAD_LETTER_LIMIT {
                            fresh.dead_letters_mut().remove(0);
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
                index_add(ctx, DEAD_KEY, &rec.index_entry()).await?;
            }
        }
    }
    Ok(rec)
}

enum Claim<T> {
    /// This request sends the event.
    Mine,
    /// Another request is sending it.
    Busy,
    /// It is no longer the first waiting event (or the record is gone); the fresh record, if any.
    Gone(Option<Box<T>>),
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

/// Delivers due events of listed records until `max_instances` were delivered to or `max_reads` records were
/// read, or the deadline is near; records left with nothing waiting leave the index. The walk starts at a place
/// that moves with the clock, so a long index is covered across requests, not just its head.
///
/// Instance records are visited only with `instances` (the production interface's configuration: an
/// `instance.created` answer is read with it); kit tenant records always.
///
/// Returns how many records were delivered to.
///
/// # Errors
/// [`StoreError`] when the store fails; what was delivered stays delivered.
pub async fn drain<S: Store, B: Backend, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &impl DeliveryConfig,
    instances: Option<&ProduceConfig>,
    deadline: &Deadline,
    report: &mut DeliveryReport,
    max_instances: usize,
    max_reads: usize,
) -> Result<usize, StoreError> {
    if cfg.backend().is_none() {
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
        let walk = Walk { item, deadline, respect_backoff: true };
        let delivered = match parse_entry(item) {
            None => {
                index_remove(ctx, DUE_KEY, item).await?;
                continue;
            }
            Some(Entry::Instance(test, id)) => match instances {
                Some(pc) => visit(ctx, cfg, &instance_judge(pc), &walk, &instance_key(test, id), report).await?,
                None => continue,
            },
            Some(Entry::Kit(key)) => visit(ctx, cfg, &kit_judge, &walk, key, report).await?,
        };
        reads += 1;
        visited += usize::from(delivered);
    }
    Ok(visited)
}

/// One index entry being visited by [`drain`].
struct Walk<'w> {
    item: &'w str,
    deadline: &'w Deadline,
    respect_backoff: bool,
}

/// Delivers the due events of the record under `key` (listed as `walk.item`); unlists it when nothing waits.
/// Returns whether it was delivered to.
async fn visit<S: Store, B: Backend, C: Clock, R: Random, T: Outboxed>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &impl DeliveryConfig,
    judge: Judge<'_, T>,
    walk: &Walk<'_>,
    key: &str,
    report: &mut DeliveryReport,
) -> Result<bool, StoreError> {
    let mut delivered = false;
    let rec = match atomic::read::<_, T>(ctx.store, key).await? {
        Some(rec) if rec.outbox().first().is_some_and(|e| e.next_try_ms <= ctx.clock.now_ms()) => {
            delivered = true;
            Some(deliver(ctx, cfg, judge, walk.deadline, report, rec, walk.respect_backoff).await?)
        }
        other => other,
    };
    if rec.as_ref().is_none_or(|r| r.outbox().is_empty()) {
        index_remove(ctx, DUE_KEY, walk.item).await?;
        // An event may have been queued between the read and the removal: list it again then.
        if let Some(again) = atomic::read::<_, T>(ctx.store, key).await? {
            ensure_listed(ctx, &again).await?;
        }
    }
    Ok(delivered)
}

/// One waiting or dead-lettered event, as the operator route lists it (no body: it holds personal data).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedEvent {
    /// The instance.
    pub instance_id: String,
    /// The tenant, for a kit sync's event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
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

fn listed<T: Outboxed>(rec: &T, e: &PendingDelivery, waiting: bool) -> ListedEvent {
    let (test, instance_id, tenant_id) = rec.label();
    ListedEvent {
        instance_id,
        tenant_id,
        test,
        id: e.id.clone(),
        kind: e.kind.clone(),
        attempts: e.attempts,
        next_try_ms: waiting.then_some(e.next_try_ms),
        dead_at_ms: e.dead_at_ms,
        last_error: e.last_error.clone(),
    }
}

/// The events of the record an index entry names: waiting ones when `waiting`, else dead-lettered ones.
async fn listed_events<S: Store>(store: &S, item: &str, waiting: bool) -> Result<Vec<ListedEvent>, StoreError> {
    fn of<T: Outboxed>(rec: Option<T>, waiting: bool) -> Vec<ListedEvent> {
        let Some(rec) = rec else { return Vec::new() };
        let events = if waiting { rec.outbox() } else { rec.dead_letters() };
        events.iter().map(|e| listed(&rec, e, waiting)).collect()
    }
    Ok(match parse_entry(item) {
        Some(Entry::Instance(test, id)) => of(load(store, test, id).await?, waiting),
        Some(Entry::Kit(key)) => of(atomic::read::<_, crate::kit::TenantRecord>(store, key).await?, waiting),
        None => Vec::new(),
    })
}

/// Every waiting and every dead-lettered event, for the operator route.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn list<S: Store>(store: &S) -> Result<(Vec<ListedEvent>, Vec<ListedEvent>), StoreError> {
    let mut waiting = Vec::new();
    for item in index_read(store, DUE_KEY).await? {
        waiting.extend(listed_events(store, &item, true).await?);
    }
    let mut dead = Vec::new();
    for item in index_read(store, DEAD_KEY).await? {
        dead.extend(listed_events(store, &item, false).await?);
    }
    Ok((waiting, dead))
}

/// Puts every dead-lettered event back in front of its record's outbox (attempts reset) and lists the records
/// as due; returns how many events were re-queued. For an operator, once the backend is fixed.
///
/// # Errors
/// [`StoreError`] when the store fails; what was re-queued stays re-queued.
pub async fn redrive<S: Store, B, C: Clock, R: Random>(ctx: &Ctx<'_, S, B, C, R>) -> Result<usize, StoreError> {
    let mut requeued = 0;
    for item in index_read(ctx.store, DEAD_KEY).await? {
        requeued += match parse_entry(&item) {
            Some(Entry::Instance(test, id)) => {
                redrive_one::<_, _, _, _, InstanceRecord>(ctx, &item, &instance_key(test, id)).await?
            }
            Some(Entry::Kit(key)) => redrive_one::<_, _, _, _, crate::kit::TenantRecord>(ctx, &item, key).await?,
            None => 0,
        };
    }
    Ok(requeued)
}

async fn redrive_one<S: Store, B, C: Clock, R: Random, T: Outboxed>(
    ctx: &Ctx<'_, S, B, C, R>,
    item: &str,
    key: &str,
) -> Result<usize, StoreError> {
    let moved = atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), key, |current: Option<T>| {
        let Some(mut rec) = current.filter(|r| !r.dead_letters().is_empty()) else { return Change::Keep(None) };
        let mut dead: Vec<PendingDelivery> = std::mem::take(rec.dead_letters_mut());
        for e in &mut dead {
            e.attempts = 0;
            e.next_try_ms = 0;
            e.dead_at_ms = None;
        }
        let n = dead.len();
        dead.append(rec.outbox_mut());
        *rec.outbox_mut() = dead;
        Change::Write(rec.clone(), Some((rec, n)))
    })
    .await?;
    let mut requeued = 0;
    if let Some((rec, n)) = moved {
        ensure_listed(ctx, &rec).await?;
        requeued = n;
    }
    index_remove(ctx, DEAD_KEY, item).await?;
    // A letter may have died between the move and the removal: list it again then.
    if atomic::read::<_, T>(ctx.store, key).await?.is_some_and(|r| !r.dead_letters().is_empty()) {
        index_add(ctx, DEAD_KEY, item).await?;
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
        assert!(matches!(parse_entry(&entry(true, "abc")), Some(Entry::Instance(true, "abc"))));
        assert!(matches!(parse_entry(&entry(false, "a/b")), Some(Entry::Instance(false, "a/b"))));
        assert!(matches!(parse_entry("kit/live/tenant/i/t"), Some(Entry::Kit("kit/live/tenant/i/t"))));
        assert!(parse_entry("other/x").is_none());
    }
}
