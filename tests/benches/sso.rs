//! What single sign-on costs per request, natively (core) and through the `sso` Wasm component in-process
//! (harness, instances reused as Spin 4 does), on the same state: `/sso/me` with a live session (the call a
//! seller's app or proxy makes per page: cookie MAC, session, tenant record, three revocation markers) and
//! `/sso/login?tenant=…` (tenant lookup, a new single-use state, the redirect). No OneAccess call is measured.
//!
//! `cargo bench -p conformance --bench sso`
#![allow(missing_docs)] // criterion_group! generates undocumented items

use conformance::{Endpoint, WasmEndpoint, WasmOptions};
use criterion::{Criterion, criterion_group, criterion_main};
use koogallery_core::http::Inbound;
use koogallery_core::kit::{KitConfig, TenantRecord};
use koogallery_core::marketplace::{Marketplace, v1_time_stamp};
use koogallery_core::ports::{FixedClock, MemoryStore, NoBackend, OsRandom, Store};
use koogallery_core::produce::Ctx;
use koogallery_core::signing::keys::KeyRing;
use koogallery_core::sso::{self, SsoConfig, session};
use koogallery_core::wire::kit::KitSync;

const NOW: u64 = 1_700_000_000_000;
const KIT_KEY: &str = "kit-key-for-the-sso-benchmark";
const PEM: &str = include_str!("../fixtures/kit_rsa3072_private.pem");

fn variables() -> Vec<(String, String)> {
    [
        ("kit_access_keys", KIT_KEY),
        ("rsa_private_key", PEM),
        ("sso_redirect_uri", "http://127.0.0.1:3000/sso/callback"),
        ("sso_app_url", "/app"),
        ("sso_session_secret", "sso-benchmark-session-secret-0123456789"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// Tenant `t-b` (code `bench`) with application `a` and user `u`, stored by the kit syncs; and a session of `u`.
fn state() -> (MemoryStore, SsoConfig, String) {
    let secrets: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/kit_client_secret.json")).unwrap_or_default();
    let ct = secrets["ciphertexts"]["sha256"].as_str().unwrap_or_default();
    let keys = KeyRing::parse_list(KIT_KEY).unwrap_or_else(|_| panic!("key"));
    let kit_cfg =
        KitConfig::new(keys.clone(), koogallery_core::crypto::rsa_secret::ClientSecretKey::from_pem(PEM).ok());
    let mp = Marketplace::new(keys);
    let store = MemoryStore::new();
    let common = serde_json::json!({"instanceId":"i-b","tenantId":"t-b","testFlag":0,"timeStamp":v1_time_stamp(NOW)});
    let syncs = [
        (
            KitSync::TenantSync,
            serde_json::json!({"orderId":"o","tenantCode":"bench","name":"B","domainName":"idp.example.com","flag":1}),
        ),
        (KitSync::ApplicationSync, serde_json::json!({"appId":"a","clientId":"c","clientSecret":ct,"flag":1})),
        (
            KitSync::AuthSync,
            serde_json::json!({"appId":"a","currentSyncTime":"x","flag":1,
            "userList":[{"userName":"u","name":"U","orgCode":"o","role":"admin","enable":"true"}]}),
        ),
    ];
    let ctx = Ctx { store: &store, backend: &NoBackend, clock: &FixedClock(NOW), random: &OsRandom };
    for (i, (sync, fields)) in syncs.into_iter().enumerate() {
        let mut body = common.clone();
        if let (Some(b), serde_json::Value::Object(f)) = (body.as_object_mut(), fields) {
            b.extend(f);
        }
        let req = mp.kit(&format!("/produceAPI/v2/{sync}"), body.to_string().as_bytes(), NOW, &format!("{i:064X}"));
        let handled = pollster::block_on(koogallery_core::kit::handle(&req, sync, Ok(&kit_cfg), &ctx));
        assert!(String::from_utf8_lossy(&handled.response.body).contains("000000"), "{sync}");
    }
    let vars = variables();
    let cfg = SsoConfig::from_variables(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    let rec: TenantRecord = pollster::block_on(store.get("kit/live/tenant/i-b/t-b"))
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("record"));
    let new = session::NewSession {
        target: (false, "i-b", "t-b", "a"),
        user_name: "u",
        login_seq: rec.seq,
        expires_in_s: 7200,
        refresh_token: Some("rt"),
    };
    let cookie =
        pollster::block_on(session::create(&store, &OsRandom, &cfg, NOW, new)).unwrap_or_else(|e| panic!("{e}"));
    (store, cfg, format!("koogallery_sso={cookie}"))
}

fn get(path: &str, query: &str, cookie: &str) -> Inbound {
    Inbound {
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        headers: vec![("cookie".into(), cookie.into())],
        body: vec![],
    }
}

fn bench(c: &mut Criterion) {
    let (store, cfg, cookie) = state();
    let me = get("/sso/me", "", &cookie);
    let login = get("/sso/login", "tenant=bench", "");

    // The same state in the component's store.
    let ep = WasmEndpoint::new(WasmOptions { variables: variables(), now_ms: NOW, ..WasmOptions::default() })
        .unwrap_or_else(|e| panic!("{e:#}"));
    for (k, v) in store.snapshot() {
        ep.kv().seed(k, v);
    }

    let ctx = Ctx { store: &store, backend: &NoBackend, clock: &FixedClock(NOW), random: &OsRandom };
    let native = |req: &Inbound| pollster::block_on(sso::handle(req, Ok(&cfg), &ctx)).response;
    assert_eq!(native(&me).status, 200);
    assert_eq!(native(&login).status, 302);
    assert_eq!(ep.send(&me).status, 200, "{}", String::from_utf8_lossy(&ep.send(&me).body));
    assert_eq!(ep.send(&login).status, 302);

    let mut group = c.benchmark_group("sso");
    group.bench_function("native /sso/me", |b| b.iter(|| native(&me)));
    group.bench_function("wasm /sso/me", |b| b.iter(|| ep.send(&me)));
    group.bench_function("native /sso/login", |b| b.iter(|| native(&login)));
    group.bench_function("wasm /sso/login", |b| b.iter(|| ep.send(&login)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
