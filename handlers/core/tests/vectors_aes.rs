//! AES-CBC credential encryption (test-vectors §3): A1–A11 both ways, lengths, the contact fallback, failures.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use koogallery_core::crypto::aes_cred::{
    AesBits, AesError, ContactValue, CredentialCipher, decrypt_contact, iv_from_random,
};
use koogallery_core::signing::keys::SecretKey;
use serde::Deserialize;

/// Runs `body` for every vector of `data/<file>`; a failure names the vector index.
macro_rules! aes_vectors {
    ($test:ident, $file:literal, $ty:ty, |$i:ident, $v:ident| $body:block) => {
        #[test]
        fn $test() {
            let all: Vec<$ty> =
                serde_json::from_str(include_str!(concat!("data/", $file))).expect(concat!("parse ", $file));
            assert!(!all.is_empty(), "no vectors in {}", $file);
            for ($i, $v) in all.iter().enumerate() {
                let run = || -> Result<(), String> { $body };
                if let Err(msg) = run() {
                    panic!("{} vector #{} ({}): {}", $file, $i, $v.id, msg);
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
    id: String,
    key: String,
    bits: u32,
    iv: String,
    plaintext: String,
    utf8_len: usize,
    output: String,
}

fn bits(n: u32) -> Result<AesBits, String> {
    match n {
        256 => Ok(AesBits::Aes256),
        128 => Ok(AesBits::Aes128),
        _ => Err(format!("bits {n}")),
    }
}

aes_vectors!(credentials_3_1_and_3_2, "aes_test_vectors_md.json", Vector, |_i, v| {
    eq("plaintext length", v.plaintext.len(), v.utf8_len)?;
    let key = SecretKey::new(v.key.as_str());
    let cipher = CredentialCipher::new(&key, bits(v.bits)?);
    let iv: [u8; 16] = v.iv.as_bytes().try_into().map_err(|_| "iv length")?;
    eq("encrypt", cipher.encrypt(&v.plaintext, &iv), v.output.clone())?;
    eq("decrypt", cipher.decrypt(&v.output), Ok(v.plaintext.clone()))?;
    eq("iv prefix", &v.output[..16], v.iv.as_str())?;
    let ct = STANDARD.decode(&v.output[16..]).map_err(|e| e.to_string())?;
    eq("ciphertext length (PKCS#7 always pads)", ct.len(), (v.utf8_len / 16 + 1) * 16)?;
    eq("contact", decrypt_contact(&key, &v.output), ContactValue::Decrypted(v.plaintext.clone()))?;
    Ok(())
});

const AK: &str = "1234567890abcdef1234567890abcdef";

#[test]
fn lengths_from_the_notes() {
    // A2: 16 + 24 = 40 characters, the figure checked against the 128-character limit.
    let c = CredentialCipher::new(&SecretKey::new(AK), AesBits::Aes256);
    assert_eq!(c.encrypt("Huawei12345", b"abcdefgh12345678").len(), 40);
}

#[test]
fn wrong_size_or_key_fails_and_contact_falls_back() {
    let a1 = "abcdefgh12345678llvHkNgYxRUOFnjxDTHtnQ==";
    let a3 = "abcdefgh12345678oY/+cRcq6bPCtW1cVhVJwg==";
    let key = SecretKey::new(AK);
    let c128 = CredentialCipher::new(&key, AesBits::Aes128);
    assert!(c128.decrypt(a1).is_err(), "an AES-256 text must not decrypt as AES-128");
    // AES-128 text: decrypt_contact tries 256 first, then 128.
    assert_eq!(decrypt_contact(&key, a3), ContactValue::Decrypted("hwadmin".into()));
    let other = SecretKey::new("71d8a0d7-508d-4017-8563-60f9099eea71");
    let raw = decrypt_contact(&other, a1);
    assert_eq!(raw, ContactValue::Raw(a1.to_owned()));
    assert!(!raw.is_decrypted());
    assert_eq!(decrypt_contact(&key, "user@example.com").into_string(), "user@example.com");
}

#[test]
fn each_failure_has_its_error() {
    let c = CredentialCipher::new(&SecretKey::new(AK), AesBits::Aes256);
    let cases = [
        ("empty", c.decrypt(""), AesError::Malformed),
        ("iv only", c.decrypt("abcdefgh12345678"), AesError::Malformed),
        ("not base64", c.decrypt("abcdefgh12345678ll*HkNgYxRUOFnjxDTHtnQ=="), AesError::NotBase64),
        ("truncated block", c.decrypt("abcdefgh12345678llvHkNgYxRUOFnjxDTHt"), AesError::BadLength),
        ("iv changed", c.decrypt("abcdefgh12345679llvHkNgYxRUOFnjxDTHtnQ=="), AesError::BadPadding),
    ];
    for (i, (name, got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(want), "case #{i} ({name})");
    }
    let msg = AesError::BadPadding.to_string();
    assert!(!msg.contains(AK));
}

#[test]
fn random_ivs_round_trip() {
    let c = CredentialCipher::new(&SecretKey::new(AK), AesBits::Aes128);
    let iv = iv_from_random([7, 200, 3, 99, 0, 255, 61, 62, 63, 1, 2, 3, 4, 5, 6, 7]);
    let out = c.encrypt("密码 password", &iv);
    assert_eq!(&out.as_bytes()[..16], &iv);
    assert_eq!(c.decrypt(&out).as_deref(), Ok("密码 password"));
}
