//! The produce and kit cassettes replayed over HTTP on every runner and store, with the clock pinned at each step's
//! recorded time, and the differential: the same requests through `harness up` and `spin up` must give the same
//! status, framing, content type, `Body-Sign` and body bytes, and leave the same key-value state.

use std::collections::BTreeMap;

use bytes::Bytes;
use harness::cassette::{self, Cassette, StepResult};
use koogallery_core::SecretKey;
use koogallery_core::crypto::aes_cred::{AesBits, CredentialCipher};
use koogallery_core::marketplace::Marketplace;
use koogallery_core::ports::system_now_ms;
use koogallery_core::signing::body_sign;
use runners::{RedisServer, Runner, RunnerKind, RunnerOptions, StateDump, Store, workspace_root};
use serde_json::Value;

use super::{AK, exclusive, runner_kinds};

/// One cassette's run on one runner: every step's result and the state left behind.
struct Run {
    cassette: String,
    steps: Vec<StepResult>,
    state: StateDump,
}

async fn replay_all(kind: RunnerKind, store: &Store, redis: Option<&RedisServer>) -> Vec<Run> {
    let mut runs = Vec::new();
    for interface in ["produce", "kit"] {
        let dir = workspace_root().join("tests/cassettes").join(interface);
        let cassettes = cassette::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        for c in &cassettes {
            runs.push(replay_one(kind, store, redis, c).await);
        }
    }
    runs
}

async fn replay_one(kind: RunnerKind, store: &Store, redis: Option<&RedisServer>, c: &Cassette) -> Run {
    assert!(c.kv.is_empty(), "{}: seeding stores needs the in-process runner", c.title());
    if let Some(r) = redis {
        r.flush().unwrap_or_else(|e| panic!("flush Redis: {e:#}"));
    }
    let opts = RunnerOptions {
        variables: c.variables.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        store: store.clone(),
        // The time the first step runs at, so the runner's start-up check sees the pinned clock take effect.
        clock_ms: Some(c.clock_ms.or_else(|| c.steps.first().and_then(|s| s.clock_ms)).unwrap_or_else(system_now_ms)),
        manifest: None,
        state_dir: None,
        port: None,
    };
    let mut runner =
        Runner::start(kind, opts).await.unwrap_or_else(|e| panic!("{} on {}: {e:#}", kind.name(), store.name()));
    let steps = cassette::run_on(c, &mut runner).await;
    for step in &steps {
        if let Some(r) = &step.response {
            let length = r.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
            assert!(
                r.headers().get(http::header::TRANSFER_ENCODING).is_none()
                    && length == Some(r.body().len().to_string().as_str()),
                "{} on {}, {} / {}: every answer carries its exact content-length and is not chunked: {:?}",
                kind.name(),
                store.name(),
                c.title(),
                step.step,
                r.headers()
            );
        }
    }
    let failed: Vec<&StepResult> = steps.iter().filter(|s| !s.passed).collect();
    assert!(
        failed.is_empty(),
        "{} on {}, cassette {}:\n{}\nrunner log:\n{}",
        kind.name(),
        store.name(),
        c.title(),
        cassette::table(&steps),
        runner.log_tail()
    );
    let state = runner.stop().await.unwrap_or_else(|e| panic!("read the state: {e:#}"));
    Run { cassette: c.title(), steps, state }
}

/// What must be identical between the runners in one answer: status and framing. `Body-Sign` joins them when the
/// bodies are byte-identical.
fn compared_headers(r: &http::Response<Bytes>, with_body_sign: bool) -> Vec<(String, String)> {
    let mut names = vec!["content-type", "content-length", "transfer-encoding"];
    if with_body_sign {
        names.push("body-sign");
    }
    let mut seen: Vec<(String, String)> = names
        .iter()
        .map(|h| {
            let v = r.headers().get(*h).map_or("<absent>".to_owned(), |v| String::from_utf8_lossy(v.as_bytes()).into());
            ((*h).to_owned(), v)
        })
        .collect();
    seen.push(("status".into(), r.status().as_str().to_owned()));
    seen
}

/// The body with what is random by design made comparable: encrypted credentials (V1 `appInfo.userName`/`password`,
/// fresh IV each time) replaced by their plaintext, decrypted with the test key, and the built-in password (drawn
/// once per instance, so each runner has its own) blanked.
fn comparable_body(body: &[u8]) -> Option<Value> {
    let mut json: Value = serde_json::from_slice(body).ok()?;
    let bits = json.get("encryptType").and_then(Value::as_str).and_then(AesBits::from_encrypt_type);
    let cipher = bits.map(|bits| CredentialCipher::new(&SecretKey::new(AK), bits));
    let comparable_app_info = |app: &mut Value| {
        if let Some(cipher) = &cipher {
            for field in ["userName", "password"] {
                if let Some(Value::String(text)) = app.get_mut(field) {
                    *text = format!("plain:{}", cipher.decrypt(text).unwrap_or_else(|e| format!("<{e}>")));
                }
            }
        }
        if let Some(password) = app.get_mut("password") {
            *password = Value::String("(random)".into());
        }
    };
    if let Some(app) = json.get_mut("appInfo") {
        comparable_app_info(app);
    }
    if let Some(Value::Array(infos)) = json.get_mut("info") {
        infos.iter_mut().filter_map(|i| i.get_mut("appInfo")).for_each(comparable_app_info);
    }
    Some(json)
}

/// A stored value without what is random by design: the write tokens of compare-and-swap updates and the built-in
/// password.
fn comparable_value(bytes: &[u8]) -> Vec<u8> {
    let Ok(mut json) = serde_json::from_slice::<Value>(bytes) else { return bytes.to_vec() };
    if let Some(obj) = json.as_object_mut() {
        obj.remove("writes");
    }
    if let Some(password) = json.pointer_mut("/appInfo/password") {
        *password = Value::String("(random)".into());
    }
    serde_json::to_vec(&json).unwrap_or_default()
}

/// Whether the answer's `Body-Sign` verifies over its own body with the test key.
fn body_sign_verifies(r: &http::Response<Bytes>) -> bool {
    let Some(keys) = Marketplace::from_key(AK).map(|m| m.keys().clone()) else { return false };
    r.headers()
        .get(body_sign::HEADER_NAME)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| body_sign::verify(h, r.body(), &keys).is_ok())
}

/// How two answers to the same request differ, if they do.
fn difference(harness: &http::Response<Bytes>, spin: &http::Response<Bytes>) -> Option<String> {
    let identical_bodies = harness.body() == spin.body();
    let (h, s) = (compared_headers(harness, identical_bodies), compared_headers(spin, identical_bodies));
    if h != s {
        return Some(format!("harness {h:?} but spin {s:?}"));
    }
    if identical_bodies {
        return None;
    }
    match (comparable_body(harness.body()), comparable_body(spin.body())) {
        (Some(a), Some(b)) if a == b => {
            (!body_sign_verifies(harness) || !body_sign_verifies(spin)).then(|| "Body-Sign does not verify".to_owned())
        }
        _ => Some(format!(
            "body {:?} vs {:?}",
            String::from_utf8_lossy(harness.body()),
            String::from_utf8_lossy(spin.body())
        )),
    }
}

/// The state without the replay-cache keys, whose names are the requests' fresh nonces (meant to differ); their
/// number and values (the pinned request times) must still agree. Values are compared without what is random by
/// design ([`comparable_value`]).
fn comparable(state: &StateDump) -> (BTreeMap<String, Vec<u8>>, Vec<Vec<u8>>) {
    let mut nonces = Vec::new();
    let mut rest = BTreeMap::new();
    for (k, v) in &state.0 {
        if k.starts_with("nonce/") {
            // Counters (V2 entries) in the same bytes: both runners encode them as the store's Spin type does.
            nonces.push(comparable_value(v));
        } else {
            rest.insert(k.clone(), comparable_value(v));
        }
    }
    nonces.sort();
    (rest, nonces)
}

/// Compares two runs request by request; returns how many requests were compared.
fn compare(store: &Store, harness: &[Run], spin: &[Run]) -> usize {
    assert_eq!(harness.len(), spin.len());
    let mut compared = 0;
    let mut differences = Vec::new();
    for (h, s) in harness.iter().zip(spin) {
        assert_eq!(h.steps.len(), s.steps.len(), "{}", h.cassette);
        for (hs, ss) in h.steps.iter().zip(&s.steps) {
            let (Some(hr), Some(sr)) = (&hs.response, &ss.response) else {
                differences.push(format!("{} / {}: no answer from one runner", h.cassette, hs.step));
                continue;
            };
            compared += 1;
            if let Some(d) = difference(hr, sr) {
                differences.push(format!("{} / {}: {d}", h.cassette, hs.step));
            }
        }
        let (h_state, h_nonces) = comparable(&h.state);
        let (s_state, s_nonces) = comparable(&s.state);
        assert!(!h_state.is_empty(), "{}: every cassette creates an instance, so state was written", h.cassette);
        if h_state != s_state {
            let keys = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
            let differing: Vec<&String> =
                h_state.iter().filter(|(k, v)| s_state.get(*k) != Some(*v)).map(|(k, _)| k).collect();
            differences.push(format!(
                "{}: state differs on {}: harness keys {:?}, spin keys {:?}, differing {:?}",
                h.cassette,
                store.name(),
                keys(&h_state),
                keys(&s_state),
                differing
            ));
        }
        if h_nonces != s_nonces {
            differences.push(format!("{}: {} vs {} replay-cache entries", h.cassette, h_nonces.len(), s_nonces.len()));
        }
    }
    assert!(differences.is_empty(), "harness up and spin up differ on {}:\n{}", store.name(), differences.join("\n"));
    compared
}

async fn replay_and_compare(store: Store, redis: Option<&RedisServer>) {
    let kinds = runner_kinds("cassette replay");
    let mut runs = Vec::new();
    for kind in &kinds {
        runs.push(replay_all(*kind, &store, redis).await);
    }
    let steps: usize = runs[0].iter().map(|r| r.steps.len()).sum();
    eprintln!("cassettes on {}: {steps} steps pass on {}", store.name(), kinds.len());
    if let [harness, spin] = runs.as_slice() {
        let compared = compare(&store, harness, spin);
        assert_eq!(compared, steps, "every request compared");
        eprintln!(
            "differential on {}: {compared} requests agree on harness up and spin up (status, framing, Body-Sign, body), and the same state",
            store.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cassettes_pass_and_agree_on_each_runners_default_store() {
    let _one = exclusive().await;
    replay_and_compare(Store::RunnerDefault, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cassettes_pass_and_agree_on_redis() {
    let _one = exclusive().await;
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e:#}"));
    replay_and_compare(Store::Redis(redis.url()), Some(&redis)).await;
}
