//! V1 `authToken` (test-vectors §4): the documented requests, both blank conventions, encoded lists, and one
//! negative test per failure.

use koogallery_core::signing::error::AuthError;
use koogallery_core::signing::keys::{KeyRing, SecretKey};
use koogallery_core::signing::v1::V1AuthToken;
use serde::Deserialize;

/// Runs `body` for every vector of `data/<file>` at `ptr`; a failure names the vector index.
macro_rules! v1_vectors {
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

const AK: &str = "1234567890abcdef1234567890abcdef";

fn v1(key: &str) -> V1AuthToken {
    V1AuthToken::new(KeyRing::single(SecretKey::new(key)))
}

/// Splits a signed `k=v&…` string back into pairs (the vectors' strings hold no `&` or `=` in values).
fn pairs(signed: &str) -> Vec<(&str, &str)> {
    signed.split('&').map(|kv| kv.split_once('=').unwrap_or((kv, ""))).collect()
}

#[derive(Deserialize)]
struct Documented {
    url_query: Option<String>,
    url_query_without_token: Option<String>,
    auth_token_url_encoded: Option<String>,
    time_stamp: String,
    string_to_sign: String,
    auth_token: String,
}

v1_vectors!(documented_requests_4_1_and_4_2, "v1_auth_token_test_vectors_md.json", "/vectors", Documented, |_i, v| {
    let signer = v1(AK);
    // Parameters shuffled: signing sorts them.
    let mut params = pairs(&v.string_to_sign);
    params.reverse();
    eq("sign", signer.sign(&params, &v.time_stamp), v.auth_token.clone())?;
    let query = match (&v.url_query, &v.url_query_without_token, &v.auth_token_url_encoded) {
        (Some(q), _, _) => q.clone(),
        (None, Some(q), Some(token)) => format!("{q}&authToken={token}"),
        _ => return Err("vector has no query".into()),
    };
    eq("verify", signer.verify(&query), Ok(()))?;
    eq("verify with leading ?", signer.verify(&format!("?{query}")), Ok(()))?;
    // `+` left unencoded by a sender arrives as a space after form decoding.
    let plus_raw = query.replace("%2B", "+");
    eq("verify with raw +", signer.verify(&plus_raw), Ok(()))?;
    eq("wrong key", v1("1234567890abcdef1234567890abcdeF").verify(&query), Err(AuthError::BadSignature))
});

#[derive(Deserialize)]
struct Blank {
    skipped_token: String,
    included_token: String,
}

v1_vectors!(blank_parameter_4_3, "v1_auth_token_test_vectors_md.json", "/blank_parameter", Blank, |_i, v| {
    let base = "activity=newInstance&businessId=61e834ba-7b97-4418-b8f7-e5345137278c&customerId=68cbc86abc2018ab880d92f36422fa0e&expireTime=20200727153156&orderId=CS1906666666ABCDE&productId=00301-666666-0--0&testFlag=1&timeStamp=20200727073711903";
    let with_blank = format!("{base}&userId=");
    let signer = v1(AK);
    eq("sign includes blanks", signer.sign(&pairs(&with_blank), "20200727073711903"), v.included_token.clone())?;
    eq("sign without the blank", signer.sign(&pairs(base), "20200727073711903"), v.skipped_token.clone())?;
    for (name, token) in [("skipped", &v.skipped_token), ("included", &v.included_token)] {
        let encoded = token.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        let query = format!("{base}&userId=&authToken={encoded}");
        eq(&format!("verify, blanks {name}"), signer.verify(&query), Ok(()))?;
        let decoded = pairs(&with_blank).iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
        eq(&format!("verify_params, blanks {name}"), signer.verify_params(&decoded, token), Ok(()))?;
    }
    Ok(())
});

const QUERY_4_1: &str = "activity=newInstance&businessId=61e834ba-7b97-4418-b8f7-e5345137278c&customerId=68cbc86abc2018ab880d92f36422fa0e&expireTime=20200727153156&orderId=CS1906666666ABCDE&productId=00301-666666-0--0&testFlag=1&timeStamp=20200727073711903&authToken=L5OcZB1jCm%2Be57AwbPi0dED3h7CTbuoyn%2FYwwLeXUus%3D";

#[test]
fn each_failure_has_its_error() {
    let s = v1(AK);
    let no_token = QUERY_4_1.split("&authToken=").next().unwrap_or_default();
    let cases = [
        ("authToken missing", s.verify(no_token), AuthError::MissingSignature),
        ("authToken empty", s.verify(&format!("{no_token}&authToken=")), AuthError::MissingSignature),
        (
            "timeStamp missing",
            s.verify(&QUERY_4_1.replace("&timeStamp=20200727073711903", "")),
            AuthError::MissingTimestamp,
        ),
        ("timeStamp changed", s.verify(&QUERY_4_1.replace("711903", "711904")), AuthError::BadSignature),
        ("parameter changed", s.verify(&QUERY_4_1.replace("testFlag=1", "testFlag=0")), AuthError::BadSignature),
        ("parameter added", s.verify(&format!("extra=1&{QUERY_4_1}")), AuthError::BadSignature),
        ("token truncated", s.verify(&QUERY_4_1.replace("%3D", "")), AuthError::BadSignature),
        ("token changed", s.verify(&QUERY_4_1.replace("L5Oc", "L5Od")), AuthError::BadSignature),
        ("empty query", s.verify(""), AuthError::MissingSignature),
    ];
    for (i, (name, got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(want), "case #{i} ({name})");
    }
    assert!(AuthError::MissingSignature.is_authentication_failure());
    assert!(!AuthError::MissingTimestamp.is_authentication_failure());
}

#[test]
fn still_encoded_values_are_accepted() {
    // A sender that signs the values as they appear in the URL (here `%2C` kept).
    let s = v1(AK);
    let q = "activity=queryInstance&instanceId=a%2Cb&testFlag=1&timeStamp=20230327065233980";
    let token = s.sign(&pairs(q), "20230327065233980");
    let encoded = token.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    assert_eq!(s.verify(&format!("{q}&authToken={encoded}")), Ok(()));
}

#[test]
fn rotation_and_kit_header_variant() {
    let ring = KeyRing::parse_list(&format!("new-key, {AK}")).expect("ring");
    let s = V1AuthToken::new(ring);
    assert_eq!(s.verify(QUERY_4_1), Ok(()));
    let body: Vec<(String, String)> = [("tenantId", "t-1"), ("name", ""), ("timeStamp", "20220413093539534")]
        .map(|(k, v)| (k.into(), v.into()))
        .into();
    let token = v1(AK).sign(&[("tenantId", "t-1"), ("timeStamp", "20220413093539534")], "20220413093539534");
    assert_eq!(s.verify_params(&body, &token), Ok(()));
    assert_eq!(s.verify_params(&body, &token.replace('+', " ")), Ok(()));
    assert_eq!(s.verify_params(&body, ""), Err(AuthError::MissingSignature));
    assert_eq!(s.verify_params(&body[..2], &token), Err(AuthError::MissingTimestamp));
    assert_eq!(s.verify_params(&body, &token[1..]), Err(AuthError::BadSignature));
}
