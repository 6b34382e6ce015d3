//! `Body-Sign` response header (test-vectors §5): exact header text, the bytes-not-content rule, failures.

use koogallery_core::signing::body_sign;
use koogallery_core::signing::error::AuthError;
use koogallery_core::signing::keys::{KeyRing, SecretKey};
use serde::Deserialize;

/// Runs `body` for every vector of `data/<file>`; a failure names the vector index.
macro_rules! body_sign_vectors {
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
struct Vector {
    key: String,
    body: String,
    body_len: usize,
    header: String,
}

body_sign_vectors!(header_5_1_and_5_2, "body_sign_test_vectors_md.json", Vector, |_i, v| {
    eq("body length", v.body.len(), v.body_len)?;
    let key = SecretKey::new(v.key.as_str());
    eq("header", body_sign::header_value(&key, v.body.as_bytes()), v.header.clone())?;
    let keys = KeyRing::single(key);
    eq("verify", body_sign::verify(&v.header, v.body.as_bytes(), &keys), Ok(()))?;
    // Same content, `\u`-escaped: different bytes, different signature.
    let value: serde_json::Value = serde_json::from_str(&v.body).map_err(|e| e.to_string())?;
    let escaped = serde_json::to_string(&value).map_err(|e| e.to_string())?.chars().fold(String::new(), |mut s, c| {
        if c.is_ascii() {
            s.push(c)
        } else {
            s.push_str(&format!("\\u{:04x}", c as u32))
        }
        s
    });
    if escaped != v.body {
        eq(
            "escaped body rejected",
            body_sign::verify(&v.header, escaped.as_bytes(), &keys),
            Err(AuthError::BadSignature),
        )?;
    }
    Ok(())
});

const AK: &str = "1234567890abcdef1234567890abcdef";
const BODY: &str =
    r#"{"resultCode":"000000","resultMsg":"success.","instanceId":"61e834ba-7b97-4418-b8f7-e5345137278c"}"#;
const HEADER: &str = r#"sign_type="HMAC-SHA256", signature= "mHgssqnVSoRSgR9kqAymo6Fb0l408AyRIjKE5IAlh/k=""#;

#[test]
fn each_failure_has_its_error() {
    let keys = KeyRing::single(SecretKey::new(AK));
    let other = KeyRing::single(SecretKey::new("another-key"));
    let cases = [
        (
            "no signature attribute",
            body_sign::verify(r#"sign_type="HMAC-SHA256""#, BODY.as_bytes(), &keys),
            AuthError::MissingSignature,
        ),
        ("empty header", body_sign::verify("", BODY.as_bytes(), &keys), AuthError::MissingSignature),
        (
            "other sign_type",
            body_sign::verify(&HEADER.replace("SHA256", "SHA1"), BODY.as_bytes(), &keys),
            AuthError::MalformedHeader("body-sign"),
        ),
        (
            "truncated signature",
            body_sign::verify(&HEADER.replace("h/k=", ""), BODY.as_bytes(), &keys),
            AuthError::BadSignature,
        ),
        (
            "body changed",
            body_sign::verify(HEADER, BODY.replace("success.", "success").as_bytes(), &keys),
            AuthError::BadSignature,
        ),
        ("wrong key", body_sign::verify(HEADER, BODY.as_bytes(), &other), AuthError::BadSignature),
    ];
    for (i, (name, got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(want), "case #{i} ({name})");
    }
}

#[test]
fn rotation_signs_with_first_and_verifies_with_any() {
    let ring = KeyRing::parse_list(&format!("new, {AK}")).expect("ring");
    assert_eq!(body_sign::verify(HEADER, BODY.as_bytes(), &ring), Ok(()));
    assert_ne!(body_sign::header_value(ring.signing_key(), BODY.as_bytes()), HEADER);
}
