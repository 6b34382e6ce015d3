//! The production interface, natively: every activity of V2 and V1, the error answers, idempotency, test-flag
//! separation and forward mode with a failing backend. The same behaviour is checked through the Wasm component by
//! the `conformance` crate.

use std::cell::{Cell, RefCell};

use koogallery_core::crypto::aes_cred::{AesBits, CredentialCipher};
use koogallery_core::http::Inbound;
use koogallery_core::identity;
use koogallery_core::marketplace::Marketplace;
use koogallery_core::ports::MemoryStore;
use koogallery_core::ports::{Backend, Clock, OsRandom, OutboundError, OutboundReply};
use koogallery_core::produce::{BackendTarget, Ctx, ProduceConfig, handle};
use koogallery_core::signing::body_sign;
use koogallery_core::signing::keys::{KeyRing, SecretKey};
use koogallery_core::wire::time::{Precision, format_compact_utc};
use serde_json::Value;

const AK: &str = "1234567890abcdef1234567890abcdef";
const T0: u64 = 1_680_508_066_618;

struct TestClock(Cell<u64>);
impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

/// One delivery the backend received: headers and body.
type Delivery = (Vec<(String, String)>, Vec<u8>);

/// A backend stub that records deliveries and can be switched off.
#[derive(Default)]
struct StubBackend {
    down: Cell<bool>,
    /// Refuse (HTTP 503) events whose body contains this text.
    refuse: RefCell<Option<String>>,
    /// The time budget of every call.
    timeouts: RefCell<Vec<u64>>,
    received: RefCell<Vec<Delivery>>,
    reply: RefCell<Vec<u8>>,
}

impl Backend for StubBackend {
    async fn post(
        &self,
        _url: &str,
        headers: &[(String, String)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<OutboundReply, OutboundError> {
        self.timeouts.borrow_mut().push(timeout_ms);
        if self.down.get() {
            return Err(OutboundError::Transport("connection refused".into()));
        }
        if self.refuse.borrow().as_deref().is_some_and(|t| String::from_utf8_lossy(body).contains(t)) {
            return Ok(OutboundReply { status: 503, body: Vec::new() });
        }
        self.received.borrow_mut().push((headers.to_vec(), body.to_vec()));
        Ok(OutboundReply { status: 200, body: self.reply.borrow().clone() })
    }
}

struct World {
    cfg: ProduceConfig,
    store: MemoryStore,
    backend: StubBackend,
    clock: TestClock,
    mp: Marketplace,
    nonce: Cell<u64>,
}

impl World {
    fn new(cfg: ProduceConfig) -> Self {
        Self {
            cfg,
            store: MemoryStore::new(),
            backend: StubBackend::default(),
            clock: TestClock(Cell::new(T0)),
            mp: Marketplace::new(KeyRing::parse_list(AK).expect("key")),
            nonce: Cell::new(0),
        }
    }

    fn built_in() -> Self {
        Self::new(ProduceConfig::new(KeyRing::parse_list(AK).expect("key")))
    }

    fn forward() -> Self {
        let mut cfg = ProduceConfig::new(KeyRing::parse_list(AK).expect("key"));
        cfg.backend = Some(BackendTarget {
            url: "http://backend.test/events".into(),
            secret: SecretKey::new("backend-secret"),
            timeout_ms: 1000,
        });
        Self::new(cfg)
    }

    fn send(&self, req: &Inbound) -> (Value, Vec<u8>) {
        let ctx = Ctx { store: &self.store, backend: &self.backend, clock: &self.clock, random: &OsRandom };
        let handled = pollster::block_on(handle(req, &self.cfg, &ctx));
        let resp = handled.response;
        assert_eq!(resp.status, 200);
        let sign = resp.header("body-sign").expect("every answer carries Body-Sign");
        body_sign::verify(sign, &resp.body, &self.cfg.keys).expect("Body-Sign covers the exact bytes sent");
        assert!(resp.body.is_ascii(), "responses are ASCII-only JSON");
        (serde_json::from_slice(&resp.body).expect("JSON body"), resp.body)
    }

    fn next_nonce(&self) -> String {
        self.nonce.set(self.nonce.get() + 1);
        format!("{:064X}", self.nonce.get())
    }

    fn v2(&self, body: Value) -> Value {
        let bytes = serde_json::to_vec(&body).expect("json");
        self.send(&self.mp.v2("/produce", &bytes, self.clock.now_ms(), &self.next_nonce())).0
    }

    fn new_instance(&self, order: &str, line: &str, business: &str, test: &str) -> Value {
        self.v2(serde_json::json!({"activity":"newInstance","orderId":order,"orderLineId":line,"businessId":business,"testFlag":test}))
    }

    fn instance_count(&self) -> usize {
        self.store.snapshot().keys().filter(|k| k.contains("/instance/")).count()
    }
}

fn code(v: &Value) -> &str {
    v["resultCode"].as_str().unwrap_or("")
}

#[test]
fn documented_new_instance_vector_is_accepted_and_signed() {
    let w = World::built_in();
    let body = br#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;
    let req = Inbound {
        method: "POST".into(),
        path: "/saasproduce".into(),
        query: "signature=A3086BF160E99C0F507576161BBE4911A01C1179403F02133EB263559D4530E8&timestamp=1680508066618&nonce=50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA".into(),
        headers: vec![],
        body: body.to_vec(),
    };
    let (v, _) = w.send(&req);
    assert_eq!(code(&v), "000000");
    let expected = identity::instance_id_for_order_line("CS2211181819B4LVS", "CS2211181819B4LVS-000001");
    assert_eq!(v["instanceId"], Value::String(expected));
}

#[test]
fn retries_with_new_business_ids_return_the_same_instance() {
    let w = World::built_in();
    let ids: Vec<Value> =
        (0..5).map(|i| w.new_instance("CS1", "CS1-000001", &format!("b{i}"), "0")["instanceId"].clone()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]));
    assert_eq!(w.instance_count(), 1);
    let other = w.new_instance("CS1", "CS1-000002", "b9", "0");
    assert_ne!(other["instanceId"], ids[0]);
    assert_eq!(w.instance_count(), 2);
}

#[test]
fn full_v2_lifecycle_built_in() {
    let w = World::built_in();
    let id = w.new_instance("CS1", "CS1-000001", "b1", "0")["instanceId"].as_str().expect("id").to_owned();

    let q = w.v2(serde_json::json!({"activity":"queryInstance","instanceId":id,"testFlag":"0"}));
    assert_eq!(code(&q), "000000");
    let app = &q["info"][0]["appInfo"];
    assert_eq!(q["info"][0]["instanceId"], Value::String(id.clone()));
    assert!(app["frontEndUrl"].as_str().expect("url").contains(&id));
    assert_eq!(app["userName"], "admin");
    let password = app["password"].as_str().expect("password").to_owned();
    assert!(password.len() >= 12);

    for (activity, extra) in [
        (
            "refreshInstance",
            serde_json::json!({"scene":"RENEWAL","orderId":"R1","orderLineId":"R1-1","expireTime":"20301124023618"}),
        ),
        ("updateInstanceStatus", serde_json::json!({"status":"FREEZE"})),
        ("updateInstanceStatus", serde_json::json!({"status":"FREEZE"})),
        ("updateInstanceStatus", serde_json::json!({"status":"UNFREEZE"})),
        ("upgradeInstance", serde_json::json!({"orderId":"U1","orderLineId":"U1-1"})),
        ("changeInstanceCheck", serde_json::json!({"productInfo":{"productId":"P2","skuCode":"S2","linearValue":10}})),
        ("releaseInstance", serde_json::json!({})),
        ("releaseInstance", serde_json::json!({})),
    ] {
        let mut body = serde_json::json!({"activity":activity,"instanceId":id,"testFlag":"0"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        assert_eq!(code(&w.v2(body)), "000000", "{activity}");
    }
    // Released: queries no longer return it, a late retry of newInstance does not revive it.
    assert_eq!(code(&w.v2(serde_json::json!({"activity":"queryInstance","instanceId":id}))), "000003");
    assert_eq!(w.new_instance("CS1", "CS1-000001", "b-late", "0")["instanceId"], Value::String(id.clone()));
    assert_eq!(code(&w.v2(serde_json::json!({"activity":"queryInstance","instanceId":id}))), "000003");
    let check = serde_json::json!({"activity":"changeInstanceCheck","instanceId":id,"productInfo":{"productId":"P"}});
    assert_eq!(code(&w.v2(check)), "000003");
}

#[test]
fn unknown_instances() {
    let w = World::built_in();
    let refresh = serde_json::json!({"activity":"refreshInstance","scene":"RENEWAL","orderId":"R","orderLineId":"R-1","instanceId":"nope","expireTime":"20301124023618"});
    assert_eq!(code(&w.v2(refresh)), "000003");
    assert_eq!(
        code(&w.v2(serde_json::json!({"activity":"updateInstanceStatus","instanceId":"nope","status":"FREEZE"}))),
        "000003"
    );
    assert_eq!(code(&w.v2(serde_json::json!({"activity":"queryInstance","instanceId":"nope,nope2"}))), "000003");
    // Release of something never created is success, and creates nothing.
    assert_eq!(code(&w.v2(serde_json::json!({"activity":"releaseInstance","instanceId":"nope"}))), "000000");
    assert_eq!(w.instance_count(), 0);
}

#[test]
fn debug_traffic_is_stored_apart_and_found_whatever_testflag_later_calls_carry() {
    let w = World::built_in();
    let id = w.new_instance("CS1", "CS1-000001", "b1", "1")["instanceId"].as_str().expect("id").to_owned();
    assert!(w.store.snapshot().keys().any(|k| k.starts_with("test/instance/")));
    assert!(!w.store.snapshot().keys().any(|k| k.starts_with("live/instance/")));
    // The marketplace does not always repeat testFlag: the debug instance is found either way.
    for flag in ["0", "1"] {
        assert_eq!(
            code(&w.v2(serde_json::json!({"activity":"queryInstance","instanceId":id,"testFlag":flag}))),
            "000000"
        );
    }
    assert_eq!(
        code(&w.v2(serde_json::json!({"activity":"updateInstanceStatus","instanceId":id,"status":"FREEZE"}))),
        "000000"
    );
    let rec = w.store.snapshot().get(&format!("test/instance/{id}")).cloned().unwrap_or_default();
    assert!(String::from_utf8_lossy(&rec).contains(r#""state":"frozen""#), "the freeze reached the debug record");
    assert!(!w.store.snapshot().keys().any(|k| k.starts_with("live/instance/")), "and created no production one");
}

#[test]
fn the_daily_dial_test_keeps_passing_after_its_release_case_ran() {
    let w = World::built_in();
    let new = serde_json::json!({"activity":"newInstance","orderId":"CSDIAL","orderLineId":"CSDIAL-1","businessId":"b","testFlag":"1"});
    for day in 0..3 {
        let id = w.v2(new.clone())["instanceId"].as_str().expect("id").to_owned();
        let query = serde_json::json!({"activity":"queryInstance","instanceId":id,"testFlag":"1"});
        assert_eq!(code(&w.v2(query)), "000000", "day {day}: the saved query case passes");
        let release = serde_json::json!({"activity":"releaseInstance","instanceId":id,"testFlag":"1"});
        assert_eq!(code(&w.v2(release)), "000000", "day {day}");
    }
    // A production release stays final.
    let id = w.new_instance("CSPROD", "CSPROD-1", "b", "0")["instanceId"].as_str().expect("id").to_owned();
    assert_eq!(code(&w.v2(serde_json::json!({"activity":"releaseInstance","instanceId":id}))), "000000");
    w.new_instance("CSPROD", "CSPROD-1", "b2", "0");
    assert_eq!(code(&w.v2(serde_json::json!({"activity":"queryInstance","instanceId":id}))), "000003");
}

#[test]
fn authentication_and_parameter_errors() {
    let w = World::built_in();
    let body = br#"{"activity":"newInstance","businessId":"b","orderId":"CS1","orderLineId":"CS1-000001"}"#;
    let good = w.mp.v2("/produce", body, T0, "N1");

    let mut tampered = good.clone();
    tampered.body =
        br#"{"activity":"newInstance","businessId":"b","orderId":"CS2","orderLineId":"CS1-000001"}"#.to_vec();
    assert_eq!(code(&w.send(&tampered).0), "000001");

    let strip = |name: &str| {
        let mut r = good.clone();
        r.query = r.query.split('&').filter(|p| !p.starts_with(&format!("{name}="))).collect::<Vec<_>>().join("&");
        r
    };
    assert_eq!(code(&w.send(&strip("signature")).0), "000001");
    let v = w.send(&strip("timestamp")).0;
    assert_eq!(code(&v), "000002");
    assert!(v["resultMsg"].as_str().unwrap_or("").contains("timestamp"));
    assert_eq!(code(&w.send(&strip("nonce")).0), "000002");

    w.clock.0.set(T0 + 60_001);
    assert_eq!(code(&w.send(&good).0), "000002");
    w.clock.0.set(T0 - 60_001);
    assert_eq!(code(&w.send(&good).0), "000002");
    w.clock.0.set(T0 + 59_000);
    assert_eq!(code(&w.send(&good).0), "000000");
    // The same nonce again: replay.
    assert_eq!(code(&w.send(&good).0), "000001");

    let mut dup = w.mp.v2("/produce", body, T0 + 59_000, "N2");
    dup.query.push_str("&signature=AA");
    assert_eq!(code(&w.send(&dup).0), "000002");
}

#[test]
fn invalid_bodies_name_the_field() {
    let w = World::built_in();
    let missing_line = w.v2(serde_json::json!({"activity":"newInstance","orderId":"CS1","businessId":"b"}));
    assert_eq!(code(&missing_line), "000002");
    assert!(missing_line["resultMsg"].as_str().unwrap_or("").contains("orderLineId"));

    let long = "x".repeat(65);
    let too_long =
        w.v2(serde_json::json!({"activity":"newInstance","orderId":long,"orderLineId":"l","businessId":"b"}));
    assert_eq!(code(&too_long), "000002");
    assert!(too_long["resultMsg"].as_str().unwrap_or("").contains("orderId"));

    let ids: Vec<String> = (0..101).map(|i| format!("i{i}")).collect();
    assert_eq!(code(&w.v2(serde_json::json!({"activity":"queryInstance","instanceId":ids.join(",")}))), "000002");
    assert_eq!(code(&w.v2(serde_json::json!({"activity":"noSuchActivity"}))), "000002");

    // Not JSON, and too large: still a signed 000002.
    let not_json = w.mp.v2("/produce", b"activity=newInstance", T0, &w.next_nonce());
    assert_eq!(code(&w.send(&not_json).0), "000002");
    let huge = vec![b' '; 70 * 1024];
    let big = w.mp.v2("/produce", &huge, T0, &w.next_nonce());
    assert_eq!(code(&w.send(&big).0), "000002");
    assert_eq!(w.instance_count(), 0);
}

#[test]
fn answers_are_signed_and_credentials_encrypted_with_the_key_that_verified_the_request() {
    const V1_KEY: &str = "v1-key-of-a-legacy-product-000001";
    let mut w = World::built_in();
    w.cfg = ProduceConfig::new(KeyRing::parse_list(&format!("{AK}, {V1_KEY}")).expect("keys"));
    // V2 signs with the first key; the V1 product's calls with the second.
    let v = w.new_instance("CS1", "CS1-000001", "b1", "0");
    assert_eq!(code(&v), "000000");
    let v1 = Marketplace::new(KeyRing::parse_list(V1_KEY).expect("key"));
    let stamp = format_compact_utc(T0, Precision::Millis17);
    let params = [
        ("activity", "newInstance"),
        ("businessId", "b-v1"),
        ("customerId", "c1"),
        ("expireTime", "20300727153156"),
        ("orderId", "CSV1"),
        ("productId", "P1"),
        ("testFlag", "0"),
        ("timeStamp", stamp.as_str()),
    ];
    let req = v1.v1("/produce", &params);
    let ctx = Ctx { store: &w.store, backend: &w.backend, clock: &w.clock, random: &OsRandom };
    let resp = pollster::block_on(handle(&req, &w.cfg, &ctx)).response;
    let only_v1 = KeyRing::parse_list(V1_KEY).expect("key");
    let sign = resp.header("body-sign").expect("Body-Sign");
    assert!(body_sign::verify(sign, &resp.body, &only_v1).is_ok(), "Body-Sign under the V1 product's key");
    let only_v2 = KeyRing::parse_list(AK).expect("key");
    assert!(body_sign::verify(sign, &resp.body, &only_v2).is_err(), "not under the first key");
    let v: Value = serde_json::from_slice(&resp.body).expect("json");
    let user = v["appInfo"]["userName"].as_str().unwrap_or_else(|| panic!("encrypted userName in {v}"));
    let cipher = CredentialCipher::new(&SecretKey::new(V1_KEY), AesBits::Aes256);
    assert_eq!(cipher.decrypt(user).expect("decrypts with the V1 key"), "admin");
}

#[test]
fn forward_mode_keeps_the_instance_pending_until_the_backend_recovers() {
    let w = World::forward();
    w.backend.down.set(true);
    let v = w.new_instance("CS1", "CS1-000001", "b1", "0");
    assert_eq!(code(&v), "000000");
    let id = v["instanceId"].as_str().expect("id").to_owned();
    let query = || w.v2(serde_json::json!({"activity":"queryInstance","instanceId":id}));
    assert_eq!(code(&query()), "000004");
    assert_eq!(code(&query()), "000004");
    assert!(w.backend.received.borrow().is_empty());

    w.backend.down.set(false);
    *w.backend.reply.borrow_mut() =
        br#"{"appInfo":{"frontEndUrl":"https://tenant.example.com","userName":"owner","password":"Secret#1"}}"#
            .to_vec();
    let q = query();
    assert_eq!(code(&q), "000000");
    assert_eq!(q["info"][0]["appInfo"]["frontEndUrl"], "https://tenant.example.com");
    assert_eq!(q["info"][0]["appInfo"]["userName"], "owner");

    // Exactly one delivery, with a stable id and a Standard Webhooks signature.
    let received = w.backend.received.borrow();
    assert_eq!(received.len(), 1);
    let (headers, body) = &received[0];
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let event: Value = serde_json::from_slice(body).expect("event JSON");
    assert_eq!(event["type"], "instance.created");
    assert_eq!(header("webhook-id"), event["id"].as_str().map(str::to_owned));
    assert!(header("webhook-signature").is_some_and(|s| s.starts_with("v1,")));
    drop(received);

    // Later events are forwarded once each; a repeated freeze forwards nothing new.
    for status in ["FREEZE", "FREEZE"] {
        assert_eq!(
            code(&w.v2(serde_json::json!({"activity":"updateInstanceStatus","instanceId":id,"status":status}))),
            "000000"
        );
    }
    let kinds: Vec<String> = w
        .backend
        .received
        .borrow()
        .iter()
        .filter_map(|(_, b)| serde_json::from_slice::<Value>(b).ok()?["type"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(kinds, vec!["instance.created", "instance.frozen"]);
}

#[test]
fn v1_new_instance_decrypts_contacts_and_encrypts_credentials() {
    let w = World::built_in();
    let cipher = CredentialCipher::new(&SecretKey::new(AK), AesBits::Aes256);
    let mobile = cipher.encrypt("13800000000", b"0123456789ABCDEF");
    let stamp = format_compact_utc(T0, Precision::Millis17);
    let req = w.mp.v1(
        "/produce",
        &[
            ("activity", "newInstance"),
            ("businessId", "61e834ba-7b97-4418-b8f7-e5345137278c"),
            ("customerId", "68cbc86abc2018ab880d92f36422fa0e"),
            ("expireTime", "20300727153156"),
            ("orderId", "CS1906666666ABCDE"),
            ("productId", "00301-666666-0--0"),
            ("skuCode", "sku-1"),
            ("mobilePhone", &mobile),
            ("testFlag", "1"),
            ("timeStamp", &stamp),
        ],
    );
    let (v, _) = w.send(&req);
    assert_eq!(code(&v), "000000");
    assert_eq!(v["encryptType"], "1");
    let user = v["appInfo"]["userName"].as_str().expect("encrypted userName");
    assert_eq!(cipher.decrypt(user).expect("decrypts"), "admin");
    let record = w.store.snapshot().into_iter().find(|(k, _)| k.starts_with("test/instance/")).expect("record").1;
    assert!(String::from_utf8_lossy(&record).contains("13800000000"), "the phone number is stored decrypted");

    // Idempotent on (orderId, productId); wrong token rejected; every answer signed.
    let id = v["instanceId"].clone();
    let again = w.send(&req).0;
    assert_eq!(again["instanceId"], id);
    let mut bad = req.clone();
    bad.query = bad.query.replace("orderId=CS1906666666ABCDE", "orderId=CS1906666666ABCDF");
    assert_eq!(code(&w.send(&bad).0), "000001");

    let id = id.as_str().expect("id");
    for params in [
        vec![("activity", "queryInstance"), ("instanceId", id), ("testFlag", "1"), ("timeStamp", &stamp)],
        vec![
            ("activity", "refreshInstance"),
            ("instanceId", id),
            ("orderId", "R1"),
            ("expireTime", "20310101000000"),
            ("testFlag", "1"),
            ("timeStamp", &stamp),
        ],
        vec![
            ("activity", "expireInstance"),
            ("instanceId", id),
            ("orderId", "CS1906666666ABCDE"),
            ("testFlag", "1"),
            ("timeStamp", &stamp),
        ],
        vec![
            ("activity", "upgrade"),
            ("instanceId", id),
            ("orderId", "UP1"),
            ("productId", "p2"),
            ("skuCode", "s2"),
            ("testFlag", "1"),
            ("timeStamp", &stamp),
        ],
        vec![
            ("activity", "releaseInstance"),
            ("instanceId", id),
            ("orderId", "CS1906666666ABCDE"),
            ("testFlag", "1"),
            ("timeStamp", &stamp),
        ],
    ] {
        let (v, _) = w.send(&w.mp.v1("/produce", &params));
        assert_eq!(code(&v), "000000", "{params:?}");
    }
}

const ADMIN: &str = "operator-token-1";

impl World {
    fn forward_with_admin() -> Self {
        let mut w = Self::forward();
        w.cfg.admin_token = Some(SecretKey::new(ADMIN));
        w
    }

    fn admin(&self, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
        let req = Inbound {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: token.map(|t| vec![("authorization".to_owned(), format!("Bearer {t}"))]).unwrap_or_default(),
            body: Vec::new(),
        };
        let ctx = Ctx { store: &self.store, backend: &self.backend, clock: &self.clock, random: &OsRandom };
        let handled = pollster::block_on(handle(&req, &self.cfg, &ctx));
        (handled.response.status, serde_json::from_slice(&handled.response.body).unwrap_or(Value::Null))
    }

    fn kinds_received(&self) -> Vec<String> {
        self.backend
            .received
            .borrow()
            .iter()
            .filter_map(|(_, b)| serde_json::from_slice::<Value>(b).ok()?["type"].as_str().map(str::to_owned))
            .collect()
    }

    fn record(&self, id: &str) -> Value {
        let bytes = self.store.snapshot().get(&format!("live/instance/{id}")).cloned().unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }
}

#[test]
fn an_event_of_a_quiet_instance_reaches_the_backend_through_the_drain_route() {
    let w = World::forward_with_admin();
    let id = w.new_instance("CSQ", "CSQ-1", "b1", "0")["instanceId"].as_str().unwrap_or("").to_owned();
    w.backend.down.set(true);
    let freeze = serde_json::json!({"activity":"updateInstanceStatus","instanceId":id,"status":"FREEZE"});
    assert_eq!(code(&w.v2(freeze)), "000000", "the marketplace is told the freeze happened");
    // The marketplace never calls about this instance again. The operator sees the event waiting, with why.
    let (status, listing) = w.admin("GET", "/produce/outbox", Some(ADMIN));
    assert_eq!(status, 200);
    assert_eq!(listing["waiting"][0]["type"], "instance.frozen", "{listing}");
    assert_eq!(listing["waiting"][0]["attempts"], 1);
    assert!(listing["waiting"][0]["lastError"].as_str().unwrap_or("").contains("connection refused"), "{listing}");
    assert!(!listing.to_string().contains("\"data\""), "bodies are not listed");
    // Not due yet: a drain right away waits for the back-off.
    w.backend.down.set(false);
    let (_, report) = w.admin("POST", "/produce/outbox/drain", Some(ADMIN));
    assert_eq!(report["delivered"], 0, "{report}");
    // A scheduler's drain after the back-off delivers it.
    w.clock.0.set(w.clock.0.get() + 5_000);
    let (status, report) = w.admin("POST", "/produce/outbox/drain", Some(ADMIN));
    assert_eq!((status, report["delivered"].clone()), (200, serde_json::json!(1)), "{report}");
    assert_eq!(w.kinds_received(), ["instance.created", "instance.frozen"]);
    assert_eq!(w.record(&id)["outbox"], serde_json::json!([]));
    let (_, listing) = w.admin("GET", "/produce/outbox", Some(ADMIN));
    assert_eq!(listing, serde_json::json!({"waiting": [], "deadLettered": []}));
    assert!(!w.store.snapshot().get("outbox/due").is_some_and(|v| String::from_utf8_lossy(v).contains(&id)));
}

#[test]
fn any_later_request_delivers_due_events_of_other_instances() {
    let w = World::forward();
    let id = w.new_instance("CSQ", "CSQ-1", "b1", "0")["instanceId"].as_str().unwrap_or("").to_owned();
    w.backend.down.set(true);
    let release = serde_json::json!({"activity":"releaseInstance","instanceId":id});
    assert_eq!(code(&w.v2(release)), "000000");
    w.backend.down.set(false);
    w.clock.0.set(w.clock.0.get() + 5_000);
    // A purchase of something else: its own event and, in the background, the waiting release.
    w.new_instance("CSOTHER", "CSOTHER-1", "b2", "0");
    assert_eq!(w.kinds_received(), ["instance.created", "instance.created", "instance.released"]);
    assert_eq!(w.record(&id)["outbox"], serde_json::json!([]));
}

#[test]
fn a_dead_lettered_event_stops_blocking_its_instance_and_can_be_redriven() {
    let mut w = World::forward_with_admin();
    w.cfg.outbox_max_attempts = 2;
    let id = w.new_instance("CSD", "CSD-1", "b1", "0")["instanceId"].as_str().unwrap_or("").to_owned();
    *w.backend.refuse.borrow_mut() = Some("instance.renewed".into());
    let renew = serde_json::json!({"activity":"refreshInstance","scene":"RENEWAL","orderId":"R1","orderLineId":"R1-1",
        "instanceId":id,"expireTime":"20301124023618"});
    assert_eq!(code(&w.v2(renew)), "000000");
    // The freeze waits behind the renewal; the renewal's second failure dead-letters it and the freeze goes.
    let freeze = serde_json::json!({"activity":"updateInstanceStatus","instanceId":id,"status":"FREEZE"});
    assert_eq!(code(&w.v2(freeze)), "000000");
    assert_eq!(w.kinds_received(), ["instance.created", "instance.frozen"]);
    let (_, listing) = w.admin("GET", "/produce/outbox", Some(ADMIN));
    assert_eq!(listing["waiting"], serde_json::json!([]), "{listing}");
    assert_eq!(listing["deadLettered"][0]["type"], "instance.renewed", "{listing}");
    assert_eq!(listing["deadLettered"][0]["lastError"], "HTTP 503");
    // The backend is fixed; the operator re-drives.
    *w.backend.refuse.borrow_mut() = None;
    let (status, report) = w.admin("POST", "/produce/outbox/redrive", Some(ADMIN));
    assert_eq!((status, report["requeued"].clone(), report["delivered"].clone()), (200, 1.into(), 1.into()));
    assert_eq!(w.kinds_received(), ["instance.created", "instance.frozen", "instance.renewed"]);
    let rec = w.record(&id);
    assert_eq!((rec["outbox"].clone(), rec.get("deadLetters")), (serde_json::json!([]), None), "{rec}");
}

#[test]
fn operator_routes_need_the_configured_token() {
    let w = World::forward();
    let (status, body) = w.admin("POST", "/produce/outbox/drain", Some(ADMIN));
    assert_eq!((status, body["error"].as_str()), (503, Some("not configured: set admin_token")));
    let w = World::forward_with_admin();
    for token in [None, Some("operator-token-2"), Some("")] {
        let (status, body) = w.admin("GET", "/produce/outbox", token);
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(!body.to_string().contains(ADMIN));
    }
}

#[test]
fn a_slow_backend_is_cut_off_by_the_request_deadline() {
    // The per-call budget passed to the backend never exceeds what is left of the deadline.
    let mut w = World::forward();
    w.cfg.request_deadline_ms = 1_000;
    if let Some(b) = w.cfg.backend.as_mut() {
        b.timeout_ms = 60_000;
    }
    w.new_instance("CSS", "CSS-1", "b1", "0");
    let seen = w.backend.timeouts.borrow();
    assert!(!seen.is_empty() && seen.iter().all(|t| *t <= 900), "{seen:?}");
}

#[test]
fn order_notifications_reach_the_backend_before_the_marketplace_is_told_success() {
    let w = World::forward();
    let notify = serde_json::json!({"activity":"orderNotify","orderId":"CSN","orderLineId":"CSN-1","testFlag":"0"});
    w.backend.down.set(true);
    assert_eq!(code(&w.v2(notify.clone())), "000005", "not taken: the marketplace retries");
    w.backend.down.set(false);
    w.clock.0.set(w.clock.0.get() + 60_000);
    assert_eq!(code(&w.v2(notify.clone())), "000000");
    assert_eq!(code(&w.v2(notify)), "000000", "a repeat is answered without sending again");
    let sent: Vec<Vec<u8>> = w.backend.received.borrow().iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(sent.len(), 1, "delivered once");
    let event: Value = serde_json::from_slice(&sent[0]).expect("json");
    assert_eq!(
        (event["type"].as_str(), event["data"]["orderLineId"].as_str()),
        (Some("order.notified"), Some("CSN-1"))
    );
    assert_eq!(event["timestamp"], T0, "the first notification's time, so every attempt sends the same body");
}

#[test]
fn the_backend_decides_a_change_check_in_forward_mode() {
    let w = World::forward();
    let id = w.new_instance("CSC", "CSC-1", "b1", "0")["instanceId"].as_str().unwrap_or("").to_owned();
    let check = serde_json::json!({"activity":"changeInstanceCheck","instanceId":id,"productInfo":{"productId":"P2","skuCode":"S2"}});
    assert_eq!(code(&w.v2(check.clone())), "000000");
    let last = w.backend.received.borrow().last().map(|(_, b)| b.clone()).unwrap_or_default();
    let event: Value = serde_json::from_slice(&last).expect("json");
    assert_eq!(event["type"], "instance.change_check");
    assert_eq!(event["data"]["productInfo"]["skuCode"], "S2");
    *w.backend.refuse.borrow_mut() = Some("instance.change_check".into());
    assert_eq!(code(&w.v2(check)), "000005", "refused by the seller's system");
}

#[test]
fn a_backend_app_info_the_marketplace_would_refuse_is_not_accepted() {
    let w = World::forward();
    *w.backend.reply.borrow_mut() =
        serde_json::to_vec(&serde_json::json!({"appInfo":{"frontEndUrl": format!("https://a/{}", "x".repeat(600))}}))
            .expect("json");
    let id = w.new_instance("CSL", "CSL-1", "b1", "0")["instanceId"].as_str().unwrap_or("").to_owned();
    assert_eq!(code(&w.v2(serde_json::json!({"activity":"queryInstance","instanceId":id}))), "000004");
    let rec = w.record(&id);
    let reason = rec["outbox"][0]["lastError"].as_str().unwrap_or("");
    assert!(reason.contains("frontEndUrl is longer than 512"), "{rec}");
}

#[test]
fn a_debug_call_never_changes_a_production_instance() {
    let w = World::built_in();
    let id = w.new_instance("CSLIVE", "CSLIVE-1", "b1", "0")["instanceId"].as_str().expect("id").to_owned();
    for body in [
        serde_json::json!({"activity":"updateInstanceStatus","instanceId":id,"status":"FREEZE","testFlag":"1"}),
        serde_json::json!({"activity":"releaseInstance","instanceId":id,"testFlag":"1"}),
    ] {
        assert_eq!(code(&w.v2(body)), "000000", "acknowledged");
    }
    assert_eq!(w.record(&id)["status"]["state"], "active", "{}", w.record(&id));
    assert!(!w.store.snapshot().keys().any(|k| k.starts_with("test/instance/")));
}

#[test]
fn a_v1_replay_with_a_re_encoded_auth_token_is_still_a_replay() {
    let w = World::built_in();
    let stamp = format_compact_utc(T0, Precision::Millis17);
    let new = [
        ("activity", "newInstance"),
        ("businessId", "b"),
        ("customerId", "c"),
        ("expireTime", "20300727153156"),
        ("orderId", "CSV1R"),
        ("productId", "P1"),
        ("testFlag", "0"),
        ("timeStamp", stamp.as_str()),
    ];
    let created = w.send(&w.mp.v1("/produce", &new)).0;
    let id = created["instanceId"].as_str().expect("id").to_owned();
    // Find an expireInstance URL whose authToken has a '+' (some timeStamp gives one).
    let (expire, stamp) = (0..200u64)
        .map(|i| {
            let s = format_compact_utc(T0 + i, Precision::Millis17);
            let params = [
                ("activity", "expireInstance"),
                ("instanceId", id.as_str()),
                ("orderId", "CSV1R"),
                ("testFlag", "0"),
                ("timeStamp", s.as_str()),
            ];
            (w.mp.v1("/produce", &params), s)
        })
        .find(|(req, _)| req.query.contains("%2B"))
        .expect("a token with '+'");
    assert_eq!(code(&w.send(&expire).0), "000000");
    let renew = [
        ("activity", "refreshInstance"),
        ("instanceId", id.as_str()),
        ("orderId", "R1"),
        ("expireTime", "20310101000000"),
        ("testFlag", "0"),
        ("timeStamp", stamp.as_str()),
    ];
    assert_eq!(code(&w.send(&w.mp.v1("/produce", &renew)).0), "000000");
    assert_eq!(w.record(&id)["status"]["state"], "active", "the V1 renewal ended the freeze");
    // The old expireInstance URL, with its token's '+' sent literally instead of as %2B: acknowledged, not applied.
    let mut replay = expire.clone();
    replay.query = replay.query.replace("%2B", "+");
    assert_eq!(code(&w.send(&replay).0), "000000");
    assert_eq!(w.record(&id)["status"]["state"], "active", "the replay did not freeze the instance again");
}
