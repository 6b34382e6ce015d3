//! Every cassette under `tests/cassettes/kit/` (the documented kit examples re-signed with the test kit key, each
//! sync on its four routes, every shape variation of protocol §5, idempotency, every refusal, the production-URL
//! dispatch) replayed through the Wasm components, exactly as `harness replay tests/cassettes/kit` does; and the
//! RSA fixtures those cassettes use.

use std::path::PathBuf;

use conformance::{replay_cassette_dir, workspace_root};
use koogallery_core::crypto::rsa_secret::{ClientSecretKey, OaepVariant, SystemRng, encrypt_client_secret};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures").join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("{}: {e}", fixture(name).display()))
}

#[test]
fn kit_cassettes_pass_through_wasm() {
    let (cassettes, steps) = replay_cassette_dir("tests/cassettes/kit");
    assert!(cassettes >= 6, "examples, routes, shapes, idempotency, refusals, production URL, configuration");
    assert!(steps >= 150, "only {steps} steps ran");
}

/// The cassettes' `clientSecret` values: each fixture ciphertext decrypts to the known secret with its own OAEP
/// variant and with no other, so a cassette step really exercises the variant it names.
#[test]
fn client_secret_fixtures_decrypt_with_exactly_their_variant() {
    let key = ClientSecretKey::from_pem(&read("kit_rsa3072_private.pem")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(key.bits(), 3072);
    let fixtures: Value = serde_json::from_str(&read("kit_client_secret.json")).unwrap_or_else(|e| panic!("{e}"));
    let secret = fixtures["plaintext"].as_str().unwrap_or_else(|| panic!("plaintext"));
    for variant in OaepVariant::ALL {
        let ct = fixtures["ciphertexts"][variant.name()].as_str().unwrap_or_else(|| panic!("{}", variant.name()));
        assert_eq!(key.decrypt_with(ct, &[variant]).map(|(s, _)| s), Ok(secret.to_owned()), "{}", variant.name());
        for other in OaepVariant::ALL.into_iter().filter(|o| *o != variant) {
            assert!(key.decrypt_with(ct, &[other]).is_err(), "{} also opens as {}", variant.name(), other.name());
        }
    }
    // The key the refusal cassettes encrypt for is another one: its ciphertext must not open here.
    let foreign = fixtures["foreign_key_ciphertext"].as_str().unwrap_or_else(|| panic!("foreign_key_ciphertext"));
    assert!(key.decrypt(foreign).is_err());
}

/// Prints a fresh `tests/fixtures/kit_client_secret.json` (OAEP is randomised: every run differs, so the cassettes
/// must be regenerated with it). `cargo test --release -p conformance --test kit_cassettes_wasm -- --ignored
/// --nocapture print_client_secret_fixtures`.
#[test]
#[ignore = "generator, run by hand"]
fn print_client_secret_fixtures() {
    let secret = "oa-client-secret-7Hq2vN9x";
    let mut rng = SystemRng::new().unwrap_or_else(|e| panic!("{e}"));
    let public = read("kit_rsa3072_public.pem");
    let mut ciphertexts = serde_json::Map::new();
    for variant in OaepVariant::ALL {
        let ct = encrypt_client_secret(&public, secret, variant, &mut rng).unwrap_or_else(|e| panic!("{e}"));
        ciphertexts.insert(variant.name().to_owned(), Value::String(ct));
    }
    // A key that is not the fixture key (core's own test key): the merchant cannot decrypt this.
    let foreign_public = std::fs::read_to_string(workspace_root().join("handlers/core/tests/data/rsa3072_public.pem"))
        .unwrap_or_default();
    let foreign = encrypt_client_secret(&foreign_public, secret, OaepVariant::Sha256Mgf1Sha256, &mut rng)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = serde_json::json!({
        "description": "Test-only. clientSecret ciphertexts (standard Base64) of `plaintext` for kit_rsa3072_public.pem, one per OAEP variant (core crypto::rsa_secret::encrypt_client_secret), and one for another key.",
        "plaintext": secret,
        "ciphertexts": ciphertexts,
        "foreign_key_ciphertext": foreign,
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}
