//! SHA1PRNG stream and AES key derivation (test-vectors §2.3–§2.5), including the negative unsigned-update key.

use koogallery_core::crypto::aes_cred::{self, AesBits};
use koogallery_core::crypto::sha1prng::{self, Sha1Prng};
use koogallery_core::signing::keys::SecretKey;
use serde::Deserialize;

/// Runs `body` for every vector of `data/<file>` at `ptr`; a failure names the vector index.
macro_rules! prng_vectors {
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
struct Prefix {
    seed: String,
    first_64_hex: String,
}

#[derive(Deserialize)]
struct Keys {
    seed: String,
    aes256_hex: String,
    aes128_hex: String,
}

#[derive(Deserialize)]
struct Negative {
    seed: String,
    wrong_aes256_hex: String,
    correct_aes256_hex: String,
}

prng_vectors!(stream_prefixes_2_3, "sha1prng_test_vectors_md.json", "/stream_prefixes", Prefix, |_i, v| {
    eq("64 bytes", hex::encode(sha1prng::stream(v.seed.as_bytes(), 64)), v.first_64_hex.clone())?;
    // Read in uneven pieces, as repeated nextBytes calls would.
    let mut prng = Sha1Prng::new(v.seed.as_bytes());
    let mut out = Vec::new();
    for n in [1usize, 19, 21, 3, 20] {
        let mut buf = vec![0; n];
        prng.fill(&mut buf);
        out.extend(buf);
    }
    eq("pieces", hex::encode(out), v.first_64_hex.clone())
});

prng_vectors!(aes_keys_2_4, "sha1prng_test_vectors_md.json", "/aes_keys", Keys, |_i, v| {
    let key = SecretKey::new(v.seed.as_str());
    eq("AES-256", hex::encode(aes_cred::aes_key(&key, AesBits::Aes256)), v.aes256_hex.clone())?;
    eq("AES-128", hex::encode(aes_cred::aes_key(&key, AesBits::Aes128)), v.aes128_hex.clone())?;
    eq("128 is the first half of 256", &v.aes256_hex[..32], v.aes128_hex.as_str())
});

prng_vectors!(unsigned_update_2_5, "sha1prng_test_vectors_md.json", "/unsigned_update_negative", Negative, |_i, v| {
    let got = hex::encode(aes_cred::aes_key(&SecretKey::new(v.seed.as_str()), AesBits::Aes256));
    eq("correct key", &got, &v.correct_aes256_hex)?;
    if got == v.wrong_aes256_hex {
        return Err("the unsigned-update key was produced".into());
    }
    eq("first 20 bytes agree", &got[..40], &v.wrong_aes256_hex[..40])?;
    if got[40..] == v.wrong_aes256_hex[40..] {
        return Err("bytes 20-31 must differ".into());
    }
    Ok(())
});
