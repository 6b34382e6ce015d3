//! Compare-and-swap and counters: [`KvBackend::swap_if`] and [`KvBackend::increment`] on every backend (semantics,
//! races between tasks and between nodes), then `wasi:keyvalue/store` and `wasi:keyvalue/atomics` as the `probe`
//! guest sees them, including the Spin 4.1.0-pre0 Redis swap defect emulation.
//!
//! The Redis cases start a throw-away `redis-server` on a free port; without the binary they print `SKIPPED` and
//! pass. The guest cases need the probe: `cargo build --release --target wasm32-wasip2 -p probe`.

mod common;

use common::{builder, call, get};
use harness::kv::{KvBackend, KvError, KvOp, MemoryKv, RedisKv, SqliteKv};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------- backends ----------

/// A store under test: two handles on the same data (for Redis two clients, for SQLite two separately opened
/// files, i.e. two harness nodes or processes), how the store encodes counters, and what must live as long as they
/// do.
struct Fixture {
    node_a: Arc<dyn KvBackend>,
    node_b: Arc<dyn KvBackend>,
    /// The stored form of a counter (the encoding Spin's store of the same type uses).
    counter: fn(i64) -> Vec<u8>,
    /// Values `increment` must refuse in this encoding.
    not_counters: Vec<Vec<u8>>,
    _redis: Option<RedisServer>,
    dir: Option<PathBuf>,
}

/// Counters as Spin's Redis store (`INCRBY`) and the harness's memory store keep them.
fn decimal_text(n: i64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// Counters as Spin's SQLite store keeps them (`crates/key-value-spin/src/store.rs`).
fn little_endian(n: i64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// What Redis `INCRBY` rejects.
fn not_decimal_counters() -> Vec<Vec<u8>> {
    let mut bad: Vec<Vec<u8>> = ["", "abc", " 1", "1 ", "+1", "01", "-0", "1.5", "9223372036854775808"]
        .into_iter()
        .map(|t| t.as_bytes().to_vec())
        .collect();
    bad.push(vec![0xff, b'1']); // not UTF-8
    bad
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn memory() -> Option<Fixture> {
    let kv = MemoryKv::new();
    Some(Fixture {
        node_a: Arc::new(kv.clone()),
        node_b: Arc::new(kv),
        counter: decimal_text,
        not_counters: not_decimal_counters(),
        _redis: None,
        dir: None,
    })
}

fn sqlite() -> Option<Fixture> {
    let dir = common::temp_dir("atomics");
    let path = dir.join("sqlite_key_value.db");
    // Two opens: two connection pools on one file, as two processes would have (SQLite's file locks decide).
    let node = || -> Arc<dyn KvBackend> { Arc::new(SqliteKv::open(&path, "default").expect("open sqlite store")) };
    let not_counters = [&b""[..], b"abc", b"1", b"-2", b"1234567", b"123456789"].map(<[u8]>::to_vec).to_vec();
    Some(Fixture { node_a: node(), node_b: node(), counter: little_endian, not_counters, _redis: None, dir: Some(dir) })
}

fn redis() -> Option<Fixture> {
    let server = RedisServer::start()?;
    let node = || -> Arc<dyn KvBackend> { Arc::new(RedisKv::new(&server.url()).expect("redis url")) };
    Some(Fixture {
        node_a: node(),
        node_b: node(),
        counter: decimal_text,
        not_counters: not_decimal_counters(),
        _redis: Some(server),
        dir: None,
    })
}

/// A `redis-server` child process on a free port, killed on drop.
struct RedisServer {
    child: std::process::Child,
    port: u16,
}

impl RedisServer {
    /// Starts one and waits for `PING`; `None` (after printing `SKIPPED`) when `redis-server` is not installed.
    fn start() -> Option<Self> {
        let port = common::free_port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(std::process::Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("SKIPPED: redis-server is not on PATH (apt-get install -y redis-server)");
                return None;
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(server.child.try_wait().expect("child status").is_none(), "redis-server on {port} exited");
            let ping = ::redis::Client::open(server.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
                .and_then(|mut c| ::redis::cmd("PING").query::<String>(&mut c));
            if ping.is_ok_and(|p| p == "PONG") {
                return Some(server);
            }
            assert!(Instant::now() < deadline, "redis-server on port {port} did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test per property per backend: `memory::…`, `sqlite::…`, `redis::…`.
macro_rules! on_every_backend {
    ($($property:ident),* $(,)?) => {
        on_every_backend!(@backend memory, $($property),*);
        on_every_backend!(@backend sqlite, $($property),*);
        on_every_backend!(@backend redis, $($property),*);
    };
    (@backend $backend:ident, $($property:ident),*) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $property() {
                    if let Some(fixture) = super::$backend() {
                        super::$property(&fixture).await;
                    }
                }
            )*
        }
    };
}

on_every_backend!(
    swap_if_compares_by_value_and_absent_equals_absent,
    increment_counts_from_zero_in_the_stores_encoding,
    increment_rejects_non_counters_and_changes_nothing,
    concurrent_read_swap_loops_lose_no_update,
    concurrent_increments_lose_no_update,
);

async fn value(kv: &Arc<dyn KvBackend>, key: &str) -> Option<Vec<u8>> {
    kv.get(key).await.expect("get")
}

async fn swap_if_compares_by_value_and_absent_equals_absent(f: &Fixture) {
    let kv = &f.node_a;
    assert!(kv.swap_if("k", None, b"a").await.expect("swap"), "absent = absent: creates the key");
    assert!(!kv.swap_if("k", None, b"b").await.expect("swap"), "present ≠ absent");
    assert!(!kv.swap_if("k", Some(b"x"), b"b").await.expect("swap"), "other value");
    assert!(!kv.swap_if("k", Some(b""), b"b").await.expect("swap"), "empty is a value, not absence");
    assert_eq!(value(kv, "k").await.as_deref(), Some(&b"a"[..]), "a failed swap changes nothing");
    assert!(kv.swap_if("k", Some(b"a"), b"b").await.expect("swap"));
    assert_eq!(value(&f.node_b, "k").await.as_deref(), Some(&b"b"[..]), "the other node sees the swap");

    kv.set("empty", b"").await.expect("set");
    assert!(!kv.swap_if("empty", None, b"x").await.expect("swap"), "an empty value is present");
    assert!(kv.swap_if("empty", Some(b""), b"x").await.expect("swap"));

    let binary = [0u8, 0xff, 0, 0x80];
    kv.set("bin", &binary).await.expect("set");
    assert!(!kv.swap_if("bin", Some(&binary[..3]), b"y").await.expect("swap"), "a prefix is not equal");
    assert!(kv.swap_if("bin", Some(&binary), &[0xfe, 0]).await.expect("swap"), "bytes, not text");
    assert_eq!(value(kv, "bin").await.as_deref(), Some(&[0xfe, 0][..]));

    kv.delete("k").await.expect("delete");
    assert!(!kv.swap_if("k", Some(b"b"), b"c").await.expect("swap"), "deleted: the old value no longer matches");
    assert!(kv.swap_if("k", None, b"again").await.expect("swap"));
}

async fn increment_counts_from_zero_in_the_stores_encoding(f: &Fixture) {
    let (kv, counter) = (&f.node_a, f.counter);
    assert_eq!(kv.increment("n", 5).await.expect("increment"), 5, "a missing key starts at 0");
    assert_eq!(f.node_b.increment("n", -7).await.expect("increment"), -2);
    assert_eq!(value(kv, "n").await, Some(counter(-2)), "stored as Spin's store of this type stores it");
    assert_eq!(kv.increment("n", 0).await.expect("increment"), -2);
    kv.set("seeded", &counter(41)).await.expect("set");
    assert_eq!(kv.increment("seeded", 1).await.expect("increment"), 42);
    kv.set("low", &counter(i64::MIN)).await.expect("set");
    assert_eq!(kv.increment("low", i64::MAX).await.expect("increment"), -1);
}

async fn increment_rejects_non_counters_and_changes_nothing(f: &Fixture) {
    let kv = &f.node_a;
    for bad in &f.not_counters {
        kv.set("c", bad).await.expect("set");
        assert!(kv.increment("c", 1).await.is_err(), "{bad:?} is not a counter");
        assert_eq!(value(kv, "c").await.as_ref(), Some(bad), "{bad:?} unchanged");
    }
    kv.set("max", &(f.counter)(i64::MAX)).await.expect("set");
    assert!(kv.increment("max", 1).await.is_err(), "overflow");
    assert_eq!(value(kv, "max").await, Some((f.counter)(i64::MAX)), "overflow changes nothing");
}

/// Tasks (half on each node) each add 1 to one counter with read → `swap_if` retry loops. All first read the
/// absent key before any swaps, so every first swap but one must fail: the loops demonstrably overlap.
async fn concurrent_read_swap_loops_lose_no_update(f: &Fixture) {
    const TASKS: usize = 16;
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TASKS {
        let kv = Arc::clone(if i % 2 == 0 { &f.node_a } else { &f.node_b });
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            let mut conflicts = 0usize;
            let mut seen = kv.get("counter").await.expect("read");
            barrier.wait().await;
            loop {
                let n: u64 = seen
                    .as_deref()
                    .map_or(0, |v| std::str::from_utf8(v).expect("utf-8").parse().expect("a number written by a task"));
                let next = (n + 1).to_string();
                if kv.swap_if("counter", seen.as_deref(), next.as_bytes()).await.expect("swap") {
                    return conflicts;
                }
                conflicts += 1;
                tokio::task::yield_now().await;
                seen = kv.get("counter").await.expect("re-read");
            }
        });
    }
    let conflicts: usize = tasks.join_all().await.into_iter().sum();
    assert_eq!(value(&f.node_a, "counter").await, Some(TASKS.to_string().into_bytes()), "no update lost");
    assert!(conflicts >= TASKS - 1, "the loops overlapped: {conflicts} conflicts");
    println!("{TASKS} read-swap loops: {conflicts} conflicts");
}

/// Tasks (half on each node) increment one counter; every answer is distinct and the total is exact.
async fn concurrent_increments_lose_no_update(f: &Fixture) {
    const TASKS: i64 = 8;
    const EACH: i64 = 25;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TASKS {
        let kv = Arc::clone(if i % 2 == 0 { &f.node_a } else { &f.node_b });
        tasks.spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..EACH {
                answers.push(kv.increment("hits", 1).await.expect("increment"));
                tokio::task::yield_now().await;
            }
            answers
        });
    }
    let mut answers: Vec<i64> = tasks.join_all().await.into_iter().flatten().collect();
    answers.sort_unstable();
    assert_eq!(answers, (1..=TASKS * EACH).collect::<Vec<_>>(), "each increment saw its own value");
    assert_eq!(value(&f.node_b, "hits").await, Some((f.counter)(TASKS * EACH)));
}

#[tokio::test]
async fn memory_store_logs_swap_and_increment_and_a_failed_one_changes_nothing() {
    assert_eq!((KvOp::Swap.to_string(), KvOp::Increment.to_string()), ("swap".into(), "increment".into()));
    let kv = MemoryKv::new();
    kv.seed("k", "a");
    kv.fail_nth(1, KvOp::Swap);
    assert!(matches!(kv.swap_if("k", Some(b"a"), b"b").await, Err(KvError::Injected { op: KvOp::Swap })));
    assert_eq!(kv.text("k").as_deref(), Some("a"), "a failed swap changes nothing");
    assert!(kv.swap_if("k", Some(b"a"), b"b").await.expect("rule fired once"));

    kv.fail_nth(2, KvOp::Increment);
    assert_eq!(kv.increment("n", 1).await.expect("1st increment"), 1);
    assert!(matches!(kv.increment("n", 1).await, Err(KvError::Injected { op: KvOp::Increment })));
    assert_eq!(kv.text("n").as_deref(), Some("1"), "a failed increment changes nothing");

    let log: Vec<(KvOp, Option<String>, bool)> = kv.calls().into_iter().map(|c| (c.op, c.key, c.failed)).collect();
    let k = || Some("k".to_owned());
    let n = || Some("n".to_owned());
    assert_eq!(
        log,
        [
            (KvOp::Swap, k(), true),
            (KvOp::Swap, k(), false),
            (KvOp::Increment, n(), false),
            (KvOp::Increment, n(), true),
        ]
    );
}

// ---------- Spin's SQLite file ----------
//
// Checked with plain SQL on the file, not through `SqliteKv`: the layout is Spin's
// (`crates/key-value-spin/src/store.rs`): table `spin_key_value(store, key, value)`, values as BLOBs, counters as
// 8 little-endian bytes.

/// `(store, key, SQLite type of value, value)` of every row, in order.
fn rows(path: &std::path::Path) -> Vec<(String, String, String, Vec<u8>)> {
    let db = rusqlite::Connection::open(path).expect("open with rusqlite");
    let mut query =
        db.prepare("SELECT store, key, typeof(value), value FROM spin_key_value ORDER BY store, key").expect("query");
    let rows = query.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).expect("rows");
    rows.collect::<Result<_, _>>().expect("read rows")
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_store_writes_the_rows_spin_reads() {
    let dir = common::temp_dir("spin-rows");
    let path = dir.join("sqlite_key_value.db");
    let kv = SqliteKv::open(&path, "default").expect("open");
    kv.set("greeting", b"hello").await.expect("set");
    assert_eq!(kv.increment("hits", 3).await.expect("increment"), 3);
    assert_eq!(kv.increment("hits", -1).await.expect("increment"), 2);
    kv.store("other").set("greeting", b"elsewhere").await.expect("set on another label");
    assert!(kv.swap_if("swapped", None, b"first").await.expect("swap"));

    let blob = |v: &[u8]| ("blob".to_owned(), v.to_vec());
    let row = |store: &str, key: &str, (ty, v): (String, Vec<u8>)| (store.to_owned(), key.to_owned(), ty, v);
    assert_eq!(
        rows(&path),
        [
            row("default", "greeting", blob(b"hello")),
            row("default", "hits", blob(&2i64.to_le_bytes())),
            row("default", "swapped", blob(b"first")),
            row("other", "greeting", blob(b"elsewhere")),
        ]
    );
    let db = rusqlite::Connection::open(&path).expect("open");
    let columns: Vec<(String, String, bool, i64)> = db
        .prepare("PRAGMA table_info(spin_key_value)")
        .expect("table_info")
        .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(5)?)))
        .expect("columns")
        .collect::<Result<_, _>>()
        .expect("read columns");
    let column = |name: &str, ty: &str, pk| (name.to_owned(), ty.to_owned(), true, pk);
    assert_eq!(columns, [column("store", "TEXT", 1), column("key", "TEXT", 2), column("value", "BLOB", 0)]);
    let journal: String = db.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("journal mode");
    assert_eq!(journal, "delete", "Spin's default rollback journal, not WAL");
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_store_reads_what_spin_wrote_and_waits_for_another_processs_write() {
    let dir = common::temp_dir("spin-rows");
    let path = dir.join("sqlite_key_value.db");
    let db = rusqlite::Connection::open(&path).expect("create with rusqlite");
    db.execute_batch(
        "CREATE TABLE spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                                      PRIMARY KEY (store, key));
         INSERT INTO spin_key_value VALUES ('default', 'k', X'00ff'), ('other', 'k', X'01'),
                                           ('default', 'n', X'2900000000000000');",
    )
    .expect("rows as Spin writes them");

    let kv = SqliteKv::open(&path, "default").expect("open");
    assert_eq!(kv.get("k").await.expect("get"), Some(vec![0, 0xff]));
    let mut keys = kv.get_keys().await.expect("keys");
    keys.sort();
    assert_eq!(keys, ["k", "n"], "only this label's keys");
    assert_eq!(kv.increment("n", 1).await.expect("continues Spin's counter"), 42);

    // Another writer (a `spin up`) holds the write lock for a while: the increment waits for it, then goes through.
    db.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let started = Instant::now();
    let increment = tokio::spawn({
        let kv = kv.clone();
        async move { kv.increment("n", 1).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!increment.is_finished(), "waits for the other writer");
    let elsewhere = SqliteKv::open(&path, "default").expect("open again, as another process");
    assert_eq!(elsewhere.get("k").await.expect("other processes read meanwhile"), Some(vec![0, 0xff]));
    db.execute_batch("COMMIT").expect("unlock");
    assert_eq!(increment.await.expect("task").expect("increment after the lock"), 43);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let n: Vec<u8> = db
        .query_row("SELECT value FROM spin_key_value WHERE store = 'default' AND key = 'n'", [], |r| r.get(0))
        .expect("n");
    assert_eq!(n, 43i64.to_le_bytes());
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

// ---------- the guest's view (probe) ----------

#[tokio::test(flavor = "multi_thread")]
async fn wasi_keyvalue_bucket_is_the_spin_key_value_store_of_the_same_label() {
    let kv = MemoryKv::new();
    let app = builder().kv(kv.clone()).build().await.expect("app");
    assert_eq!(call(&app, "POST", "/probe/wkv/set?key=a", "from wasi").await, (200, "ok".into()));
    assert_eq!(get(&app, "/probe/kv/get?key=a").await, (200, "from wasi".into()), "spin:key-value sees it");
    assert_eq!(call(&app, "POST", "/probe/kv/set?key=b", "from spin").await, (200, "ok".into()));
    assert_eq!(get(&app, "/probe/wkv/get?key=b").await, (200, "from spin".into()));
    assert_eq!(get(&app, "/probe/wkv/get?key=c").await, (404, "missing".into()));
    assert_eq!(get(&app, "/probe/wkv/keys").await, (200, "a\nb\ncursor=none".into()), "all keys, no cursor");
    assert_eq!(kv.text("a").as_deref(), Some("from wasi"));
}

#[tokio::test(flavor = "multi_thread")]
async fn wasi_keyvalue_open_checks_the_same_labels_as_spin_key_value() {
    let app = common::app().await;
    assert_eq!(get(&app, "/probe/wkv/open?label=default").await, (200, "opened".into()));
    assert_eq!(get(&app, "/probe/wkv/open?label=secret").await, (500, "kv error: access-denied".into()));
    assert_eq!(get(&app, "/probe/deep/wkv/open?label=extra").await, (500, "kv error: access-denied".into()));
    assert_eq!(get(&app, "/probe/wkv/open?label=extra").await, (500, "kv error: no-such-store".into()));
    let app = builder().kv_label("extra", MemoryKv::new()).build().await.expect("app");
    assert_eq!(get(&app, "/probe/wkv/open?label=extra").await, (200, "opened".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn wasi_increment_counts_and_reports_a_non_counter_as_other() {
    let kv = MemoryKv::new();
    let app = builder().kv(kv.clone()).build().await.expect("app");
    assert_eq!(get(&app, "/probe/wkv/increment?key=n&delta=3").await, (200, "3".into()));
    assert_eq!(get(&app, "/probe/wkv/increment?key=n&delta=-5").await, (200, "-2".into()));
    assert_eq!(kv.text("n").as_deref(), Some("-2"));
    kv.seed("word", "abc");
    assert_eq!(
        get(&app, "/probe/wkv/increment?key=word&delta=1").await,
        (500, "kv error: other: value is not an integer or out of range".into())
    );
    kv.fail_nth(1, KvOp::Increment);
    assert_eq!(
        get(&app, "/probe/wkv/increment?key=n&delta=1").await,
        (500, "kv error: other: injected failure on increment".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wasi_swap_writes_when_unchanged_and_a_lost_race_is_cas_failed_with_the_fresh_value() {
    let kv = MemoryKv::new();
    let app = builder().kv(kv.clone()).build().await.expect("app");
    assert_eq!(call(&app, "POST", "/probe/wkv/swap?key=s", "one").await, (200, "swapped was=none".into()));
    assert_eq!(call(&app, "POST", "/probe/wkv/swap?key=s", "two").await, (200, "swapped was=one".into()));
    assert_eq!(
        call(&app, "POST", "/probe/wkv/swap?key=s&interfere=other", "three").await,
        (409, "cas-failed current=other".into())
    );
    assert_eq!(kv.text("s").as_deref(), Some("other"), "the lost swap wrote nothing");

    kv.fail_nth(1, KvOp::Swap);
    assert_eq!(
        call(&app, "POST", "/probe/wkv/swap?key=s", "four").await,
        (500, "kv error: other: injected failure on swap".into())
    );
    assert_eq!(kv.text("s").as_deref(), Some("other"));
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_redis_swap_defect_answers_cas_failed_after_writing() {
    let kv = MemoryKv::new();
    let app = builder().kv(kv.clone()).spin_redis_swap_defect(true).build().await.expect("app");
    // The write goes through, the answer says it did not, and the fresh handle shows the written value.
    assert_eq!(call(&app, "POST", "/probe/wkv/swap?key=s", "one").await, (409, "cas-failed current=one".into()));
    assert_eq!(kv.text("s").as_deref(), Some("one"));
    // A real conflict still writes nothing.
    assert_eq!(
        call(&app, "POST", "/probe/wkv/swap?key=s&interfere=other", "two").await,
        (409, "cas-failed current=other".into())
    );
    assert_eq!(kv.text("s").as_deref(), Some("other"));
    // Other operations are unaffected.
    assert_eq!(get(&app, "/probe/wkv/increment?key=n&delta=1").await, (200, "1".into()));
}
