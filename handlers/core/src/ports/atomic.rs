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
//! claim (an atomic counter, [`creation_claim_key`]); the others wait for the key to exist ([`Store::pause`]) and
//! then update it with a real compare-and-swap.

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

/// What the caller of [`update`] decided for the value it was shown.
#[derive(Debug)]
pub enum Change<T, O> {
    /// Leave the stored value as it is and return `O`.
    Keep(O),
    /// Store `T` and return `O` once it is stored.
    Write(T, O),
}

/// Atomically replaces the JSON value under `key` with what `decide` makes of the current one (`None` when absent).
///
/// `decide` may run several times (once per conflict), each time on the freshest value; it must not have effects
/// other than its return value.
///
/// # Errors
/// [`StoreError`] when the store fails, the stored value is not valid JSON for `T` (it is never silently replaced),
/// or [`MAX_ATTEMPTS`] conflicts in a row.
pub async fn update<S, R, T, O, F>(store: &S, random: &R, key: &str, mut decide: F) -> Result<O, StoreError>
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
            match create::<S, T>(store, key, &bytes, &token).await? {
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
/// failed between its claim and its write, so the claim is released for the marketplace's retry.
pub const CREATE_LOOKS: u32 = 200;

/// The counter that elects the one request allowed to create `key`.
pub fn creation_claim_key(key: &str) -> String {
    format!("atomic/creating/{key}")
}

/// How an attempt to create a key ended.
enum Created<C> {
    /// This request's value is stored.
    Done,
    /// The key exists now (another request created it): decide again on its value.
    Exists(Option<Vec<u8>>, C),
}

/// Creates `key` with `bytes` unless another request is creating it: the first to increment the key's
/// [`creation_claim_key`] writes, the others wait until the key exists and then update it with a real
/// compare-and-swap. The claim is released once the key exists, so a key that is deleted can be created again.
async fn create<S: Store + ?Sized, T: DeserializeOwned + Tokened>(
    store: &S,
    key: &str,
    bytes: &[u8],
    token: &WriteToken,
) -> Result<Created<S::Cas>, StoreError> {
    let claim = creation_claim_key(key);
    if store.increment(&claim, 1).await? == 1 {
        let written = create_claimed::<S, T>(store, key, bytes, token).await;
        let released = store.delete(&claim).await;
        let written = written?;
        released?;
        return Ok(written);
    }
    for _ in 0..CREATE_LOOKS {
        store.pause(CREATE_PAUSE_MS).await;
        let (fresh, fresh_cas) = store.begin_swap(key).await?;
        if fresh.is_some() {
            return Ok(Created::Exists(fresh, fresh_cas));
        }
    }
    store.delete(&claim).await?;
    Err(StoreError(format!("{key}: another request claimed its creation and did not finish; try again")))
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

    #[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
    struct Counter {
        n: u32,
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
            let got = pollster::block_on(update(&store, &OsRandom, "k", add_one)).expect("update");
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
        let got = pollster::block_on(update(&store, &OsRandom, "k", |c: Option<Counter>| {
            calls += 1;
            if calls == 1 {
                // Another writer gets in between this read and the swap.
                let other = serde_json::to_vec(&Counter { n: 10, writes: vec![] }).expect("json");
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
            pollster::block_on(update(&store, &OsRandom, "k", add_one)).expect("update");
        }
        let stored: Counter = pollster::block_on(read(&store, "k")).expect("read").expect("present");
        assert_eq!((stored.n, stored.writes.len()), (40, WRITE_TOKEN_LIMIT));
        store.set("bad", b"not json").now_or_fail();
        assert!(pollster::block_on(update(&store, &OsRandom, "bad", add_one)).is_err());
    }

    /// A store with Spin 4.1 SQLite's swap: an upsert when the key was absent, a real compare-and-swap otherwise.
    /// `before_write` runs once, at this store's first `increment` or `swap` (another request getting in between a
    /// read of "absent" and the write); `on_pause` runs at every `pause` with its count.
    #[derive(Default)]
    struct UpsertSwap {
        map: std::cell::RefCell<std::collections::BTreeMap<String, Vec<u8>>>,
        before_write: std::cell::RefCell<Option<Interference>>,
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

    #[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
    struct Names {
        names: Vec<String>,
        #[serde(default)]
        writes: Vec<String>,
    }

    impl Tokened for Names {
        fn write_tokens(&self) -> &[String] {
            &self.writes
        }
        fn write_tokens_mut(&mut self) -> &mut Vec<String> {
            &mut self.writes
        }
    }

    fn add_name(store: &UpsertSwap, name: &str) -> Result<(), StoreError> {
        pollster::block_on(update(store, &OsRandom, "k", |c: Option<Names>| {
            let mut c = c.unwrap_or_default();
            c.names.push(name.to_owned());
            Change::Write(c, ())
        }))
    }

    fn names(store: &UpsertSwap) -> Vec<String> {
        let stored: Option<Names> = pollster::block_on(read(store, "k")).expect("read");
        stored.map(|n| n.names).unwrap_or_default()
    }

    #[test]
    fn two_first_writes_on_an_upserting_store_both_count() {
        let store = UpsertSwap::default();
        // Another request creates the key after this one read "absent" and before it writes.
        *store.before_write.borrow_mut() = Some(Box::new(|s: &UpsertSwap| add_name(s, "b").expect("b")));
        add_name(&store, "a").expect("a");
        assert_eq!(names(&store), ["b", "a"], "neither first write replaced the other");
        assert_eq!(pollster::block_on(store.get(&creation_claim_key("k"))).expect("get"), None, "claim released");
    }

    #[test]
    fn a_request_that_lost_the_claim_waits_for_the_creator_and_then_updates() {
        let mut store = UpsertSwap::default();
        // A creator holds the claim and writes on the third pause of the waiting request.
        pollster::block_on(store.increment(&creation_claim_key("k"), 1)).expect("claim");
        store.on_pause = Some(Box::new(|s: &UpsertSwap, n| {
            if n == 3 {
                let v = serde_json::to_vec(&Names { names: vec!["creator".into()], writes: vec![] }).expect("json");
                s.map.borrow_mut().insert("k".into(), v);
            }
        }));
        add_name(&store, "waiter").expect("waiter");
        assert_eq!(names(&store), ["creator", "waiter"]);
        assert_eq!(store.pauses.get(), 3);
    }

    #[test]
    fn a_creator_that_never_writes_fails_one_request_and_frees_the_claim() {
        let store = UpsertSwap::default();
        pollster::block_on(store.increment(&creation_claim_key("k"), 1)).expect("claim");
        let refused = add_name(&store, "a").expect_err("gave up");
        assert!(refused.0.contains("did not finish"), "{refused}");
        assert_eq!(store.pauses.get(), CREATE_LOOKS);
        add_name(&store, "a").expect("the retry creates the key");
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
