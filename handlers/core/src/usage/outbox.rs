//! The usage outbox: accepted records wait in the key-value store until the marketplace answers `MKT.0000` for
//! them, and are pushed in batches of at most 100 by whichever request finds them due.
//!
//! - **Keys.** `usage/record/<metering_sn>` holds each record as accepted (written once; it is also what
//!   recognises a resubmission). `usage/pending` lists the records not yet accepted by the marketplace, oldest
//!   first; `usage/parked` the batches the marketplace refused (`4xx`, or a `5xx` whose code says the request
//!   itself is wrong), with the refusal, for an operator; `usage/push` the push state: a lease, the failures in a
//!   row and the next try, the last error, counters.
//! - **One pusher at a time.** A push first takes the lease in `usage/push` (compare-and-swap; it expires with the
//!   request's deadline), so two requests or two nodes never send the same batch at once.
//! - **Sent means `MKT.0000`.** A batch leaves `usage/pending` only when the marketplace answered `MKT.0000`;
//!   until then its records are pushed again with the same `metering_sn` (the marketplace deduplicates on it). A
//!   network error, a timeout or a `5xx` (after the fallback endpoint, see [`crate::openapi::call`]) ends the push
//!   and backs off `5 s × 2^(failures−1)`, at most an hour; `POST /usage/flush` pushes at once regardless.
//! - **Never sent stale.** A record whose `begin_time` has become more than 21 days old is parked instead of sent
//!   (`MKT.9004`: the marketplace refuses it), so an operator sees it.
//!
//! Pending records are listed in one value: a backlog of tens of thousands of records (weeks of outage for a large
//! seller) makes it megabytes, which Redis takes but each push then rewrites.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::UsageConfig;
use crate::openapi::{self, ApiReply, ApiRequest, Unreachable};
use crate::ports::atomic::{self, Change, WriteToken};
use crate::ports::{Backend, Clock, Random, Store, StoreError};
use crate::produce::{Ctx, Deadline, backoff_ms};
use crate::signing::canonical_json::sorted_compact;
use crate::tokened;
use crate::wire::time;
use crate::wire::usage::{self, MAX_RECORDS_PER_BATCH, MarketplaceCode, UsagePushResponse, UsageRecord};

/// The usage-push path (§9.4).
pub const USAGE_DATA_PATH: &str = "/api/mkp-openapi-public/global/v1/isv/usage-data";
/// Records waiting for the marketplace.
pub const PENDING_KEY: &str = "usage/pending";
/// Batches the marketplace refused.
pub const PARKED_KEY: &str = "usage/parked";
/// The push state (lease, back-off, counters).
pub const STATE_KEY: &str = "usage/push";

/// A pending entry without its record this long after it was listed belongs to a submission that died between
/// listing and storing (and was therefore not acknowledged): it is dropped.
const ABANDONED_MS: u64 = 10 * 60_000;
/// Kept free at the end of the deadline to record the outcome and answer.
const ANSWER_MARGIN_MS: u64 = 200;
/// The lease outlives the deadline by this much (clocks of two nodes differ a little).
const LEASE_MARGIN_MS: u64 = 2_000;
/// Longest marketplace message kept in an error.
const MAX_MESSAGE_CHARS: usize = 200;

/// Key of a stored record.
pub fn record_key(metering_sn: &str) -> String {
    format!("usage/record/{metering_sn}")
}

/// A record waiting for the marketplace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEntry {
    /// Its `metering_sn` (the record is under [`record_key`]).
    pub sn: String,
    /// Its content fingerprint (tells a resubmission from a different record under one `record_id`).
    pub hash: String,
    /// When it was accepted.
    pub at_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Pending {
    #[serde(default)]
    entries: Vec<PendingEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
}
tokened!(Pending, writes);

/// A batch the marketplace refused, kept with the refusal until an operator requeues it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedBatch {
    /// Its records.
    pub entries: Vec<PendingEntry>,
    /// When it was parked.
    pub at_ms: u64,
    /// The HTTP status of the refusal (none for a record parked before sending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The marketplace's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why, in words.
    pub reason: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Parked {
    #[serde(default)]
    batches: Vec<ParkedBatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
}
tokened!(Parked, writes);

/// A record as accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// The record as it is pushed.
    pub record: UsageRecord,
    /// Its content fingerprint.
    pub hash: String,
    /// The backend's `record_id`, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// When it was accepted.
    pub accepted_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    token: String,
    until_ms: u64,
}

/// The last failure, for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// When it happened.
    pub at_ms: u64,
    /// What happened.
    pub reason: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PushState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease: Option<Lease>,
    #[serde(default)]
    failures: u32,
    #[serde(default)]
    next_try_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<LastError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_success_ms: Option<u64>,
    #[serde(default)]
    sent: u64,
    #[serde(default)]
    batches: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
}
tokened!(PushState, writes);

/// The records waiting for the marketplace, oldest first.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn pending<S: Store>(store: &S) -> Result<Vec<PendingEntry>, StoreError> {
    Ok(atomic::read::<_, Pending>(store, PENDING_KEY).await?.map(|p| p.entries).unwrap_or_default())
}

async fn parked<S: Store>(store: &S) -> Result<Vec<ParkedBatch>, StoreError> {
    Ok(atomic::read::<_, Parked>(store, PARKED_KEY).await?.map(|p| p.batches).unwrap_or_default())
}

/// The `metering_sn`s of parked records.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn parked_sns<S: Store>(store: &S) -> Result<HashSet<String>, StoreError> {
    Ok(parked(store).await?.into_iter().flat_map(|b| b.entries).map(|e| e.sn).collect())
}

/// A stored record.
///
/// # Errors
/// [`StoreError`] when the store fails or the value is unreadable.
pub async fn load_record<S: Store>(store: &S, sn: &str) -> Result<Option<StoredRecord>, StoreError> {
    atomic::read(store, &record_key(sn)).await
}

/// Stores a record: written by the submissions that found it absent, after [`enqueue`] accepted its content
/// fingerprint, so every writer writes the same usage.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn store_record<S: Store>(store: &S, record: &StoredRecord) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(record).map_err(|e| StoreError(format!("usage record: {e}")))?;
    store.set(&record_key(&record.record.metering_sn), &bytes).await
}

/// Lists `entries` as pending (each `metering_sn` once; an entry listed already keeps its place and takes the later
/// `at_ms`, so a resubmission is never taken for an abandoned one), unless one of them is listed already with another
/// content fingerprint: then nothing is written and those `metering_sn`s are returned. This compare-and-swap is what
/// decides between two submissions racing with different content under one `record_id`.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn enqueue<S: Store, B, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    entries: Vec<PendingEntry>,
) -> Result<Vec<String>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), PENDING_KEY, |current: Option<Pending>| {
        let mut pending = current.unwrap_or_default();
        let mut changed = false;
        let mut conflicts = Vec::new();
        for entry in &entries {
            match pending.entries.iter_mut().find(|e| e.sn == entry.sn) {
                Some(listed) if listed.hash != entry.hash => conflicts.push(entry.sn.clone()),
                Some(listed) if listed.at_ms < entry.at_ms => {
                    listed.at_ms = entry.at_ms;
                    changed = true;
                }
                Some(_) => {}
                None => {
                    pending.entries.push(entry.clone());
                    changed = true;
                }
            }
        }
        if !conflicts.is_empty() {
            Change::Keep(conflicts)
        } else if changed {
            Change::Write(pending, Vec::new())
        } else {
            Change::Keep(Vec::new())
        }
    })
    .await
}

/// Takes the entries `gone` picks off the pending list.
async fn unlist<S: Store, B, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    gone: impl Fn(&PendingEntry) -> bool,
) -> Result<(), StoreError> {
    atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), PENDING_KEY, |current: Option<Pending>| {
        let Some(mut pending) = current else { return Change::Keep(()) };
        let before = pending.entries.len();
        pending.entries.retain(|e| !gone(e));
        if pending.entries.len() == before { Change::Keep(()) } else { Change::Write(pending, ()) }
    })
    .await
}

/// Parks a batch, then takes its records off the pending list (in that order: a push that dies in between leaves
/// them in both, and they are pushed, and parked, again). `exact`: take off only the very entries parked (same
/// `at_ms`), for records whose submission may be running again right now.
async fn park<S: Store, B, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    batch: ParkedBatch,
    exact: bool,
) -> Result<(), StoreError> {
    let entries = batch.entries.clone();
    atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), PARKED_KEY, |current: Option<Parked>| {
        let mut parked = current.unwrap_or_default();
        parked.batches.push(batch.clone());
        Change::Write(parked, ())
    })
    .await?;
    unlist(ctx, |e| entries.iter().any(|p| p.sn == e.sn && (!exact || p.at_ms == e.at_ms))).await
}

/// Why a push did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Nothing is pending.
    Empty,
    /// The last push failed and the back-off has not passed.
    NotDue,
    /// Another request holds the lease.
    Busy,
}

/// What one push did, for the answer and the log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Records the marketplace accepted.
    pub sent: usize,
    /// Batches sent successfully.
    pub batches: usize,
    /// Records parked.
    pub parked: usize,
    /// Records put back in line from the parked batches (`POST /usage/requeue`).
    pub requeued: Option<usize>,
    /// Why it did not run, if it did not.
    pub skipped: Option<Skipped>,
    /// The failure that ended it.
    pub error: Option<String>,
}

impl std::fmt::Display for PushReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.skipped {
            Some(Skipped::Empty) => write!(f, "push=nothing_pending"),
            Some(Skipped::NotDue) => write!(f, "push=backing_off"),
            Some(Skipped::Busy) => write!(f, "push=busy"),
            None => {
                write!(f, "push sent={} batches={} parked={}", self.sent, self.batches, self.parked)?;
                if let Some(n) = self.requeued {
                    write!(f, " requeued={n}")?;
                }
                match &self.error {
                    Some(e) => write!(f, " error={e:?}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// How the marketplace judged one batch.
enum Outcome {
    /// `MKT.0000`.
    Sent,
    /// No answer, a `5xx` that may pass, or an answer that says the configuration is wrong (credentials, body key,
    /// endpoint): nothing is wrong with the records, so they stay pending and the push backs off.
    Retry(String),
    /// The batch itself was refused: split to find the records at fault, park what is refused alone.
    Refused { status: u16, code: Option<String>, reason: String },
}

/// Answers that say the seller's configuration is wrong rather than the records: the same batch would pass once it is
/// fixed, so it must not be parked (the whole backlog would be).
fn is_configuration_refusal(status: u16, code: Option<&MarketplaceCode>) -> bool {
    matches!(status, 401 | 403 | 404 | 405 | 407)
        || matches!(
            code,
            Some(
                MarketplaceCode::InvalidBodySign
                    | MarketplaceCode::IllegalOperation
                    | MarketplaceCode::NoAuthority
                    | MarketplaceCode::IllegalToken
            )
        )
}

fn judge(reply: Result<ApiReply, Unreachable>) -> Outcome {
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) => return Outcome::Retry(format!("marketplace unreachable: {e}")),
    };
    let answer: Option<UsagePushResponse> = serde_json::from_slice(&reply.body).ok();
    let code = answer.as_ref().and_then(UsagePushResponse::code);
    if (200..300).contains(&reply.status) && answer.as_ref().is_some_and(UsagePushResponse::is_success) {
        return Outcome::Sent;
    }
    let message: String = answer
        .as_ref()
        .and_then(|a| a.error_msg.as_deref())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE_CHARS)
        .collect();
    let code_text = answer.as_ref().and_then(|a| a.error_code.clone());
    let reason = format!(
        "HTTP {}{}{}{}{}",
        reply.status,
        code_text.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
        if message.is_empty() { String::new() } else { format!(": {message}") },
        if reply.fallback { " (fallback endpoint)" } else { "" },
        reply.fallback_error.as_deref().map(|e| format!("; fallback: {e}")).unwrap_or_default(),
    );
    if is_configuration_refusal(reply.status, code.as_ref()) {
        return Outcome::Retry(format!("{reason} (check openapi_ak, openapi_sk, access_keys, openapi_endpoint)"));
    }
    if (200..300).contains(&reply.status) {
        return Outcome::Retry(format!("{reason}: not a usage-push answer (check openapi_endpoint)"));
    }
    if usage::should_retry(reply.status, code.as_ref()) {
        Outcome::Retry(reason)
    } else {
        Outcome::Refused { status: reply.status, code: code_text, reason }
    }
}

/// What a push request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Push if due (any request).
    Due,
    /// Push now, back-off or not (`POST /usage/flush`).
    Flush,
    /// Put the parked batches back in line, then push now (`POST /usage/requeue`).
    Requeue,
}

/// Pushes pending records while the deadline allows: nothing when nothing is pending, when another request is
/// pushing, or (in [`Mode::Due`]) while backing off after a failure. [`Mode::Requeue`] first puts the parked batches
/// back, under the same lease, so it cannot race a push that is parking.
///
/// # Errors
/// [`StoreError`] when the store fails (what was sent stays sent; the rest is pushed by a later request).
pub async fn push<S: Store, B: Backend, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &UsageConfig,
    deadline: &Deadline,
    mode: Mode,
) -> Result<PushReport, StoreError> {
    let mut report = PushReport::default();
    let now = ctx.clock.now_ms();
    // A clock far ahead on another node must not stall pushes for longer than the longest back-off.
    let due =
        |s: &PushState| mode != Mode::Due || now >= s.next_try_ms || s.next_try_ms > now.saturating_add(MAX_BACKOFF_MS);
    let state = atomic::read::<_, PushState>(ctx.store, STATE_KEY).await?.unwrap_or_default();
    if !due(&state) {
        report.skipped = Some(Skipped::NotDue);
        return Ok(report);
    }
    if state.lease.as_ref().is_some_and(|l| l.until_ms > now) {
        report.skipped = Some(Skipped::Busy);
        return Ok(report);
    }
    if mode != Mode::Requeue && pending(ctx.store).await?.is_empty() {
        report.skipped = Some(Skipped::Empty);
        return Ok(report);
    }
    let token = WriteToken::random(ctx.random).as_str().to_owned();
    let claimed = atomic::update(ctx.store, ctx.random, now, STATE_KEY, |current: Option<PushState>| {
        let mut state = current.unwrap_or_default();
        if state.lease.as_ref().is_some_and(|l| l.until_ms > now) || !due(&state) {
            return Change::Keep(false);
        }
        state.lease = Some(Lease { token: token.clone(), until_ms: lease_until(ctx, deadline) });
        Change::Write(state, true)
    })
    .await?;
    if !claimed {
        report.skipped = Some(Skipped::Busy);
        return Ok(report);
    }
    let mut pushed = Ok(());
    if mode == Mode::Requeue {
        match requeue(ctx).await {
            Ok(n) => report.requeued = Some(n),
            Err(e) => pushed = Err(e),
        }
    }
    if pushed.is_ok() {
        pushed = push_batches(ctx, cfg, deadline, &token, &mut report).await;
    }
    let released =
        atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), STATE_KEY, |current: Option<PushState>| {
            let mut state = current.unwrap_or_default();
            if state.lease.as_ref().is_none_or(|l| l.token != token) {
                return Change::Keep(());
            }
            state.lease = None;
            Change::Write(state, ())
        })
        .await;
    pushed?;
    released?;
    Ok(report)
}

/// The longest back-off ([`backoff_ms`]'s cap).
const MAX_BACKOFF_MS: u64 = 3_600_000;

fn lease_until<S, B, C: Clock, R>(ctx: &Ctx<'_, S, B, C, R>, deadline: &Deadline) -> u64 {
    ctx.clock.now_ms().saturating_add(deadline.remaining_ms(ctx.clock)).saturating_add(LEASE_MARGIN_MS)
}

/// Extends this push's lease to the end of the deadline; `false` when another push holds it now (this one stops).
async fn renew<S: Store, B, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    deadline: &Deadline,
    token: &str,
) -> Result<bool, StoreError> {
    let until_ms = lease_until(ctx, deadline);
    atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), STATE_KEY, |current: Option<PushState>| {
        let Some(mut state) = current else { return Change::Keep(false) };
        match &mut state.lease {
            Some(lease) if lease.token == token => {
                lease.until_ms = until_ms;
                Change::Write(state, true)
            }
            _ => Change::Keep(false),
        }
    })
    .await
}

/// Whether there is time for one more marketplace call and its bookkeeping.
fn time_for_a_call<C: Clock>(clock: &C, deadline: &Deadline) -> bool {
    deadline.remaining_ms(clock) >= openapi::MIN_CALL_MS + ANSWER_MARGIN_MS
}

/// Sends batches until nothing is pending, the deadline is near, the lease is lost, or the marketplace fails. A
/// refused batch is split in halves until the refused records are alone; only those are parked.
async fn push_batches<S: Store, B: Backend, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &UsageConfig,
    deadline: &Deadline,
    token: &str,
    report: &mut PushReport,
) -> Result<(), StoreError> {
    let mut limit = MAX_RECORDS_PER_BATCH;
    while time_for_a_call(ctx.clock, deadline) {
        if !renew(ctx, deadline, token).await? {
            report.error = Some("another push took over (this one ran past its lease)".to_owned());
            return Ok(());
        }
        let now = ctx.clock.now_ms();
        let mut batch: Vec<(PendingEntry, UsageRecord)> = Vec::new();
        let mut abandoned = Vec::new();
        let mut stale = Vec::new();
        for entry in pending(ctx.store).await? {
            if batch.len() == limit {
                break;
            }
            match load_record(ctx.store, &entry.sn).await? {
                None if now.saturating_sub(entry.at_ms) > ABANDONED_MS => abandoned.push(entry),
                None => {}
                Some(stored) => {
                    let begin = time::parse_sdk_date(&stored.record.begin_time).unwrap_or(0);
                    if usage::is_begin_time_fresh(begin, now) {
                        batch.push((entry, stored.record));
                    } else {
                        stale.push(entry);
                    }
                }
            }
        }
        let cleaned = !abandoned.is_empty() || !stale.is_empty();
        if !abandoned.is_empty() {
            report.parked += abandoned.len();
            let reason =
                "the record is missing: its submission never finished (it was not acknowledged); submit it again"
                    .to_owned();
            park(ctx, ParkedBatch { entries: abandoned, at_ms: now, status: None, code: None, reason }, true).await?;
        }
        if !stale.is_empty() {
            report.parked += stale.len();
            let reason = "begin_time is more than 21 days old: the marketplace no longer accepts it".to_owned();
            park(ctx, ParkedBatch { entries: stale, at_ms: now, status: None, code: None, reason }, false).await?;
        }
        if batch.is_empty() {
            if cleaned {
                continue;
            }
            break;
        }
        if !time_for_a_call(ctx.clock, deadline) {
            break;
        }
        let count = batch.len();
        match send_batch(ctx, cfg, deadline, &batch).await {
            Outcome::Sent => {
                let sent: HashSet<String> = batch.iter().map(|(e, _)| e.sn.clone()).collect();
                unlist(ctx, |e| sent.contains(&e.sn)).await?;
                report.sent += count;
                report.batches += 1;
                limit = MAX_RECORDS_PER_BATCH;
                note(ctx, |s| {
                    s.sent = s.sent.saturating_add(count as u64);
                    s.batches = s.batches.saturating_add(1);
                    s.failures = 0;
                    s.next_try_ms = 0;
                    s.last_success_ms = Some(now);
                })
                .await?;
            }
            Outcome::Retry(reason) => {
                report.error = Some(reason.clone());
                note(ctx, |s| {
                    s.failures = s.failures.saturating_add(1);
                    s.next_try_ms = now.saturating_add(backoff_ms(s.failures));
                    s.last_error = Some(LastError { at_ms: now, reason: reason.clone() });
                })
                .await?;
                return Ok(());
            }
            Outcome::Refused { .. } if count > 1 => limit = count / 2,
            Outcome::Refused { status, code, reason } => {
                report.parked += count;
                report.error = Some(reason.clone());
                let entries = batch.into_iter().map(|(e, _)| e).collect();
                let parked = ParkedBatch { entries, at_ms: now, status: Some(status), code, reason: reason.clone() };
                park(ctx, parked, false).await?;
                note(ctx, |s| s.last_error = Some(LastError { at_ms: now, reason: reason.clone() })).await?;
            }
        }
    }
    Ok(())
}

/// Records an outcome in the push state.
async fn note<S: Store, B, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    change: impl Fn(&mut PushState),
) -> Result<(), StoreError> {
    atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), STATE_KEY, |current: Option<PushState>| {
        let mut state = current.unwrap_or_default();
        change(&mut state);
        Change::Write(state, ())
    })
    .await
}

/// Serialises (keys sorted at every level, compact), signs (§4.7 body signature, then AK/SK over every header)
/// and sends one batch.
async fn send_batch<S, B: Backend, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &UsageConfig,
    deadline: &Deadline,
    batch: &[(PendingEntry, UsageRecord)],
) -> Outcome {
    let records: Vec<&UsageRecord> = batch.iter().map(|(_, r)| r).collect();
    let body = sorted_compact(&json!({ "usage_records": records }));
    let ts = ctx.clock.now_ms().to_string();
    let mut nonce = [0u8; 16];
    ctx.random.fill(&mut nonce);
    let nonce = uuid::Builder::from_random_bytes(nonce).into_uuid().to_string();
    let signature = crate::signing::usage::signature(&cfg.body_key, &ts, &nonce, &body);
    let headers = [("signature".to_owned(), signature), ("ts".to_owned(), ts), ("nonce".to_owned(), nonce)];
    let request = ApiRequest { method: "POST", path_and_query: USAGE_DATA_PATH, headers: &headers, body: &body };
    judge(openapi::call(&cfg.openapi, &request, ctx.backend, ctx.clock, deadline).await)
}

/// Puts every parked batch back in line (after the operator fixed the cause) and clears the back-off; returns how
/// many records. Runs under the push lease ([`Mode::Requeue`]), so no push parks meanwhile.
async fn requeue<S: Store, B, C: Clock, R: Random>(ctx: &Ctx<'_, S, B, C, R>) -> Result<usize, StoreError> {
    let batches = parked(ctx.store).await?;
    let now = ctx.clock.now_ms();
    // Fresh `at_ms`: a parked entry whose record is missing gets the full grace again before it is parked again.
    let entries: Vec<PendingEntry> =
        batches.iter().flat_map(|b| b.entries.iter().map(|e| PendingEntry { at_ms: now, ..e.clone() })).collect();
    let count = entries.len();
    // Parked entries kept their fingerprints, so they cannot conflict with what is pending.
    enqueue(ctx, entries).await?;
    atomic::update(ctx.store, ctx.random, now, PARKED_KEY, |current: Option<Parked>| {
        let Some(mut parked) = current else { return Change::Keep(()) };
        parked.batches.retain(|b| !batches.contains(b));
        Change::Write(parked, ())
    })
    .await?;
    note(ctx, |s| {
        s.failures = 0;
        s.next_try_ms = 0;
    })
    .await?;
    Ok(count)
}

/// What `GET /usage/status` shows.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn status<S: Store>(store: &S, now_ms: u64) -> Result<serde_json::Value, StoreError> {
    let pending = pending(store).await?;
    let parked = parked(store).await?;
    let state = atomic::read::<_, PushState>(store, STATE_KEY).await?.unwrap_or_default();
    let oldest = pending.iter().map(|e| e.at_ms).min();
    let parked_batches: Vec<serde_json::Value> = parked
        .iter()
        .map(|b| {
            json!({
                "records": b.entries.len(),
                "metering_sns": b.entries.iter().map(|e| e.sn.as_str()).collect::<Vec<_>>(),
                "parked_at": time::format_sdk_date(b.at_ms),
                "status": b.status,
                "code": b.code,
                "reason": b.reason,
            })
        })
        .collect();
    Ok(json!({
        "pending": pending.len(),
        "oldest_pending_age_s": oldest.map(|at| now_ms.saturating_sub(at) / 1000),
        "sent": state.sent,
        "batches_sent": state.batches,
        "failed": parked.iter().map(|b| b.entries.len()).sum::<usize>(),
        "parked": parked_batches,
        "failures_in_a_row": state.failures,
        "next_try_in_s": (state.next_try_ms > now_ms).then(|| (state.next_try_ms - now_ms).div_ceil(1000)),
        "pushing": state.lease.as_ref().is_some_and(|l| l.until_ms > now_ms),
        "last_success": state.last_success_ms.map(time::format_sdk_date),
        "last_error": state.last_error.map(|e| json!({"at": time::format_sdk_date(e.at_ms), "reason": e.reason})),
    }))
}
