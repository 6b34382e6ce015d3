//! Key-value fault injection at every operation of each activity, through the Wasm component: the answer is a
//! signed `000005`, and the marketplace's retry afterwards reaches the same final state as a run with no fault.
//! Run twice: on a correct compare-and-swap, and with every swap reporting a conflict after writing (Spin 4.1's
//! Redis defect), where a fault can also hit the re-read that tells whether the write went through.

use conformance::{AK, Endpoint, Lifecycle, WasmEndpoint, WasmOptions, code};
use harness::kv::OpMatch;
use koogallery_core::signing::body_sign;
use koogallery_core::signing::keys::KeyRing;
use serde_json::{Value, json};

const NOW: u64 = 1_700_000_000_000;

fn id() -> String {
    koogallery_core::identity::instance_id_for_order_line("CSFAULT", "CSFAULT-000001")
}

/// Setup requests, then the request under test.
fn scenarios() -> Vec<(&'static str, Vec<Value>, Value)> {
    let i = id();
    let new = json!({"activity":"newInstance","orderId":"CSFAULT","orderLineId":"CSFAULT-000001","businessId":"b","testFlag":"0"});
    let freeze = json!({"activity":"updateInstanceStatus","instanceId":i,"status":"FREEZE"});
    vec![
        ("newInstance", vec![], new.clone()),
        ("queryInstance", vec![new.clone()], json!({"activity":"queryInstance","instanceId":i})),
        (
            "refreshInstance",
            vec![new.clone()],
            json!({"activity":"refreshInstance","scene":"RENEWAL","orderId":"R1","orderLineId":"R1-1","instanceId":i,"expireTime":"20301124023618"}),
        ),
        ("freeze", vec![new.clone()], freeze.clone()),
        (
            "unfreeze",
            vec![new.clone(), freeze],
            json!({"activity":"updateInstanceStatus","instanceId":i,"status":"UNFREEZE"}),
        ),
        (
            "upgradeInstance",
            vec![new.clone()],
            json!({"activity":"upgradeInstance","instanceId":i,"orderId":"U1","orderLineId":"U1-1"}),
        ),
        (
            "changeInstanceCheck",
            vec![new.clone()],
            json!({"activity":"changeInstanceCheck","instanceId":i,"productInfo":{"productId":"p"}}),
        ),
        (
            "orderNotify",
            vec![],
            json!({"activity":"orderNotify","orderId":"CSFAULT","orderLineId":"CSFAULT-000001","testFlag":"0"}),
        ),
        ("releaseInstance", vec![new], json!({"activity":"releaseInstance","instanceId":i})),
    ]
}

fn endpoint(spin_redis_swap_defect: bool) -> WasmEndpoint {
    WasmEndpoint::new(WasmOptions { now_ms: NOW, spin_redis_swap_defect, ..WasmOptions::default() })
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// The store without nonce entries (retries carry new nonces by design) and without creation claims (counters dated
/// by a time bucket: one left by a failed release is garbage that expires with its bucket, not state), each value
/// with what is random by design blanked: write tokens (one per compare-and-swap write) and the built-in password
/// (drawn once per instance).
fn state(ep: &WasmEndpoint) -> Vec<(String, Option<Value>)> {
    let mut keys: Vec<String> =
        ep.keys().into_iter().filter(|k| !k.starts_with("nonce/") && !k.starts_with("atomic/creating/")).collect();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let value = ep.value(&k).and_then(|v| serde_json::from_slice::<Value>(&v).ok()).map(|mut v| {
                if let Some(obj) = v.as_object_mut() {
                    obj.remove("writes");
                }
                if let Some(password) = v.pointer_mut("/appInfo/password") {
                    *password = Value::String("(random)".into());
                }
                v
            });
            (k, value)
        })
        .collect()
}

fn run(setup: &[Value], target: &Value, fault_at: Option<usize>, defect: bool) -> (WasmEndpoint, usize, Vec<String>) {
    let ep = endpoint(defect);
    let signer = Lifecycle::default();
    for body in setup {
        assert_eq!(code(&ep.send(&signer.v2(body, NOW))), "000000");
    }
    let before = ep.kv().calls().len();
    if let Some(n) = fault_at {
        ep.kv().fail_nth(n, OpMatch::Any);
    }
    let mut codes = Vec::new();
    let keys = KeyRing::parse_list(AK).unwrap_or_else(|_| unreachable!());
    let attempts = if fault_at.is_some() { 2 } else { 1 };
    for _ in 0..attempts {
        let out = ep.send(&signer.v2(target, NOW));
        assert_eq!(out.status, 200);
        let sign = out.header("body-sign").unwrap_or("");
        assert!(body_sign::verify(sign, &out.body, &keys).is_ok(), "every answer is signed, faults included");
        codes.push(code(&out));
    }
    let ops = ep.kv().calls().len() - before;
    (ep, ops, codes)
}

#[test]
fn a_store_fault_at_any_operation_is_answered_000005_and_the_retry_converges() {
    let mut checked = 0;
    for defect in [false, true] {
        for (name, setup, target) in scenarios() {
            let (clean, ops, clean_codes) = run(&setup, &target, None, defect);
            assert!(ops >= 2, "{name}: at least the nonce check and one record access ({ops} ops)");
            let expected_state = state(&clean);
            for n in 1..=ops {
                let (faulty, _, codes) = run(&setup, &target, Some(n), defect);
                let at = format!("{name} (swap defect: {defect}): fault at operation {n} of {ops}");
                assert_eq!(codes[0], "000005", "{at}");
                assert_eq!(codes[1], clean_codes[0], "{at}: the retry");
                assert_eq!(state(&faulty), expected_state, "{at}: final state");
                checked += 1;
            }
        }
    }
    println!("{checked} fault points checked");
    assert!(checked >= 36, "{checked} fault points checked");
}
