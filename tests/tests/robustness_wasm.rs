//! Hostile input through the Wasm component: oversize bodies, deeply nested JSON, invalid UTF-8, duplicate
//! parameters, header injection. Every answer is a signed JSON refusal; nothing traps and nothing is stored.

use conformance::{AK, Endpoint, Lifecycle, WasmEndpoint, WasmOptions, code, json};
use koogallery_core::http::{Inbound, Outbound};
use koogallery_core::signing::body_sign;
use koogallery_core::signing::keys::KeyRing;
use serde_json::json as j;

fn endpoint() -> WasmEndpoint {
    WasmEndpoint::new(WasmOptions::default()).unwrap_or_else(|e| panic!("{e:#}"))
}

fn assert_signed_refusal(out: &Outbound, expected: &str, what: &str) {
    assert_eq!(out.status, 200, "{what}: {}", String::from_utf8_lossy(&out.body));
    let keys = KeyRing::parse_list(AK).unwrap_or_else(|_| unreachable!());
    let sign = out.header("body-sign").unwrap_or("");
    assert!(body_sign::verify(sign, &out.body, &keys).is_ok(), "{what}: signed");
    assert_eq!(code(out), expected, "{what}");
}

fn signed_raw(ep: &WasmEndpoint, signer: &Lifecycle, body: &[u8]) -> Inbound {
    let keys = KeyRing::parse_list(AK).unwrap_or_else(|_| unreachable!());
    koogallery_core::marketplace::Marketplace::new(keys).v2("/produce", body, ep.now(), &signer.nonce())
}

#[test]
fn hostile_bodies_get_signed_refusals() {
    let ep = endpoint();
    let signer = Lifecycle::default();

    let mut big = br#"{"activity":"newInstance","pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 1 << 20));
    big.extend(br#""}"#);
    assert_signed_refusal(&ep.send(&signed_raw(&ep, &signer, &big)), "000002", "1 MiB body");

    let depth = 20_000;
    let mut nested = br#"{"activity":"newInstance","x":"#.to_vec();
    nested.extend(std::iter::repeat_n(b'[', depth));
    nested.extend(std::iter::repeat_n(b']', depth));
    nested.push(b'}');
    assert_signed_refusal(&ep.send(&signed_raw(&ep, &signer, &nested)), "000002", "deeply nested JSON");

    let invalid_utf8 =
        b"{\"activity\":\"newInstance\",\"orderId\":\"\xff\xfe\",\"orderLineId\":\"l\",\"businessId\":\"b\"}";
    assert_signed_refusal(&ep.send(&signed_raw(&ep, &signer, invalid_utf8)), "000002", "invalid UTF-8");

    let empty = signed_raw(&ep, &signer, b"");
    assert_signed_refusal(&ep.send(&empty), "000002", "empty body");

    let mut bad_query = signer.v2(&j!({"activity":"queryInstance","instanceId":"x"}), ep.now());
    bad_query.query.push_str("&timestamp=%FF%FE");
    assert_signed_refusal(&ep.send(&bad_query), "000002", "duplicate timestamp with invalid UTF-8");

    let mut v1_dup =
        signer.v1(&[("activity", "queryInstance"), ("instanceId", "x"), ("timeStamp", "20240101000000000")]);
    v1_dup.query.push_str("&activity=releaseInstance");
    assert_signed_refusal(&ep.send(&v1_dup), "000002", "duplicate V1 activity");

    assert!(ep.keys().iter().all(|k| !k.contains("/instance/")), "nothing stored");
}

#[test]
fn input_is_never_reflected_into_headers() {
    let ep = endpoint();
    let signer = Lifecycle::default();
    let evil = "x\r\nSet-Cookie: session=stolen\r\n\r\n<html>";
    let out = ep.send(&signer.v2(&j!({"activity":evil,"orderId":evil}), ep.now()));
    assert_signed_refusal(&out, "000002", "CRLF in activity");
    let names: Vec<&str> = out.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert!(names.iter().all(|n| ["content-type", "body-sign", "content-length"].contains(n)), "{names:?}");
    assert!(out.body.is_ascii());
    assert!(!String::from_utf8_lossy(&out.body).contains('\r'));
    assert!(json(&out)["resultMsg"].is_string());

    // A header-smuggling attempt in the request itself is ignored; the signature decides.
    let mut req = signer.v2(&j!({"activity":"queryInstance","instanceId":"x"}), ep.now());
    req.headers.push(("x-forwarded-host".into(), "evil.example".into()));
    req.headers.push(("transfer-encoding".into(), "identity".into()));
    assert_signed_refusal(&ep.send(&req), "000003", "extra headers do not matter");
}
