//! Usage-push `signature` header (test-vectors §8).

use koogallery_core::signing::canonical_json::sorted_compact;
use koogallery_core::signing::error::AuthError;
use koogallery_core::signing::keys::{KeyRing, SecretKey};
use koogallery_core::signing::usage;
use koogallery_core::signing::window::TimestampWindow;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Runs `body` for every vector of `data/<file>` (one object or an array); a failure names the vector index.
macro_rules! usage_vectors {
    ($test:ident, $file:literal, $ty:ty, |$i:ident, $v:ident| $body:block) => {
        #[test]
        fn $test() {
            let node: serde_json::Value =
                serde_json::from_str(include_str!(concat!("data/", $file))).expect(concat!("parse ", $file));
            let list = if node.is_array() { node } else { serde_json::Value::Array(vec![node]) };
            let all: Vec<$ty> = serde_json::from_value(list).expect("vector shape");
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
struct Vector {
    key: String,
    ts: String,
    nonce: String,
    body: String,
    body_len: usize,
    body_sha256: String,
    data_signed: String,
    signature: String,
}

usage_vectors!(usage_push_8, "usage_signature_test_vectors_md.json", Vector, |_i, v| {
    eq("body length", v.body.len(), v.body_len)?;
    eq("body sha256", hex::encode(Sha256::digest(v.body.as_bytes())), v.body_sha256.clone())?;
    eq("data signed", format!("ts={}&nonce={}&body={}", v.ts, v.nonce, v.body), v.data_signed.clone())?;
    // The body is what sorted_compact makes of the same records in any key order.
    let mut value: serde_json::Value = serde_json::from_str(&v.body).map_err(|e| e.to_string())?;
    if let Some(serde_json::Value::Object(record)) = value.pointer_mut("/usage_records/0") {
        *record = record.clone().into_iter().rev().collect();
    }
    eq("sorted_compact", sorted_compact(&value), v.body.as_bytes().to_vec())?;
    let key = SecretKey::new(v.key.as_str());
    eq("signature", usage::signature(&key, &v.ts, &v.nonce, v.body.as_bytes()), v.signature.clone())?;
    let keys = KeyRing::single(key);
    let now: u64 = v.ts.parse().map_err(|_| "ts")?;
    let got = usage::verify(&keys, &v.ts, &v.nonce, &v.signature, v.body.as_bytes(), now, TimestampWindow::default());
    eq("verify", got, Ok(now))
});

#[test]
fn each_failure_has_its_error() {
    let keys = KeyRing::single(SecretKey::new("1234567890abcdef1234567890abcdef"));
    let w = TimestampWindow::default();
    let body: &[u8] = br#"{"usage_records":[]}"#;
    let (ts, nonce, now) = ("1709690865879", "n", 1_709_690_865_879);
    let sig = usage::signature(keys.signing_key(), ts, nonce, body);
    let cases = [
        ("ts missing", usage::verify(&keys, "", nonce, &sig, body, now, w), AuthError::MissingTimestamp),
        ("nonce missing", usage::verify(&keys, ts, "", &sig, body, now, w), AuthError::MissingNonce),
        ("signature missing", usage::verify(&keys, ts, nonce, "", body, now, w), AuthError::MissingSignature),
        ("stale", usage::verify(&keys, ts, nonce, &sig, body, now + 60_001, w), AuthError::TimestampTooOld),
        ("future", usage::verify(&keys, ts, nonce, &sig, body, now - 60_001, w), AuthError::TimestampTooNew),
        ("truncated", usage::verify(&keys, ts, nonce, &sig[..40], body, now, w), AuthError::BadSignature),
        ("body changed", usage::verify(&keys, ts, nonce, &sig, b"{}", now, w), AuthError::BadSignature),
        ("nonce changed", usage::verify(&keys, ts, "m", &sig, body, now, w), AuthError::BadSignature),
    ];
    for (i, (name, got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(want), "case #{i} ({name})");
    }
    assert_eq!(usage::verify(&keys, ts, nonce, &sig, body, now + 60_000, w), Ok(now));
}
