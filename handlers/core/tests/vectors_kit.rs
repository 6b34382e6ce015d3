//! Kit `x-sign` (test-vectors §7): canonical and raw-body candidates, plus one negative test per failure.

use koogallery_core::signing::canonical_json::{demo_payload, signing_candidates};
use koogallery_core::signing::error::AuthError;
use koogallery_core::signing::keys::{KeyRing, SecretKey};
use koogallery_core::signing::kit::{KitAuth, KitVerified, KitVerifier};
use koogallery_core::signing::window::TimestampWindow;
use serde::Deserialize;

/// Runs `body` for every vector of `data/<file>`; a failure names the vector index.
macro_rules! kit_vectors {
    ($test:ident, $file:literal, $ty:ty, |$i:ident, $v:ident| $body:block) => {
        #[test]
        fn $test() {
            let all: Vec<$ty> =
                serde_json::from_str(include_str!(concat!("data/", $file))).expect(concat!("parse ", $file));
            assert!(!all.is_empty(), "no vectors in {}", $file);
            for ($i, $v) in all.iter().enumerate() {
                let run = || -> Result<(), String> { $body };
                if let Err(msg) = run() {
                    panic!("{} vector #{}: {}", $file, $i, msg);
                }
            }
        }
    };
}

fn eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want { Ok(()) } else { Err(format!("{what}: got {got:?}, want {want:?}")) }
}

#[derive(Deserialize)]
struct KitVector {
    key: String,
    timestamp: String,
    nonce: String,
    body: String,
    body_len: usize,
    payload: String,
    canonical_sign: String,
    raw_sign: String,
}

fn kit(key: &str) -> KitVerifier {
    KitVerifier::new(KeyRing::single(SecretKey::new(key)), TimestampWindow::default())
}

kit_vectors!(x_sign_7_1_and_7_2, "kit_x_sign_test_vectors_md.json", KitVector, |_i, v| {
    eq("body length", v.body.len(), v.body_len)?;
    eq("RequestPayload", demo_payload(v.body.as_bytes()), Ok(v.payload.as_bytes().to_vec()))?;
    let candidates = signing_candidates(v.body.as_bytes()).map_err(|e| e.to_string())?;
    eq("candidates", candidates, vec![v.body.as_bytes().to_vec(), v.payload.as_bytes().to_vec()])?;
    let k = kit(&v.key);
    eq("canonical x-sign", k.sign(v.payload.as_bytes(), &v.timestamp, &v.nonce), v.canonical_sign.clone())?;
    eq("sign_canonical", k.sign_canonical(v.body.as_bytes(), &v.timestamp, &v.nonce), Ok(v.canonical_sign.clone()))?;
    eq("raw x-sign", k.sign(v.body.as_bytes(), &v.timestamp, &v.nonce), v.raw_sign.clone())?;
    let now: u64 = v.timestamp.parse().map_err(|_| "timestamp")?;
    for sign in [&v.canonical_sign, &v.raw_sign, &v.canonical_sign.to_uppercase()] {
        let auth = KitAuth { sign: Some(sign), timestamp: Some(&v.timestamp), nonce: Some(&v.nonce) };
        let want = Ok(KitVerified { timestamp_ms: now, nonce: v.nonce.clone(), key_index: 0 });
        eq(&format!("verify {sign}"), k.verify(auth, v.body.as_bytes(), now + 1_000), want)?;
    }
    // The basic-interface scheme (with the inner HMAC) must not verify as a kit signature.
    let v2 = koogallery_core::signing::v2::V2Verifier::new(
        KeyRing::single(SecretKey::new(v.key.as_str())),
        TimestampWindow::default(),
    )
    .sign(v.payload.as_bytes(), &v.timestamp, &v.nonce);
    let auth = KitAuth { sign: Some(&v2), timestamp: Some(&v.timestamp), nonce: Some(&v.nonce) };
    eq("V2 signature rejected", k.verify(auth, v.body.as_bytes(), now), Err(AuthError::BadSignature))
});

const KEY: &str = "1234567890abcdef1234567890abcdef";
const TS: &str = "1680508066618";
const TS_MS: u64 = 1_680_508_066_618;
const NONCE: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";
const SIGN: &str = "f039162a5f44ee590f50d84d794f798e5ba350dd8af406be0c470edb4145e217";
const BODY: &str = r#"{"instanceId":"huaiweitest123456","orderId":"CS1906666666ABCDE","tenantId":"68cbc86abc2018ab880d92f36422fa0e","tenantCode":"huawei","name":"huaiweitest","domainName":"https://example.tenantaccount.com","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}"#;

fn auth<'a>(sign: Option<&'a str>, timestamp: Option<&'a str>, nonce: Option<&'a str>) -> KitAuth<'a> {
    KitAuth { sign, timestamp, nonce }
}

#[test]
fn each_failure_has_its_error() {
    let k = kit(KEY);
    let b = BODY.as_bytes();
    let flag_changed = BODY.replace(r#""flag":1"#, r#""flag":0"#);
    let cases = [
        ("x-sign missing", k.verify(auth(None, Some(TS), Some(NONCE)), b, TS_MS), AuthError::MissingHeader("x-sign")),
        (
            "x-timestamp missing",
            k.verify(auth(Some(SIGN), None, Some(NONCE)), b, TS_MS),
            AuthError::MissingHeader("x-timestamp"),
        ),
        ("x-nonce missing", k.verify(auth(Some(SIGN), Some(TS), None), b, TS_MS), AuthError::MissingHeader("x-nonce")),
        (
            "x-timestamp malformed",
            k.verify(auth(Some(SIGN), Some("yesterday"), Some(NONCE)), b, TS_MS),
            AuthError::MalformedHeader("x-timestamp"),
        ),
        ("stale", k.verify(auth(Some(SIGN), Some(TS), Some(NONCE)), b, TS_MS + 60_001), AuthError::TimestampTooOld),
        ("future", k.verify(auth(Some(SIGN), Some(TS), Some(NONCE)), b, TS_MS - 60_001), AuthError::TimestampTooNew),
        (
            "truncated x-sign",
            k.verify(auth(Some(&SIGN[..60]), Some(TS), Some(NONCE)), b, TS_MS),
            AuthError::BadSignature,
        ),
        (
            "body changed",
            k.verify(auth(Some(SIGN), Some(TS), Some(NONCE)), flag_changed.as_bytes(), TS_MS),
            AuthError::BadSignature,
        ),
        ("not an object", k.verify(auth(Some(SIGN), Some(TS), Some(NONCE)), b"\"x\"", TS_MS), AuthError::NotJsonObject),
        (
            "wrong key",
            kit("kit-key-2").verify(auth(Some(SIGN), Some(TS), Some(NONCE)), b, TS_MS),
            AuthError::BadSignature,
        ),
    ];
    for (i, (name, got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(want), "case #{i} ({name})");
    }
}

#[test]
fn missing_headers_are_000002_and_named_bad_sign_is_000001() {
    let e = kit(KEY).verify(auth(None, Some(TS), Some(NONCE)), BODY.as_bytes(), TS_MS).expect_err("missing");
    assert!(!e.is_authentication_failure());
    assert_eq!(e.field(), Some("x-sign"));
    let e = kit(KEY).verify(auth(Some("00"), Some(TS), Some(NONCE)), BODY.as_bytes(), TS_MS).expect_err("bad");
    assert!(e.is_authentication_failure());
}

#[test]
fn window_edges_and_rotation() {
    let ring = KeyRing::parse_list(&format!("kit-new, {KEY}")).expect("ring");
    let k = KitVerifier::new(ring, TimestampWindow::default());
    let full = auth(Some(SIGN), Some(TS), Some(NONCE));
    for (i, (now, ok)) in
        [(TS_MS + 60_000, true), (TS_MS - 60_000, true), (TS_MS + 60_001, false), (TS_MS - 60_001, false)]
            .into_iter()
            .enumerate()
    {
        assert_eq!(k.verify(full, BODY.as_bytes(), now).is_ok(), ok, "edge #{i}");
    }
    assert_eq!(k.sign(b"{}", TS, NONCE), kit("kit-new").sign(b"{}", TS, NONCE));
}
