//! RSA-OAEP `clientSecret` (protocol §4.6): ciphertexts made by OpenSSL 3.0 (an independent implementation) for
//! each OAEP variant, both key encodings, both Base64 alphabets, and the failures.

use koogallery_core::crypto::rsa_secret::{
    ClientSecretKey, OaepVariant, RsaSecretError, SystemRng, decrypt_client_secret, encrypt_client_secret,
};
use serde::Deserialize;

/// Runs `body` for every vector of `data/<file>`; a failure names the vector index.
macro_rules! rsa_vectors {
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

const PKCS8: &str = include_str!("data/rsa3072_pkcs8.pem");
const PKCS1: &str = include_str!("data/rsa3072_pkcs1.pem");
const PUBLIC_SPKI: &str = include_str!("data/rsa3072_public.pem");
const PUBLIC_PKCS1: &str = include_str!("data/rsa3072_public_pkcs1.pem");

#[derive(Deserialize)]
struct Vector {
    variant: String,
    ciphertext: String,
    plaintext: String,
}

rsa_vectors!(openssl_oaep_variants, "rsa_oaep_openssl.json", Vector, |_i, v| {
    let variant = OaepVariant::from_name(&v.variant).ok_or("variant name")?;
    for (name, pem) in [("PKCS#8", PKCS8), ("PKCS#1", PKCS1)] {
        eq(name, decrypt_client_secret(pem, &v.ciphertext), Ok((v.plaintext.clone(), variant)))?;
    }
    // Line-wrapped ciphertext and a PEM with literal \n (as a Spin variable may hold it).
    let wrapped: String = v.ciphertext.as_bytes().chunks(64).map(|c| String::from_utf8_lossy(c) + "\n").collect();
    eq("wrapped", decrypt_client_secret(PKCS8, &wrapped).map(|r| r.0), Ok(v.plaintext.clone()))?;
    let one_line = PKCS8.trim().replace('\n', "\\n");
    eq("escaped PEM", decrypt_client_secret(&one_line, &v.ciphertext).map(|r| r.1), Ok(variant))?;
    // Pinned to another variant, it must fail.
    let others: Vec<OaepVariant> = OaepVariant::ALL.into_iter().filter(|o| *o != variant).collect();
    let key = ClientSecretKey::from_pem(PKCS8).map_err(|e| e.to_string())?;
    eq("pinned elsewhere", key.decrypt_with(&v.ciphertext, &others), Err(RsaSecretError::DecryptionFailed))
});

#[test]
fn round_trip_every_variant_and_key_encoding() {
    let mut rng = SystemRng::new().expect("os rng");
    let key = ClientSecretKey::from_pem(PKCS1).expect("pkcs1");
    assert_eq!(key.bits(), 3072);
    for (i, (variant, public)) in OaepVariant::ALL.into_iter().zip([PUBLIC_SPKI, PUBLIC_PKCS1, PUBLIC_SPKI]).enumerate()
    {
        let ct = encrypt_client_secret(public, "secret-值", variant, &mut rng).expect("encrypt");
        assert_eq!(key.decrypt(&ct), Ok(("secret-值".to_owned(), variant)), "variant #{i}");
        let url_safe = ct.replace('+', "-").replace('/', "_").trim_end_matches('=').to_owned();
        assert_eq!(key.decrypt(&url_safe), Ok(("secret-值".to_owned(), variant)), "url-safe #{i}");
    }
}

#[test]
fn each_failure_has_its_error() {
    let mut rng = SystemRng::new().expect("os rng");
    let ct = encrypt_client_secret(PUBLIC_SPKI, "s", OaepVariant::Sha1Mgf1Sha1, &mut rng).expect("encrypt");
    let mut flipped = ct.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    let cases = [
        (
            "bad private key",
            decrypt_client_secret("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----", &ct),
            RsaSecretError::InvalidPrivateKey,
        ),
        ("public key given as private", decrypt_client_secret(PUBLIC_SPKI, &ct), RsaSecretError::InvalidPrivateKey),
        ("not base64", decrypt_client_secret(PKCS8, "***"), RsaSecretError::NotBase64),
        ("ciphertext changed", decrypt_client_secret(PKCS8, &flipped), RsaSecretError::DecryptionFailed),
        ("ciphertext truncated", decrypt_client_secret(PKCS8, &ct[..ct.len() - 8]), RsaSecretError::DecryptionFailed),
        ("empty", decrypt_client_secret(PKCS8, ""), RsaSecretError::DecryptionFailed),
    ];
    for (i, (name, got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(want), "case #{i} ({name})");
    }
    let too_long = "x".repeat(400);
    assert_eq!(
        encrypt_client_secret(PUBLIC_SPKI, &too_long, OaepVariant::Sha256Mgf1Sha256, &mut rng),
        Err(RsaSecretError::EncryptionFailed)
    );
    assert!(!format!("{:?}", ClientSecretKey::from_pem(PKCS8).expect("key")).contains("MII"));
}
