//! `POST /usage/records`: the seller's backend hands over usage records; each is checked, given a stable
//! `metering_sn`, and queued once.
//!
//! A submission is all or nothing: if any record is invalid, the answer names each bad record (its `record_id`, or
//! its index) with the reason, and nothing is stored. A valid record's `metering_sn` is derived from its
//! `record_id` (with its instance) when given, else from its content, so a backend that submits the same record
//! again — after a timeout, a crash, a deploy — gets the same `metering_sn`, and the record is neither queued nor
//! billed twice (the marketplace deduplicates on `metering_sn` too).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::outbox::{self, PendingEntry, StoredRecord};
use crate::ports::{Clock, Random, Store, StoreError};
use crate::produce::Ctx;
use crate::wire::time;
use crate::wire::usage::UsageRecord;

/// Records one submission may carry.
pub const MAX_RECORDS_PER_SUBMISSION: usize = 1_000;

/// The namespace of derived `metering_sn`s (UUID v5), fixed so that every node and every release derives the same.
const METERING_NAMESPACE: Uuid = Uuid::from_u128(0x6b6f_6f67_616c_6c65_7279_2d75_7361_6765);

/// A record as the backend submits it.
struct Submitted {
    record_id: Option<String>,
    record: UsageRecord,
}

/// Why a record was refused, as the answer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordProblem {
    /// The record's position in `records`.
    pub index: usize,
    /// Its `record_id`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// What happened to an accepted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// New: queued for the marketplace by this submission.
    Queued,
    /// Submitted before and still waiting to be pushed.
    Pending,
    /// Submitted before and already accepted by the marketplace.
    Sent,
    /// Submitted before; its batch was refused and waits for an operator (`GET /usage/status`).
    Parked,
}

/// One accepted record in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    /// The record's position in `records`.
    pub index: usize,
    /// Its `record_id`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// The `metering_sn` it is (or was) pushed with.
    pub metering_sn: String,
    /// Whether it is new.
    pub status: RecordStatus,
}

/// How a submission ended.
#[derive(Debug)]
pub enum Intake {
    /// Every record is valid and stored (or was already).
    Accepted(Vec<Accepted>),
    /// The body is not `{"records":[…]}` with 1 to [`MAX_RECORDS_PER_SUBMISSION`] records.
    Malformed(String),
    /// Some records are invalid; nothing was stored.
    Invalid(Vec<RecordProblem>),
    /// Some `record_id`s were accepted before with different content; nothing was stored.
    Conflict(Vec<RecordProblem>),
}

/// `metering_sn` of a record: UUID v5 of its instance and `record_id`, or of its content.
pub fn metering_sn(record_id: Option<&str>, record: &UsageRecord) -> String {
    let name = match record_id {
        Some(id) => format!("record\n{}\n{id}", record.instance_id),
        None => format!("content\n{}", content_key(record)),
    };
    // Fields cannot hold control characters (refused at intake), so the `\n` joins cannot collide.
    Uuid::new_v5(&METERING_NAMESPACE, name.as_bytes()).to_string()
}

/// The fields that make two records the same usage (the record time is when it was taken in, not part of it).
fn content_key(record: &UsageRecord) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}",
        record.instance_id,
        record.begin_time,
        record.end_time,
        normalised_value(&record.usage_value),
        record.relate_pkg_instance.as_deref().unwrap_or("")
    )
}

/// `12.50`, `012.5` and `12.5` are the same usage.
fn normalised_value(value: &str) -> String {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if frac.is_empty() { int.to_owned() } else { format!("{int}.{frac}") }
}

/// A short fingerprint of a record's content, to tell a resubmission from a different record under one `record_id`.
pub(super) fn content_hash(record: &UsageRecord) -> String {
    hex::encode(&Sha256::digest(content_key(record).as_bytes())[..12])
}

/// How far in the future a time may lie (clock differences between the seller's systems and this one).
const FUTURE_SKEW_MS: u64 = 15 * 60_000;

const FIELDS: [&str; 7] =
    ["record_id", "instance_id", "begin_time", "end_time", "usage_value", "relate_pkg_instance", "record_time"];

/// Reads one submitted record, or says what is wrong with it.
fn read_record(value: &Value, now_ms: u64) -> Result<Submitted, String> {
    let Some(object) = value.as_object() else { return Err("must be a JSON object".to_owned()) };
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field {unknown}"));
    }
    let text = |name: &str, required: bool| -> Result<Option<String>, String> {
        match object.get(name) {
            None | Some(Value::Null) if !required => Ok(None),
            None | Some(Value::Null) => Err(format!("{name} is missing")),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) if name == "usage_value" => Ok(Some(n.to_string())),
            Some(_) => Err(format!("{name} must be a string")),
        }
    };
    for name in ["record_id", "instance_id", "relate_pkg_instance"] {
        if let Some(Value::String(v)) = object.get(name)
            && v.chars().any(char::is_control)
        {
            return Err(format!("{name} must not contain control characters"));
        }
    }
    let record_id = text("record_id", false)?;
    if let Some(id) = &record_id
        && (id.trim().is_empty() || id.chars().count() > 128)
    {
        return Err("record_id must be 1 to 128 characters".to_owned());
    }
    let record = UsageRecord {
        instance_id: text("instance_id", true)?.unwrap_or_default(),
        record_time: text("record_time", false)?.unwrap_or_else(|| time::format_sdk_date(now_ms)),
        begin_time: text("begin_time", true)?.unwrap_or_default(),
        end_time: text("end_time", true)?.unwrap_or_default(),
        usage_value: text("usage_value", true)?.unwrap_or_default(),
        metering_sn: String::new(),
        relate_pkg_instance: text("relate_pkg_instance", false)?.filter(|p| !p.trim().is_empty()),
    };
    let mut record = record;
    record.metering_sn = metering_sn(record_id.as_deref(), &record);
    record.validate(0, now_ms).map_err(|e| e.to_string().replacen("usage_records[0].", "", 1))?;
    for (name, value) in [("begin_time", &record.begin_time), ("end_time", &record.end_time)] {
        if time::parse_sdk_date(value).is_ok_and(|t| t > now_ms.saturating_add(FUTURE_SKEW_MS)) {
            return Err(format!("{name} is in the future"));
        }
    }
    Ok(Submitted { record_id, record })
}

/// Checks, numbers and queues a submission (the body of `POST /usage/records`).
///
/// # Errors
/// [`StoreError`] when the store fails; the backend submits again (nothing is lost: what was stored is found again
/// by its `metering_sn`).
pub async fn submit<S: Store, B, C: Clock, R: Random>(
    body: &[u8],
    ctx: &Ctx<'_, S, B, C, R>,
) -> Result<Intake, StoreError> {
    let now = ctx.clock.now_ms();
    let records = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut o)) => match o.remove("records") {
            Some(Value::Array(records)) => records,
            _ => return Ok(Intake::Malformed("expected {\"records\": [ … ]}".to_owned())),
        },
        _ => return Ok(Intake::Malformed("the body is not a JSON object".to_owned())),
    };
    if records.is_empty() || records.len() > MAX_RECORDS_PER_SUBMISSION {
        return Ok(Intake::Malformed(format!("expected 1 to {MAX_RECORDS_PER_SUBMISSION} records")));
    }
    let mut problems = Vec::new();
    let mut submitted = Vec::with_capacity(records.len());
    for (index, value) in records.iter().enumerate() {
        let record_id = value.get("record_id").and_then(Value::as_str).map(str::to_owned);
        match read_record(value, now) {
            Ok(s) => submitted.push((index, s)),
            Err(reason) => problems.push(RecordProblem { index, record_id, reason }),
        }
    }
    check_instances(&submitted, ctx.store, &mut problems).await?;
    check_repeats(&submitted, &mut problems);
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.index);
        return Ok(Intake::Invalid(problems));
    }
    store_records(submitted, ctx, now).await
}

/// A record of usage that begins once its instance was released (as the store holds it) is refused: the instance
/// can no longer be billed; usage before the release is accepted, and so are unknown instances (the instance may be
/// served by another system).
async fn check_instances<S: Store>(
    submitted: &[(usize, Submitted)],
    store: &S,
    problems: &mut Vec<RecordProblem>,
) -> Result<(), StoreError> {
    let mut released: Vec<(String, Option<u64>)> = Vec::new();
    for (index, s) in submitted {
        let id = &s.record.instance_id;
        let released_at = match released.iter().find(|(i, _)| i == id) {
            Some((_, at)) => *at,
            None => {
                let at = crate::produce::load_instance(store, false, id).await?.and_then(|rec| match rec.status {
                    crate::lifecycle::Status::Released { at_ms } => Some(at_ms),
                    _ => None,
                });
                released.push((id.clone(), at));
                at
            }
        };
        let begin = time::parse_sdk_date(&s.record.begin_time).unwrap_or(0);
        if released_at.is_some_and(|at| begin >= at) {
            problems.push(RecordProblem {
                index: *index,
                record_id: s.record_id.clone(),
                reason: "instance_id was released before begin_time".to_owned(),
            });
        }
    }
    Ok(())
}

/// One `record_id` twice in a submission with different content is refused (a copy with the same content is fine).
fn check_repeats(submitted: &[(usize, Submitted)], problems: &mut Vec<RecordProblem>) {
    for (n, (index, s)) in submitted.iter().enumerate() {
        let earlier = submitted[..n].iter().find(|(_, e)| e.record.metering_sn == s.record.metering_sn);
        if let Some((first, e)) = earlier
            && content_hash(&e.record) != content_hash(&s.record)
        {
            problems.push(RecordProblem {
                index: *index,
                record_id: s.record_id.clone(),
                reason: format!("record_id repeats record {first} with different content"),
            });
        }
    }
}

/// Stores the new records (pending index first, then each record), after checking that none contradicts one
/// stored before.
async fn store_records<S: Store, B, C: Clock, R: Random>(
    submitted: Vec<(usize, Submitted)>,
    ctx: &Ctx<'_, S, B, C, R>,
    now: u64,
) -> Result<Intake, StoreError> {
    let pending = outbox::pending(ctx.store).await?;
    let parked = outbox::parked_sns(ctx.store).await?;
    let mut accepted = Vec::with_capacity(submitted.len());
    let mut conflicts = Vec::new();
    let mut new: Vec<(Option<String>, UsageRecord, String)> = Vec::new();
    for (index, s) in submitted {
        let sn = s.record.metering_sn.clone();
        let hash = content_hash(&s.record);
        let stored = outbox::load_record(ctx.store, &sn).await?;
        let queued = pending.iter().find(|e| e.sn == sn);
        let known_hash = stored.as_ref().map(|r| r.hash.clone()).or_else(|| queued.map(|e| e.hash.clone()));
        if known_hash.as_ref().is_some_and(|h| *h != hash) {
            conflicts.push(RecordProblem {
                index,
                record_id: s.record_id.clone(),
                reason: "record_id was submitted before with different content".to_owned(),
            });
            continue;
        }
        let status = match (&stored, queued) {
            (None, _) if new.iter().any(|(_, r, _)| r.metering_sn == sn) => RecordStatus::Queued,
            (None, _) => {
                new.push((s.record_id.clone(), s.record, hash));
                RecordStatus::Queued
            }
            (Some(_), Some(_)) => RecordStatus::Pending,
            (Some(_), None) if parked.contains(&sn) => RecordStatus::Parked,
            (Some(_), None) => RecordStatus::Sent,
        };
        accepted.push(Accepted { index, record_id: s.record_id, metering_sn: sn, status });
    }
    if !conflicts.is_empty() {
        return Ok(Intake::Conflict(conflicts));
    }
    let entries: Vec<PendingEntry> = new
        .iter()
        .map(|(_, r, hash)| PendingEntry { sn: r.metering_sn.clone(), hash: hash.clone(), at_ms: now })
        .collect();
    let racing = outbox::enqueue(ctx, entries).await?;
    if !racing.is_empty() {
        let conflicts = new
            .iter()
            .filter(|(_, r, _)| racing.contains(&r.metering_sn))
            .filter_map(|(id, r, _)| accepted.iter().find(|a| a.metering_sn == r.metering_sn).map(|a| (a.index, id)))
            .map(|(index, record_id)| RecordProblem {
                index,
                record_id: record_id.clone(),
                reason: "record_id was submitted before with different content".to_owned(),
            })
            .collect();
        return Ok(Intake::Conflict(conflicts));
    }
    for (record_id, record, hash) in new {
        let stored = StoredRecord { record, hash, record_id, accepted_ms: now };
        outbox::store_record(ctx.store, &stored).await?;
    }
    Ok(Intake::Accepted(accepted))
}
