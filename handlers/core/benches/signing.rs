//! Signing benchmarks: sign and verify per scheme, AES with its key derivation, JWT, RSA-OAEP.
//!
//! `cargo bench -p koogallery-core --bench signing -- --quick`

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use koogallery_core::crypto::aes_cred::{self, AesBits, CredentialCipher};
use koogallery_core::crypto::rsa_secret::{ClientSecretKey, OaepVariant, SystemRng, encrypt_client_secret};
use koogallery_core::signing::agents_jwt::{self, JwtVerifier};
use koogallery_core::signing::apig::{self, ApigRequest, ApigSigner};
use koogallery_core::signing::body_sign;
use koogallery_core::signing::canonical_json::signing_candidates;
use koogallery_core::signing::keys::{KeyRing, SecretKey};
use koogallery_core::signing::kit::{KitAuth, KitVerifier};
use koogallery_core::signing::usage;
use koogallery_core::signing::v1::V1AuthToken;
use koogallery_core::signing::v2::{V2Auth, V2Verifier};
use koogallery_core::signing::window::TimestampWindow;

const AK: &str = "1234567890abcdef1234567890abcdef";
const TS: &str = "1680508066618";
const TS_MS: u64 = 1_680_508_066_618;
const NONCE: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";
const V2_BODY: &str = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;
const V2_WIRE_BODY: &str = r#"{"testFlag": "1", "activity": "changeInstanceCheck", "productInfo": {"linearValue": 50, "productId": "OFFI846204237451911168", "productName": "\u534e\u4e3a\u4e91\u7ba1\u7406\u5458/\u57fa\u7840\u7248", "skuCode": "0a4d1578-5295-46a7-92d4-7c803dccc51d"}, "instanceId": "10e758d0-31ad-4c4b-8f1b-81d03469a10e", "memo": null}"#;
const KIT_BODY: &str = r#"{"instanceId":"huaiweitest123456","orderId":"CS1906666666ABCDE","tenantId":"68cbc86abc2018ab880d92f36422fa0e","tenantCode":"huawei","name":"huaiweitest","domainName":"https://example.tenantaccount.com","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}"#;
const V1_QUERY: &str = "activity=newInstance&businessId=61e834ba-7b97-4418-b8f7-e5345137278c&customerId=68cbc86abc2018ab880d92f36422fa0e&expireTime=20200727153156&orderId=CS1906666666ABCDE&productId=00301-666666-0--0&testFlag=1&timeStamp=20200727073711903&authToken=L5OcZB1jCm%2Be57AwbPi0dED3h7CTbuoyn%2FYwwLeXUus%3D";

fn ring() -> KeyRing {
    KeyRing::single(SecretKey::new(AK))
}

fn v2(c: &mut Criterion) {
    let v = V2Verifier::new(ring(), TimestampWindow::default());
    let sig = v.sign(V2_BODY.as_bytes(), TS, NONCE);
    let auth = V2Auth { signature: Some(&sig), timestamp: Some(TS), nonce: Some(NONCE) };
    c.bench_function("v2/sign", |b| b.iter(|| v.sign(black_box(V2_BODY.as_bytes()), TS, NONCE)));
    c.bench_function("v2/verify", |b| b.iter(|| v.verify(auth, black_box(V2_BODY.as_bytes()), TS_MS)));
    let wire_sig = v.sign_canonical(V2_WIRE_BODY.as_bytes(), TS, NONCE).unwrap_or_default();
    let wire = V2Auth { signature: Some(&wire_sig), ..auth };
    c.bench_function("v2/verify_reordered_body_3_candidates", |b| {
        b.iter(|| v.verify(wire, black_box(V2_WIRE_BODY.as_bytes()), TS_MS))
    });
    let rotated = V2Verifier::new(
        KeyRing::parse_list(&format!("k-new, {AK}")).unwrap_or_else(|_| ring()),
        TimestampWindow::default(),
    );
    c.bench_function("v2/verify_two_key_ring", |b| {
        b.iter(|| rotated.verify(auth, black_box(V2_BODY.as_bytes()), TS_MS))
    });
    c.bench_function("canonical/candidates_320B", |b| {
        b.iter(|| signing_candidates(black_box(V2_WIRE_BODY.as_bytes())))
    });
}

fn kit(c: &mut Criterion) {
    let k = KitVerifier::new(ring(), TimestampWindow::default());
    let sign = k.sign_canonical(KIT_BODY.as_bytes(), TS, NONCE).unwrap_or_default();
    let auth = KitAuth { sign: Some(&sign), timestamp: Some(TS), nonce: Some(NONCE) };
    c.bench_function("kit/sign", |b| b.iter(|| k.sign(black_box(KIT_BODY.as_bytes()), TS, NONCE)));
    c.bench_function("kit/verify", |b| b.iter(|| k.verify(auth, black_box(KIT_BODY.as_bytes()), TS_MS)));
}

fn v1(c: &mut Criterion) {
    let s = V1AuthToken::new(ring());
    let params = [("activity", "newInstance"), ("orderId", "CS1906666666ABCDE"), ("timeStamp", "20200727073711903")];
    c.bench_function("v1/sign", |b| b.iter(|| s.sign(black_box(&params), "20200727073711903")));
    c.bench_function("v1/verify", |b| b.iter(|| s.verify(black_box(V1_QUERY))));
}

fn body_sign_bench(c: &mut Criterion) {
    let key = SecretKey::new(AK);
    let keys = ring();
    let body = br#"{"resultCode":"000000","resultMsg":"success.","instanceId":"61e834ba-7b97-4418-b8f7-e5345137278c"}"#;
    let header = body_sign::header_value(&key, body);
    c.bench_function("body_sign/sign", |b| b.iter(|| body_sign::header_value(&key, black_box(body))));
    c.bench_function("body_sign/verify", |b| b.iter(|| body_sign::verify(&header, black_box(body), &keys)));
}

fn usage(c: &mut Criterion) {
    let key = SecretKey::new(AK);
    let keys = ring();
    let body = br#"{"usage_records":[{"begin_time":"20240306T010000Z","end_time":"20240306T015959Z","instance_id":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","metering_sn":"7d2a8f7e-5b1c-4d5e-9a44-0c1e2f3a4b5c","record_time":"20240306T020000Z","usage_value":"12.5"}]}"#;
    let (ts, nonce) = ("1709690865879", "6c63c221-1f6b-4141-8ff4-22f5dfe82b65");
    let sig = usage::signature(&key, ts, nonce, body);
    let w = TimestampWindow::default();
    c.bench_function("usage/sign", |b| b.iter(|| usage::signature(&key, ts, nonce, black_box(body))));
    c.bench_function("usage/verify", |b| {
        b.iter(|| usage::verify(&keys, ts, nonce, &sig, black_box(body), 1_709_690_865_879, w))
    });
}

fn apig_bench(c: &mut Criterion) {
    let signer = ApigSigner::new("ak", SecretKey::new("123"));
    let mut base = ApigRequest::new(
        "GET",
        "https://mkt.myhuaweicloud.com/api/mkp-openapi-public/global/v1/order/query?orderId=MOCKPERIODYEARNEW&orderLineId=MOCKPERIODYEARNEW-000001",
    );
    base.headers.push(("content-type".into(), "application/json".into()));
    c.bench_function("apig/sign", |b| {
        b.iter(|| {
            let mut req = base.clone();
            signer.sign(&mut req, "20240317T144237Z");
            req
        })
    });
    let mut signed = base.clone();
    signer.sign(&mut signed, "20240317T144237Z");
    let lookup = |_: &str| Some(SecretKey::new("123"));
    c.bench_function("apig/verify", |b| {
        b.iter(|| apig::verify(black_box(&signed), lookup, 1_710_686_557_000, TimestampWindow::default()))
    });
}

fn aes(c: &mut Criterion) {
    let key = SecretKey::new(AK);
    c.bench_function("sha1prng/derive_aes256_key", |b| b.iter(|| aes_cred::aes_key(black_box(&key), AesBits::Aes256)));
    c.bench_function("aes/cipher_new_256", |b| b.iter(|| CredentialCipher::new(black_box(&key), AesBits::Aes256)));
    let cipher = CredentialCipher::new(&key, AesBits::Aes256);
    let out = cipher.encrypt("Huawei12345", b"abcdefgh12345678");
    c.bench_function("aes/encrypt_256", |b| b.iter(|| cipher.encrypt(black_box("Huawei12345"), b"abcdefgh12345678")));
    c.bench_function("aes/decrypt_256", |b| b.iter(|| cipher.decrypt(black_box(&out))));
    c.bench_function("aes/decrypt_contact_128_fallback", |b| {
        let a3 = "abcdefgh12345678oY/+cRcq6bPCtW1cVhVJwg==";
        b.iter(|| koogallery_core::crypto::aes_cred::decrypt_contact(&key, black_box(a3)))
    });
}

fn jwt(c: &mut Criterion) {
    let sk = SecretKey::new("demo-sk-0001");
    let v = JwtVerifier::new(vec![("demo-ak-0001".to_owned(), sk.clone())]);
    let token = agents_jwt::sign("demo-ak-0001", &sk, 1_709_690_865_879, 1_709_691_165_879);
    c.bench_function("jwt/sign", |b| {
        b.iter(|| agents_jwt::sign("demo-ak-0001", &sk, 1_709_690_865_879, 1_709_691_165_879))
    });
    c.bench_function("jwt/verify", |b| b.iter(|| v.verify(black_box(&token), 1_709_690_865_879)));
}

fn rsa(c: &mut Criterion) {
    let key = match ClientSecretKey::from_pem(include_str!("../tests/data/rsa3072_pkcs8.pem")) {
        Ok(k) => k,
        Err(_) => return,
    };
    let Ok(mut rng) = SystemRng::new() else { return };
    let public = include_str!("../tests/data/rsa3072_public.pem");
    let first =
        encrypt_client_secret(public, "client-secret", OaepVariant::Sha256Mgf1Sha256, &mut rng).unwrap_or_default();
    let last = encrypt_client_secret(public, "client-secret", OaepVariant::Sha1Mgf1Sha1, &mut rng).unwrap_or_default();
    let mut group = c.benchmark_group("rsa3072");
    group.sample_size(10);
    group.bench_function("decrypt_first_variant", |b| b.iter(|| key.decrypt(black_box(&first))));
    group.bench_function("decrypt_third_variant", |b| b.iter(|| key.decrypt(black_box(&last))));
    group.finish();
}

/// The benchmark group; a module so the undocumented function `criterion_group!` generates can be allowed.
mod group {
    #![allow(missing_docs)]
    use super::{aes, apig_bench, body_sign_bench, jwt, kit, rsa, usage, v1, v2};
    criterion::criterion_group!(benches, v2, kit, v1, body_sign_bench, usage, apig_bench, aes, jwt, rsa);
}

criterion_main!(group::benches);
