//! Query order driving the production interface, through the `produce` component (wasmtime) and the harness's mock
//! marketplace OpenAPI over real HTTP. With `openapi_ak` set, a V2 `newInstance` (which does not say what was bought)
//! is keyed on `orderId` + `productId` when the marketplace says its line is on-demand, and on the order line
//! otherwise; the order is kept with the instance and reaches the seller's backend; a marketplace that cannot answer
//! gets `000005` (it retries) and nothing is created. The mock checks every query's AK/SK signature with its own
//! implementation of the canonical request.

use std::sync::Arc;

use conformance::{Endpoint as _, FlakyBackend, Lifecycle, Outage, RouteHost, WasmEndpoint, WasmOptions, code, json};
use harness::KvBackend;
use harness::marketplace::{Endpoint, Failure, MarketplaceConfig, MockMarketplace, Received};
use koogallery_core::identity::{instance_id_for_on_demand, instance_id_for_order_line};
use serde_json::{Value, json as j};

const OPENAPI_AK: &str = "seller-ak";
const OPENAPI_SK: &str = "seller-sk-0123456789";

fn mock() -> MockMarketplace {
    // The component runs on a virtual clock: the mock does not compare X-Sdk-Date with its own.
    let config =
        MarketplaceConfig { max_clock_skew: None, ..MarketplaceConfig::new(OPENAPI_AK, OPENAPI_SK, conformance::AK) };
    MockMarketplace::start_in_background(config).unwrap_or_else(|e| panic!("mock marketplace: {e:#}"))
}

/// The OpenAPI variables pointing at `mock` (no fallback).
fn openapi(mock: &MockMarketplace) -> Vec<(String, String)> {
    vec![
        ("openapi_endpoint".into(), mock.base_url()),
        ("openapi_fallback_endpoint".into(), "none".into()),
        ("openapi_ak".into(), OPENAPI_AK.into()),
        ("openapi_sk".into(), OPENAPI_SK.into()),
    ]
}

fn endpoint(opts: WasmOptions) -> WasmEndpoint {
    WasmEndpoint::new(opts).unwrap_or_else(|e| panic!("{e:#}"))
}

/// `newInstance` for an order line; returns the result code and the instance ID.
fn new_instance(ep: &WasmEndpoint, signer: &Lifecycle, order: &str, line: &str, business: &str) -> (String, String) {
    let out = signer.send(
        ep,
        &j!({"activity":"newInstance","orderId":order,"orderLineId":line,"businessId":business,"testFlag":"0"}),
    );
    (code(&out), json(&out)["instanceId"].as_str().unwrap_or("").to_owned())
}

fn queries(mock: &MockMarketplace) -> Vec<Received> {
    mock.received().into_iter().filter(|r| r.endpoint == Endpoint::QueryOrder).collect()
}

/// An order of the mock's with these `(orderLineId, chargingMode, productId)` lines.
fn order(order_id: &str, lines: &[(&str, &str, &str)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(line, mode, product)| j!({"orderLineId": line, "chargingMode": mode, "productInfo": [{"productId": product, "skuCode": "sku"}]}))
        .collect();
    j!({"orderId": order_id, "orderType": "NEW", "createTime": "20261130120000", "orderLine": lines,
        "buyerInfo": {"customerId": "c1", "customerName": "buyer"}})
}

#[test]
fn on_demand_lines_are_keyed_on_the_product_the_marketplace_names() {
    let mock = mock();
    let ep = endpoint(WasmOptions { variables: openapi(&mock), ..WasmOptions::default() });
    let signer = Lifecycle::default();

    // The documented mock orders: on-demand is keyed on its product, the others on their line.
    let (c, on_demand) = new_instance(&ep, &signer, "MOCKONDEMAND", "MOCKONDEMAND-000001", "b1");
    assert_eq!(c, "000000");
    assert_eq!(on_demand, instance_id_for_on_demand("MOCKONDEMAND", "OFFI-MOCKONDEMAND"));
    assert_ne!(on_demand, instance_id_for_order_line("MOCKONDEMAND", "MOCKONDEMAND-000001"));
    for order_id in ["MOCKPERIODYEARNEW", "MOCKONETIMENEW", "MOCKONDEMANDPKG", "MOCKPERIODDAYTRIAL"] {
        let line = format!("{order_id}-000001");
        let (c, id) = new_instance(&ep, &signer, order_id, &line, "b1");
        assert_eq!(c, "000000", "{order_id}");
        assert_eq!(id, instance_id_for_order_line(order_id, &line), "{order_id}");
    }

    // Every query was AK/SK signed as the mock checks it, for the order and line of its request.
    let asked = queries(&mock);
    assert_eq!(asked.len(), 5);
    for q in &asked {
        assert_eq!(q.auth, Ok(()), "signature of {}", q.query);
        assert_eq!(q.method, "GET");
        assert_eq!(q.code.as_deref(), Some("MKT.0000"));
    }
    assert_eq!(asked[0].query, "orderId=MOCKONDEMAND&orderLineId=MOCKONDEMAND-000001");

    // A retry (new businessId) gets the same instance; the instance is ready.
    let (c, again) = new_instance(&ep, &signer, "MOCKONDEMAND", "MOCKONDEMAND-000001", "b2");
    assert_eq!((c.as_str(), again.as_str()), ("000000", on_demand.as_str()));
    // The line's key was recorded: a later retry takes it without asking, even if the marketplace now refuses.
    let asked_before = queries(&mock).len();
    mock.fail_always(Endpoint::QueryOrder, Failure::Status { status: 401, code: "APIGW.0301".into() });
    let (c, refused_retry) = new_instance(&ep, &signer, "MOCKONDEMAND", "MOCKONDEMAND-000001", "b3");
    assert_eq!((c.as_str(), refused_retry.as_str()), ("000000", on_demand.as_str()));
    assert_eq!(queries(&mock).len(), asked_before, "a line with a recorded key is not queried again");
    mock.clear_failures();
    let ready = signer.send(&ep, &j!({"activity":"queryInstance","instanceId":on_demand}));
    assert_eq!(code(&ready), "000000");
    assert_eq!(json(&ready)["info"][0]["instanceId"].as_str(), Some(on_demand.as_str()));

    // One order, three on-demand lines: the two for one product are one instance, the other product its own.
    mock.add_order(
        "CSONDEMAND2",
        order(
            "CSONDEMAND2",
            &[
                ("CSONDEMAND2-1", "ON_DEMAND", "P-A"),
                ("CSONDEMAND2-2", "ON_DEMAND", "P-A"),
                ("CSONDEMAND2-3", "ON_DEMAND", "P-B"),
            ],
        ),
    );
    let ids: Vec<String> = ["CSONDEMAND2-1", "CSONDEMAND2-2", "CSONDEMAND2-3"]
        .iter()
        .map(|line| {
            let (c, id) = new_instance(&ep, &signer, "CSONDEMAND2", line, "b");
            assert_eq!(c, "000000", "{line}");
            id
        })
        .collect();
    assert_eq!(ids[0], ids[1], "one instance per on-demand product of an order");
    assert_ne!(ids[0], ids[2]);
    assert_eq!(ids[2], instance_id_for_on_demand("CSONDEMAND2", "P-B"));

    // Period lines of one product stay apart: each line is bought on its own.
    mock.add_order(
        "CSPERIOD2",
        order("CSPERIOD2", &[("CSPERIOD2-1", "PERIOD", "P-A"), ("CSPERIOD2-2", "PERIOD", "P-A")]),
    );
    let (_, first) = new_instance(&ep, &signer, "CSPERIOD2", "CSPERIOD2-1", "b");
    let (_, second) = new_instance(&ep, &signer, "CSPERIOD2", "CSPERIOD2-2", "b");
    assert_ne!(first, second);
    assert_eq!(second, instance_id_for_order_line("CSPERIOD2", "CSPERIOD2-2"));

    // An order the marketplace does not know (a debug order, say): a retry would not help, so the line key.
    let (c, unknown) = new_instance(&ep, &signer, "CSUNKNOWN", "CSUNKNOWN-000001", "b");
    assert_eq!(c, "000000");
    assert_eq!(unknown, instance_id_for_order_line("CSUNKNOWN", "CSUNKNOWN-000001"));
}

#[test]
fn without_openapi_credentials_nothing_is_queried_and_lines_are_keys() {
    let mock = mock();
    let mut variables = openapi(&mock);
    variables.retain(|(k, _)| k != "openapi_ak");
    let ep = endpoint(WasmOptions { variables, ..WasmOptions::default() });
    let (c, id) = new_instance(&ep, &Lifecycle::default(), "MOCKONDEMAND", "MOCKONDEMAND-000001", "b1");
    assert_eq!(c, "000000");
    assert_eq!(id, instance_id_for_order_line("MOCKONDEMAND", "MOCKONDEMAND-000001"));
    assert!(mock.received().is_empty());
}

#[test]
fn a_marketplace_that_cannot_answer_gets_000005_and_nothing_is_created_until_it_can() {
    let mock = mock();
    let ep = endpoint(WasmOptions { variables: openapi(&mock), ..WasmOptions::default() });
    let signer = Lifecycle::default();
    let expected = instance_id_for_on_demand("MOCKONDEMAND", "OFFI-MOCKONDEMAND");

    for failure in [
        Failure::Status { status: 503, code: "MKT.0999".into() },
        Failure::Status { status: 429, code: "APIGW.0308".into() },
        Failure::Status { status: 200, code: String::new() },
        Failure::Close,
    ] {
        mock.fail_next(Endpoint::QueryOrder, 1, failure.clone());
        let (c, _) = new_instance(&ep, &signer, "MOCKONDEMAND", "MOCKONDEMAND-000001", "b1");
        assert_eq!(c, "000005", "{failure:?}");
        assert!(
            !ep.keys().iter().any(|k| k.contains("/instance/")),
            "nothing is created while the order is unknown ({failure:?})"
        );
    }
    let unknown = signer.send(&ep, &j!({"activity":"queryInstance","instanceId":expected}));
    assert_eq!(code(&unknown), "000003");

    // The marketplace's retry, once the order can be read, creates the on-demand instance.
    let (c, id) = new_instance(&ep, &signer, "MOCKONDEMAND", "MOCKONDEMAND-000001", "b2");
    assert_eq!((c.as_str(), id.as_str()), ("000000", expected.as_str()));
    assert_eq!(queries(&mock).len(), 5);

    // A debug request (the dial tests) is never failed for the query: it takes its order line.
    mock.fail_always(Endpoint::QueryOrder, Failure::Status { status: 503, code: "MKT.0999".into() });
    let debug = signer.send(
        &ep,
        &j!({"activity":"newInstance","orderId":"MOCKONDEMAND","orderLineId":"MOCKONDEMAND-000001","businessId":"b3","testFlag":"1"}),
    );
    assert_eq!(code(&debug), "000000");
    assert_eq!(
        json(&debug)["instanceId"].as_str(),
        Some(instance_id_for_order_line("MOCKONDEMAND", "MOCKONDEMAND-000001").as_str())
    );
}

#[test]
fn a_short_request_deadline_still_leaves_the_query_its_time() {
    let mock = mock();
    let mut variables = openapi(&mock);
    variables.push(("request_deadline_ms".into(), "600".into()));
    let ep = endpoint(WasmOptions { variables, ..WasmOptions::default() });
    let (c, id) = new_instance(&ep, &Lifecycle::default(), "MOCKONDEMAND", "MOCKONDEMAND-000001", "b1");
    assert_eq!((c.as_str(), id), ("000000", instance_id_for_on_demand("MOCKONDEMAND", "OFFI-MOCKONDEMAND")));
}

#[test]
fn an_order_line_created_before_query_order_was_turned_on_keeps_its_instance() {
    let store: Arc<dyn KvBackend> = Arc::new(harness::MemoryKv::new());
    let signer = Lifecycle::default();
    let before = endpoint(WasmOptions { store: Some(Arc::clone(&store)), ..WasmOptions::default() });
    let (c, id) = new_instance(&before, &signer, "MOCKONDEMAND", "MOCKONDEMAND-000001", "b1");
    assert_eq!(c, "000000");
    assert_eq!(id, instance_id_for_order_line("MOCKONDEMAND", "MOCKONDEMAND-000001"));

    let mock = mock();
    let after = endpoint(WasmOptions { variables: openapi(&mock), store: Some(store), ..WasmOptions::default() });
    after.set_now(before.now());
    let (c, again) = new_instance(&after, &signer, "MOCKONDEMAND", "MOCKONDEMAND-000001", "b2");
    assert_eq!((c.as_str(), again.as_str()), ("000000", id.as_str()), "the same instance, not a second one");
    assert!(queries(&mock).is_empty(), "a known order line is not queried");
}

#[test]
fn forward_mode_events_carry_the_order_and_an_upgrade_reads_its_own() {
    let mock = mock();
    let backend = Arc::new(FlakyBackend::new(
        Outage::Refused,
        br#"{"appInfo":{"frontEndUrl":"https://tenant.example.com/login","userName":"owner","password":"S3cret!x"}}"#,
    ));
    backend.set_up(true);
    let mut variables = openapi(&mock);
    variables.extend([
        ("backend_url".to_owned(), "http://backend.test/events".to_owned()),
        ("backend_origin".to_owned(), "http://backend.test".to_owned()),
        ("backend_secret".to_owned(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
    ]);
    let outbound = Arc::new(RouteHost::new("backend.test", backend.clone()));
    let ep = endpoint(WasmOptions { variables, outbound: Some(outbound), ..WasmOptions::default() });
    let signer = Lifecycle::default();

    let (c, id) = new_instance(&ep, &signer, "MOCKONDEMAND", "MOCKONDEMAND-000001", "b1");
    assert_eq!(c, "000000");
    let events: Vec<Value> =
        backend.delivered().iter().map(|(_, body)| serde_json::from_slice(body).unwrap_or_default()).collect();
    assert_eq!(events.len(), 1);
    let data = &events[0]["data"];
    assert_eq!(events[0]["type"], "instance.created");
    assert_eq!(data["instanceId"].as_str(), Some(id.as_str()));
    assert_eq!(data["productId"], "OFFI-MOCKONDEMAND");
    let read = &data["details"]["queryOrder"];
    assert_eq!(read["orderId"], "MOCKONDEMAND");
    assert_eq!(read["orderLine"][0]["chargingMode"], "ON_DEMAND");
    assert_eq!(read["buyerInfo"]["customerName"], "mock_user_01");

    // An upgrade reads its own order: the new product reaches the backend with it; a repeat asks nothing.
    let upgrade = j!({"activity":"upgradeInstance","instanceId":id,"orderId":"MOCKMONTYCHANGE",
        "orderLineId":"MOCKMONTYCHANGE-000001","testFlag":"0"});
    mock.fail_next(Endpoint::QueryOrder, 1, Failure::Status { status: 502, code: "MKT.0999".into() });
    assert_eq!(code(&signer.send(&ep, &upgrade)), "000005", "the marketplace retries an upgrade it cannot describe");
    assert_eq!(backend.delivered().len(), 1);
    assert_eq!(code(&signer.send(&ep, &upgrade)), "000000");
    let asked = queries(&mock).len();
    assert_eq!(code(&signer.send(&ep, &upgrade)), "000000");
    assert_eq!(queries(&mock).len(), asked, "a repeated upgrade is not queried again");
    let delivered = backend.delivered();
    assert_eq!(delivered.len(), 2, "one upgrade event");
    let event: Value = serde_json::from_slice(&delivered[1].1).unwrap_or_default();
    assert_eq!(event["type"], "instance.upgraded");
    assert_eq!(event["data"]["productId"], "OFFI-MOCKMONTYCHANGE");
    assert_eq!(event["data"]["details"]["queryOrder"]["orderId"], "MOCKMONTYCHANGE");
    assert_eq!(event["data"]["eventOrderId"], "MOCKMONTYCHANGE");

    // An upgrade whose order the marketplace refuses is applied without an order: its event carries none (never
    // an earlier one).
    let unknown = j!({"activity":"upgradeInstance","instanceId":id,"orderId":"CSUNKNOWNUP",
        "orderLineId":"CSUNKNOWNUP-000001","testFlag":"0"});
    assert_eq!(code(&signer.send(&ep, &unknown)), "000000");
    let delivered = backend.delivered();
    assert_eq!(delivered.len(), 3);
    let event: Value = serde_json::from_slice(&delivered[2].1).unwrap_or_default();
    assert_eq!(
        (event["type"].as_str(), event["data"]["eventOrderId"].as_str()),
        (Some("instance.upgraded"), Some("CSUNKNOWNUP"))
    );
    assert!(event["data"].get("details").is_none(), "no order for this upgrade: {event}");

    // A debug upgrade of the production instance is only acknowledged: no query.
    let asked = queries(&mock).len();
    let debug = j!({"activity":"upgradeInstance","instanceId":id,"orderId":"MOCKMONTYRENEW",
        "orderLineId":"MOCKMONTYRENEW-000001","testFlag":"1"});
    assert_eq!(code(&signer.send(&ep, &debug)), "000000");
    assert_eq!(queries(&mock).len(), asked);
    assert_eq!(backend.delivered().len(), 3);

    // orderNotify for the on-demand line names the instance the line was keyed to.
    let notify =
        j!({"activity":"orderNotify","orderId":"MOCKONDEMAND","orderLineId":"MOCKONDEMAND-000001","testFlag":"0"});
    assert_eq!(code(&signer.send(&ep, &notify)), "000000");
    let delivered = backend.delivered();
    let event: Value = serde_json::from_slice(&delivered[delivered.len() - 1].1).unwrap_or_default();
    assert_eq!(event["type"], "order.notified");
    assert_eq!(event["data"]["instanceId"].as_str(), Some(id.as_str()));

    // Two lines of one order for one on-demand product share their instance, but not their notifications' ids.
    mock.add_order(
        "CSSHARED",
        order("CSSHARED", &[("CSSHARED-1", "ON_DEMAND", "P-S"), ("CSSHARED-2", "ON_DEMAND", "P-S")]),
    );
    let (_, first) = new_instance(&ep, &signer, "CSSHARED", "CSSHARED-1", "b1");
    let (_, second) = new_instance(&ep, &signer, "CSSHARED", "CSSHARED-2", "b2");
    assert_eq!(first, second);
    for line in ["CSSHARED-1", "CSSHARED-2"] {
        let notify = j!({"activity":"orderNotify","orderId":"CSSHARED","orderLineId":line,"testFlag":"0"});
        assert_eq!(code(&signer.send(&ep, &notify)), "000000", "{line}");
    }
    let notified: Vec<(String, Value)> = backend
        .delivered()
        .into_iter()
        .filter_map(|(id, body)| {
            let event: Value = serde_json::from_slice(&body).ok()?;
            (event["type"] == "order.notified" && event["data"]["orderId"] == "CSSHARED").then_some((id, event))
        })
        .collect();
    assert_eq!(notified.len(), 2, "each line's notification reaches the backend");
    assert_ne!(notified[0].0, notified[1].0, "a backend that deduplicates on webhook-id keeps both");
    assert!(notified.iter().all(|(_, e)| e["data"]["instanceId"].as_str() == Some(first.as_str())));
}

#[test]
fn a_line_recorded_before_its_instance_was_created_keeps_that_instance_and_gets_its_order() {
    // A request that recorded the line's instance and then stopped (the store failed before the creation): the
    // marketplace's retry creates the recorded instance, with the order read again.
    let mock = mock();
    let ep = endpoint(WasmOptions { variables: openapi(&mock), ..WasmOptions::default() });
    let recorded = br#"{"instanceId":"i-recorded-before"}"#;
    let key = "live/line/12:MOCKONDEMAND/MOCKONDEMAND-000001";
    ep.runtime().block_on(ep.store().set(key, recorded)).unwrap_or_else(|e| panic!("{e}"));
    let (c, id) = new_instance(&ep, &Lifecycle::default(), "MOCKONDEMAND", "MOCKONDEMAND-000001", "b2");
    assert_eq!((c.as_str(), id.as_str()), ("000000", "i-recorded-before"), "the recorded instance stands");
    let stored = String::from_utf8(ep.value("live/instance/i-recorded-before").unwrap_or_default()).unwrap_or_default();
    assert!(stored.contains("OFFI-MOCKONDEMAND") && stored.contains("queryOrder"), "{stored}");
    assert_eq!(queries(&mock).len(), 1);
}

#[test]
fn openapi_ak_without_its_secret_stops_only_new_instances() {
    let mock = mock();
    let mut variables = openapi(&mock);
    variables.retain(|(k, _)| k != "openapi_sk");
    let ep = endpoint(WasmOptions { variables, ..WasmOptions::default() });
    let signer = Lifecycle::default();
    let (c, _) = new_instance(&ep, &signer, "MOCKONDEMAND", "MOCKONDEMAND-000001", "b1");
    assert_eq!(c, "000005", "not keyed on a guess while the configuration is incomplete");
    let query = signer.send(&ep, &j!({"activity":"queryInstance","instanceId":"i-unknown"}));
    assert_eq!(code(&query), "000003", "the rest of the interface keeps answering");
    let release = signer.send(&ep, &j!({"activity":"releaseInstance","instanceId":"i-unknown","orderId":"CS1"}));
    assert_eq!(code(&release), "000000");
    assert!(mock.received().is_empty());
}
