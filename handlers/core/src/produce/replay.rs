//! The replay cache: atomic, and expiring.
//!
//! - V2: a `nonce` is remembered under `nonce/{minute}/{nonce}`, `minute` being the signed `timestamp` in minutes.
//!   A replay must repeat the timestamp (it is signed), so it finds the entry. Remembering is an atomic counter
//!   increment: of two concurrent requests with one nonce exactly one passes.
//! - V1 has no nonce: a request is identified by its `authToken` (an HMAC over every parameter, `timeStamp`
//!   included), remembered under `nonce/{minute}/v1-{hash}` once the request has been applied. A repeat inside the
//!   V1 window is acknowledged without being applied again (the marketplace may retry a V1 call with the same URL);
//!   outside the window it is refused by the window check.
//! - Expiry: an entry is useless once its timestamp can no longer pass the window. A sweep deletes such entries at
//!   most once per V2 window: any verified request checks the `nonce/sweep` mark (one read) and, when the sweep is
//!   due, claims it atomically and deletes up to [`SWEEP_BATCH`] expired entries.

use sha2::{Digest, Sha256};

use crate::ports::atomic;
use crate::ports::{Random, Store, StoreError};

/// Most expired entries one sweep deletes, so a request that sweeps still answers promptly.
pub const SWEEP_BATCH: usize = 256;

const PREFIX: &str = "nonce/";
const SWEEP_KEY: &str = "nonce/sweep";
const MINUTE_MS: u64 = 60_000;

/// Key of a remembered V2 nonce.
pub fn nonce_key(nonce: &str, timestamp_ms: u64) -> String {
    format!("{PREFIX}{}/{nonce}", timestamp_ms / MINUTE_MS)
}

/// Key of a remembered V1 request.
pub fn v1_request_key(auth_token: &str, timestamp_ms: u64) -> String {
    let digest = Sha256::digest(auth_token.as_bytes());
    format!("{PREFIX}{}/v1-{}", timestamp_ms / MINUTE_MS, hex::encode(&digest[..16]))
}

/// Remembers `key`; `false` when it was remembered before (a replay). Atomic: concurrent callers with one key get
/// exactly one `true` — the entry is a counter (`wasi:keyvalue/atomics` `increment`), the one operation that is
/// atomic on a missing key on every Spin store.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn remember<S: Store>(store: &S, key: &str) -> Result<bool, StoreError> {
    // A replay that comes after its original is turned away by a read and changes nothing; only requests that
    // race one another need the counter to tell which came first.
    if store.get(key).await?.is_some() {
        return Ok(false);
    }
    Ok(store.increment(key, 1).await? == 1)
}

/// Whether `key` is remembered.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn seen<S: Store>(store: &S, key: &str) -> Result<bool, StoreError> {
    Ok(store.get(key).await?.is_some())
}

/// Deletes expired entries when a sweep is due (at most once per `interval_ms`); returns how many it deleted.
///
/// An entry expires when its minute ended more than `horizon_ms` ago: no timestamp that old passes any window.
///
/// # Errors
/// [`StoreError`] when the store fails; the caller answers `000005` and nothing is lost (the next request sweeps).
pub async fn sweep_if_due<S: Store, R: Random>(
    store: &S,
    random: &R,
    now_ms: u64,
    interval_ms: u64,
    horizon_ms: u64,
) -> Result<usize, StoreError> {
    if !atomic::claim_due(store, random, now_ms, SWEEP_KEY, interval_ms.max(MINUTE_MS)).await? {
        return Ok(0);
    }
    let cutoff = now_ms.saturating_sub(horizon_ms);
    crate::ports::delete_listed(store, SWEEP_BATCH, |k| match k.strip_prefix(PREFIX) {
        Some(rest) if k != SWEEP_KEY => match rest.split_once('/') {
            Some((minute, _)) => minute.parse::<u64>().is_ok_and(|m| (m + 1).saturating_mul(MINUTE_MS) < cutoff),
            // `nonce/<nonce>`, the format before entries had a minute: expired long ago.
            None => true,
        },
        _ => false,
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MemoryStore, OsRandom};

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        pollster::block_on(f)
    }

    #[test]
    fn a_nonce_passes_once() {
        let store = MemoryStore::new();
        let key = nonce_key("N1", 1_700_000_000_000);
        assert_eq!(key, "nonce/28333333/N1");
        assert!(block(remember(&store, &key)).expect("store"));
        assert!(!block(remember(&store, &key)).expect("store"));
    }

    #[test]
    fn the_sweep_deletes_only_expired_entries_and_runs_once_per_interval() {
        let store = MemoryStore::new();
        let now = 1_700_000_000_000;
        for (nonce, ts) in [("old", now - 200_000), ("edge", now - 100_000), ("fresh", now - 1_000)] {
            block(remember(&store, &nonce_key(nonce, ts))).expect("store");
        }
        block(store.set("live/instance/x", b"{}")).expect("store");
        block(store.set("nonce/LEGACYNONCE", b"1")).expect("store");
        let deleted = block(sweep_if_due(&store, &OsRandom, now, 60_000, 120_000)).expect("sweep");
        assert_eq!(deleted, 2, "the expired entry and one in the old format");
        let keys = block(store.keys()).expect("keys");
        assert!(keys.iter().all(|k| !k.ends_with("/old")), "{keys:?}");
        assert!(keys.iter().any(|k| k.ends_with("/edge")) && keys.contains(&"live/instance/x".to_owned()));
        // Not due again within the interval, due after it.
        assert_eq!(block(sweep_if_due(&store, &OsRandom, now + 59_000, 60_000, 120_000)).expect("sweep"), 0);
        assert_eq!(block(sweep_if_due(&store, &OsRandom, now + 60_000, 60_000, 120_000)).expect("sweep"), 1);
    }
}
