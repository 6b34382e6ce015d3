//! Forward mode through the Wasm component: the seller's backend fails, then recovers; the creation event reaches
//! it with the same `webhook-id` on every attempt, nothing is lost, and the instance becomes ready only then.

use std::sync::Arc;

use conformance::{Endpoint, FlakyBackend, Lifecycle, Outage, WasmEndpoint, WasmOptions, code, json};
use serde_json::json as j;

#[test]
fn failing_then_recovering_backend_gets_every_event_once_with_a_stable_id() {
    let backend = Arc::new(FlakyBackend::new(
        Outage::Refused,
        br#"{"appInfo":{"frontEndUrl":"https://tenant.example.com/login","userName":"owner","password":"S3cret!x"}}"#,
    ));
    let opts = WasmOptions {
        variables: vec![
            ("backend_url".into(), "http://backend.test/events".into()),
            ("backend_origin".into(), "http://backend.test".into()),
            ("backend_secret".into(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
        ],
        outbound: Some(backend.clone()),
        ..WasmOptions::default()
    };
    let ep = match WasmEndpoint::new(opts) {
        Ok(ep) => ep,
        Err(e) => panic!("{e:#}"),
    };
    let signer = Lifecycle::default();
    let created = signer
        .send(&ep, &j!({"activity":"newInstance","orderId":"CSFWD","orderLineId":"CSFWD-000001","businessId":"b1"}));
    assert_eq!(code(&created), "000000");
    let id = json(&created)["instanceId"].as_str().unwrap_or("").to_owned();

    // Backend down: the instance stays pending and the marketplace is told to come back.
    let query = j!({"activity":"queryInstance","instanceId":id});
    assert_eq!(code(&signer.send(&ep, &query)), "000004");
    assert_eq!(code(&signer.send(&ep, &query)), "000004");
    let retry = signer
        .send(&ep, &j!({"activity":"newInstance","orderId":"CSFWD","orderLineId":"CSFWD-000001","businessId":"b2"}));
    assert_eq!(json(&retry)["instanceId"].as_str(), Some(id.as_str()));
    assert!(backend.delivered().is_empty());

    // Backend back: the next poll delivers the event and returns the backend's login information.
    backend.set_up(true);
    let ready = signer.send(&ep, &query);
    assert_eq!(code(&ready), "000000");
    assert_eq!(json(&ready)["info"][0]["appInfo"]["frontEndUrl"], "https://tenant.example.com/login");

    let attempts = backend.attempts();
    let delivered = backend.delivered();
    assert!(attempts.len() >= 4, "every request retried delivery: {}", attempts.len());
    assert!(attempts.iter().all(|(aid, body)| *aid == attempts[0].0 && *body == attempts[0].1), "same id and body");
    assert_eq!(delivered.len(), 1);
    let event: serde_json::Value = serde_json::from_slice(&delivered[0].1).unwrap_or_default();
    assert_eq!(event["type"], "instance.created");
    assert_eq!(event["data"]["instanceId"].as_str(), Some(id.as_str()));

    // Nothing left in the outbox; the next event goes straight through.
    let freeze = signer.send(&ep, &j!({"activity":"updateInstanceStatus","instanceId":id,"status":"FREEZE"}));
    assert_eq!(code(&freeze), "000000");
    let delivered = backend.delivered();
    assert_eq!(delivered.len(), 2);
    let record = ep.value(&format!("live/instance/{id}")).unwrap_or_default();
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap_or_default();
    assert_eq!(record["outbox"], j!([]));
}
