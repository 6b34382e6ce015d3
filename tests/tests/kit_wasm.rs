//! The kit syncs through the Wasm components, model-based: random interleavings of duplicated syncs on every route
//! end in the stored record a reference model (written here from the behaviour contract, not from the code)
//! predicts; any sequence of organisation syncs keeps the tree free of dangling and looping parents; forged, stale,
//! wrong-key and replayed syncs change nothing; in forward mode every effective change yields exactly one event.
//!
//! Requests are signed as the marketplace signs them (`Marketplace::kit`, `Marketplace::kit_v1`) at a virtual
//! clock that moves one second per step; the store is read back through the key layout of the contract.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use conformance::{Endpoint, WasmEndpoint, WasmOptions, code, workspace_root};
use harness::OutboundHandler;
use koogallery_core::http::{Inbound, Outbound};
use koogallery_core::marketplace::{Marketplace, v1_time_stamp};
use koogallery_core::signing::keys::SecretKey;
use koogallery_core::webhook::WebhookSigner;
use proptest::prelude::*;
use serde_json::{Value, json};
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;

/// The kit key (test-vectors `AK2`); the basic-interface key stays `AK` (set by [`WasmEndpoint`]).
const KK: &str = "71d8a0d7-508d-4017-8563-60f9099eea71";
const START_MS: u64 = 1_700_000_000_000;
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// ------------------------------------------------------------------------------------------------ requests

/// Which of a sync's routes a request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `/produceAPI/v2/<name>`, x-sign.
    V2,
    /// `/produce/produceAPI/v2/<name>`, x-sign.
    V2UnderProduce,
    /// `/produceAPI/<name>`, authToken.
    V1,
    /// `/produce/produceAPI/<name>`, authToken.
    V1UnderProduce,
    /// The production URL `/produce`, x-sign, the sync inferred from the body.
    Production,
}

impl Route {
    fn path(self, sync: &str) -> String {
        match self {
            Route::V2 => format!("/produceAPI/v2/{sync}"),
            Route::V2UnderProduce => format!("/produce/produceAPI/v2/{sync}"),
            Route::V1 => format!("/produceAPI/{sync}"),
            Route::V1UnderProduce => format!("/produce/produceAPI/{sync}"),
            Route::Production => "/produce".to_owned(),
        }
    }

    fn is_v1(self) -> bool {
        matches!(self, Route::V1 | Route::V1UnderProduce)
    }
}

fn route() -> impl Strategy<Value = Route> {
    prop_oneof![
        Just(Route::V2),
        Just(Route::V2UnderProduce),
        Just(Route::V1),
        Just(Route::V1UnderProduce),
        Just(Route::Production)
    ]
}

/// The body `timeStamp` for `ms`: `yyyyMMddHHmmssSSS` in UTC+8.
fn time_stamp(ms: u64) -> String {
    v1_time_stamp(ms + 8 * 3_600_000)
}

/// The key of a tenant's record, per the contract's store layout.
fn record_key(test: bool, instance: &str, tenant: &str) -> String {
    let seg = |s: &str| s.replace('%', "%25").replace('/', "%2F");
    format!("kit/{}/tenant/{}/{}", if test { "test" } else { "live" }, seg(instance), seg(tenant))
}

fn fixtures() -> Value {
    let path = workspace_root().join("tests/fixtures/kit_client_secret.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
}

/// Two ciphertexts of the fixture secret that decrypt under the fixture key: different bytes of the same secret, so
/// syncing the other one is a repeat, not a change.
fn ciphertexts() -> [String; 2] {
    let f = fixtures();
    let get = |name: &str| f["ciphertexts"][name].as_str().unwrap_or_else(|| panic!("{name}")).to_owned();
    [get("sha256"), get("sha256-mgf1-sha1")]
}

/// The digest a record keeps of the fixture's decrypted secret: SHA-256 over a fixed label, a NUL, the SHA-256 of the
/// fixture public key's DER (the body of its `BEGIN PUBLIC KEY` PEM) and the secret.
fn fixture_secret_digest() -> String {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    let plaintext = fixtures()["plaintext"].as_str().unwrap_or_else(|| panic!("plaintext")).to_owned();
    let pem_path = workspace_root().join("tests/fixtures/kit_rsa3072_public.pem");
    let pem = std::fs::read_to_string(&pem_path).unwrap_or_else(|e| panic!("{}: {e}", pem_path.display()));
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_else(|e| panic!("public key PEM: {e}"));
    let mut input = b"koogallery-edge kit client secret\0".to_vec();
    input.extend_from_slice(&Sha256::digest(&der));
    input.extend_from_slice(plaintext.as_bytes());
    hex::encode(Sha256::digest(&input))
}

/// The components with the kit key and the fixture RSA key, plus `extra` variables.
struct Kit {
    ep: WasmEndpoint,
    mp: Marketplace,
    nonce: Cell<u64>,
}

impl Kit {
    fn new(extra: Vec<(String, String)>, outbound: Option<Arc<dyn OutboundHandler>>) -> Self {
        Self::with_key("tests/fixtures/kit_rsa3072_private.pem", None, extra, outbound)
    }

    /// With the RSA private key at `pem` (workspace-relative) and, when given, on `store` (shared with another
    /// [`Kit`], as a restarted app with a rotated key would be).
    fn with_key(
        pem: &str,
        store: Option<Arc<dyn harness::KvBackend>>,
        extra: Vec<(String, String)>,
        outbound: Option<Arc<dyn OutboundHandler>>,
    ) -> Self {
        let pem_path = workspace_root().join(pem);
        let pem = std::fs::read_to_string(&pem_path).unwrap_or_else(|e| panic!("{}: {e}", pem_path.display()));
        let mut variables = vec![("kit_access_keys".to_owned(), KK.to_owned()), ("rsa_private_key".to_owned(), pem)];
        variables.extend(extra);
        let opts = WasmOptions { variables, now_ms: START_MS, outbound, store, ..WasmOptions::default() };
        let ep = WasmEndpoint::new(opts).unwrap_or_else(|e| {
            panic!("{e:#} (build the kit components: cargo build --profile wasm --target wasm32-wasip2 -p produce -p tenant-sync -p application-sync -p auth-sync -p single-org-sync -p all-org-sync)")
        });
        let mp = Marketplace::from_key(KK).unwrap_or_else(|| unreachable!("non-empty key"));
        Self { ep, mp, nonce: Cell::new(0) }
    }

    fn fresh_nonce(&self) -> String {
        self.nonce.set(self.nonce.get() + 1);
        format!("{:064X}", self.nonce.get())
    }

    /// `body` for `sync` signed as the marketplace signs it on `route`, at the current clock.
    fn request(&self, route: Route, sync: &str, body: &Value) -> Inbound {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let path = route.path(sync);
        if route.is_v1() {
            self.mp.kit_v1(&path, &bytes)
        } else {
            self.mp.kit(&path, &bytes, self.ep.now(), &self.fresh_nonce())
        }
    }

    /// Moves the clock one second on (every step does, so V1 requests never repeat byte for byte).
    fn tick(&self) {
        self.ep.set_now(self.ep.now() + 1000);
    }

    fn stored(&self, key: &str) -> Value {
        self.ep
            .value(key)
            .map(|b| serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{key} is not JSON: {e}")))
            .unwrap_or(Value::Null)
    }

    /// Every kit key and its bytes.
    fn kit_state(&self) -> BTreeMap<String, Vec<u8>> {
        self.ep
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("kit/"))
            .map(|k| {
                let v = self.ep.value(&k).unwrap_or_default();
                (k, v)
            })
            .collect()
    }

    /// The tenant-record keys in the store.
    fn record_keys(&self) -> BTreeSet<String> {
        self.ep
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("kit/live/tenant/") || k.starts_with("kit/test/tenant/"))
            .collect()
    }
}

fn describe(out: &Outbound) -> String {
    format!("HTTP {} {}", out.status, String::from_utf8_lossy(&out.body))
}

// ------------------------------------------------------------------------------------------------ the model

/// Which record: namespace, instance (`""` is seller credential setup; `/` checks key escaping), tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    test: bool,
    instance: u8,
    tenant: u8,
}

const INSTANCES: [&str; 2] = ["i/1", ""];
const TENANTS: [&str; 2] = ["t-1", "t-2"];
const APPS: [&str; 2] = ["app-1", "app-2"];
const USERS: [&str; 3] = ["zhangsan", "lisi", "wangwu"];

impl Rec {
    fn instance_id(self) -> &'static str {
        INSTANCES[usize::from(self.instance)]
    }
    fn tenant_id(self) -> &'static str {
        TENANTS[usize::from(self.tenant)]
    }
    fn key(self) -> String {
        record_key(self.test, self.instance_id(), self.tenant_id())
    }
    fn all() -> Vec<Rec> {
        let mut out = Vec::new();
        for test in [false, true] {
            for instance in 0..2 {
                for tenant in 0..2 {
                    out.push(Rec { test, instance, tenant });
                }
            }
        }
        out
    }
}

fn rec() -> impl Strategy<Value = Rec> {
    (any::<bool>(), 0..2u8, 0..2u8).prop_map(|(test, instance, tenant)| Rec { test, instance, tenant })
}

/// A tenant as `tenantSync` variant `v` describes it, and as the contract says it is stored.
fn tenant_fields(r: Rec, v: u8) -> (Value, Value) {
    let (name, domain, url) = match v {
        0 => ("ACME 有限公司", "https://acme.tenantaccount.com", "https://acme.tenantaccount.com"),
        1 => ("ACME", "acme.tenantaccount.com/", "https://acme.tenantaccount.com"),
        _ => ("ACME (renamed)", "http://acme2.example.com", "http://acme2.example.com"),
    };
    let code = format!("code-{}", r.tenant_id());
    let order = if r.instance_id().is_empty() { "" } else { "CS-ORDER-1" };
    let sent = json!({"tenantCode": code, "name": name, "domainName": domain, "orderId": order});
    let stored = json!({"tenantCode": code, "name": name, "domainName": domain, "domainUrl": url, "orderId": order});
    (sent, stored)
}

/// User `u` as variant `v`: `(fields sent, fields stored apart from authorised)`.
fn user_fields(u: u8, v: u8) -> Value {
    let name = USERS[usize::from(u)];
    match v {
        0 => {
            json!({"userName": name, "name": format!("User {name}"), "orgCode": "10000", "role": "user", "enable": true})
        }
        1 => {
            json!({"userName": name, "name": format!("用户 {name}"), "orgCode": "10001", "role": "admin", "enable": false,
            "position": "工程师", "employeeCode": format!("E-{u}"), "employeeType": 2, "mobile": "13800000000",
            "email": format!("{name}@example.com"), "workPlace": "深圳", "entryDate": "2023-1-5"})
        }
        _ => {
            json!({"userName": name, "name": format!("User {name} v2"), "orgCode": "10002", "role": "user", "enable": true,
            "position": "经理"})
        }
    }
}

/// A user entry of `userList` as the marketplace sends it: `enable` as a string; on V1 the three extension
/// fields inside `extension`.
fn user_wire(u: u8, v: u8, v1: bool) -> Value {
    let mut fields = user_fields(u, v);
    let Some(map) = fields.as_object_mut() else { unreachable!() };
    let enable = map.get("enable").and_then(Value::as_bool).unwrap_or(true);
    map.insert("enable".into(), json!(if enable { "true" } else { "false" }));
    if v1 {
        let mut extension = serde_json::Map::new();
        for f in ["entryDate", "employeeType", "workPlace"] {
            if let Some(x) = map.remove(f) {
                extension.insert(f.into(), x);
            }
        }
        if !extension.is_empty() {
            map.insert("extension".into(), Value::Object(extension));
        }
    }
    fields
}

fn user_stored(u: u8, v: u8, authorised: bool) -> Value {
    let mut fields = user_fields(u, v);
    if let Some(map) = fields.as_object_mut() {
        map.insert("authorised".into(), json!(authorised));
    }
    fields
}

/// The model of one record: what the contract says the tenant, apps and users are.
#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    tenant: Option<u8>,
    apps: BTreeMap<u8, u8>,
    /// app → user → (variant, authorised)
    users: BTreeMap<u8, BTreeMap<u8, (u8, bool)>>,
}

/// One sync of the tenant/application/auth family.
#[derive(Debug, Clone)]
enum Op {
    Tenant { r: Rec, flag: u8, v: u8 },
    App { r: Rec, app: u8, flag: u8, v: u8 },
    Auth { r: Rec, app: u8, flag: u8, users: Vec<(u8, u8)> },
}

impl Op {
    fn rec(&self) -> Rec {
        match self {
            Op::Tenant { r, .. } | Op::App { r, .. } | Op::Auth { r, .. } => *r,
        }
    }

    fn sync(&self) -> &'static str {
        match self {
            Op::Tenant { .. } => "tenantSync",
            Op::App { .. } => "applicationSync",
            Op::Auth { .. } => "authSync",
        }
    }

    /// The body, built against the model (a revoke names the user as stored, so the request is one the
    /// marketplace could send).
    fn body(&self, model: &Model, route: Route, now: u64, secrets: &[String; 2]) -> Value {
        let r = self.rec();
        let ts = time_stamp(now);
        let mut body = json!({"instanceId": r.instance_id()});
        let Some(map) = body.as_object_mut() else { unreachable!() };
        match self {
            Op::Tenant { flag, v, .. } => {
                let (sent, _) = tenant_fields(r, *v);
                map.insert("orderId".into(), sent["orderId"].clone());
                map.insert("tenantId".into(), json!(r.tenant_id()));
                for f in ["tenantCode", "name", "domainName"] {
                    map.insert(f.into(), sent[f].clone());
                }
                map.insert("flag".into(), json!(flag));
            }
            Op::App { app, flag, v, .. } => {
                map.insert("tenantId".into(), json!(r.tenant_id()));
                map.insert("appId".into(), json!(APPS[usize::from(*app)]));
                map.insert("clientId".into(), json!(format!("client-{}", v % 2)));
                map.insert("clientSecret".into(), json!(secrets[usize::from(v / 2 % 2)]));
                map.insert("flag".into(), json!(flag));
            }
            Op::Auth { app, flag, users, .. } => {
                map.insert("tenantId".into(), json!(r.tenant_id()));
                map.insert("appId".into(), json!(APPS[usize::from(*app)]));
                let list: Vec<Value> = users
                    .iter()
                    .map(|(u, v)| {
                        let v = if *flag == 3 {
                            model.users.get(app).and_then(|m| m.get(u)).map_or(*v, |(sv, _)| *sv)
                        } else {
                            *v
                        };
                        user_wire(*u, v, route.is_v1())
                    })
                    .collect();
                let list = Value::Array(list);
                // V1 sends userList as a JSON string (§5.3).
                let list = if route.is_v1() { json!(list.to_string()) } else { list };
                map.insert("userList".into(), list);
                map.insert("currentSyncTime".into(), json!(ts));
                map.insert("flag".into(), json!(flag));
            }
        }
        map.insert("testFlag".into(), json!(u8::from(r.test)));
        map.insert("timeStamp".into(), json!(ts));
        body
    }

    /// Applies the op to the record's model, per the contract's semantics.
    fn apply(&self, m: &mut Model) {
        match *self {
            Op::Tenant { flag: 0, .. } => *m = Model::default(),
            Op::Tenant { v, .. } => m.tenant = Some(v),
            Op::App { app, flag: 0, .. } => {
                m.apps.remove(&app);
                m.users.remove(&app);
            }
            // Both fixture ciphertexts hold the same secret: a sync that only re-encrypts it is a repeat, and the
            // ciphertext stored first is kept.
            Op::App { app, v, .. } => match m.apps.get(&app) {
                Some(old) if old % 2 == v % 2 => {}
                _ => {
                    m.apps.insert(app, v);
                }
            },
            Op::Auth { app, flag, ref users, .. } => {
                for &(u, v) in users {
                    let entries = m.users.entry(app).or_default();
                    match flag {
                        0 => {
                            entries.remove(&u);
                        }
                        3 => {
                            if let Some(e) = entries.get_mut(&u) {
                                e.1 = false;
                            }
                        }
                        _ => {
                            entries.insert(u, (v, true));
                        }
                    }
                    if entries.is_empty() {
                        m.users.remove(&app);
                    }
                }
            }
        }
    }
}

/// One or two distinct users of an `authSync`, each with the version of its fields to send.
fn user_versions() -> impl Strategy<Value = Vec<(u8, u8)>> {
    proptest::sample::subsequence(vec![0u8, 1, 2], 1..=2)
        .prop_flat_map(|us| {
            let n = us.len();
            (Just(us), proptest::collection::vec(0..3u8, n))
        })
        .prop_map(|(us, vs)| us.into_iter().zip(vs).collect::<Vec<_>>())
}

fn op() -> impl Strategy<Value = Op> {
    let users = user_versions();
    prop_oneof![
        (rec(), 0..3u8, 0..3u8).prop_map(|(r, flag, v)| Op::Tenant { r, flag, v }),
        (rec(), 0..2u8, 0..3u8, 0..4u8).prop_map(|(r, app, flag, v)| Op::App { r, app, flag, v }),
        (rec(), 0..2u8, 0..4u8, users).prop_map(|(r, app, flag, users)| Op::Auth { r, app, flag, users }),
    ]
}

/// A step: a sync on a route, sent `1 + again` times (the marketplace retrying: new nonce, new time), with `flag`
/// and `testFlag` as numeric strings when the bool says so (§5: integers or numeric strings).
fn steps() -> impl Strategy<Value = Vec<(Op, Route, Vec<Route>, bool)>> {
    proptest::collection::vec((op(), route(), proptest::collection::vec(route(), 0..=1), any::<bool>()), 1..28)
}

/// `flag` and `testFlag` written as numeric strings.
fn stringify_flags(mut body: Value) -> Value {
    for f in ["flag", "testFlag"] {
        if let Some(n) = body.get(f).and_then(Value::as_u64) {
            body[f] = json!(n.to_string());
        }
    }
    body
}

/// The record's `tenant`, `apps`, `users` as stored (absent record: null, {}, {}; empty per-app user maps
/// dropped, since the contract does not say whether an app with no users keeps an empty map).
fn stored_parts(kit: &Kit, r: Rec) -> Result<Value, String> {
    let v = kit.stored(&r.key());
    if v.is_null() {
        return Ok(json!({"tenant": null, "apps": {}, "users": {}}));
    }
    if v["instanceId"] != json!(r.instance_id()) || v["tenantId"] != json!(r.tenant_id()) || v["test"] != json!(r.test)
    {
        return Err(format!("record {} names another tenant: {}", r.key(), v));
    }
    let mut users = v["users"].as_object().cloned().unwrap_or_default();
    users.retain(|_, per_app| per_app.as_object().is_some_and(|m| !m.is_empty()));
    Ok(json!({
        "tenant": v["tenant"].clone(),
        "apps": v.get("apps").cloned().filter(|a| !a.is_null()).unwrap_or(json!({})),
        "users": Value::Object(users),
    }))
}

fn model_parts(r: Rec, m: &Model, secrets: &[String; 2]) -> Value {
    let tenant = m.tenant.map_or(Value::Null, |v| tenant_fields(r, v).1);
    let apps: serde_json::Map<String, Value> = m
        .apps
        .iter()
        .map(|(app, v)| {
            let stored = json!({"clientId": format!("client-{}", v % 2), "clientSecret": secrets[usize::from(v / 2 % 2)],
                "secretDigest": fixture_secret_digest()});
            (APPS[usize::from(*app)].to_owned(), stored)
        })
        .collect();
    let users: serde_json::Map<String, Value> = m
        .users
        .iter()
        .map(|(app, us)| {
            let per: serde_json::Map<String, Value> = us
                .iter()
                .map(|(u, (v, authorised))| (USERS[usize::from(*u)].to_owned(), user_stored(*u, *v, *authorised)))
                .collect();
            (APPS[usize::from(*app)].to_owned(), Value::Object(per))
        })
        .collect();
    json!({"tenant": tenant, "apps": apps, "users": users})
}

/// Compares every record of the id space with the model, and that no other tenant record exists.
fn check_records(kit: &Kit, models: &BTreeMap<Rec, Model>, secrets: &[String; 2]) -> Result<(), String> {
    for r in Rec::all() {
        let want = model_parts(r, &models.get(&r).cloned().unwrap_or_default(), secrets);
        let got = stored_parts(kit, r)?;
        if got != want {
            return Err(format!("record {}:\n  stored {got}\n  model  {want}", r.key()));
        }
    }
    let known: BTreeSet<String> = Rec::all().into_iter().map(Rec::key).collect();
    let stray: Vec<String> = kit.record_keys().difference(&known).cloned().collect();
    if !stray.is_empty() {
        return Err(format!("records outside the synced id space: {stray:?}"));
    }
    Ok(())
}

fn run_records(steps: &[(Op, Route, Vec<Route>, bool)]) -> Result<(), String> {
    let kit = Kit::new(vec![], None);
    let secrets = ciphertexts();
    let mut models: BTreeMap<Rec, Model> = BTreeMap::new();
    for (i, (op, first, again, strings)) in steps.iter().enumerate() {
        for route in std::iter::once(first).chain(again) {
            kit.tick();
            let model = models.entry(op.rec()).or_default();
            let body = op.body(model, *route, kit.ep.now(), &secrets);
            let body = if *strings { stringify_flags(body) } else { body };
            let out = kit.ep.send(&kit.request(*route, op.sync(), &body));
            if code(&out) != "000000" {
                return Err(format!("step {i} {op:?} on {route:?}: {}\n  body {body}", describe(&out)));
            }
            op.apply(model);
            check_records(&kit, &models, &secrets).map_err(|e| format!("after step {i} {op:?} on {route:?}: {e}"))?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------ org tree

const ORGS: [&str; 5] = ["o-0", "o-1", "o-2", "o-3", "o-4"];

/// An organisation sync on the one record (live, `i/1`, `t-1`).
#[derive(Debug, Clone)]
enum OrgOp {
    /// singleOrgSync of node `code` named by variant `v`, declaring `parent` (may be itself).
    Single { code: u8, v: u8, parent: Option<u8>, flag: u8 },
    /// allOrgSync with these nodes (repeats allowed: the last wins).
    All { nodes: Vec<(u8, u8, Option<u8>)> },
    /// tenantSync delete: the binding and its tree are gone.
    TenantDelete,
}

const ORG_REC: Rec = Rec { test: false, instance: 0, tenant: 0 };

fn org_name(code: u8, v: u8) -> String {
    ["开发部", "测试部", "Ops"][usize::from(v % 3)].to_owned() + "-" + ORGS[usize::from(code)]
}

fn org_op() -> impl Strategy<Value = OrgOp> {
    let parent = proptest::option::weighted(0.7, 0..5u8);
    prop_oneof![
        5 => (0..5u8, 0..3u8, parent.clone(), 0..3u8).prop_map(|(code, v, parent, flag)| OrgOp::Single { code, v, parent, flag }),
        2 => proptest::collection::vec((0..5u8, 0..3u8, parent), 0..7).prop_map(|nodes| OrgOp::All { nodes }),
        1 => Just(OrgOp::TenantDelete),
    ]
}

impl OrgOp {
    fn sync(&self) -> &'static str {
        match self {
            OrgOp::Single { .. } => "singleOrgSync",
            OrgOp::All { .. } => "allOrgSync",
            OrgOp::TenantDelete => "tenantSync",
        }
    }

    fn body(&self, route: Route, now: u64) -> Value {
        let ts = time_stamp(now);
        let r = ORG_REC;
        // V1 names the organisation `name` (and the full list `orgInfo`, a string) (§5.4, §5.5).
        let name_field = if route.is_v1() { "name" } else { "orgName" };
        let parent_text = |p: Option<u8>| p.map_or("", |p| ORGS[usize::from(p)]);
        match self {
            OrgOp::Single { code, v, parent, flag } => {
                let mut b = json!({"instanceId": r.instance_id(), "tenantId": r.tenant_id(), "orgCode": ORGS[usize::from(*code)]});
                if let Some(m) = b.as_object_mut() {
                    m.insert(name_field.into(), json!(org_name(*code, *v)));
                    m.insert("parentCode".into(), json!(parent_text(*parent)));
                    m.insert("flag".into(), json!(flag));
                    m.insert("testFlag".into(), json!(0));
                    m.insert("timeStamp".into(), json!(ts));
                }
                b
            }
            OrgOp::All { nodes } => {
                let items: Vec<Value> = nodes
                    .iter()
                    .map(|(c, v, p)| {
                        let mut o = json!({"orgCode": ORGS[usize::from(*c)]});
                        if let Some(m) = o.as_object_mut() {
                            m.insert(name_field.into(), json!(org_name(*c, *v)));
                            m.insert("parentCode".into(), json!(parent_text(*p)));
                        }
                        o
                    })
                    .collect();
                let (field, list) = match route {
                    Route::V1 | Route::V1UnderProduce => ("orgInfo", json!(Value::Array(items).to_string())),
                    Route::V2UnderProduce => ("orgInfoList", json!(Value::Array(items).to_string())),
                    _ => ("orgInfoList", Value::Array(items)),
                };
                let mut b = json!({"instanceId": r.instance_id(), "tenantId": r.tenant_id()});
                if let Some(m) = b.as_object_mut() {
                    m.insert(field.into(), list);
                    m.insert("testFlag".into(), json!(0));
                    m.insert("timeStamp".into(), json!(ts));
                }
                b
            }
            OrgOp::TenantDelete => {
                let (sent, _) = tenant_fields(r, 0);
                json!({"instanceId": r.instance_id(), "orderId": sent["orderId"], "tenantId": r.tenant_id(),
                    "tenantCode": sent["tenantCode"], "name": sent["name"], "domainName": sent["domainName"],
                    "flag": 0, "testFlag": 0, "timeStamp": ts})
            }
        }
    }

    /// The declared tree after the op: code → (name, declared parent).
    fn apply(&self, tree: &mut BTreeMap<u8, (String, Option<u8>)>) {
        match self {
            OrgOp::Single { code, flag: 0, .. } => {
                tree.remove(code);
            }
            OrgOp::Single { code, v, parent, .. } => {
                tree.insert(*code, (org_name(*code, *v), *parent));
            }
            OrgOp::All { nodes } => {
                tree.clear();
                for (c, v, p) in nodes {
                    tree.insert(*c, (org_name(*c, *v), *p));
                }
            }
            OrgOp::TenantDelete => tree.clear(),
        }
    }
}

/// Whether `node` is on a cycle of declared parents among the present nodes.
fn on_declared_cycle(tree: &BTreeMap<u8, (String, Option<u8>)>, node: u8) -> bool {
    let mut at = tree.get(&node).and_then(|(_, p)| *p);
    for _ in 0..=tree.len() {
        match at {
            Some(p) if p == node => return true,
            Some(p) if tree.contains_key(&p) => at = tree.get(&p).and_then(|(_, pp)| *pp),
            _ => return false,
        }
    }
    false
}

/// The stored tree against the declared model: the same nodes, names and declared parents; every effective parent
/// is null or a node of the tree and is the declared one; no loops; every node whose declared parent is present
/// and not on a cycle with it is attached.
fn check_tree(kit: &Kit, tree: &BTreeMap<u8, (String, Option<u8>)>) -> Result<(), String> {
    let rec = kit.stored(&ORG_REC.key());
    let stored = rec.get("orgs").and_then(Value::as_object).cloned().unwrap_or_default();
    let codes: BTreeSet<String> = stored.keys().cloned().collect();
    let want: BTreeSet<String> = tree.keys().map(|c| ORGS[usize::from(*c)].to_owned()).collect();
    if codes != want {
        return Err(format!("nodes {codes:?}, model {want:?}; stored orgs {}", Value::Object(stored)));
    }
    let effective = |code: &str| stored.get(code).and_then(|n| n["parentCode"].as_str()).map(str::to_owned);
    for (c, (name, declared)) in tree {
        let code = ORGS[usize::from(*c)];
        let node = &stored[code];
        let declared_text = declared.map(|p| ORGS[usize::from(p)]);
        if node["orgName"] != json!(name) || node["declaredParent"] != json!(declared_text) {
            return Err(format!("node {code}: stored {node}, model name {name:?} declared parent {declared_text:?}"));
        }
        match (&node["parentCode"], effective(code)) {
            (Value::Null, _) => {}
            (_, Some(p)) if stored.contains_key(&p) && Some(p.as_str()) == declared_text => {}
            _ => return Err(format!("node {code}: parentCode {} is dangling or not the declared parent", node)),
        }
        if let Some(p) = declared
            && tree.contains_key(p)
            && !on_declared_cycle(tree, *c)
            && effective(code).as_deref() != declared_text
        {
            return Err(format!("node {code}: declared parent {declared_text:?} is present, but stored {node}"));
        }
        let mut at = effective(code);
        for _ in 0..=stored.len() {
            match at {
                Some(p) if p == code => return Err(format!("node {code}: its parents loop back to it: {stored:?}")),
                Some(p) => at = effective(&p),
                None => break,
            }
        }
        if at.is_some() {
            return Err(format!("node {code}: following parents never ends: {stored:?}"));
        }
    }
    Ok(())
}

fn run_tree(steps: &[(OrgOp, Route)]) -> Result<(), String> {
    let kit = Kit::new(vec![], None);
    let mut tree = BTreeMap::new();
    for (i, (op, route)) in steps.iter().enumerate() {
        kit.tick();
        let body = op.body(*route, kit.ep.now());
        let out = kit.ep.send(&kit.request(*route, op.sync(), &body));
        if code(&out) != "000000" {
            return Err(format!("step {i} {op:?} on {route:?}: {}\n  body {body}", describe(&out)));
        }
        op.apply(&mut tree);
        check_tree(&kit, &tree).map_err(|e| format!("after step {i} {op:?} on {route:?}: {e}"))?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------ attacks

/// A way of sending a sync that must be refused without touching the store.
#[derive(Debug, Clone, Copy)]
enum Attack {
    /// x-sign replaced by another valid-looking hex string.
    ForgedSign,
    /// The body changed (to a delete) after signing.
    TamperedBody,
    /// x-timestamp 61 s old (signed so).
    Stale,
    /// x-timestamp 61 s ahead (signed so).
    Future,
    /// Signed with the basic-interface key.
    BasicKey,
    /// A V1 authToken under another key.
    V1WrongKey,
    /// A V1 body whose `timeStamp` is 3 h 11 min old (correctly signed).
    V1Stale,
    /// The last accepted V2 request again, byte for byte (same nonce).
    Replay,
}

impl Attack {
    fn expected(self) -> &'static str {
        match self {
            Attack::Stale | Attack::Future | Attack::V1Stale => "000002",
            _ => "000001",
        }
    }
}

fn attack() -> impl Strategy<Value = Attack> {
    prop_oneof![
        Just(Attack::ForgedSign),
        Just(Attack::TamperedBody),
        Just(Attack::Stale),
        Just(Attack::Future),
        Just(Attack::BasicKey),
        Just(Attack::V1WrongKey),
        Just(Attack::V1Stale),
        Just(Attack::Replay),
    ]
}

fn attacked_request(kit: &Kit, attack: Attack, op: &Op, model: &Model, last_v2: Option<&Inbound>) -> Option<Inbound> {
    let secrets = ciphertexts();
    let now = kit.ep.now();
    let body = op.body(model, Route::V2, now, &secrets);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let path = Route::V2.path(op.sync());
    let signed_at = |ts: u64| kit.mp.kit(&path, &bytes, ts, &kit.fresh_nonce());
    Some(match attack {
        Attack::ForgedSign => {
            let mut req = signed_at(now);
            for (k, v) in &mut req.headers {
                if k == "x-sign" {
                    *v = v.chars().rev().collect();
                }
            }
            req
        }
        Attack::TamperedBody => {
            let mut req = signed_at(now);
            let mut changed = body.clone();
            changed["flag"] = json!(if body["flag"] == json!(0) { 1 } else { 0 });
            req.body = serde_json::to_vec(&changed).unwrap_or_default();
            req
        }
        Attack::Stale => signed_at(now - 61_000),
        Attack::Future => signed_at(now + 61_000),
        Attack::BasicKey => {
            let basic = Marketplace::from_key(conformance::AK).unwrap_or_else(|| unreachable!());
            basic.kit(&path, &bytes, now, &kit.fresh_nonce())
        }
        Attack::V1WrongKey => {
            let other = Marketplace::from_key("not-the-kit-key").unwrap_or_else(|| unreachable!());
            other.kit_v1(&Route::V1.path(op.sync()), &bytes)
        }
        Attack::V1Stale => {
            let old = op.body(model, Route::V1, now - (3 * 3_600_000 + 11 * 60_000), &secrets);
            kit.mp.kit_v1(&Route::V1.path(op.sync()), &serde_json::to_vec(&old).unwrap_or_default())
        }
        Attack::Replay => last_v2?.clone(),
    })
}

fn run_attacks(steps: &[(Op, Option<Attack>)]) -> Result<(), String> {
    let kit = Kit::new(vec![], None);
    let secrets = ciphertexts();
    let mut models: BTreeMap<Rec, Model> = BTreeMap::new();
    let mut last_v2: Option<Inbound> = None;
    for (i, (op, attack)) in steps.iter().enumerate() {
        kit.tick();
        let model = models.entry(op.rec()).or_default();
        match attack {
            None => {
                let body = op.body(model, Route::V2, kit.ep.now(), &secrets);
                let req = kit.request(Route::V2, op.sync(), &body);
                let out = kit.ep.send(&req);
                if code(&out) != "000000" {
                    return Err(format!("step {i} {op:?}: {}", describe(&out)));
                }
                op.apply(model);
                last_v2 = Some(req);
            }
            Some(a) => {
                let Some(req) = attacked_request(&kit, *a, op, model, last_v2.as_ref()) else { continue };
                let before = kit.kit_state();
                let out = kit.ep.send(&req);
                let after = kit.kit_state();
                if code(&out) != a.expected() {
                    return Err(format!("step {i} {a:?} of {op:?}: {}, expected {}", describe(&out), a.expected()));
                }
                if before != after {
                    let changed: Vec<&String> = before
                        .keys()
                        .chain(after.keys())
                        .filter(|k| before.get(*k) != after.get(*k))
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    return Err(format!("step {i} {a:?} of {op:?} was refused but changed {changed:?}"));
                }
            }
        }
    }
    check_records(&kit, &models, &secrets)
}

// ------------------------------------------------------------------------------------------------ forward mode

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(http::HeaderMap, Vec<u8>)>>,
}

#[async_trait::async_trait]
impl OutboundHandler for Recorder {
    async fn handle(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, ErrorCode> {
        let (parts, body) = request.into_parts();
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push((parts.headers, body.to_vec()));
        Ok(http::Response::new(Bytes::from_static(b"{}")))
    }
}

impl Recorder {
    fn count(&self) -> usize {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
    fn since(&self, n: usize) -> Vec<(http::HeaderMap, Vec<u8>)> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())[n..].to_vec()
    }
}

/// A forward-mode step. Each sync family has its own record, so no change cascades into another's events: tenant
/// ops on (live, i/1, t-1), application ops on (live, i/1, t-2), user ops on (test, "", t-1), organisation ops
/// (top-level nodes only) on (test, "", t-2).
#[derive(Debug, Clone)]
enum FwdOp {
    Tenant { flag: u8, v: u8 },
    App { app: u8, flag: u8, v: u8 },
    Auth { flag: u8, users: Vec<(u8, u8)> },
    Org { code: u8, v: u8, flag: u8 },
    AllOrgs { nodes: Vec<(u8, u8)> },
}

const FWD_TENANT: Rec = Rec { test: false, instance: 0, tenant: 0 };
const FWD_APP: Rec = Rec { test: false, instance: 0, tenant: 1 };
const FWD_AUTH: Rec = Rec { test: true, instance: 1, tenant: 0 };
const FWD_ORG: Rec = Rec { test: true, instance: 1, tenant: 1 };

fn fwd_op() -> impl Strategy<Value = FwdOp> {
    let users = user_versions();
    prop_oneof![
        (0..3u8, 0..3u8).prop_map(|(flag, v)| FwdOp::Tenant { flag, v }),
        (0..2u8, 0..3u8, 0..4u8).prop_map(|(app, flag, v)| FwdOp::App { app, flag, v }),
        (0..4u8, users).prop_map(|(flag, users)| FwdOp::Auth { flag, users }),
        (0..4u8, 0..2u8, 0..3u8).prop_map(|(code, v, flag)| FwdOp::Org { code, v, flag }),
        proptest::collection::vec((0..4u8, 0..2u8), 0..4).prop_map(|nodes| FwdOp::AllOrgs { nodes }),
    ]
}

#[derive(Default)]
struct FwdModel {
    records: BTreeMap<Rec, Model>,
    orgs: BTreeMap<u8, u8>,
}

impl FwdOp {
    fn rec(&self) -> Rec {
        match self {
            FwdOp::Tenant { .. } => FWD_TENANT,
            FwdOp::App { .. } => FWD_APP,
            FwdOp::Auth { .. } => FWD_AUTH,
            FwdOp::Org { .. } | FwdOp::AllOrgs { .. } => FWD_ORG,
        }
    }

    fn as_op(&self) -> Option<Op> {
        let r = self.rec();
        match self {
            FwdOp::Tenant { flag, v } => Some(Op::Tenant { r, flag: *flag, v: *v }),
            FwdOp::App { app, flag, v } => Some(Op::App { r, app: *app, flag: *flag, v: *v }),
            FwdOp::Auth { flag, users } => Some(Op::Auth { r, app: 0, flag: *flag, users: users.clone() }),
            _ => None,
        }
    }

    fn as_org_op(&self) -> Option<OrgOp> {
        match self {
            FwdOp::Org { code, v, flag } => Some(OrgOp::Single { code: *code, v: *v, parent: None, flag: *flag }),
            FwdOp::AllOrgs { nodes } => Some(OrgOp::All { nodes: nodes.iter().map(|(c, v)| (*c, *v, None)).collect() }),
            _ => None,
        }
    }

    /// `(sync, body)` at `now`.
    fn request(&self, m: &FwdModel, route: Route, now: u64, secrets: &[String; 2]) -> (&'static str, Value) {
        if let Some(op) = self.as_op() {
            let model = m.records.get(&op.rec()).cloned().unwrap_or_default();
            return (op.sync(), op.body(&model, route, now, secrets));
        }
        let Some(op) = self.as_org_op() else { unreachable!() };
        let mut body = op.body(route, now);
        let r = FWD_ORG;
        body["instanceId"] = json!(r.instance_id());
        body["tenantId"] = json!(r.tenant_id());
        body["testFlag"] = json!(1);
        (op.sync(), body)
    }

    /// The event types the op must produce (one per effective change, in any order), and applies it.
    fn expect_and_apply(&self, m: &mut FwdModel) -> Vec<&'static [&'static str]> {
        const CREATED: &[&str] = &["created"];
        const UPDATED: &[&str] = &["updated"];
        const UPSERTED: &[&str] = &["created", "updated"];
        const DELETED: &[&str] = &["deleted"];
        const REVOKED: &[&str] = &["revoked"];
        const REPLACED: &[&str] = &["tree_replaced"];
        let mut out: Vec<&'static [&'static str]> = Vec::new();
        if let Some(op) = self.as_op() {
            let model = m.records.entry(op.rec()).or_default();
            let before = model.clone();
            op.apply(model);
            match self {
                FwdOp::Tenant { flag, .. } => match (before.tenant, model.tenant) {
                    (Some(_), None) => out.push(DELETED),
                    (None, Some(_)) => out.push(if *flag == 1 { CREATED } else { UPSERTED }),
                    (Some(a), Some(b)) if tenant_fields(op.rec(), a).1 != tenant_fields(op.rec(), b).1 => {
                        out.push(UPDATED)
                    }
                    _ => {}
                },
                FwdOp::App { app, flag, .. } => {
                    let key = |v: u8| (v % 2, v / 2 % 2);
                    match (before.apps.get(app), model.apps.get(app)) {
                        (Some(_), None) => out.push(DELETED),
                        (None, Some(_)) => out.push(if *flag == 1 { CREATED } else { UPSERTED }),
                        (Some(a), Some(b)) if key(*a) != key(*b) => out.push(UPDATED),
                        _ => {}
                    }
                }
                FwdOp::Auth { flag, users } => {
                    let get = |mm: &Model, u: u8| mm.users.get(&0).and_then(|x| x.get(&u)).copied();
                    for (u, _) in users {
                        match (get(&before, *u), get(model, *u)) {
                            (Some(_), None) => out.push(DELETED),
                            (None, Some(_)) => out.push(if *flag == 1 { CREATED } else { UPSERTED }),
                            (Some((_, true)), Some((_, false))) => out.push(REVOKED),
                            // Authorised again after a revoke: a new or an updated user, the contract does not say.
                            (Some((_, false)), Some((_, true))) => out.push(UPSERTED),
                            (Some(a), Some(b)) if user_stored(*u, a.0, a.1) != user_stored(*u, b.0, b.1) => {
                                out.push(UPDATED)
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
            return out;
        }
        match self {
            FwdOp::Org { code, v, flag } => match (m.orgs.get(code).copied(), *flag) {
                (Some(_), 0) => {
                    m.orgs.remove(code);
                    out.push(DELETED);
                }
                (None, 0) => {}
                (None, f) => {
                    m.orgs.insert(*code, *v);
                    out.push(if f == 1 { CREATED } else { UPSERTED });
                }
                (Some(old), _) => {
                    m.orgs.insert(*code, *v);
                    if org_name(*code, old) != org_name(*code, *v) {
                        out.push(UPDATED);
                    }
                }
            },
            FwdOp::AllOrgs { nodes } => {
                let next: BTreeMap<u8, u8> = nodes.iter().copied().collect();
                let names = |t: &BTreeMap<u8, u8>| t.iter().map(|(c, v)| (*c, org_name(*c, *v))).collect::<Vec<_>>();
                if names(&next) != names(&m.orgs) {
                    out.push(REPLACED);
                }
                m.orgs = next;
            }
            _ => {}
        }
        out
    }

    fn family(&self) -> &'static str {
        match self {
            FwdOp::Tenant { .. } => "tenant",
            FwdOp::App { .. } => "application",
            FwdOp::Auth { .. } => "user",
            FwdOp::Org { .. } | FwdOp::AllOrgs { .. } => "org",
        }
    }
}

/// An event's `data` against the model after the change (contract, "Forward mode: events").
fn check_event_data(op: &FwdOp, action: &str, data: &Value, m: &FwdModel, secrets: &[String; 2]) -> Result<(), String> {
    let r = op.rec();
    let model = m.records.get(&r).cloned().unwrap_or_default();
    let fields = |names: &[&str], want: &Value| names.iter().all(|f| data[*f] == want[*f]);
    match op {
        FwdOp::Tenant { .. } if action != "deleted" => {
            let want = model.tenant.map(|v| tenant_fields(r, v).1).ok_or("no tenant in the model")?;
            if !fields(&["tenantCode", "name", "domainName", "domainUrl", "orderId"], &want) {
                return Err(format!("tenant data, expected {want}"));
            }
        }
        FwdOp::Tenant { .. } => {}
        FwdOp::App { app, .. } => {
            if data["appId"] != json!(APPS[usize::from(*app)]) {
                return Err("appId".into());
            }
            if action != "deleted" {
                let v = model.apps.get(app).ok_or("no app in the model")?;
                let want =
                    json!({"clientId": format!("client-{}", v % 2), "clientSecret": secrets[usize::from(v / 2 % 2)]});
                if !fields(&["clientId", "clientSecret"], &want) {
                    return Err(format!("application data, expected {want}"));
                }
            }
        }
        FwdOp::Auth { users, .. } => {
            if data["appId"] != json!(APPS[0]) {
                return Err("appId".into());
            }
            let name = data["user"]["userName"].as_str().unwrap_or("");
            let u = users
                .iter()
                .map(|(u, _)| *u)
                .find(|u| USERS[usize::from(*u)] == name)
                .ok_or("an event for a user the sync did not name")?;
            let want = match model.users.get(&0).and_then(|x| x.get(&u)) {
                _ if action == "deleted" => json!({"userName": name}),
                Some((v, authorised)) => user_stored(u, *v, *authorised),
                None => return Err("no such user in the model".into()),
            };
            if data["user"] != want {
                return Err(format!("user, expected {want}"));
            }
        }
        FwdOp::Org { code, .. } => {
            let org = &data["org"];
            if org["orgCode"] != json!(ORGS[usize::from(*code)]) {
                return Err("orgCode".into());
            }
            if action != "deleted" {
                let v = m.orgs.get(code).ok_or("no such node in the model")?;
                if org["orgName"] != json!(org_name(*code, *v))
                    || org["parentCode"] != Value::Null
                    || org["declaredParent"] != Value::Null
                {
                    return Err(format!("org, expected name {}", org_name(*code, *v)));
                }
            }
        }
        FwdOp::AllOrgs { .. } => {
            let want: Vec<Value> = m
                .orgs
                .iter()
                .map(|(c, v)| {
                    let code = ORGS[usize::from(*c)];
                    json!({"orgCode": code, "orgName": org_name(*c, *v), "parentCode": null, "declaredParent": null})
                })
                .collect();
            if data["orgs"] != Value::Array(want.clone()) {
                return Err(format!("orgs, expected {}", Value::Array(want)));
            }
        }
    }
    Ok(())
}

fn run_forward(steps: &[(FwdOp, Route, Vec<Route>)]) -> Result<(), String> {
    let recorder = Arc::new(Recorder::default());
    let extra = vec![
        ("backend_url".to_owned(), "http://backend.test/events".to_owned()),
        ("backend_origin".to_owned(), "http://backend.test".to_owned()),
        ("backend_secret".to_owned(), WEBHOOK_SECRET.to_owned()),
    ];
    let kit = Kit::new(extra, Some(recorder.clone()));
    let signer = WebhookSigner::new(&SecretKey::new(WEBHOOK_SECRET));
    let secrets = ciphertexts();
    let mut model = FwdModel::default();
    let mut ids = BTreeSet::new();
    for (i, (op, first, again)) in steps.iter().enumerate() {
        for (n, route) in std::iter::once(first).chain(again).enumerate() {
            kit.tick();
            let (sync, body) = op.request(&model, *route, kit.ep.now(), &secrets);
            let seen = recorder.count();
            let out = kit.ep.send(&kit.request(*route, sync, &body));
            if code(&out) != "000000" {
                return Err(format!("step {i} {op:?} on {route:?}: {}\n  body {body}", describe(&out)));
            }
            let expected = op.expect_and_apply(&mut model);
            let events = recorder.since(seen);
            let ctx = || format!("step {i}{} {op:?} on {route:?}", if n > 0 { " (repeated)" } else { "" });
            if events.len() != expected.len() {
                let types: Vec<String> = events
                    .iter()
                    .map(|(_, b)| serde_json::from_slice::<Value>(b).map(|v| v["type"].to_string()).unwrap_or_default())
                    .collect();
                return Err(format!("{}: {} events {types:?}, expected {expected:?}", ctx(), events.len()));
            }
            let mut unmatched = expected.clone();
            for (headers, raw) in &events {
                let event: Value =
                    serde_json::from_slice(raw).map_err(|e| format!("{}: event not JSON: {e}", ctx()))?;
                let id = event["id"].as_str().unwrap_or("").to_owned();
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                if header("webhook-id") != id || !id.starts_with("evt_") {
                    return Err(format!("{}: webhook-id {:?} and body id {id:?}", ctx(), header("webhook-id")));
                }
                let ts_ms = header("webhook-timestamp").parse::<u64>().unwrap_or(0) * 1000;
                let want_sig = signer.headers(&id, raw, ts_ms).into_iter().find(|(k, _)| k == "webhook-signature");
                if want_sig.map(|(_, v)| v) != Some(header("webhook-signature")) {
                    return Err(format!("{}: event {id} has no valid webhook-signature", ctx()));
                }
                if !ids.insert(id.clone()) {
                    return Err(format!("{}: event id {id} delivered before ({event})", ctx()));
                }
                let r = op.rec();
                let data = &event["data"];
                if data["instanceId"] != json!(r.instance_id())
                    || data["tenantId"] != json!(r.tenant_id())
                    || data["testFlag"] != json!(r.test)
                {
                    return Err(format!("{}: event for another record: {event}", ctx()));
                }
                let kind = event["type"].as_str().unwrap_or("");
                let Some((family, action)) = kind.split_once('.') else {
                    return Err(format!("{}: event type {kind:?}", ctx()));
                };
                check_event_data(op, action, data, &model, &secrets).map_err(|e| format!("{}: {e}: {event}", ctx()))?;
                let slot = unmatched.iter().position(|allowed| allowed.contains(&action));
                match slot {
                    Some(p) if family == op.family() => {
                        unmatched.remove(p);
                    }
                    _ => return Err(format!("{}: unexpected event {kind}, expected {expected:?}", ctx())),
                }
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// (a) Any interleaving of duplicated tenant, application and user syncs (add, modify, delete, revoke) on any
    /// route ends, after every step, in the records the model predicts.
    #[test]
    fn tenant_application_and_user_syncs_match_the_model(steps in steps()) {
        if let Err(e) = run_records(&steps) {
            prop_assert!(false, "{}", e);
        }
    }

    /// (b) Any sequence of singleOrgSync / allOrgSync (and tenant deletes) leaves the model's nodes, names and
    /// declared parents, with no dangling or looping effective parent.
    #[test]
    fn organisation_syncs_keep_the_tree_sound(steps in proptest::collection::vec((org_op(), route()), 1..30)) {
        if let Err(e) = run_tree(&steps) {
            prop_assert!(false, "{}", e);
        }
    }

    /// (c) Forged, tampered, stale, wrong-key and replayed syncs interleaved with honest ones are refused with their
    /// code and change no kit key's bytes; the honest ones still end in the model's records.
    #[test]
    fn forged_and_stale_syncs_change_nothing(
        steps in proptest::collection::vec((op(), proptest::option::weighted(0.5, attack())), 1..24)
    ) {
        if let Err(e) = run_attacks(&steps) {
            prop_assert!(false, "{}", e);
        }
    }

    /// (d) Forward mode: every effective change yields exactly one signed event of its kind, a repeat yields none,
    /// and no event id is ever delivered twice.
    #[test]
    fn forward_mode_sends_one_event_per_change(
        steps in proptest::collection::vec((fwd_op(), route(), proptest::collection::vec(route(), 0..=1)), 1..24)
    ) {
        if let Err(e) = run_forward(&steps) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// An applicationSync whose `clientSecret` does not decrypt answers `000101` and stores nothing: neither a new
/// application nor a change to an existing one (contract: "nothing stored").
#[test]
fn undecryptable_client_secret_stores_nothing() {
    let kit = Kit::new(vec![], None);
    let secrets = ciphertexts();
    let foreign = fixtures()["foreign_key_ciphertext"].as_str().unwrap_or_default().to_owned();
    let r = Rec { test: false, instance: 0, tenant: 0 };
    let model = Model::default();
    let body = |app: u8, flag: u8, secret: &str| {
        let mut b = Op::App { r, app, flag, v: 0 }.body(&model, Route::V2, kit.ep.now(), &secrets);
        b["clientSecret"] = json!(secret);
        b
    };
    for route in [Route::V2, Route::V1, Route::Production] {
        kit.tick();
        let before = kit.kit_state();
        let out = kit.ep.send(&kit.request(route, "applicationSync", &body(1, 1, &foreign)));
        assert_eq!(code(&out), "000101", "new app on {route:?}: {}", describe(&out));
        assert_eq!(kit.kit_state(), before, "a refused new app on {route:?} left something in the store");
    }
    kit.tick();
    let out = kit.ep.send(&kit.request(Route::V2, "applicationSync", &body(0, 1, &secrets[0])));
    assert_eq!(code(&out), "000000", "{}", describe(&out));
    for (flag, secret) in [(2, foreign.as_str()), (1, foreign.as_str()), (2, "bm90IGEgY2lwaGVydGV4dA==")] {
        kit.tick();
        let before = kit.kit_state();
        let out = kit.ep.send(&kit.request(Route::V2, "applicationSync", &body(0, flag, secret)));
        assert_eq!(code(&out), "000101", "flag {flag}: {}", describe(&out));
        assert_eq!(kit.kit_state(), before, "a refused change (flag {flag}) altered the store");
    }
    let stored = kit.stored(&r.key());
    let want =
        json!({"app-1": {"clientId": "client-0", "clientSecret": secrets[0], "secretDigest": fixture_secret_digest()}});
    assert_eq!(stored["apps"], want);
}

/// A V1 sync the marketplace sends again with the same `authToken` (a retry, or an old call replayed after a later
/// change) is acknowledged without being applied again while the replay cache is on (`nonce_cache`, the default);
/// with `nonce_cache=false` nothing is remembered, so it is applied again.
#[test]
fn a_repeated_v1_sync_is_applied_again_only_without_the_replay_cache() {
    for nonce_cache in [true, false] {
        let kit = Kit::new(vec![("nonce_cache".into(), nonce_cache.to_string())], None);
        let r = Rec { test: false, instance: 0, tenant: 0 };
        let model = Model::default();
        let secrets = ciphertexts();
        let add = Op::Tenant { r, flag: 1, v: 0 }.body(&model, Route::V1, kit.ep.now(), &secrets);
        let add = kit.request(Route::V1, "tenantSync", &add);
        assert_eq!(code(&kit.ep.send(&add)), "000000");
        kit.tick();
        let delete = Op::Tenant { r, flag: 0, v: 0 }.body(&model, Route::V1, kit.ep.now(), &secrets);
        assert_eq!(code(&kit.ep.send(&kit.request(Route::V1, "tenantSync", &delete))), "000000");
        assert_eq!(kit.stored(&r.key())["tenant"], Value::Null, "deleted");
        kit.tick();
        assert_eq!(code(&kit.ep.send(&add)), "000000", "the repeated add is acknowledged (nonce_cache={nonce_cache})");
        let tenant = kit.stored(&r.key())["tenant"].clone();
        assert_eq!(tenant.is_null(), nonce_cache, "the repeat applied again: {tenant} (nonce_cache={nonce_cache})");
    }
}

/// The seller rotates `rsa_private_key` and the marketplace sends the same client secret encrypted under the new key:
/// that is a change (the stored ciphertext must open under the key in use), while the same secret encrypted again
/// under the same key is a repeat that keeps the stored ciphertext.
#[test]
fn a_secret_sent_again_under_a_rotated_key_replaces_the_stored_ciphertext() {
    let store: Arc<dyn harness::KvBackend> = Arc::new(harness::MemoryKv::new());
    let r = Rec { test: false, instance: 0, tenant: 0 };
    let sync = |kit: &Kit, secret: &str| {
        kit.tick();
        let body = json!({"instanceId": r.instance_id(), "tenantId": r.tenant_id(), "appId": "app-1",
            "clientId": "client-0", "clientSecret": secret, "flag": 1, "testFlag": 0,
            "timeStamp": time_stamp(kit.ep.now())});
        let out = kit.ep.send(&kit.request(Route::V2, "applicationSync", &body));
        assert_eq!(code(&out), "000000", "{}", describe(&out));
        let bytes = kit.ep.runtime().block_on(kit.ep.store().get(&r.key())).ok().flatten().unwrap_or_default();
        serde_json::from_slice::<Value>(&bytes).unwrap_or_default()["apps"]["app-1"].clone()
    };
    let old_key = Kit::with_key("tests/fixtures/kit_rsa3072_private.pem", Some(Arc::clone(&store)), vec![], None);
    let first = sync(&old_key, &ciphertexts()[0]);
    assert_eq!(first["clientSecret"], json!(ciphertexts()[0]));

    // The other key: core's test key, for which the fixtures hold a ciphertext of the same secret.
    let new_key = Kit::with_key("handlers/core/tests/data/rsa3072_pkcs8.pem", Some(store), vec![], None);
    new_key.nonce.set(1_000); // its own nonces: the replay cache is in the shared store
    let under_new = fixtures()["foreign_key_ciphertext"].as_str().unwrap_or_default().to_owned();
    let rotated = sync(&new_key, &under_new);
    assert_eq!(rotated["clientSecret"], json!(under_new), "the ciphertext under the new key is stored");
    assert_ne!(rotated["secretDigest"], first["secretDigest"]);

    let public = std::fs::read_to_string(workspace_root().join("handlers/core/tests/data/rsa3072_public.pem"))
        .unwrap_or_else(|e| panic!("{e}"));
    let plaintext = fixtures()["plaintext"].as_str().unwrap_or_default().to_owned();
    let mut rng = koogallery_core::crypto::rsa_secret::SystemRng::new().unwrap_or_else(|e| panic!("{e}"));
    let again = koogallery_core::crypto::rsa_secret::encrypt_client_secret(
        &public,
        &plaintext,
        koogallery_core::crypto::rsa_secret::OaepVariant::Sha256Mgf1Sha256,
        &mut rng,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(again, under_new, "OAEP is randomised");
    assert_eq!(sync(&new_key, &again), rotated, "a repeat under the same key keeps what is stored");
}
