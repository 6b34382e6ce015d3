//! Agents-gateway HS256 JWT (test-vectors §10): accept, expired, wrong SK; and one test per failure.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use koogallery_core::signing::agents_jwt::{self, DEFAULT_SKEW_MS, JwtClaims, JwtError, JwtVerifier};
use koogallery_core::signing::keys::SecretKey;
use serde::Deserialize;

/// Runs `body` for every vector of `data/<file>` (one object or an array); a failure names the vector index.
macro_rules! jwt_vectors {
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
    ak: String,
    sk: String,
    wrong_sk: String,
    timestamp_ms: u64,
    exp_ms: u64,
    header_json: String,
    payload_json: String,
    token: String,
}

jwt_vectors!(hs256_10, "agents_jwt_test_vectors_md.json", Vector, |_i, v| {
    let parts: Vec<&str> = v.token.split('.').collect();
    eq("header", URL_SAFE_NO_PAD.decode(parts[0]).ok(), Some(v.header_json.as_bytes().to_vec()))?;
    eq("payload", URL_SAFE_NO_PAD.decode(parts[1]).ok(), Some(v.payload_json.as_bytes().to_vec()))?;
    let sk = SecretKey::new(v.sk.as_str());
    eq("sign", agents_jwt::sign(&v.ak, &sk, v.timestamp_ms, v.exp_ms), v.token.clone())?;
    let ok = JwtVerifier::new(vec![(v.ak.clone(), sk.clone())]);
    let claims = JwtClaims { api_key: v.ak.clone(), exp_ms: Some(v.exp_ms), timestamp_ms: Some(v.timestamp_ms) };
    eq("accept at timestamp", ok.verify(&v.token, v.timestamp_ms), Ok(claims.clone()))?;
    eq("accept with Bearer", ok.verify(&format!("Bearer {}", v.token), v.timestamp_ms), Ok(claims.clone()))?;
    eq("accept at exp", ok.verify(&v.token, v.exp_ms), Ok(claims))?;
    let strict = ok.clone().with_skew_ms(0);
    eq("expired just after exp (no skew)", strict.verify(&v.token, v.exp_ms + 1), Err(JwtError::Expired))?;
    eq("expired after exp + skew", ok.verify(&v.token, v.exp_ms + DEFAULT_SKEW_MS + 1), Err(JwtError::Expired))?;
    let wrong = JwtVerifier::new(vec![(v.ak.clone(), SecretKey::new(v.wrong_sk.as_str()))]);
    eq("wrong SK", wrong.verify(&v.token, v.timestamp_ms), Err(JwtError::BadSignature))?;
    let unknown = JwtVerifier::new(vec![("other-ak".to_owned(), sk)]);
    eq("unknown AK", unknown.verify(&v.token, v.timestamp_ms), Err(JwtError::UnknownApiKey))
});

#[test]
fn each_failure_has_its_error() {
    let sk = SecretKey::new("sk-1");
    let v = JwtVerifier::new(vec![("ak-1".to_owned(), sk.clone())]);
    let token = agents_jwt::sign("ak-1", &sk, 1_000_000_000_000, 1_000_000_300_000);
    let parts: Vec<&str> = token.split('.').collect();
    let hs384 = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(r#"{"alg":"HS384"}"#), parts[1], parts[2]);
    let no_key = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(r#"{"exp":1}"#), parts[2]);
    let tampered =
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(r#"{"api_key":"ak-1","exp":9999999999999}"#), parts[2]);
    let cases = [
        ("empty", v.verify("", 0), JwtError::MissingToken),
        ("bearer only", v.verify("Bearer", 0), JwtError::MissingToken),
        ("two parts", v.verify(&parts[..2].join("."), 0), JwtError::Malformed),
        ("not base64", v.verify("%%.%%.%%", 0), JwtError::Malformed),
        ("other alg", v.verify(&hs384, 1_000_000_000_000), JwtError::UnsupportedAlgorithm),
        ("no api_key", v.verify(&no_key, 0), JwtError::MissingApiKey),
        ("payload changed", v.verify(&tampered, 1_000_000_000_000), JwtError::BadSignature),
        ("signature truncated", v.verify(&token[..token.len() - 2], 1_000_000_000_000), JwtError::BadSignature),
        ("expired", v.verify(&token, 1_000_000_300_000 + DEFAULT_SKEW_MS + 1), JwtError::Expired),
    ];
    for (i, (name, got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(want), "case #{i} ({name})");
    }
}
