//! Atomic read-modify-write of one JSON value in any [`Store`]: the only way handlers change shared state.
//!
//! [`update`] reads the value, lets the caller decide the next one, and writes it with compare-and-swap, retrying
//! on a conflict (bounded by [`MAX_ATTEMPTS`]), so no concurrent request's change is lost.
//!
//! Hosts do not all report conflicts truthfully: Spin 4.1.0-pre0's Redis store answers every `swap` with
//! `cas-failed`, also when the write went through (it sends `UNWATCH <key>`, which Redis refuses). So each write
//! carries a fresh random [`WriteToken`] in the value itself (the last [`WRITE_TOKEN_LIMIT`] are kept, see
//! [`Tokened`]). On a reported conflict the value is read again: if it carries this write's token, the swap happened
//! and the update is done; otherwise the decision is made again on the fresh value. A later writer builds on the
//! value it read, so it keeps the token; the token can only be lost after more than [`WRITE_TOKEN_LIMIT`] writes
//! between a swap and its re-read, and even then re-deciding is safe because every decision here is idempotent (a
//! lifecycle event that is already applied changes nothing).
//!
//! Creating a key is the other place hosts differ: Spin 4.1's SQLite store writes a swap on a *missing* key
//! unconditionally (an upsert), so two requests that both read "absent" could each write, and the later one would
//! replace the earlier one's change. So a first write is made only by the request that wins the key's creation
//! claim (atomic counters per time bucket, [`creation_claim_key`]); the others wait for the key to exist
//! ([`Store::pause`]) and then update it with a real compare-and-swap.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Random;
use super::store::{Store, StoreError, Swap};

/// How many compare-and-swap attempts one update makes before giving up with a store error (`000005`; the
/// marketplace retries). Each attempt only re-reads one key, and the marketplace sends a handful of requests per
/// instance, so this is reached only under a flood.
pub const MAX_ATTEMPTS: u32 = 64;

/// How many recent write tokens a value keeps.
pub const WRITE_TOKEN_LIMIT: usize = 16;

/// A random tag that identifies one write (128 bits, hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteToken(String);

impl WriteToken {
    /// A fresh token from `random`.
    pub fn random<R: Random + ?Sized>(random: &R) -> Self {
        let mut bytes = [0u8; 16];
        random.fill(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored value that remembers the tokens of its recent writes.
pub trait Tokened {
    /// The remembered tokens, oldest first.
    fn write_tokens(&self) -> &[String];
    /// The remembered tokens, for [`update`] to append to.
    fn write_tokens_mut(&mut self) -> &mut Vec<String>;
}

/// Implements [`Tokened`] for a struct that keeps its write tokens in a `Vec<String>` field:
/// `tokened!(Index, writes);`.
#[macro_export]
macro_rules! tokened {
    ($type:ty, $field:ident) => {
        impl $crate::ports::atomic::Tokened for $type {
            fn write_tokens(&self) -> &[String] {
                &self.$field
            }
            fn write_tokens_mut(&mut self) -> &mut Vec<String> {
                &mut self.$field
            }
        }
    };
}

/// What the caller of [`update`] decided for the value it was shown.
#[derive(Debug)]
pub enum Change<T, O> {
    /// Leave the stored value as it is and return `O`.
    Keep(O),
    /// Store `T` and return `O` once it is stored.
    Write(T, O),
}

/// Atomically replaces the JSON value under `key` with what `decide` makes of the current one (`None` when absent).
/// `now_ms` is the request's wall-clock time (it dates a creation claim, see [`CLAIM_BUCKET_MS`]).
///
/// `decide` may run several times (once per conflict), each time on the freshest value; it must not have effects
/// other than its return value.
///
/// # Errors
/// [`StoreError`] when the store fails, the stored value is not valid JSON for `T` (it is never silently replaced),
/// or [`MAX_ATTEMPTS`] conflicts in a row.
pub async fn update<S, R, T, O, F>(
    store: &S,
    random: &R,
    now_ms: u64,
    key: &str,
    mut decide: F,
) -> Result<O, StoreError>
where
    S: Store + ?Sized,
    R: Random + ?Sized,
    T: Serialize + DeserializeOwned + Tokened,
    F: FnMut(Option<T>) -> Change<T, O>,
{
    let token = WriteToken::random(random);
    let (mut current, mut cas) = store.begin_swap(key).await?;
    for _ in 0..MAX_ATTEMPTS {
        let parsed = parse::<T>(key, current.as_deref())?;
        let carried: Vec<String> = parsed.as_ref().map(|p| p.write_tokens().to_vec()).unwrap_or_default();
        let (mut next, output) = match decide(parsed) {
            Change::Keep(output) => return Ok(output),
            Change::Write(next, output) => (next, output),
        };
        // A decision that builds a fresh value still carries the tokens of the value it replaces.
        if next.write_tokens().is_empty() {
            *next.write_tokens_mut() = carried;
        }
        let tokens = next.write_tokens_mut();
        tokens.push(token.as_str().to_owned());
        if tokens.len() > WRITE_TOKEN_LIMIT {
            let excess = tokens.len() - WRITE_TOKEN_LIMIT;
            tokens.drain(..excess);
        }
        let bytes = serde_json::to_vec(&next).map_err(|e| StoreError(format!("{key}: {e}")))?;
        if current.is_none() {
            // Spin 4.1's SQLite store writes a swap on a missing key unconditionally (an upsert): a first write could
            // replace another request's first write. So only one request at a time may create a key.
            match create::<S, T>(store, now_ms, key, &bytes, &token).await? {
                Created::Done => return Ok(output),
                Created::Exists(fresh, fresh_cas) => {
                    current = fresh;
                    cas = fresh_cas;
                    continue;
                }
            }
        }
        match store.swap(cas, &bytes).await? {
            Swap::Written => return Ok(output),
            Swap::Conflict { current: fresh, cas: fresh_cas } => {
                if carries::<T>(key, fresh.as_deref(), &token) {
                    return Ok(output);
                }
                current = fresh;
                cas = fresh_cas;
            }
        }
    }
    Err(StoreError(format!("{key}: gave up after {MAX_ATTEMPTS} concurrent updates")))
}

/// How long a request waits between looks at a key that another request is creating.
pub const CREATE_PAUSE_MS: u64 = 5;

/// How many times a request looks before it gives up on a creator (about one second in all): the creator then
/// failed between its claim and its write; the request answers a store error and the marketplace retries.
pub const CREATE_LOOKS: u32 = 200;

/// Creation claims are counted per time bucket of this length, so a claim whose request died (it can never be
/// released) stops blocking the key's creation two buckets later.
pub const CLAIM_BUCKET_MS: u64 = 10_000;

/// The counter of requests claiming the creation of `key` in time bucket `bucket`.
pub fn creation_claim_key(key: &str, bucket: u64) -> String {
    format!("atomic/creating/{bucket}/{key}")
}

/// How an attempt to create a key ended.
enum Created<C> {
    /// This request's value is stored.
    Done,
    /// The key exists now (another request created it): decide again on its value.
    Exists(Option<Vec<u8>>, C),
}

/// Creates `key` with `bytes` unless another request is creating it; the others wait until the key exists and then
/// update it with a real compare-and-swap.
///
/// The election uses only atomic counters (the one primitive every host makes atomic on a missing key): a request
/// increments its bucket's [`creation_claim_key`] and is elected when it got `1` and both neighbouring buckets
/// count `0` — each side increments before it reads the other, so two requests on either side of a bucket
/// boundary cannot both be elected. A request that is not elected takes its increment back at once, so only an
/// elected request that died leaves a count, which blocks its own and the next bucket only. The elected request
/// removes the three counters once the key exists (a count taken back after that only leaves an unused key), and
/// only takes its own count back when the write failed. This relies on keys written through [`update`] never being
/// deleted (true of every record, index and marker here).
async fn create<S: Store + ?Sized, T: DeserializeOwned + Tokened>(
    store: &S,
    now_ms: u64,
    key: &str,
    bytes: &[u8],
    token: &WriteToken,
) -> Result<Created<S::Cas>, StoreError> {
    let bucket = now_ms / CLAIM_BUCKET_MS;
    let own = creation_claim_key(key, bucket);
    let previous = bucket.checked_sub(1).map(|b| creation_claim_key(key, b));
    let next = creation_claim_key(key, bucket.saturating_add(1));
    let counted = store.increment(&own, 1).await?;
    let elected = match elect(store, counted, previous.as_deref(), &next).await {
        Ok(elected) => elected,
        Err(e) => {
            let _ = store.increment(&own, -1).await;
            return Err(e);
        }
    };
    if elected {
        let written = create_claimed::<S, T>(store, key, bytes, token).await;
        let exists = matches!(written, Ok(Created::Done | Created::Exists(Some(_), _)));
        let released = if exists {
            // Nobody consults these counters again: the key exists, and keys written here are never deleted.
            let mut released = Ok(());
            for claim in previous.iter().chain([&next, &own]) {
                released = released.and(store.delete(claim).await);
            }
            released
        } else {
            // Still absent (the write failed): other requests' counts are live, only this one is taken back.
            store.increment(&own, -1).await.map(|_| ())
        };
        let written = written?;
        released?;
        return Ok(written);
    }
    store.increment(&own, -1).await?;
    for _ in 0..CREATE_LOOKS {
        store.pause(CREATE_PAUSE_MS).await;
        let (fresh, fresh_cas) = store.begin_swap(key).await?;
        if fresh.is_some() {
            return Ok(Created::Exists(fresh, fresh_cas));
        }
    }
    Err(StoreError(format!("{key}: another request claimed its creation and did not finish; try again")))
}

/// Whether a request whose increment of its own bucket gave `counted` may create the key: it was first in its
/// bucket, and no request holds a claim in the bucket before or after (read with a zero increment: hosts keep
/// counters in their own format).
async fn elect<S: Store + ?Sized>(
    store: &S,
    counted: i64,
    previous: Option<&str>,
    next: &str,
) -> Result<bool, StoreError> {
    if counted != 1 {
        return Ok(false);
    }
    if let Some(previous) = previous
        && store.increment(previous, 0).await? != 0
    {
        return Ok(false);
    }
    Ok(store.increment(next, 0).await? == 0)
}

/// The claimed creation: the key is read again (the previous creator may have finished since this request read it),
/// written if still absent, and read back.
async fn create_claimed<S: Store + ?Sized, T: DeserializeOwned + Tokened>(
    store: &S,
    key: &str,
    bytes: &[u8],
    token: &WriteToken,
) -> Result<Created<S::Cas>, StoreError> {
    let (fresh, fresh_cas) = store.begin_swap(key).await?;
    if fresh.is_some() {
        return Ok(Created::Exists(fresh, fresh_cas));
    }
    let (fresh, fresh_cas) = match store.swap(fresh_cas, bytes).await? {
        Swap::Written => store.begin_swap(key).await?,
        Swap::Conflict { current, cas } => (current, cas),
    };
    // Read back: a host that misreports (Spin 4.1 on Redis) or a creator that gave up waiting may have interfered.
    if carries::<T>(key, fresh.as_deref(), token) { Ok(Created::Done) } else { Ok(Created::Exists(fresh, fresh_cas)) }
}

/// When a periodic job (a sweep) shared by every instance last ran.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
struct Stamp {
    ts: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
}

impl Tokened for Stamp {
    fn write_tokens(&self) -> &[String] {
        &self.writes
    }
    fn write_tokens_mut(&mut self) -> &mut Vec<String> {
        &mut self.writes
    }
}

/// Claims the periodic job stamped under `key`: `true` for the one request that finds it due (`interval_ms` since the
/// last claim, or never claimed), which records `now_ms` as the new claim. A plain read first, so the usual answer
/// ("not due") costs no write.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn claim_due<S: Store + ?Sized, R: Random + ?Sized>(
    store: &S,
    random: &R,
    now_ms: u64,
    key: &str,
    interval_ms: u64,
) -> Result<bool, StoreError> {
    let due = |last: Option<&Stamp>| last.is_none_or(|l| now_ms.saturating_sub(l.ts) >= interval_ms);
    if !due(read::<_, Stamp>(store, key).await?.as_ref()) {
        return Ok(false);
    }
    update(store, random, now_ms, key, |current: Option<Stamp>| {
        if due(current.as_ref()) {
            Change::Write(Stamp { ts: now_ms, writes: current.map(|c| c.writes).unwrap_or_default() }, true)
        } else {
            Change::Keep(false)
        }
    })
    .await
}

/// Reads the JSON value under `key`; `None` when absent.
///
/// # Errors
/// [`StoreError`] when the store fails or the value is not valid JSON for `T`.
pub async fn read<S, T>(store: &S, key: &str) -> Result<Option<T>, StoreError>
where
    S: Store + ?Sized,
    T: DeserializeOwned,
{
    parse(key, store.get(key).await?.as_deref())
}

fn parse<T: DeserializeOwned>(key: &str, bytes: Option<&[u8]>) -> Result<Option<T>, StoreError> {
    match bytes {
        None => Ok(None),
        Some(b) => serde_json::from_slice(b).map(Some).map_err(|_| StoreError(format!("{key} is not valid JSON"))),
    }
}

/// Whether the value read back carries `token`.
fn carries<T: DeserializeOwned + Tokened>(key: &str, bytes: Option<&[u8]>, token: &WriteToken) -> bool {
    parse::<T>(key, bytes).ok().flatten().is_some_and(|t| t.write_tokens().iter().any(|w| w == token.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MemoryStore, OsRandom};
    use std::cell::Cell;

    /// A request's clock in the tests: in bucket 170 000.
    const NOW: u64 = 1_700_000_000_000;

    #[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
    struct Counter {
        n: u32,
        #[serde(default)]
        names: Vec<String>,
        #[serde(default)]
        writes: Vec<String>,
    }

    impl Tokened for Counter {
        fn write_tokens(&self) -> &[String] {
            &self.writes
        }
        fn write_tokens_mut(&mut self) -> &mut Vec<String> {
            &mut self.writes
        }
    }

    /// A store whose swap always reports a conflict after doing its real compare-and-set, like Spin 4.1 on Redis.
    struct LyingSwap(MemoryStore, Cell<u32>);

    impl Store for LyingSwap {
        type Cas = <MemoryStore as Store>::Cas;
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.0.get(key).await
        }
        async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
            self.0.set(key, value).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.0.delete(key).await
        }
        async fn keys(&self) -> Result<Vec<String>, StoreError> {
            self.0.keys().await
        }
        async fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
            self.0.increment(key, delta).await
        }
        async fn begin_swap(&self, key: &str) -> Result<(Option<Vec<u8>>, Self::Cas), StoreError> {
            self.0.begin_swap(key).await
        }
        async fn swap(&self, cas: Self::Cas, value: &[u8]) -> Result<Swap<Self::Cas>, StoreError> {
            let key = cas.key().to_owned();
            let _ = self.0.swap(cas, value).await?;
            self.1.set(self.1.get() + 1);
            let (current, cas) = self.0.begin_swap(&key).await?;
            Ok(Swap::Conflict { current, cas })
        }
    }

    fn add_one(c: Option<Counter>) -> Change<Counter, u32> {
        let mut c = c.unwrap_or_default();
        c.n += 1;
        let n = c.n;
        Change::Write(c, n)
    }

    #[test]
    fn a_misreported_conflict_is_recognised_by_the_token() {
        let store = LyingSwap(MemoryStore::new(), Cell::new(0));
        for expected in 1..=5 {
            let got = pollster::block_on(update(&store, &OsRandom, NOW, "k", add_one)).expect("update");
            assert_eq!(got, expected);
        }
        let stored: Counter = pollster::block_on(read(&store, "k")).expect("read").expect("present");
        assert_eq!(stored.n, 5, "each update applied exactly once although every swap reported a conflict");
        assert_eq!(store.1.get(), 5, "one swap per update");
    }

    #[test]
    fn a_real_conflict_re_decides_on_the_fresh_value() {
        let store = MemoryStore::new();
        let mut calls = 0;
        let got = pollster::block_on(update(&store, &OsRandom, NOW, "k", |c: Option<Counter>| {
            calls += 1;
            if calls == 1 {
                // Another writer gets in between this read and the swap.
                let other = serde_json::to_vec(&Counter { n: 10, ..Counter::default() }).expect("json");
                pollster::block_on(store.set("k", &other)).expect("set");
            }
            add_one(c)
        }))
        .expect("update");
        assert_eq!((got, calls), (11, 2));
    }

    #[test]
    fn tokens_are_bounded_and_keep_values_readable() {
        let store = MemoryStore::new();
        for _ in 0..40 {
            pollster::block_on(update(&store, &OsRandom, NOW, "k", add_one)).expect("update");
        }
        let stored: Counter = pollster::block_on(read(&store, "k")).expect("read").expect("present");
        assert_eq!((stored.n, stored.writes.len()), (40, WRITE_TOKEN_LIMIT));
        store.set("bad", b"not json").now_or_fail();
        assert!(pollster::block_on(update(&store, &OsRandom, NOW, "bad", add_one)).is_err());
    }

    /// A store with Spin 4.1 SQLite's swap: an upsert when the key was absent, a real compare-and-swap otherwise.
    /// `before_write` runs once, at this store's first `increment` or `swap` (another request getting in between a
    /// read of "absent" and the write); `on_pause` runs at every `pause` with its count.
    #[derive(Default)]
    struct UpsertSwap {
        map: std::cell::RefCell<std::collections::BTreeMap<String, Vec<u8>>>,
        before_write: std::cell::RefCell<Option<Interference>>,
        before_swap: std::cell::RefCell<Option<Interference>>,
        fail_swap: Cell<bool>,
        on_pause: Option<PauseHook>,
        pauses: Cell<u32>,
    }

    type Interference = Box<dyn FnOnce(&UpsertSwap)>;
    type PauseHook = Box<dyn Fn(&UpsertSwap, u32)>;

    struct UpsertCas {
        key: String,
        expected: Option<Vec<u8>>,
    }

    impl UpsertSwap {
        fn interfere(&self) {
            let hook = self.before_write.borrow_mut().take();
            if let Some(hook) = hook {
                hook(self);
            }
        }
    }

    impl Store for UpsertSwap {
        type Cas = UpsertCas;
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self.map.borrow().get(key).cloned())
        }
        async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
            self.map.borrow_mut().insert(key.to_owned(), value.to_vec());
            Ok(())
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.map.borrow_mut().remove(key);
            Ok(())
        }
        async fn keys(&self) -> Result<Vec<String>, StoreError> {
            Ok(self.map.borrow().keys().cloned().collect())
        }
        async fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
            self.interfere();
            let mut map = self.map.borrow_mut();
            let n = map.get(key).and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok()).unwrap_or(0) + delta;
            map.insert(key.to_owned(), n.to_string().into_bytes());
            Ok(n)
        }
        async fn begin_swap(&self, key: &str) -> Result<(Option<Vec<u8>>, UpsertCas), StoreError> {
            let current = self.map.borrow().get(key).cloned();
            Ok((current.clone(), UpsertCas { key: key.to_owned(), expected: current }))
        }
        async fn swap(&self, cas: UpsertCas, value: &[u8]) -> Result<Swap<UpsertCas>, StoreError> {
            self.interfere();
            let hook = self.before_swap.borrow_mut().take();
            if let Some(hook) = hook {
                hook(self);
            }
            if self.fail_swap.replace(false) {
                return Err(StoreError("busy".into()));
            }
            let mut map = self.map.borrow_mut();
            let now = map.get(&cas.key).cloned();
            if cas.expected.is_none() || now == cas.expected {
                map.insert(cas.key, value.to_vec());
                return Ok(Swap::Written);
            }
            Ok(Swap::Conflict { current: now.clone(), cas: UpsertCas { key: cas.key, expected: now } })
        }
        async fn pause(&self, _ms: u64) {
            self.pauses.set(self.pauses.get() + 1);
            if let Some(hook) = &self.on_pause {
                hook(self, self.pauses.get());
            }
        }
    }

    fn add_name_at(store: &UpsertSwap, now: u64, name: &str) -> Result<(), StoreError> {
        pollster::block_on(update(store, &OsRandom, now, "k", |c: Option<Counter>| {
            let mut c = c.unwrap_or_default();
            c.names.push(name.to_owned());
            Change::Write(c, ())
        }))
    }

    fn add_name(store: &UpsertSwap, name: &str) -> Result<(), StoreError> {
        add_name_at(store, NOW, name)
    }

    fn names(store: &UpsertSwap) -> Vec<String> {
        let stored: Option<Counter> = pollster::block_on(read(store, "k")).expect("read");
        stored.map(|n| n.names).unwrap_or_default()
    }

    /// The count under a bucket's claim (0 when absent).
    fn claims(store: &UpsertSwap, bucket: u64) -> i64 {
        let key = creation_claim_key("k", bucket);
        store.map.borrow().get(&key).and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()).unwrap_or(0)
    }

    fn hold_claim(store: &UpsertSwap, bucket: u64) {
        store.map.borrow_mut().insert(creation_claim_key("k", bucket), b"1".to_vec());
    }

    const BUCKET: u64 = NOW / CLAIM_BUCKET_MS;

    #[test]
    fn two_first_writes_on_an_upserting_store_both_count() {
        let store = UpsertSwap::default();
        // Another request creates the key after this one read "absent" and before it claims the creation.
        *store.before_write.borrow_mut() = Some(Box::new(|s: &UpsertSwap| add_name(s, "b").expect("b")));
        add_name(&store, "a").expect("a");
        assert_eq!(names(&store), ["b", "a"], "neither first write replaced the other");
        let left: Vec<String> = store.map.borrow().keys().filter(|k| k.starts_with("atomic/")).cloned().collect();
        assert!(left.is_empty(), "claims released: {left:?}");
    }

    #[test]
    fn a_request_that_finds_a_live_claim_waits_for_the_creator_and_then_updates() {
        let mut store = UpsertSwap::default();
        // A creator in the same bucket holds the claim and writes on the third pause of the waiting request.
        hold_claim(&store, BUCKET);
        store.on_pause = Some(Box::new(|s: &UpsertSwap, n| {
            if n == 3 {
                let v = serde_json::to_vec(&Counter { names: vec!["creator".into()], ..Counter::default() });
                s.map.borrow_mut().insert("k".into(), v.expect("json"));
            }
        }));
        add_name(&store, "waiter").expect("waiter");
        assert_eq!(names(&store), ["creator", "waiter"]);
        assert_eq!(store.pauses.get(), 3);
        assert_eq!(claims(&store, BUCKET), 1, "the waiter took its own count back; the creator's is untouched");
    }

    #[test]
    fn no_request_is_elected_while_an_elected_one_is_writing() {
        // Another request, in the same or the next bucket, runs between the elected request's read of "absent"
        // and its write. A second election would let both upsert, and the first write would be lost.
        for other_at in [NOW, NOW + CLAIM_BUCKET_MS] {
            let store = UpsertSwap::default();
            let other = std::rc::Rc::new(Cell::new(None));
            let seen = std::rc::Rc::clone(&other);
            *store.before_swap.borrow_mut() = Some(Box::new(move |s: &UpsertSwap| {
                seen.set(Some(add_name_at(s, other_at, "b").is_ok()));
            }));
            add_name(&store, "a").expect("a");
            assert_eq!(other.get(), Some(false), "the other request is not elected; it waits, then gives up");
            assert_eq!(names(&store), ["a"]);
            add_name_at(&store, other_at, "b").expect("its retry updates the key");
            assert_eq!(names(&store), ["a", "b"]);
        }
    }

    #[test]
    fn a_failed_creation_takes_back_only_its_own_count() {
        let store = UpsertSwap::default();
        // A request that is not elected has counted itself in and not yet taken its count back when the write
        // of the elected one fails.
        *store.before_swap.borrow_mut() = Some(Box::new(|s: &UpsertSwap| {
            pollster::block_on(s.increment(&creation_claim_key("k", BUCKET), 1)).expect("count");
        }));
        store.fail_swap.set(true);
        assert!(add_name(&store, "a").is_err());
        assert_eq!(claims(&store, BUCKET), 1, "the other request's count is still there");
        pollster::block_on(store.increment(&creation_claim_key("k", BUCKET), -1)).expect("taken back");
        add_name(&store, "a").expect("the retry is elected");
        assert_eq!(names(&store), ["a"]);
    }

    #[test]
    fn a_claim_in_a_neighbouring_bucket_blocks_the_creation() {
        for neighbour in [BUCKET - 1, BUCKET + 1] {
            let store = UpsertSwap::default();
            hold_claim(&store, neighbour);
            let refused = add_name(&store, "a").expect_err("not elected while a neighbour holds a claim");
            assert!(refused.0.contains("did not finish"), "{refused}");
            assert_eq!(store.pauses.get(), CREATE_LOOKS);
            assert_eq!((claims(&store, BUCKET), claims(&store, neighbour)), (0, 1), "nothing else was claimed");
            assert!(names(&store).is_empty());
        }
    }

    #[test]
    fn a_creator_that_died_blocks_its_key_for_two_buckets_at_most() {
        let store = UpsertSwap::default();
        hold_claim(&store, BUCKET);
        assert!(add_name_at(&store, NOW, "a").is_err(), "same bucket: waits, then gives up");
        assert!(add_name_at(&store, NOW + CLAIM_BUCKET_MS, "a").is_err(), "next bucket: still blocked");
        assert_eq!(claims(&store, BUCKET + 1), 0, "a request that gave up left no claim behind");
        add_name_at(&store, NOW + 2 * CLAIM_BUCKET_MS, "a").expect("two buckets later the key is created");
        assert_eq!(names(&store), ["a"]);
    }

    trait NowOrFail {
        fn now_or_fail(self);
    }
    impl<F: std::future::Future<Output = Result<(), StoreError>>> NowOrFail for F {
        fn now_or_fail(self) {
            pollster::block_on(self).expect("store");
        }
    }
}
