//! The lifecycle model through the Wasm component in the harness: random sequences with retries, duplicates,
//! replays, forgeries and reordering keep the invariants; and core and the component agree byte for byte.

use conformance::model::{arbitrary_step, check};
use conformance::{AK, Endpoint, Lifecycle, NativeEndpoint, WasmEndpoint, WasmOptions, code};
use koogallery_core::produce::ProduceConfig;
use koogallery_core::signing::body_sign;
use koogallery_core::signing::keys::KeyRing;
use proptest::prelude::*;
use serde_json::json;

const LINES: u8 = 3;

/// `bytes` as JSON with every `password` value blanked and every `writes` list removed (non-JSON stays as text).
fn blank_random(bytes: &[u8]) -> String {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("writes");
                for (k, child) in map.iter_mut() {
                    if k == "password" {
                        *child = json!("(random)");
                    } else {
                        walk(child);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn wasm() -> WasmEndpoint {
    match WasmEndpoint::new(WasmOptions::default()) {
        Ok(ep) => ep,
        Err(e) => panic!("{e:#}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_lifecycles_through_wasm_match_the_model(steps in proptest::collection::vec(arbitrary_step(LINES), 1..30)) {
        let ep = wasm();
        if let Err(e) = check(&ep, LINES, &steps) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// Core run natively and the component in wasmtime give the same answers, byte for byte once the two things that
/// are random by design are blanked: the built-in password (drawn once per instance) and the write tokens in stored
/// values (one per compare-and-swap write). Each answer's `Body-Sign` is verified on its own bytes.
#[test]
fn native_and_wasm_answer_byte_for_byte_the_same() {
    let now = 1_700_000_000_000;
    let wasm = wasm();
    let keys = KeyRing::parse_list(AK).unwrap_or_else(|_| unreachable!());
    let native = NativeEndpoint::new(ProduceConfig::new(keys.clone()), now);
    let signer = Lifecycle::default();
    let id = koogallery_core::identity::instance_id_for_order_line("CSAGREE", "CSAGREE-000001");
    let bodies = [
        json!({"activity":"newInstance","orderId":"CSAGREE","orderLineId":"CSAGREE-000001","businessId":"b1","testFlag":"0"}),
        json!({"activity":"newInstance","orderId":"CSAGREE","orderLineId":"CSAGREE-000001","businessId":"b2","testFlag":"0"}),
        json!({"activity":"queryInstance","instanceId":id,"testFlag":"0"}),
        json!({"activity":"refreshInstance","scene":"RENEWAL","orderId":"R1","orderLineId":"R1-1","instanceId":id,"expireTime":"20301124023618256"}),
        json!({"activity":"updateInstanceStatus","instanceId":id,"status":"FREEZE"}),
        json!({"activity":"upgradeInstance","instanceId":id,"orderId":"U1","orderLineId":"U1-1"}),
        json!({"activity":"changeInstanceCheck","instanceId":id,"productInfo":"{\"productId\":\"P2\"}"}),
        json!({"activity":"orderNotify","orderId":"CSAGREE","orderLineId":"CSAGREE-000001","testFlag":"1"}),
        json!({"activity":"releaseInstance","instanceId":id}),
        json!({"activity":"queryInstance","instanceId":id}),
        json!({"activity":"noSuchThing"}),
        json!({"activity":"newInstance","orderId":"CSAGREE"}),
    ];
    for body in &bodies {
        let req = signer.v2(body, now);
        let (a, b) = (native.send(&req), wasm.send(&req));
        assert_eq!(blank_random(&a.body), blank_random(&b.body), "{body}");
        for answer in [&a, &b] {
            let sign = answer.header("body-sign").unwrap_or("");
            assert!(body_sign::verify(sign, &answer.body, &keys).is_ok(), "{body}");
        }
        assert_eq!(b.status, 200);
    }
    // And both stores hold the same records.
    let mut nk = native.keys();
    let mut wk = wasm.keys();
    nk.sort();
    wk.sort();
    assert_eq!(nk, wk);
    for k in &nk {
        let (n, w) = (native.value(k).unwrap_or_default(), wasm.value(k).unwrap_or_default());
        assert_eq!(blank_random(&n), blank_random(&w), "{k}");
    }
}

/// The documented V2 examples, re-signed with test-vector key AK (test-vectors §6.2), verify inside the component
/// with the clock pinned to each example's timestamp.
#[test]
fn documented_v2_examples_verify_in_wasm() {
    let ep = wasm();
    let cases: [(&str, u64, &str, &str, &str); 7] = [
        (
            "A3086BF160E99C0F507576161BBE4911A01C1179403F02133EB263559D4530E8",
            1680508066618,
            "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA",
            r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#,
            "000000",
        ),
        (
            "340B8F4B4F882DCB8C59DD3B0BD4B383A3BF2689194B2789ED0C13AF08301286",
            1680508237508,
            "9FB42E04DF4594B1FAA50B304E647AD7154AB9B4F144A65F1168886540A8B24C",
            r#"{"activity":"queryInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","testFlag":"0"}"#,
            "000003",
        ),
        (
            "16745AB73BFBC1C6AECDD276CCAAE9BBFCD491980174E8363D38B647C4D48A2B",
            1680509496350,
            "8BF8496A350E37BDB0E8956D39D433ED417C3FC9459DCFFE7F03BFBF69B12085",
            r#"{"activity":"refreshInstance","expireTime":"20221124023618256","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","productId":"OFFI461867333479178240","scene":"RENEWAL","testFlag":"1"}"#,
            "000003",
        ),
        (
            "9D5A460B08DC93064AA53A9EB47C5ADE09F77F98346576EF43CAAA9B72A54062",
            1680509558159,
            "9F26B85CAEB3A8439221BA293E9250BC5EA689225B523C291EA75CC76B469510",
            r#"{"activity":"updateInstanceStatus","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","status":"FREEZE","testFlag":"1"}"#,
            "000003",
        ),
        (
            "C2B785FBBBD4BDF3B20637E20D1F8B4B7184F43DC455FE44069E6A4106C6F1EF",
            1680509885590,
            "A49E8F86EE5BCAFBDFD3E53F1E09A29C6D9E8DACC67382EBCDD02CD55CBBB7AE",
            r#"{"activity":"releaseInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#,
            "000000",
        ),
        (
            "78C4059CDD4FDFDCC5B2F79B4BA512B19193B1B514C723CBD481B67E92C1A804",
            1680510876429,
            "D8FE86FA6ABE90CA63A72B3256743D3D869648FE99A96354E635F032629F6C21",
            r#"{"activity":"upgradeInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"0"}"#,
            "000003",
        ),
        (
            "B58BA362E0416F85194E0D3D26FC63707C19B05F1224F041E574C189B4DB7C5E",
            1729566664115,
            "Of4lsV7H1qrzVDI52O5CFk2ofPcZRaA6",
            r#"{"activity":"orderNotify","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#,
            "000000",
        ),
    ];
    for (signature, ts, nonce, body, expected) in cases {
        ep.set_now(ts + 500);
        let req = koogallery_core::http::Inbound {
            method: "POST".into(),
            path: "/produce".into(),
            query: format!("signature={signature}&timestamp={ts}&nonce={nonce}"),
            headers: vec![("content-type".into(), "application/json;charset=utf8".into())],
            body: body.as_bytes().to_vec(),
        };
        let out = ep.send(&req);
        assert_eq!(code(&out), expected, "{body}");
        // The same request one byte off is refused.
        let mut forged = req.clone();
        forged.body[3] ^= 1;
        assert_eq!(code(&ep.send(&forged)), "000001", "{body}");
    }
}
