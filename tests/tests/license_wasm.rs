//! The `license` component through the harness (wasmtime): the marketplace's license callbacks (V2 signed, as
//! KooGallery signs them) and the activate/heartbeat proxy against the harness's mock marketplace OpenAPI over real
//! HTTP, which verifies the AK/SK signature with its own implementation and answers the documented codes.

use conformance::{Endpoint as _, WasmEndpoint, WasmOptions};
use harness::marketplace::{Endpoint, Failure, LicenseSpec, MarketplaceConfig, MockMarketplace, SEED_LICENSE};
use koogallery_core::http::{Inbound, Outbound};
use koogallery_core::marketplace::{Marketplace, fresh_nonce};
use koogallery_core::signing::body_sign;
use koogallery_core::signing::keys::SecretKey;
use serde_json::{Value, json};

const OPENAPI_AK: &str = "seller-ak";
const OPENAPI_SK: &str = "seller-sk-0123456789";
const CLIENT_TOKEN: &str = "software-token";

struct World {
    ep: WasmEndpoint,
    mock: MockMarketplace,
    market: Marketplace,
}

impl World {
    fn new(extra: &[(&str, &str)]) -> Self {
        let config =
            MarketplaceConfig { max_clock_skew: None, ..MarketplaceConfig::new(OPENAPI_AK, OPENAPI_SK, "unused") };
        let mock = MockMarketplace::start_in_background(config).unwrap_or_else(|e| panic!("mock: {e:#}"));
        let mut variables: Vec<(String, String)> = vec![
            ("openapi_endpoint".into(), mock.base_url()),
            ("openapi_fallback_endpoint".into(), "none".into()),
            ("openapi_ak".into(), OPENAPI_AK.into()),
            ("openapi_sk".into(), OPENAPI_SK.into()),
        ];
        for (k, v) in extra {
            variables.retain(|(name, _)| name != k);
            variables.push(((*k).to_owned(), (*v).to_owned()));
        }
        let ep = WasmEndpoint::new(WasmOptions { variables, ..Default::default() }).unwrap_or_else(|e| panic!("{e:#}"));
        let market = Marketplace::from_key(conformance::AK).expect("test key");
        Self { ep, mock, market }
    }

    /// A callback as KooGallery sends it; answers `(resultCode, answer)` after checking the answer's `Body-Sign`.
    fn callback(&self, body: &Value) -> (String, Outbound) {
        let req = self.market.v2("/license", body.to_string().as_bytes(), self.ep.now(), &fresh_nonce());
        let out = self.ep.send(&req);
        assert_eq!(out.status, 200);
        let expected = body_sign::header_value(&SecretKey::new(conformance::AK), &out.body);
        assert_eq!(out.header("body-sign"), Some(expected.as_str()), "every answer is Body-Signed");
        let v: Value = serde_json::from_slice(&out.body).unwrap_or(Value::Null);
        (v["resultCode"].as_str().unwrap_or("").to_owned(), out)
    }

    fn software(&self, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(t) = token {
            headers.push(("authorization".into(), format!("Bearer {t}")));
        }
        let req = Inbound {
            method: "POST".into(),
            path: path.into(),
            query: String::new(),
            headers,
            body: body.to_string().into_bytes(),
        };
        let out = self.ep.send(&req);
        (out.status, serde_json::from_slice(&out.body).unwrap_or(Value::Null))
    }

    fn record(&self, license: &str) -> Option<Value> {
        self.ep.value(&format!("live/license/{license}")).and_then(|b| serde_json::from_slice(&b).ok())
    }
}

#[test]
fn activation_is_proxied_signed_recorded_and_mapped() {
    let w = World::new(&[]);
    let (status, answer) = w.software("/license/activate", &json!({"license": SEED_LICENSE}), None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["license"]["status"], "ALIVE");
    assert_eq!(answer["license"]["order_id"], "CS123");
    let received = w.mock.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].auth.is_ok(), "the mock verified the AK/SK signature: {:?}", received[0].auth);
    assert_eq!(received[0].ak.as_deref(), Some(OPENAPI_AK));
    assert!(w.mock.license(SEED_LICENSE).is_some_and(|l| l.activated));
    let record = w.record(SEED_LICENSE).expect("recorded");
    assert_eq!((record["state"].as_str(), record["order_id"].as_str()), (Some("alive"), Some("CS123")));

    // The documented refusals, each mapped to a clear answer.
    let (status, answer) = w.software("/license/activate", &json!({"license": SEED_LICENSE}), None);
    assert_eq!(
        (status, answer["error"].as_str(), answer["code"].as_str()),
        (409, Some("already_activated"), Some("92020003"))
    );
    let (status, answer) = w.software("/license/activate", &json!({"license": "NO-SUCH-CODE"}), None);
    assert_eq!(
        (status, answer["error"].as_str(), answer["code"].as_str()),
        (404, Some("license_not_found"), Some("92020005"))
    );
    let (status, answer) = w.software("/license/activate", &json!({"license": "MOCK-LICENSE-NOTRECEIVED"}), None);
    assert_eq!((status, answer["error"].as_str()), (409, Some("not_received")));
    // Bad input is refused before the marketplace is called.
    let calls = w.mock.received().len();
    for body in [
        json!({}),
        json!({"license": ""}),
        json!({"license": "x".repeat(65)}),
        json!({"license": "A", "real_effect_time": "2023"}),
    ] {
        let (status, answer) = w.software("/license/activate", &body, None);
        assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_request")), "{body}");
    }
    assert_eq!(w.mock.received().len(), calls);
}

#[test]
fn heartbeat_and_marketplace_failures() {
    let w = World::new(&[]);
    let (status, answer) = w.software("/license/heartbeat", &json!({"license": SEED_LICENSE}), None);
    assert_eq!(
        (status, answer["error"].as_str(), answer["code"].as_str()),
        (409, Some("not_activated"), Some("92020011"))
    );
    w.software("/license/activate", &json!({"license": SEED_LICENSE}), None);
    let (status, answer) = w.software(
        "/license/heartbeat",
        &json!({"license": SEED_LICENSE, "heartbeatInfo": {"thirdPartyAccount": "acct-1"}}),
        None,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["license"]["status"], "ALIVE");
    // A freeze the marketplace's heartbeat does not report is in the answer's local view.
    let (code, _) = w.callback(&json!({"license": SEED_LICENSE, "status": "FREEZE"}));
    assert_eq!(code, "000000");
    let (_, answer) = w.software("/license/heartbeat", &json!({"license": SEED_LICENSE}), None);
    assert_eq!(
        (answer["license"]["status"].as_str(), answer["local"]["state"].as_str()),
        (Some("ALIVE"), Some("frozen"))
    );
    w.mock.set_license_status(SEED_LICENSE, "RELEASED");
    let (_, answer) = w.software("/license/heartbeat", &json!({"license": SEED_LICENSE}), None);
    assert_eq!(answer["license"]["status"], "RELEASED");
    assert_eq!(answer["local"]["state"], "released", "a release the heartbeat reports is recorded");
    // 92020001 means different things by HTTP status.
    w.mock.fail_next(Endpoint::LicenseHeartbeat, 1, Failure::Status { status: 403, code: "92020001".into() });
    let (status, answer) = w.software("/license/heartbeat", &json!({"license": SEED_LICENSE}), None);
    assert_eq!((status, answer["error"].as_str()), (502, Some("marketplace_refused_credentials")));
    w.mock.fail_next(Endpoint::LicenseHeartbeat, 1, Failure::Status { status: 500, code: "92020001".into() });
    let (status, answer) = w.software("/license/heartbeat", &json!({"license": SEED_LICENSE}), None);
    assert_eq!((status, answer["error"].as_str()), (503, Some("marketplace_unavailable")));
    w.mock.fail_next(Endpoint::LicenseHeartbeat, 1, Failure::Status { status: 200, code: "92020001".into() });
    let (status, _) = w.software("/license/heartbeat", &json!({"license": SEED_LICENSE}), None);
    assert_eq!(status, 503);
    w.mock.fail_next(Endpoint::LicenseHeartbeat, 1, Failure::Status { status: 429, code: "".into() });
    let (status, _) = w.software("/license/heartbeat", &json!({"license": SEED_LICENSE}), None);
    assert_eq!(status, 503, "429: try again later");
    w.mock.fail_next(Endpoint::LicenseHeartbeat, 1, Failure::Status { status: 415, code: "95000003".into() });
    let (status, answer) = w.software("/license/heartbeat", &json!({"license": SEED_LICENSE}), None);
    assert_eq!(
        (status, answer["error"].as_str()),
        (502, Some("marketplace_error")),
        "the component's own request was refused: {answer}"
    );
    w.mock.fail_next(Endpoint::LicenseHeartbeat, 1, Failure::Close);
    let (status, answer) = w.software("/license/heartbeat", &json!({"license": SEED_LICENSE}), None);
    assert_eq!((status, answer["error"].as_str()), (503, Some("marketplace_unavailable")));
    // A wrong SK: the mock refuses (403 92020001), the software is told the seller's credentials are wrong.
    let wrong = World::new(&[("openapi_sk", "not-the-sk")]);
    let (status, answer) = wrong.software("/license/activate", &json!({"license": SEED_LICENSE}), None);
    assert_eq!((status, answer["error"].as_str()), (502, Some("marketplace_refused_credentials")), "{answer}");
    assert!(wrong.mock.received()[0].auth.is_err());
}

#[test]
fn the_client_token_guards_the_proxy_and_unconfigured_openapi_is_named() {
    let w = World::new(&[("license_client_token", CLIENT_TOKEN)]);
    for token in [None, Some("wrong")] {
        let (status, _) = w.software("/license/activate", &json!({"license": SEED_LICENSE}), token);
        assert_eq!(status, 401);
    }
    assert!(w.mock.received().is_empty());
    let (status, _) = w.software("/license/activate", &json!({"license": SEED_LICENSE}), Some(CLIENT_TOKEN));
    assert_eq!(status, 200);
    let unconfigured = World::new(&[("openapi_ak", "")]);
    let (status, answer) = unconfigured.software("/license/activate", &json!({"license": SEED_LICENSE}), None);
    assert_eq!((status, answer["message"].as_str()), (500, Some("not configured: set openapi_ak")));
    // The callbacks do not need the OpenAPI.
    let (code, _) = unconfigured.callback(&json!({"activity": "releaseLicense", "license": "L-1"}));
    assert_eq!(code, "000000");
}

#[test]
fn callbacks_change_the_record_once_and_answer_signed() {
    let w = World::new(&[]);
    // Unknown license: an expiry or status change is 000003, nothing stored.
    let (code, _) = w.callback(&json!({"activity": "x", "license": SEED_LICENSE, "expireTime": "20310101000000"}));
    assert_eq!(code, "000003");
    let (code, _) = w.callback(&json!({"license": SEED_LICENSE, "status": "FREEZE"}));
    assert_eq!(code, "000003");
    assert!(w.record(SEED_LICENSE).is_none());
    w.software("/license/activate", &json!({"license": SEED_LICENSE}), None);
    // Expiry update (14 or 17 digits), repeated: same answer, same record.
    let update =
        json!({"license": SEED_LICENSE, "expireTime": "20310101000000000", "orderId": "CS124", "scene": "RENEWAL"});
    assert_eq!(w.callback(&update).0, "000000");
    let once = w.record(SEED_LICENSE).expect("record");
    assert_eq!(once["expire_ms"], 1_924_992_000_000u64);
    assert_eq!(w.callback(&update).0, "000000");
    assert_eq!(w.record(SEED_LICENSE), Some(once.clone()), "a repeated callback changes nothing");
    // Freeze, freeze again, unfreeze.
    assert_eq!(w.callback(&json!({"license": SEED_LICENSE, "status": "FREEZE"})).0, "000000");
    assert_eq!(w.record(SEED_LICENSE).map(|r| r["state"].clone()), Some(json!("frozen")));
    assert_eq!(w.callback(&json!({"license": SEED_LICENSE, "status": "FREEZE"})).0, "000000");
    assert_eq!(w.callback(&json!({"license": SEED_LICENSE, "status": "UNFREEZE"})).0, "000000");
    assert_eq!(w.record(SEED_LICENSE).map(|r| r["state"].clone()), Some(json!("alive")));
    // Release is terminal: later callbacks change nothing.
    assert_eq!(w.callback(&json!({"license": SEED_LICENSE})).0, "000000");
    assert_eq!(w.callback(&json!({"license": SEED_LICENSE, "status": "UNFREEZE"})).0, "000000");
    assert_eq!(w.record(SEED_LICENSE).map(|r| r["state"].clone()), Some(json!("released")));
    // Debug traffic lives apart, and (having no activation) its first callback creates the record.
    assert_eq!(w.callback(&json!({"license": "T-1", "testFlag": "1", "expireTime": "20310101000000"})).0, "000000");
    assert_eq!(w.callback(&json!({"license": "T-1", "testFlag": "1", "status": "FREEZE"})).0, "000000");
    let debug: Value =
        w.ep.value("test/license/T-1").and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
    assert_eq!((debug["state"].as_str(), debug["expire_ms"].as_u64()), (Some("frozen"), Some(1_924_992_000_000)));
    assert!(w.record("T-1").is_none());
}

#[test]
fn bad_callbacks_are_refused_and_change_nothing() {
    let w = World::new(&[("license_activities", "expiry=updateLicense,status=changeLicense,release=releaseLicense")]);
    w.software("/license/activate", &json!({"license": SEED_LICENSE}), None);
    let untouched = w.record(SEED_LICENSE);
    // Wrong key, tampered body, replayed nonce.
    let body = json!({"license": SEED_LICENSE, "status": "FREEZE"}).to_string();
    let other = Marketplace::from_key("ffffffffffffffffffffffffffffffff").expect("key");
    let out = w.ep.send(&other.v2("/license", body.as_bytes(), w.ep.now(), &fresh_nonce()));
    assert!(String::from_utf8_lossy(&out.body).contains("000001"));
    let mut tampered = w.market.v2("/license", body.as_bytes(), w.ep.now(), &fresh_nonce());
    tampered.body = body.replace("FREEZE", "UNFREEZE").into_bytes();
    assert!(String::from_utf8_lossy(&w.ep.send(&tampered).body).contains("000001"));
    assert_eq!(w.record(SEED_LICENSE), untouched, "a refused callback changed the record");
    let nonce = fresh_nonce();
    let signed = w.market.v2("/license", body.as_bytes(), w.ep.now(), &nonce);
    assert!(String::from_utf8_lossy(&w.ep.send(&signed).body).contains("000000"));
    assert!(String::from_utf8_lossy(&w.ep.send(&signed).body).contains("000001"), "a replayed nonce is refused");
    w.callback(&json!({"license": SEED_LICENSE, "status": "UNFREEZE"}));
    let before = w.record(SEED_LICENSE);
    // Invalid fields: 000002 naming them.
    for (body, field) in [
        (json!({"status": "FREEZE"}), "license"),
        (json!({"license": SEED_LICENSE, "status": "PAUSE"}), "status"),
        (json!({"license": SEED_LICENSE, "expireTime": "2031"}), "expireTime"),
        (json!({"activity": "updateLicense", "license": SEED_LICENSE}), "expireTime"),
        (json!({"activity": "changeLicense", "license": SEED_LICENSE, "expireTime": "20310101000000"}), "status"),
        // Blank or unexpected fields are never read as a release (which cannot be undone).
        (json!({"activity": "releaseLicense", "license": SEED_LICENSE, "status": ""}), "status is empty"),
        (json!({"activity": "releaseLicense", "license": SEED_LICENSE, "expireTime": null}), "expireTime is empty"),
        (json!({"activity": "releaseLicense", "license": SEED_LICENSE, "licenseStatus": "FREEZE"}), "licenseStatus"),
        // With names configured, an activity not among them is refused.
        (json!({"activity": "somethingElse", "license": SEED_LICENSE}), "license_activities"),
    ] {
        let (code, out) = w.callback(&body);
        assert_eq!(code, "000002", "{body}");
        assert!(String::from_utf8_lossy(&out.body).contains(field), "{body}: {}", String::from_utf8_lossy(&out.body));
    }
    assert_eq!(w.record(SEED_LICENSE), before, "nothing changed");
    // A configured name must agree with the fields: the release name with a status field is refused.
    let (code, _) = w.callback(&json!({"activity": "releaseLicense", "license": SEED_LICENSE, "status": "FREEZE"}));
    assert_eq!(code, "000002");
    assert_eq!(w.record(SEED_LICENSE), before, "nothing changed");
}

#[test]
fn a_license_added_to_the_mock_activates_with_its_details() {
    let w = World::new(&[]);
    let spec = LicenseSpec {
        product_id: "OFFI-PRO".into(),
        order_id: "CS999".into(),
        amount: 5,
        expire_time: "20301231235959".into(),
        received: true,
    };
    w.mock.add_license("LIC-CUSTOM-1", spec);
    let (status, answer) = w.software(
        "/license/activate",
        &json!({"license": "LIC-CUSTOM-1", "real_effect_time": "20231114221320"}),
        None,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["license"]["product_id"].as_str(), answer["license"]["amount"].as_i64()),
        (Some("OFFI-PRO"), Some(5))
    );
    let record = w.record("LIC-CUSTOM-1").expect("recorded");
    assert_eq!((record["product_id"].as_str(), record["amount"].as_i64()), (Some("OFFI-PRO"), Some(5)));
    assert_eq!(w.mock.received()[0].json().map(|b| b["real_effect_time"].clone()), Some(json!("20231114221320")));
}
