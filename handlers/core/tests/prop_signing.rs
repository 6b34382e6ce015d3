//! Property tests: for every scheme, sign → verify holds for arbitrary inputs, and any single-byte change of
//! body, key, timestamp, nonce or signature is rejected. AES, APIG and canonical JSON round-trip.

use koogallery_core::crypto::aes_cred::{AesBits, CredentialCipher};
use koogallery_core::signing::agents_jwt::{self, JwtVerifier};
use koogallery_core::signing::apig::{self, ApigRequest, ApigSigner};
use koogallery_core::signing::body_sign;
use koogallery_core::signing::canonical_json::{jackson_compact, signing_candidates, sorted_compact};
use koogallery_core::signing::keys::{KeyRing, SecretKey};
use koogallery_core::signing::kit::{KitAuth, KitVerifier};
use koogallery_core::signing::usage;
use koogallery_core::signing::v1::V1AuthToken;
use koogallery_core::signing::v2::{V2Auth, V2Verifier};
use koogallery_core::signing::window::TimestampWindow;
use proptest::prelude::*;
use proptest::sample::Index;

const NOW: u64 = 1_700_000_000_000;
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn key_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9-]{1,40}"
}

fn nonce_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{1,64}"
}

/// A 13-digit ms timestamp inside the default window around [`NOW`].
fn fresh_ts() -> impl Strategy<Value = String> {
    (NOW - 60_000..=NOW + 60_000).prop_map(|t| t.to_string())
}

/// A JSON object body with string values (as V2 bodies are), serialised compactly in generated order.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(("[a-zA-Z]{1,12}", any::<String>()), 0..8).prop_map(|fields| {
        let map: serde_json::Map<String, serde_json::Value> =
            fields.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
        serde_json::to_vec(&serde_json::Value::Object(map)).unwrap_or_default()
    })
}

/// `bytes` with the byte at `at` replaced by a different value.
fn change_byte(bytes: &[u8], at: Index, delta: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if !out.is_empty() {
        let i = at.index(out.len());
        out[i] ^= delta.max(1);
    }
    out
}

/// `text` with one character replaced by a different ASCII letter or digit (keeps it valid UTF-8 and ASCII).
fn change_char(text: &str, at: Index, pick: Index) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let i = at.index(bytes.len());
    let mut c = ALNUM[pick.index(ALNUM.len())];
    if c == bytes[i] {
        c = if c == b'0' { b'1' } else { b'0' };
    }
    bytes[i] = c;
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A hex signature with one digit changed to a different value (not merely another case).
fn change_hex_digit(sig: &str, at: Index) -> String {
    let mut chars: Vec<char> = sig.chars().collect();
    let i = at.index(chars.len());
    let v = chars[i].to_digit(16).unwrap_or(0);
    chars[i] = char::from_digit((v + 1) % 16, 16).unwrap_or('0');
    chars.into_iter().collect()
}

fn ring(key: &str) -> KeyRing {
    KeyRing::single(SecretKey::new(key))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn v2_sign_verify_and_single_changes(
        body in json_body(), key in key_text(), nonce in nonce_text(), ts in fresh_ts(),
        at in any::<Index>(), pick in any::<Index>(), delta in 1u8..,
    ) {
        let v = V2Verifier::new(ring(&key), TimestampWindow::default());
        let sig = v.sign(&body, &ts, &nonce);
        let auth = V2Auth { signature: Some(&sig), timestamp: Some(&ts), nonce: Some(&nonce) };
        prop_assert!(v.verify(auth, &body, NOW).is_ok());
        let lower = sig.to_lowercase();
        let outcome = v.verify(V2Auth { signature: Some(&lower), ..auth }, &body, NOW);
        prop_assert!(outcome.is_ok());

        prop_assert!(v.verify(auth, &change_byte(&body, at, delta), NOW).is_err());
        let other = V2Verifier::new(ring(&change_char(&key, at, pick)), TimestampWindow::default());
        prop_assert!(other.verify(auth, &body, NOW).is_err());
        let ts2 = change_char(&ts, at, pick);
        let outcome = v.verify(V2Auth { timestamp: Some(&ts2), ..auth }, &body, NOW);
        prop_assert!(outcome.is_err());
        let nonce2 = change_char(&nonce, at, pick);
        let outcome = v.verify(V2Auth { nonce: Some(&nonce2), ..auth }, &body, NOW);
        prop_assert!(outcome.is_err());
        let sig2 = change_hex_digit(&sig, at);
        let outcome = v.verify(V2Auth { signature: Some(&sig2), ..auth }, &body, NOW);
        prop_assert!(outcome.is_err());
    }

    #[test]
    fn kit_sign_verify_and_single_changes(
        body in json_body(), key in key_text(), nonce in nonce_text(), ts in fresh_ts(),
        at in any::<Index>(), pick in any::<Index>(), delta in 1u8..,
    ) {
        let k = KitVerifier::new(ring(&key), TimestampWindow::default());
        let sign = k.sign(&body, &ts, &nonce);
        let auth = KitAuth { sign: Some(&sign), timestamp: Some(&ts), nonce: Some(&nonce) };
        prop_assert!(k.verify(auth, &body, NOW).is_ok());
        prop_assert!(k.verify(auth, &change_byte(&body, at, delta), NOW).is_err());
        let other = KitVerifier::new(ring(&change_char(&key, at, pick)), TimestampWindow::default());
        prop_assert!(other.verify(auth, &body, NOW).is_err());
        let ts2 = change_char(&ts, at, pick);
        let outcome = k.verify(KitAuth { timestamp: Some(&ts2), ..auth }, &body, NOW);
        prop_assert!(outcome.is_err());
        let nonce2 = change_char(&nonce, at, pick);
        let outcome = k.verify(KitAuth { nonce: Some(&nonce2), ..auth }, &body, NOW);
        prop_assert!(outcome.is_err());
        let sign2 = change_hex_digit(&sign, at);
        let outcome = k.verify(KitAuth { sign: Some(&sign2), ..auth }, &body, NOW);
        prop_assert!(outcome.is_err());
    }

    #[test]
    fn v1_sign_verify_and_single_changes(
        params in prop::collection::btree_map("[a-zA-Z]{1,10}", any::<String>(), 0..6),
        key in key_text(), ts in "[0-9]{17}", at in any::<Index>(), pick in any::<Index>(),
    ) {
        let mut list: Vec<(&str, &str)> = params
            .iter()
            .filter(|(k, _)| k.as_str() != "timeStamp" && k.as_str() != "authToken")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        list.push(("timeStamp", &ts));
        let s = V1AuthToken::new(ring(&key));
        let query = s.signed_query(&list, &ts);
        prop_assert_eq!(s.verify(&query), Ok(()));
        let other = V1AuthToken::new(ring(&change_char(&key, at, pick)));
        prop_assert!(other.verify(&query).is_err());
        let ts2 = change_char(&ts, at, pick);
        let changed_ts: Vec<(&str, &str)> =
            list.iter().map(|&(k, v)| if k == "timeStamp" { (k, ts2.as_str()) } else { (k, v) }).collect();
        let token = s.sign(&list, &ts);
        let requery = format!("{}&authToken={}", s.signed_query(&changed_ts, &ts2).split("&authToken=").next().unwrap_or(""),
            token.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D"));
        prop_assert!(s.verify(&requery).is_err());
        let bad_token = change_char(&token, at, pick);
        let decoded: Vec<(String, String)> = list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        prop_assert_eq!(s.verify_params(&decoded, &token), Ok(()));
        prop_assert!(s.verify_params(&decoded, &bad_token).is_err());
    }

    #[test]
    fn v1_value_change_is_rejected(
        value in "[a-z]{1,10}", key in key_text(), at in any::<Index>(), pick in any::<Index>(),
    ) {
        let s = V1AuthToken::new(ring(&key));
        let token = s.sign(&[("activity", &value), ("timeStamp", "20200727073711903")], "20200727073711903");
        let changed = change_char(&value, at, pick);
        let decoded = vec![("activity".to_owned(), changed), ("timeStamp".to_owned(), "20200727073711903".to_owned())];
        prop_assert!(s.verify_params(&decoded, &token).is_err());
    }

    #[test]
    fn body_sign_sign_verify_and_single_changes(
        body in prop::collection::vec(any::<u8>(), 0..300), key in key_text(),
        at in any::<Index>(), pick in any::<Index>(), delta in 1u8..,
    ) {
        let k = SecretKey::new(key.as_str());
        let header = body_sign::header_value(&k, &body);
        prop_assert_eq!(body_sign::verify(&header, &body, &ring(&key)), Ok(()));
        if !body.is_empty() {
            prop_assert!(body_sign::verify(&header, &change_byte(&body, at, delta), &ring(&key)).is_err());
        }
        prop_assert!(body_sign::verify(&header, &body, &ring(&change_char(&key, at, pick))).is_err());
        let sig = body_sign::signature(&k, &body);
        let bad = change_char(&sig[..43], at, pick) + "=";
        let outcome = body_sign::verify(&format!("signature= \"{bad}\""), &body, &ring(&key));
        prop_assert!(outcome.is_err());
    }

    #[test]
    fn usage_sign_verify_and_single_changes(
        body in prop::collection::vec(any::<u8>(), 1..300), key in key_text(), nonce in nonce_text(), ts in fresh_ts(),
        at in any::<Index>(), pick in any::<Index>(), delta in 1u8..,
    ) {
        let w = TimestampWindow::default();
        let sig = usage::signature(&SecretKey::new(key.as_str()), &ts, &nonce, &body);
        let keys = ring(&key);
        prop_assert!(usage::verify(&keys, &ts, &nonce, &sig, &body, NOW, w).is_ok());
        prop_assert!(usage::verify(&keys, &ts, &nonce, &sig, &change_byte(&body, at, delta), NOW, w).is_err());
        prop_assert!(usage::verify(&ring(&change_char(&key, at, pick)), &ts, &nonce, &sig, &body, NOW, w).is_err());
        prop_assert!(usage::verify(&keys, &change_char(&ts, at, pick), &nonce, &sig, &body, NOW, w).is_err());
        prop_assert!(usage::verify(&keys, &ts, &change_char(&nonce, at, pick), &sig, &body, NOW, w).is_err());
        let bad = change_char(&sig[..43], at, pick) + "=";
        prop_assert!(usage::verify(&keys, &ts, &nonce, &bad, &body, NOW, w).is_err());
    }

    #[test]
    fn apig_sign_verify_and_single_changes(
        segments in prop::collection::vec("[^/?#]{0,8}", 0..4),
        query in prop::collection::vec(("[a-zA-Z0-9 %+=-]{1,6}", "[a-zA-Z0-9 ,+-]{0,6}"), 0..4),
        headers in prop::collection::vec(("x-[a-z]{1,8}", "[ -~]{0,20}"), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..200),
        sk in key_text(), at in any::<Index>(), pick in any::<Index>(), delta in 1u8..,
    ) {
        let path: String = segments.iter().map(|s| format!("/{}", percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC))).collect();
        let q: Vec<String> = query.iter().map(|(k, v)| format!("{}={}",
            percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC),
            percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC))).collect();
        let url = format!("https://mkt.example.com{path}?{}", q.join("&"));
        let mut req = ApigRequest::new("POST", url);
        for (n, v) in &headers {
            if req.header(n).is_none() {
                req.headers.push((n.clone(), v.clone()));
            }
        }
        req.body = body.clone();
        ApigSigner::new("ak", SecretKey::new(sk.as_str())).sign_at(&mut req, NOW);
        let w = TimestampWindow::default();
        let lookup = |_: &str| Some(SecretKey::new(sk.as_str()));
        prop_assert_eq!(apig::verify(&req, lookup, NOW, w), Ok("ak".to_owned()));
        if !body.is_empty() {
            let mut changed = req.clone();
            changed.body = change_byte(&body, at, delta);
            prop_assert!(apig::verify(&changed, lookup, NOW, w).is_err());
        }
        let other = change_char(&sk, at, pick);
        prop_assert!(apig::verify(&req, |_: &str| Some(SecretKey::new(other.as_str())), NOW, w).is_err());
    }

    #[test]
    fn aes_round_trips_arbitrary_utf8(plain in any::<String>(), key in key_text(), iv in any::<[u8; 16]>()) {
        for bits in [AesBits::Aes256, AesBits::Aes128] {
            let c = CredentialCipher::new(&SecretKey::new(key.as_str()), bits);
            let iv = koogallery_core::crypto::aes_cred::iv_from_random(iv);
            let out = c.encrypt(&plain, &iv);
            prop_assert_eq!(&out.as_bytes()[..16], &iv[..]);
            prop_assert_eq!(c.decrypt(&out), Ok(plain.clone()));
        }
    }

    #[test]
    fn jwt_sign_verify_and_single_changes(
        ak in key_text(), sk in key_text(), ts in 100_000_000_000u64..4_000_000_000_000, life in 1u64..600_000,
        at in any::<Index>(), pick in any::<Index>(),
    ) {
        let token = agents_jwt::sign(&ak, &SecretKey::new(sk.as_str()), ts, ts + life);
        let v = JwtVerifier::new(vec![(ak.clone(), SecretKey::new(sk.as_str()))]).with_skew_ms(0);
        prop_assert!(v.verify(&token, ts).is_ok());
        prop_assert!(v.verify(&token, ts + life + 1).is_err());
        let other = JwtVerifier::new(vec![(ak.clone(), SecretKey::new(change_char(&sk, at, pick)))]);
        prop_assert!(other.verify(&token, ts).is_err());
        let sig_start = token.rfind('.').unwrap_or(0) + 1;
        let sig = &token[sig_start..];
        let bad = format!("{}{}", &token[..sig_start], change_char(&sig[..42], at, pick) + &sig[42..]);
        prop_assert!(v.verify(&bad, ts).is_err());
    }

    #[test]
    fn canonical_forms_parse_back_to_the_same_value(body in json_body()) {
        let original: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        for candidate in signing_candidates(&body).unwrap_or_default() {
            let back: serde_json::Value = serde_json::from_slice(&candidate).unwrap_or_default();
            prop_assert_eq!(&back, &original);
        }
        prop_assert_eq!(serde_json::from_slice::<serde_json::Value>(&jackson_compact(&original)).ok(), Some(original.clone()));
        prop_assert_eq!(serde_json::from_slice::<serde_json::Value>(&sorted_compact(&original)).ok(), Some(original));
    }
}
