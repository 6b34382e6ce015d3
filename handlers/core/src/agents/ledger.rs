//! The usage ledger: one record per gateway request, by customer and request id, and the totals of a period.
//!
//! The gateway bills from the answers; the ledger is the seller's own account of them, to reconcile with the
//! marketplace's bill and to see unbillable calls (no usage from the upstream, failures). A record is written
//! before a stream's last bytes leave, so an answer the gateway received completely has its record.
//!
//! Keys: `agents/ledger/<customer>/<request>` (customer and request as 16 hex digits of their SHA-256, since both
//! are free text), so a retried request (same `X-Request-Id`) lands on the same record: the latest answer is kept
//! (it is the one the gateway bills; a billed answer is never replaced by a failed attempt) with the first arrival's
//! time. Two attempts finishing at the same moment may race (read, then write): the later write wins. Recording is one read and one write; the totals
//! read the records of the customer asked for (all records when none is) and filter them by time.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::usage::TokenUsage;
use crate::ports::{Store, StoreError};

const RECORD_PREFIX: &str = "agents/ledger/";

/// How one gateway request ended, as the ledger counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The answer carried usage: billable.
    Billable,
    /// The upstream answered but reported no usage: passed through, not billable.
    NoUsage,
    /// The upstream answered with an error status.
    UpstreamError,
    /// The upstream could not be reached or refused the connection (answered 502).
    UpstreamUnreachable,
    /// The upstream did not answer in time (answered 504, or a stream cut at the deadline).
    UpstreamTimeout,
    /// A stream broke off part-way.
    StreamBroken,
    /// The client went away before the stream ended.
    ClientGone,
}

impl Outcome {
    /// The snake-case name used in records and totals.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Billable => "billable",
            Self::NoUsage => "no_usage",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::StreamBroken => "stream_broken",
            Self::ClientGone => "client_gone",
        }
    }
}

/// One gateway request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `X-Customer-Id` (the buyer's account), `-` when the gateway sent none.
    pub customer: String,
    /// `X-Request-Id`, or a generated UUID when the gateway sent none.
    pub request_id: String,
    /// Whether `request_id` was generated here (such requests cannot be deduplicated).
    #[serde(default)]
    pub generated_id: bool,
    /// When the request arrived (ms since the epoch).
    pub at_ms: u64,
    /// The path forwarded to the upstream (no query).
    pub path: String,
    /// The status answered to the gateway.
    pub status: u16,
    /// Whether the answer was a stream.
    pub stream: bool,
    /// How it ended.
    pub outcome: Outcome,
    /// The usage the answer carried (billable) or that was seen before a stream broke off (not billable).
    pub usage: Option<TokenUsage>,
}

fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// Records `entry`: the same customer and request id always land on the same record, the latest answer kept.
///
/// # Errors
/// [`StoreError`] when the store fails; the caller reports it (the answer to the gateway is not held back).
pub async fn record<S: Store + ?Sized>(store: &S, entry: &Entry) -> Result<(), StoreError> {
    let key = format!("{RECORD_PREFIX}{}/{}", short_hash(&entry.customer), short_hash(&entry.request_id));
    let mut entry = entry.clone();
    if !entry.generated_id
        && let Some(first) = store.get(&key).await?.and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
    {
        // An answer the gateway billed stays billed: a later attempt that failed does not undo it.
        if first.outcome == Outcome::Billable && entry.outcome != Outcome::Billable {
            return Ok(());
        }
        // A retry keeps the first arrival's time, so the period it counts in does not move.
        entry.at_ms = entry.at_ms.min(first.at_ms);
    }
    let bytes = serde_json::to_vec(&entry).map_err(|e| StoreError(format!("ledger entry: {e}")))?;
    store.set(&key, &bytes).await
}

/// The totals of a period, as `GET /agents/_usage` answers them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Requests recorded.
    pub requests: u64,
    /// Of those, billable.
    pub billable: u64,
    /// Of those, not billable (every other outcome).
    pub unbillable: u64,
    /// Requests per outcome.
    pub outcomes: std::collections::BTreeMap<&'static str, u64>,
    /// Sum of the billable requests' usage.
    pub usage: TokenUsage,
    /// Distinct customers seen.
    pub customers: u64,
}

/// Sums the records of `customer` (all customers when `None`) with `from_ms <= at_ms < to_ms`.
///
/// # Errors
/// [`StoreError`] when the store fails. A record that is not valid JSON is skipped and counted in `skipped`.
pub async fn totals<S: Store + ?Sized>(
    store: &S,
    customer: Option<&str>,
    from_ms: u64,
    to_ms: u64,
) -> Result<(Totals, u64), StoreError> {
    let wanted = customer.map(|c| format!("{RECORD_PREFIX}{}/", short_hash(c)));
    let mut totals = Totals::default();
    let mut customers = std::collections::BTreeSet::new();
    let mut skipped = 0;
    let mut keys = store.keys().await?;
    keys.sort();
    for key in keys {
        let in_scope = match &wanted {
            Some(prefix) => key.starts_with(prefix.as_str()),
            None => key.starts_with(RECORD_PREFIX),
        };
        if !in_scope {
            continue;
        }
        let Some(bytes) = store.get(&key).await? else {
            continue;
        };
        let Ok(entry) = serde_json::from_slice::<Entry>(&bytes) else {
            skipped += 1;
            continue;
        };
        if entry.at_ms < from_ms || entry.at_ms >= to_ms || customer.is_some_and(|c| c != entry.customer) {
            continue;
        }
        totals.requests += 1;
        *totals.outcomes.entry(entry.outcome.as_str()).or_default() += 1;
        if entry.outcome == Outcome::Billable {
            totals.billable += 1;
            if let Some(t) = entry.usage {
                // Counts come from the upstream: sums saturate rather than wrap.
                let sum = &mut totals.usage;
                sum.prompt_tokens = sum.prompt_tokens.saturating_add(t.prompt_tokens);
                sum.completion_tokens = sum.completion_tokens.saturating_add(t.completion_tokens);
                sum.total_tokens = sum.total_tokens.saturating_add(t.total_tokens);
            }
        } else {
            totals.unbillable += 1;
        }
        customers.insert(entry.customer);
    }
    totals.customers = customers.len() as u64;
    Ok((totals, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MemoryStore;

    const HOUR_MS: u64 = 3_600_000;

    fn entry(customer: &str, id: &str, at_ms: u64, outcome: Outcome, total: u64) -> Entry {
        Entry {
            customer: customer.into(),
            request_id: id.into(),
            generated_id: false,
            at_ms,
            path: "/v1/chat/completions".into(),
            status: 200,
            stream: false,
            outcome,
            usage: (total > 0).then_some(TokenUsage {
                prompt_tokens: 1,
                completion_tokens: total - 1,
                total_tokens: total,
            }),
        }
    }

    #[test]
    fn retries_land_on_one_record_counted_at_first_arrival() {
        pollster::block_on(async {
            let store = MemoryStore::new();
            record(&store, &entry("c1", "r1", HOUR_MS - 10, Outcome::UpstreamTimeout, 0)).await.expect("1");
            record(&store, &entry("c1", "r1", HOUR_MS + 10, Outcome::Billable, 10)).await.expect("2");
            record(&store, &entry("c1", "r2", HOUR_MS + 20, Outcome::Billable, 5)).await.expect("3");
            record(&store, &entry("c2", "r1", HOUR_MS + 30, Outcome::NoUsage, 0)).await.expect("4");
            let (all, _) = totals(&store, None, 0, 10 * HOUR_MS).await.expect("totals");
            assert_eq!((all.requests, all.billable, all.unbillable, all.customers), (3, 2, 1, 2));
            assert_eq!(all.usage.total_tokens, 15);
            let (c1, _) = totals(&store, Some("c1"), 0, 10 * HOUR_MS).await.expect("totals");
            assert_eq!((c1.requests, c1.usage.total_tokens), (2, 15));
            // A retried request counts at its first arrival, with the last answer's usage; edges are exact.
            let (early, _) = totals(&store, Some("c1"), 0, HOUR_MS).await.expect("totals");
            assert_eq!((early.requests, early.billable, early.usage.total_tokens), (1, 1, 10));
            let (none, _) = totals(&store, Some("c1"), 0, HOUR_MS - 10).await.expect("totals");
            assert_eq!(none.requests, 0);
            // A failed retry of a billed request does not undo it.
            record(&store, &entry("c1", "r2", HOUR_MS + 40, Outcome::ClientGone, 0)).await.expect("5");
            let (kept, _) = totals(&store, Some("c1"), 0, 10 * HOUR_MS).await.expect("totals");
            assert_eq!((kept.billable, kept.usage.total_tokens), (2, 15));
            let (late, _) = totals(&store, Some("c1"), HOUR_MS + 15, 10 * HOUR_MS).await.expect("totals");
            assert_eq!((late.requests, late.usage.total_tokens), (1, 5));
        });
    }
}
