//! API Gateway `SDK-HMAC-SHA256` (test-vectors §9): the published and the computed vector, verification, and one
//! negative test per failure.

use koogallery_core::signing::apig::{self, ApigRequest, ApigSigner};
use koogallery_core::signing::error::AuthError;
use koogallery_core::signing::keys::SecretKey;
use koogallery_core::signing::window::TimestampWindow;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Runs `body` for every vector of `data/<file>`; a failure names the vector index.
macro_rules! apig_vectors {
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
    sk: String,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
    canonical_request: String,
    canonical_request_sha256: String,
    string_to_sign: Option<String>,
    signed_headers: String,
    signature: String,
}

const DATE: &str = "20240317T144237Z";
const DATE_MS: u64 = 1_710_686_557_000;

apig_vectors!(gateway_9_1_and_9_2, "apig_test_vectors_md.json", Vector, |_i, v| {
    let mut req = ApigRequest::new(v.method.as_str(), v.url.as_str());
    req.headers = v.headers.clone();
    req.body = v.body.clone().into_bytes();
    let signer = ApigSigner::new("test-ak", SecretKey::new(v.sk.as_str()));
    signer.sign(&mut req, DATE);
    eq("host added", req.header("host"), Some("mkt.myhuaweicloud.com"))?;
    let signed: Vec<&str> = v.signed_headers.split(';').collect();
    let canonical = apig::canonical_request(&req, &signed);
    eq("canonical request", &canonical, &v.canonical_request)?;
    eq("canonical sha256", hex::encode(Sha256::digest(canonical.as_bytes())), v.canonical_request_sha256.clone())?;
    if let Some(sts) = &v.string_to_sign {
        eq("string to sign", apig::string_to_sign(&canonical, DATE), sts.clone())?;
    }
    let want = format!("SDK-HMAC-SHA256 Access=test-ak, SignedHeaders={}, Signature={}", v.signed_headers, v.signature);
    eq("authorization", req.header("authorization"), Some(want.as_str()))?;
    let lookup = |ak: &str| (ak == "test-ak").then(|| SecretKey::new(v.sk.as_str()));
    eq("verify", apig::verify(&req, lookup, DATE_MS + 1_000, TimestampWindow::default()), Ok("test-ak".to_owned()))
});

fn signed_request() -> (ApigRequest, impl Fn(&str) -> Option<SecretKey>) {
    let mut req =
        ApigRequest::new("POST", "https://mkt.myhuaweicloud.com/api/mkp-openapi-public/global/v1/isv/usage-data");
    req.headers.push(("Content-Type".into(), "application/json".into()));
    req.headers.push(("signature".into(), "abc".into()));
    req.body = br#"{"usage_records":[]}"#.to_vec();
    ApigSigner::new("ak-1", SecretKey::new("sk-1")).sign_at(&mut req, DATE_MS);
    (req, |ak: &str| (ak == "ak-1").then(|| SecretKey::new("sk-1")))
}

#[test]
fn each_failure_has_its_error() {
    let w = TimestampWindow::default();
    let (req, lookup) = signed_request();
    assert_eq!(req.header("x-sdk-date"), Some(DATE));
    assert_eq!(apig::verify(&req, &lookup, DATE_MS, w), Ok("ak-1".to_owned()));
    let edit = |f: &dyn Fn(&mut ApigRequest)| {
        let mut r = req.clone();
        f(&mut r);
        r
    };
    let set = |name: &str, value: &str| {
        edit(&|r: &mut ApigRequest| {
            r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            r.headers.push((name.to_owned(), value.to_owned()));
        })
    };
    let auth = req.header("authorization").unwrap_or_default().to_owned();
    let truncated = auth[..auth.len() - 1].to_owned();
    let cases = [
        (
            "no authorization",
            apig::verify(&edit(&|r| r.headers.retain(|(n, _)| n != "Authorization")), &lookup, DATE_MS, w),
            AuthError::MissingSignature,
        ),
        (
            "other algorithm",
            apig::verify(&set("Authorization", "AWS4-HMAC-SHA256 Access=ak-1"), &lookup, DATE_MS, w),
            AuthError::MalformedHeader("authorization"),
        ),
        (
            "no date",
            apig::verify(&edit(&|r| r.headers.retain(|(n, _)| n != "X-Sdk-Date")), &lookup, DATE_MS, w),
            AuthError::MissingHeader("x-sdk-date"),
        ),
        (
            "bad date",
            apig::verify(&set("X-Sdk-Date", "2024-03-17T14:42:37Z"), &lookup, DATE_MS, w),
            AuthError::MalformedHeader("x-sdk-date"),
        ),
        ("stale", apig::verify(&req, &lookup, DATE_MS + 60_001, w), AuthError::TimestampTooOld),
        ("future", apig::verify(&req, &lookup, DATE_MS - 60_001, w), AuthError::TimestampTooNew),
        ("unknown ak", apig::verify(&req, |_: &str| None, DATE_MS, w), AuthError::UnknownAccessKey),
        ("body changed", apig::verify(&edit(&|r| r.body.push(b' ')), &lookup, DATE_MS, w), AuthError::BadSignature),
        ("signed header changed", apig::verify(&set("signature", "abd"), &lookup, DATE_MS, w), AuthError::BadSignature),
        ("path changed", apig::verify(&edit(&|r| r.url.push('2')), &lookup, DATE_MS, w), AuthError::BadSignature),
        ("query added", apig::verify(&edit(&|r| r.url.push_str("?a=1")), &lookup, DATE_MS, w), AuthError::BadSignature),
        (
            "method changed",
            apig::verify(&edit(&|r| r.method = "PUT".into()), &lookup, DATE_MS, w),
            AuthError::BadSignature,
        ),
        (
            "signed header removed",
            apig::verify(&edit(&|r| r.headers.retain(|(n, _)| n != "signature")), &lookup, DATE_MS, w),
            AuthError::BadSignature,
        ),
        (
            "truncated signature",
            apig::verify(&set("Authorization", &truncated), &lookup, DATE_MS, w),
            AuthError::BadSignature,
        ),
        ("wrong sk", apig::verify(&req, |_: &str| Some(SecretKey::new("sk-2")), DATE_MS, w), AuthError::BadSignature),
    ];
    for (i, (name, got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(want), "case #{i} ({name})");
    }
}

#[test]
fn date_must_be_signed() {
    let (req, lookup) = signed_request();
    let auth = req.header("authorization").unwrap_or_default().replace(";x-sdk-date", "");
    let mut r = req.clone();
    r.headers.retain(|(n, _)| n != "Authorization");
    r.headers.push(("Authorization".into(), auth));
    assert_eq!(
        apig::verify(&r, lookup, DATE_MS, TimestampWindow::default()),
        Err(AuthError::MalformedHeader("authorization"))
    );
}

#[test]
fn re_signing_replaces_authorization_and_keeps_the_date() {
    let (mut req, lookup) = signed_request();
    ApigSigner::new("ak-1", SecretKey::new("sk-1")).sign(&mut req, "20990101T000000Z");
    assert_eq!(req.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("authorization")).count(), 1);
    assert_eq!(req.header("x-sdk-date"), Some(DATE));
    assert!(!req.header("authorization").unwrap_or_default().contains("authorization"));
    assert_eq!(apig::verify(&req, lookup, DATE_MS, TimestampWindow::default()), Ok("ak-1".to_owned()));
}

#[test]
fn unsigned_payload_header() {
    let mut req = ApigRequest::new("PUT", "https://h.example/obj");
    req.headers.push(("x-sdk-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
    req.body = b"large body".to_vec();
    ApigSigner::new("ak", SecretKey::new("sk")).sign(&mut req, DATE);
    let canonical = apig::canonical_request(&req, &["host", "x-sdk-content-sha256", "x-sdk-date"]);
    assert!(canonical.ends_with("\nUNSIGNED-PAYLOAD"));
    req.body = b"other body".to_vec();
    let lookup = |_: &str| Some(SecretKey::new("sk"));
    assert_eq!(apig::verify(&req, lookup, DATE_MS, TimestampWindow::default()), Ok("ak".to_owned()));
}
