//! 200 concurrent duplicate `newInstance` requests (the marketplace's retries racing each other, each with a new
//! businessId and nonce) through the Wasm component: exactly one instance, every answer the same instanceId.

use std::collections::BTreeSet;

use conformance::{Lifecycle, WasmEndpoint, WasmOptions, code, from_http, json, to_http};
use serde_json::json as j;

#[test]
fn two_hundred_concurrent_duplicates_converge_on_one_instance() {
    let ep = match WasmEndpoint::new(WasmOptions::default()) {
        Ok(ep) => ep,
        Err(e) => panic!("{e:#}"),
    };
    let signer = Lifecycle::default();
    let now = 1_700_000_000_000;
    let requests: Vec<_> = (0..200)
        .map(|i| {
            let body = j!({"activity":"newInstance","orderId":"CSRACE","orderLineId":"CSRACE-000001","businessId":format!("biz-{i}"),"testFlag":"0"});
            to_http(&signer.v2(&body, now))
        })
        .collect();
    let app = ep.app();
    let answers = ep.runtime().block_on(async move {
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|req| {
                let app = app.clone();
                tokio::spawn(async move { app.send(req).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await);
        }
        out
    });
    let mut ids = BTreeSet::new();
    for answer in answers {
        let resp = match answer {
            Ok(Ok(resp)) => from_http(resp),
            other => panic!("request failed: {other:?}"),
        };
        assert_eq!(code(&resp), "000000");
        ids.insert(json(&resp)["instanceId"].as_str().unwrap_or("").to_owned());
    }
    assert_eq!(ids.len(), 1, "all answers carry the same instanceId: {ids:?}");
    let expected = koogallery_core::identity::instance_id_for_order_line("CSRACE", "CSRACE-000001");
    assert!(ids.contains(&expected));
    let instances: Vec<String> = ep.kv().keys().into_iter().filter(|k| k.contains("/instance/")).collect();
    assert_eq!(instances, vec![format!("live/instance/{expected}")]);
}

/// One signed request sent 24 times at once (a replay racing its original): exactly one is accepted. Also with the
/// compare-and-swap of Spin 4.1's SQLite store, whose swap on a missing key is an unconditional write (so a replay
/// cache built on create-if-absent by swap would let several through).
#[test]
fn of_concurrent_copies_of_one_signed_request_exactly_one_is_accepted() {
    for upsert in [false, true] {
        let opts = WasmOptions { spin_sqlite_swap_upsert: upsert, ..WasmOptions::default() };
        let ep = WasmEndpoint::new(opts).unwrap_or_else(|e| panic!("{e:#}"));
        let signer = Lifecycle::default();
        let body = j!({"activity":"newInstance","orderId":"CSREPLAY","orderLineId":"CSREPLAY-000001","businessId":"b","testFlag":"0"});
        let request = signer.v2(&body, 1_700_000_000_000);
        let app = ep.app();
        let codes = ep.runtime().block_on(async move {
            let start = std::sync::Arc::new(tokio::sync::Barrier::new(24));
            let tasks: Vec<_> = (0..24)
                .map(|_| {
                    let (app, req, start) = (app.clone(), to_http(&request), start.clone());
                    tokio::spawn(async move {
                        start.wait().await;
                        app.send(req).await
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                match t.await {
                    Ok(Ok(resp)) => out.push(code(&from_http(resp))),
                    other => panic!("request failed: {other:?}"),
                }
            }
            out
        });
        let accepted = codes.iter().filter(|c| *c == "000000").count();
        let replays = codes.iter().filter(|c| *c == "000001").count();
        assert_eq!((accepted, replays), (1, 23), "upsert emulation {upsert}: {codes:?}");
    }
}
