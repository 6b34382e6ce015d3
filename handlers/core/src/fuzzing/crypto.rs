//! Fuzz entry points for the credential encryption: AES decrypt and round trip.

use super::input::*;

use crate::crypto::aes_cred::{AesBits, CredentialCipher, decrypt_contact};
use crate::signing::keys::SecretKey;

/// AES credential decryption of arbitrary text, with both key sizes. Input: the text. Returns whether either size
/// decrypted it.
///
/// Oracle: whatever decrypts re-encrypts, with the same IV, to the same text (Base64 is canonical); the contact
/// reader decrypts exactly what the cipher decrypts as given or with spaces read as `+`.
pub fn aes_decrypt(data: &[u8]) -> bool {
    let input = text(data);
    let key = SecretKey::new(AK);
    let mut any = false;
    for bits in [AesBits::Aes256, AesBits::Aes128] {
        let cipher = CredentialCipher::new(&key, bits);
        if let Ok(plain) = cipher.decrypt(&input) {
            any = true;
            let trimmed = input.trim();
            let iv: Option<[u8; 16]> = trimmed.as_bytes().get(..16).and_then(|iv| iv.try_into().ok());
            if let Some(iv) = iv.filter(|iv| iv.iter().all(u8::is_ascii_alphanumeric)) {
                assert_eq!(cipher.encrypt(&plain, &iv), trimmed, "decrypt → encrypt does not give the text back");
            }
        }
    }
    // The contact reader also reads spaces as '+' (a V1 query's form decoding turns an unencoded '+' into one).
    let plus = input.replace(' ', "+");
    let any_plus = input.contains(' ')
        && [AesBits::Aes256, AesBits::Aes128].iter().any(|b| CredentialCipher::new(&key, *b).decrypt(&plus).is_ok());
    let contact = decrypt_contact(&key, &input);
    assert_eq!(contact.is_decrypted(), any || any_plus, "decrypt_contact disagrees with CredentialCipher::decrypt");
    any
}

/// AES encrypt → decrypt of arbitrary UTF-8. Input: 16 IV bytes, then the plaintext. Returns `true` (the round trip
/// is the oracle).
///
/// Oracles: for both sizes, decrypt(encrypt(p)) = p, the output starts with 16 alphanumeric IV characters and is
/// `16 + Base64(16·(⌊len/16⌋+1))` long.
pub fn aes_round_trip(data: &[u8]) -> bool {
    let (iv_bytes, plain) = data.split_at(data.len().min(16));
    let mut iv = [0u8; 16];
    for (slot, b) in iv.iter_mut().zip(iv_bytes) {
        *slot = *b;
    }
    let plain = text(plain);
    let key = SecretKey::new(AK);
    for bits in [AesBits::Aes256, AesBits::Aes128] {
        let cipher = CredentialCipher::new(&key, bits);
        let out = cipher.encrypt(&plain, &iv);
        let blocks = plain.len() / 16 + 1;
        assert_eq!(out.len(), 16 + (blocks * 16).div_ceil(3) * 4, "unexpected ciphertext length");
        assert!(out.as_bytes().iter().take(16).all(u8::is_ascii_alphanumeric), "the IV is not alphanumeric");
        assert_eq!(cipher.decrypt(&out).as_deref(), Ok(&*plain), "encrypt → decrypt does not give the text back");
    }
    true
}

// ---------------------------------------------------------------------------------------------------------------
