//! Forward mode of the kit syncs through the Wasm components: an event the backend could not take waits in the
//! durable outbox, is listed for the operator, and reaches the backend with the same `webhook-id` when the backend
//! is back — through the production interface's drain route, without the marketplace calling again.

use std::sync::Arc;

use conformance::{Endpoint, FlakyBackend, Outage, WasmEndpoint, WasmOptions, code, json};
use koogallery_core::http::Inbound;
use koogallery_core::marketplace::Marketplace;
use serde_json::json as j;

const KIT_KEY: &str = "kit-key-for-the-outbox-test";
const ADMIN: &str = "operator-token";

fn tenant_sync(ep: &WasmEndpoint, flag: i64, name: &str) -> koogallery_core::http::Outbound {
    let body = j!({
        "instanceId": "i-outbox", "orderId": "o-1", "tenantId": "t-outbox", "tenantCode": "outbox",
        "name": name, "domainName": "outbox.tenantaccount.example.com", "flag": flag, "testFlag": 0,
        "timeStamp": "20231114221320000",
    });
    let mp = Marketplace::from_key(KIT_KEY).unwrap_or_else(|| panic!("key"));
    let nonce = koogallery_core::marketplace::fresh_nonce();
    ep.send(&mp.kit("/produceAPI/v2/tenantSync", body.to_string().as_bytes(), ep.now(), &nonce))
}

fn operator(ep: &WasmEndpoint, method: &str, path: &str) -> serde_json::Value {
    let req = Inbound {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        headers: vec![("authorization".into(), format!("Bearer {ADMIN}"))],
        body: vec![],
    };
    let out = ep.send(&req);
    assert_eq!(out.status, 200, "{method} {path}: {}", String::from_utf8_lossy(&out.body));
    json(&out)
}

#[test]
fn a_kit_event_waits_for_a_down_backend_and_the_drain_route_delivers_it_once() {
    let backend = Arc::new(FlakyBackend::new(Outage::Unavailable, b""));
    let opts = WasmOptions {
        variables: vec![
            ("kit_access_keys".into(), KIT_KEY.into()),
            ("admin_token".into(), ADMIN.into()),
            ("backend_url".into(), "http://backend.test/events".into()),
            ("backend_origin".into(), "http://backend.test".into()),
            ("backend_secret".into(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
        ],
        outbound: Some(backend.clone()),
        ..WasmOptions::default()
    };
    let ep = WasmEndpoint::new(opts).unwrap_or_else(|e| panic!("{e:#}"));

    // The backend is down: the marketplace is still told 000000 (the change is stored), and the event waits.
    assert_eq!(code(&tenant_sync(&ep, 1, "Outbox Ltd")), "000000");
    assert!(backend.delivered().is_empty());
    let listed = operator(&ep, "GET", "/produce/outbox");
    let waiting = listed["waiting"].as_array().cloned().unwrap_or_default();
    assert_eq!(waiting.len(), 1, "{listed}");
    assert_eq!(
        (waiting[0]["type"].as_str(), waiting[0]["tenantId"].as_str()),
        (Some("tenant.created"), Some("t-outbox"))
    );

    // A repeat of the same add changes nothing and queues nothing new.
    assert_eq!(code(&tenant_sync(&ep, 1, "Outbox Ltd")), "000000");
    let listed = operator(&ep, "GET", "/produce/outbox");
    assert_eq!(listed["waiting"].as_array().map(Vec::len), Some(1), "{listed}");

    // The backend is back; the marketplace never calls again. An operator's scheduler drains.
    backend.set_up(true);
    ep.set_now(ep.now() + 3_600_000);
    let drained = operator(&ep, "POST", "/produce/outbox/drain");
    let delivered = backend.delivered();
    assert_eq!(delivered.len(), 1, "{drained}");
    let event: serde_json::Value = serde_json::from_slice(&delivered[0].1).unwrap_or_default();
    assert_eq!(event["type"], "tenant.created");
    assert_eq!(event["data"]["domainUrl"], "https://outbox.tenantaccount.example.com");
    let attempts = backend.attempts();
    assert!(attempts.len() >= 2);
    assert!(attempts.iter().all(|(id, body)| *id == attempts[0].0 && *body == attempts[0].1), "same id and body");
    assert_eq!(operator(&ep, "GET", "/produce/outbox")["waiting"], j!([]));

    // The next change goes straight through, with its own id.
    assert_eq!(code(&tenant_sync(&ep, 2, "Outbox Group")), "000000");
    let delivered = backend.delivered();
    assert_eq!(delivered.len(), 2);
    assert_ne!(delivered[0].0, delivered[1].0);
    let event: serde_json::Value = serde_json::from_slice(&delivered[1].1).unwrap_or_default();
    assert_eq!(
        (event["type"].as_str(), event["data"]["name"].as_str()),
        (Some("tenant.updated"), Some("Outbox Group"))
    );
}
