//! V2 request signature (test-vectors §6): known answers, the §6.4 candidate table, the §6.5 negative table,
//! key rotation and the window edges.

use koogallery_core::signing::canonical_json::signing_candidates;
use koogallery_core::signing::error::AuthError;
use koogallery_core::signing::keys::{KeyRing, SecretKey};
use koogallery_core::signing::v2::{V2Auth, V2Verified, V2Verifier, body_hash};
use koogallery_core::signing::window::TimestampWindow;
use serde::Deserialize;

/// Loads `data/<file>` at JSON pointer `ptr` (an array, or one object) and runs `body` per vector; a failure names
/// the file and the vector index.
macro_rules! v2_vectors {
    ($test:ident, $file:literal, $ptr:literal, $ty:ty, |$i:ident, $v:ident| $body:block) => {
        #[test]
        fn $test() {
            let doc: serde_json::Value =
                serde_json::from_str(include_str!(concat!("data/", $file))).expect(concat!("parse ", $file));
            let node = doc.pointer($ptr).cloned().expect("pointer");
            let list = if node.is_array() { node } else { serde_json::Value::Array(vec![node]) };
            let all: Vec<$ty> = serde_json::from_value(list).expect("vector shape");
            assert!(!all.is_empty(), "no vectors in {}", $file);
            for ($i, $v) in all.iter().enumerate() {
                let run = || -> Result<(), String> { $body };
                if let Err(msg) = run() {
                    panic!("{} {} vector #{}: {}", $file, $ptr, $i, msg);
                }
            }
        }
    };
}

fn eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want { Ok(()) } else { Err(format!("{what}: got {got:?}, want {want:?}")) }
}

#[derive(Deserialize)]
struct Signed {
    key: String,
    timestamp: String,
    nonce: String,
    body: String,
    payload: String,
    body_hash: String,
    signature: String,
}

#[derive(Deserialize)]
struct StepByStep {
    key: String,
    timestamp: String,
    nonce: String,
    body: String,
    body_len: usize,
    body_hash: String,
    canonical_request: String,
    signature: String,
    request_line: String,
}

#[derive(Deserialize)]
struct Row {
    signature: String,
    accept: bool,
}

#[derive(Deserialize)]
struct DifferentBytes {
    key: String,
    timestamp: String,
    nonce: String,
    body: String,
    body_len: usize,
    canonical_payload: String,
    raw_body_hash: String,
    raw_signature: String,
    canonical_signature: String,
    table: Vec<Row>,
}

fn verifier(key: &str) -> V2Verifier {
    V2Verifier::new(KeyRing::single(SecretKey::new(key)), TimestampWindow::default())
}

fn ms(ts: &str) -> u64 {
    ts.parse().expect("numeric timestamp")
}

v2_vectors!(step_by_step_6_1, "v2_signature_test_vectors_md.json", "/step_by_step_6_1", StepByStep, |_i, v| {
    eq("body length", v.body.len(), v.body_len)?;
    eq("bodyHash", body_hash(&SecretKey::new(v.key.as_str()), v.body.as_bytes()), v.body_hash.clone())?;
    eq("canonicalRequest", format!("{}{}{}{}", v.key, v.nonce, v.timestamp, v.body_hash), v.canonical_request.clone())?;
    let sig = verifier(&v.key).sign(v.body.as_bytes(), &v.timestamp, &v.nonce);
    eq("signature", &sig, &v.signature)?;
    let line = format!("POST /saasproduce?signature={sig}&timestamp={}&nonce={}", v.timestamp, v.nonce);
    eq("request line", line, v.request_line.clone())
});

v2_vectors!(
    documented_bodies_6_2_and_6_3,
    "v2_signature_test_vectors_md.json",
    "/table_6_2_and_6_3",
    Signed,
    |_i, v| {
        let key = SecretKey::new(v.key.as_str());
        eq("bodyHash", body_hash(&key, v.payload.as_bytes()), v.body_hash.clone())?;
        let ver = verifier(&v.key);
        eq("signature", ver.sign(v.payload.as_bytes(), &v.timestamp, &v.nonce), v.signature.clone())?;
        eq(
            "canonical signature",
            ver.sign_canonical(v.body.as_bytes(), &v.timestamp, &v.nonce),
            Ok(v.signature.clone()),
        )?;
        let candidates = signing_candidates(v.body.as_bytes()).map_err(|e| e.to_string())?;
        eq("candidates of a canonical body", candidates, vec![v.payload.as_bytes().to_vec()])?;
        let auth = V2Auth { signature: Some(&v.signature), timestamp: Some(&v.timestamp), nonce: Some(&v.nonce) };
        let got = ver.verify(auth, v.body.as_bytes(), ms(&v.timestamp) + 1_000);
        eq("verify", got, Ok(V2Verified { timestamp_ms: ms(&v.timestamp), nonce: v.nonce.clone(), key_index: 0 }))
    }
);

v2_vectors!(
    different_bytes_6_4,
    "v2_signature_test_vectors_md.json",
    "/different_bytes_6_4",
    DifferentBytes,
    |_i, v| {
        eq("body length", v.body.len(), v.body_len)?;
        let candidates = signing_candidates(v.body.as_bytes()).map_err(|e| e.to_string())?;
        eq("raw candidate", &candidates[0], &v.body.as_bytes().to_vec())?;
        eq("demo candidate", &candidates[1], &v.canonical_payload.as_bytes().to_vec())?;
        eq("candidate count (nested object already sorted)", candidates.len(), 2)?;
        let key = SecretKey::new(v.key.as_str());
        eq("raw bodyHash", body_hash(&key, v.body.as_bytes()), v.raw_body_hash.clone())?;
        let ver = verifier(&v.key);
        eq("raw signature", ver.sign(v.body.as_bytes(), &v.timestamp, &v.nonce), v.raw_signature.clone())?;
        eq(
            "canonical",
            ver.sign_canonical(v.body.as_bytes(), &v.timestamp, &v.nonce),
            Ok(v.canonical_signature.clone()),
        )?;
        for (row_index, row) in v.table.iter().enumerate() {
            let auth = V2Auth { signature: Some(&row.signature), timestamp: Some(&v.timestamp), nonce: Some(&v.nonce) };
            let got = ver.verify(auth, v.body.as_bytes(), ms(&v.timestamp));
            let want = if row.accept { Ok(()) } else { Err(AuthError::BadSignature) };
            eq(&format!("table row {row_index}"), got.map(|_| ()), want)?;
            if let Err(e) = ver.verify(auth, v.body.as_bytes(), ms(&v.timestamp)) {
                eq("rejection is 000001", e.is_authentication_failure(), true)?;
            }
        }
        Ok(())
    }
);

// ---- §6.5 negative table and further failures, derived from §6.1 ----

const AK: &str = "1234567890abcdef1234567890abcdef";
const TS: &str = "1680508066618";
const TS_MS: u64 = 1_680_508_066_618;
const NONCE: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";
const SIG: &str = "A3086BF160E99C0F507576161BBE4911A01C1179403F02133EB263559D4530E8";
const BODY: &str = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;

fn auth<'a>(signature: Option<&'a str>, timestamp: Option<&'a str>, nonce: Option<&'a str>) -> V2Auth<'a> {
    V2Auth { signature, timestamp, nonce }
}

/// The §6.5 table: (change, expected result code: true = 000001, false = 000002, None = accepted).
#[test]
fn negative_table_6_5() {
    let v = verifier(AK);
    let full = auth(Some(SIG), Some(TS), Some(NONCE));
    let changed_body = BODY.replace(r#""testFlag":"1""#, r#""testFlag":"0""#);
    let changed_key = verifier(&AK.replacen('1', "2", 1));
    let cases: Vec<(&str, Result<V2Verified, AuthError>, Option<bool>)> = vec![
        ("body byte changed", v.verify(full, changed_body.as_bytes(), TS_MS), Some(true)),
        ("signature missing", v.verify(auth(None, Some(TS), Some(NONCE)), BODY.as_bytes(), TS_MS), Some(true)),
        ("timestamp missing", v.verify(auth(Some(SIG), None, Some(NONCE)), BODY.as_bytes(), TS_MS), Some(false)),
        ("nonce missing", v.verify(auth(Some(SIG), Some(TS), None), BODY.as_bytes(), TS_MS), Some(false)),
        ("clock +60001 ms", v.verify(full, BODY.as_bytes(), TS_MS + 60_001), Some(false)),
        ("clock -60001 ms", v.verify(full, BODY.as_bytes(), TS_MS - 60_001), Some(false)),
        ("clock +59000 ms", v.verify(full, BODY.as_bytes(), TS_MS + 59_000), None),
        (
            "seconds not enabled",
            v.verify(auth(Some(SIG), Some("1680508066"), Some(NONCE)), BODY.as_bytes(), TS_MS),
            Some(false),
        ),
        ("key with one character changed", changed_key.verify(full, BODY.as_bytes(), TS_MS), Some(true)),
    ];
    for (i, (name, got, want)) in cases.into_iter().enumerate() {
        match (got, want) {
            (Ok(_), None) => {}
            (Err(e), Some(auth_failure)) => {
                assert_eq!(e.is_authentication_failure(), auth_failure, "§6.5 row #{i} ({name}): {e:?}")
            }
            (got, want) => panic!("§6.5 row #{i} ({name}): got {got:?}, want code {want:?}"),
        }
    }
}

#[test]
fn each_failure_has_its_error() {
    let v = verifier(AK);
    let body = BODY.as_bytes();
    let cases = [
        ("empty signature", v.verify(auth(Some(""), Some(TS), Some(NONCE)), body, TS_MS), AuthError::MissingSignature),
        ("empty timestamp", v.verify(auth(Some(SIG), Some(""), Some(NONCE)), body, TS_MS), AuthError::MissingTimestamp),
        ("empty nonce", v.verify(auth(Some(SIG), Some(TS), Some("")), body, TS_MS), AuthError::MissingNonce),
        (
            "truncated signature",
            v.verify(auth(Some(&SIG[..63]), Some(TS), Some(NONCE)), body, TS_MS),
            AuthError::BadSignature,
        ),
        (
            "signature of 62 chars",
            v.verify(auth(Some(&SIG[..62]), Some(TS), Some(NONCE)), body, TS_MS),
            AuthError::BadSignature,
        ),
        (
            "non-hex signature",
            v.verify(auth(Some(&SIG.replace('A', "G")), Some(TS), Some(NONCE)), body, TS_MS),
            AuthError::BadSignature,
        ),
        ("other nonce", v.verify(auth(Some(SIG), Some(TS), Some("X")), body, TS_MS), AuthError::BadSignature),
        (
            "other timestamp",
            v.verify(auth(Some(SIG), Some("1680508066619"), Some(NONCE)), body, TS_MS),
            AuthError::BadSignature,
        ),
        ("stale", v.verify(auth(Some(SIG), Some(TS), Some(NONCE)), body, TS_MS + 60_001), AuthError::TimestampTooOld),
        ("future", v.verify(auth(Some(SIG), Some(TS), Some(NONCE)), body, TS_MS - 60_001), AuthError::TimestampTooNew),
        (
            "malformed ts",
            v.verify(auth(Some(SIG), Some("16805080666x8"), Some(NONCE)), body, TS_MS),
            AuthError::MalformedTimestamp,
        ),
        ("array body", v.verify(auth(Some(SIG), Some(TS), Some(NONCE)), b"[1]", TS_MS), AuthError::NotJsonObject),
        ("empty body", v.verify(auth(Some(SIG), Some(TS), Some(NONCE)), b"", TS_MS), AuthError::NotJsonObject),
    ];
    for (i, (name, got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(want), "case #{i} ({name})");
    }
}

#[test]
fn timestamp_checked_before_signature() {
    // A forged request with a stale timestamp is a 000002, without the signature being looked at.
    let got = verifier(AK).verify(auth(Some("00"), Some(TS), Some(NONCE)), BODY.as_bytes(), TS_MS + 120_000);
    assert_eq!(got, Err(AuthError::TimestampTooOld));
}

#[test]
fn window_edges_both_ways() {
    let v = verifier(AK);
    let full = auth(Some(SIG), Some(TS), Some(NONCE));
    for (i, (now, ok)) in
        [(TS_MS + 60_000, true), (TS_MS - 60_000, true), (TS_MS + 60_001, false), (TS_MS - 60_001, false)]
            .into_iter()
            .enumerate()
    {
        assert_eq!(v.verify(full, BODY.as_bytes(), now).is_ok(), ok, "edge #{i}");
    }
}

#[test]
fn seconds_accepted_when_enabled() {
    let window = TimestampWindow { accept_seconds: true, ..TimestampWindow::default() };
    let v = V2Verifier::new(KeyRing::single(SecretKey::new(AK)), window);
    let sig = v.sign(BODY.as_bytes(), "1680508066", NONCE);
    let got = v.verify(auth(Some(&sig), Some("1680508066"), Some(NONCE)), BODY.as_bytes(), TS_MS);
    assert_eq!(got.map(|v| v.timestamp_ms), Ok(1_680_508_066_000));
}

#[test]
fn rotation_second_key_verifies_first_key_signs() {
    let ring = KeyRing::parse_list(&format!("new-key-0001, {AK}")).expect("ring");
    let v = V2Verifier::new(ring, TimestampWindow::default());
    // Signed by the marketplace with the old key (second in the ring).
    assert!(v.verify(auth(Some(SIG), Some(TS), Some(NONCE)), BODY.as_bytes(), TS_MS).is_ok());
    // Our own signatures use the first key.
    let ours = v.sign(BODY.as_bytes(), TS, NONCE);
    assert_ne!(ours, SIG);
    assert_eq!(ours, verifier("new-key-0001").sign(BODY.as_bytes(), TS, NONCE));
}

#[test]
fn nested_unsorted_body_verifies_with_fully_sorted_candidate() {
    // Candidate 3: a sender that sorts every level.
    let body = r#"{"productInfo":{"z":"1","a":"2"},"activity":"changeInstanceCheck"}"#;
    let fully_sorted = r#"{"activity":"changeInstanceCheck","productInfo":{"a":"2","z":"1"}}"#;
    let v = verifier(AK);
    let sig = v.sign(fully_sorted.as_bytes(), TS, NONCE);
    assert!(v.verify(auth(Some(&sig), Some(TS), Some(NONCE)), body.as_bytes(), TS_MS).is_ok());
    let demo = r#"{"activity":"changeInstanceCheck","productInfo":{"z":"1","a":"2"}}"#;
    let sig = v.sign(demo.as_bytes(), TS, NONCE);
    assert!(v.verify(auth(Some(&sig), Some(TS), Some(NONCE)), body.as_bytes(), TS_MS).is_ok());
}

#[test]
fn error_messages_never_contain_secrets() {
    let v = verifier(AK);
    let e = v.verify(auth(Some(SIG), Some(TS), Some(NONCE)), b"{}", TS_MS).expect_err("wrong body");
    let text = format!("{e} {e:?}");
    assert!(!text.contains(AK) && !text.contains(SIG) && !text.contains(NONCE), "{text}");
    assert!(!format!("{v:?}").contains(AK));
}
