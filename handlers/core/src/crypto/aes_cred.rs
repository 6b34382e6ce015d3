//! AES-CBC encryption of credentials and contact data (protocol §4.5, test-vectors §3).
//!
//! ```text
//! output = iv + Base64(AES-CBC-PKCS5(key = SHA1PRNG(accessKey), IV = ASCII bytes of iv, UTF-8 plaintext))
//! ```
//!
//! V1 answers carry `appInfo.userName` / `password` encrypted this way; V1 `newInstance` sends `mobilePhone` /
//! `email` encrypted the same way. `encryptType` `"1"` is AES-256 (the default), `"2"` AES-128.
//!
//! # Security
//!
//! The AES key is *derived* from the access key by the JVM's SHA1PRNG ([`crate::crypto::sha1prng`]), not the raw key. The
//! IV is 16 characters from `[A-Za-z0-9]` sent in the clear; draw it from a CSPRNG through [`iv_from_random`].
//! CBC without a MAC is what the marketplace specifies; the ciphertext is not authenticated.
//!
//! # How to use
//!
//! 1. Derive once per request: [`CredentialCipher::new`] (the derivation hashes a few times; do not repeat it per
//!    field).
//! 2. Encrypt with an IV from [`iv_from_random`]; decrypt with [`CredentialCipher::decrypt`], or use
//!    [`decrypt_contact`] for inbound contact data, which never fails.
//!
//! ```
//! use koogallery_core::crypto::aes_cred::{AesBits, CredentialCipher, decrypt_contact, ContactValue};
//! use koogallery_core::signing::keys::SecretKey;
//!
//! let key = SecretKey::new("1234567890abcdef1234567890abcdef");
//! let cipher = CredentialCipher::new(&key, AesBits::Aes256);
//! let out = cipher.encrypt("hwadmin", b"abcdefgh12345678");
//! assert_eq!(out, "abcdefgh12345678llvHkNgYxRUOFnjxDTHtnQ==");
//! assert_eq!(cipher.decrypt(&out).as_deref(), Ok("hwadmin"));
//! assert_eq!(decrypt_contact(&key, &out), ContactValue::Decrypted("hwadmin".into()));
//! assert_eq!(decrypt_contact(&key, "13800000000"), ContactValue::Raw("13800000000".into()));
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use zeroize::Zeroizing;

use crate::crypto::sha1prng;
use crate::signing::keys::SecretKey;

/// AES key size, chosen by the marketplace's `encryptType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AesBits {
    /// AES-256, `encryptType` `"1"`, the documented default.
    #[default]
    Aes256,
    /// AES-128, `encryptType` `"2"`.
    Aes128,
}

impl AesBits {
    /// Reads `encryptType`: `"1"` → AES-256, `"2"` → AES-128, anything else → `None`.
    pub fn from_encrypt_type(value: &str) -> Option<Self> {
        match value.trim() {
            "1" => Some(Self::Aes256),
            "2" => Some(Self::Aes128),
            _ => None,
        }
    }

    /// The `encryptType` value for this size.
    pub fn encrypt_type(&self) -> &'static str {
        match self {
            Self::Aes256 => "1",
            Self::Aes128 => "2",
        }
    }

    /// Key length in bytes (32 or 16).
    pub fn key_len(&self) -> usize {
        match self {
            Self::Aes256 => 32,
            Self::Aes128 => 16,
        }
    }
}

/// The AES key Java's `KeyGenerator.getInstance("AES").init(bits, sr)` derives from `access_key` (32 or 16 bytes):
/// the stream prefix, since `KeyGenerator` makes a single `nextBytes` call.
pub fn aes_key(access_key: &SecretKey, bits: AesBits) -> Vec<u8> {
    sha1prng::stream(access_key.as_bytes(), bits.key_len())
}

/// Why a ciphertext could not be decrypted. Messages never contain the key or the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AesError {
    /// Shorter than the 16-character IV plus one block, or the IV is not 16 ASCII characters.
    #[error("ciphertext is too short or its IV is malformed")]
    Malformed,
    /// The part after the IV is not Base64.
    #[error("ciphertext is not valid Base64")]
    NotBase64,
    /// The ciphertext is not a whole number of 16-byte blocks.
    #[error("ciphertext length is not a multiple of the block size")]
    BadLength,
    /// The padding is wrong: usually the wrong key or key size.
    #[error("padding check failed (wrong key or key size)")]
    BadPadding,
    /// The plaintext is not UTF-8: usually the wrong key or key size.
    #[error("plaintext is not UTF-8 (wrong key or key size)")]
    NotUtf8,
}

const IV_ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Maps 16 random bytes to 16 characters of `[A-Za-z0-9]`, the IV format the marketplace uses.
///
/// Each character is `byte mod 62`, a slight bias (the first 8 characters are 5/4 as likely) that does not matter
/// for a CBC IV, which needs unpredictability, not uniformity.
pub fn iv_from_random(bytes: [u8; 16]) -> [u8; 16] {
    bytes.map(|b| IV_ALPHABET[usize::from(b) % IV_ALPHABET.len()])
}

/// An AES key derived once from the access key, for one size.
#[derive(Clone)]
pub struct CredentialCipher {
    key: Zeroizing<Vec<u8>>,
    bits: AesBits,
}

impl std::fmt::Debug for CredentialCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCipher").field("key", &"[REDACTED]").field("bits", &self.bits).finish()
    }
}

impl CredentialCipher {
    /// Derives the AES key of `bits` from `key` with the SHA1PRNG.
    pub fn new(key: &SecretKey, bits: AesBits) -> Self {
        Self { key: Zeroizing::new(aes_key(key, bits)), bits }
    }

    /// The key size in use.
    pub fn bits(&self) -> AesBits {
        self.bits
    }

    /// `iv` as text followed by Base64 of AES-CBC-PKCS7 of `plaintext`.
    ///
    /// `iv` should come from [`iv_from_random`]. Bytes outside `[A-Za-z0-9]` are first mapped through
    /// [`iv_from_random`], so the output is always 16 ASCII characters plus Base64 and can be decrypted.
    pub fn encrypt(&self, plaintext: &str, iv: &[u8; 16]) -> String {
        let iv = if iv.iter().all(u8::is_ascii_alphanumeric) { *iv } else { iv_from_random(*iv) };
        let ciphertext = match self.bits {
            AesBits::Aes256 => cbc::Encryptor::<aes::Aes256>::new_from_slices(&self.key, &iv)
                .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes())),
            AesBits::Aes128 => cbc::Encryptor::<aes::Aes128>::new_from_slices(&self.key, &iv)
                .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes())),
        };
        // The key length always matches `bits` (derived above) and the IV is 16 bytes, so this never fails.
        let ciphertext = ciphertext.unwrap_or_default();
        let mut out = String::with_capacity(16 + ciphertext.len().div_ceil(3) * 4);
        out.extend(iv.iter().map(|&b| char::from(b)));
        STANDARD.encode_string(ciphertext, &mut out);
        out
    }

    /// Reverses [`Self::encrypt`]: the first 16 characters are the IV, the rest Base64 of the ciphertext.
    ///
    /// # Errors
    /// [`AesError`] naming what failed; a wrong key or size usually shows as [`AesError::BadPadding`] or
    /// [`AesError::NotUtf8`].
    pub fn decrypt(&self, text: &str) -> Result<String, AesError> {
        let text = text.trim();
        let (iv, body) = match (text.get(..16), text.get(16..)) {
            (Some(iv), Some(body)) if iv.is_ascii() && !body.is_empty() => (iv.as_bytes(), body),
            _ => return Err(AesError::Malformed),
        };
        let ciphertext = STANDARD.decode(body).map_err(|_| AesError::NotBase64)?;
        if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
            return Err(AesError::BadLength);
        }
        let plain = match self.bits {
            AesBits::Aes256 => cbc::Decryptor::<aes::Aes256>::new_from_slices(&self.key, iv)
                .map_err(|_| AesError::Malformed)?
                .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext),
            AesBits::Aes128 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&self.key, iv)
                .map_err(|_| AesError::Malformed)?
                .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext),
        }
        .map_err(|_| AesError::BadPadding)?;
        String::from_utf8(plain).map_err(|_| AesError::NotUtf8)
    }
}

/// An inbound contact field (`mobilePhone`, `email`) after decryption was attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactValue {
    /// Decrypted successfully (AES-256 first, then AES-128).
    Decrypted(String),
    /// Neither size worked; the value as received. Contact data must not fail provisioning.
    Raw(String),
}

impl ContactValue {
    /// The text either way.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Decrypted(s) | Self::Raw(s) => s,
        }
    }

    /// The text either way, by value.
    pub fn into_string(self) -> String {
        match self {
            Self::Decrypted(s) | Self::Raw(s) => s,
        }
    }

    /// True when decryption succeeded.
    pub fn is_decrypted(&self) -> bool {
        matches!(self, Self::Decrypted(_))
    }
}

/// Decrypts a contact field with AES-256, then AES-128; keeps it raw if both fail (protocol §4.5: the key size of
/// inbound contact data is undocumented, and provisioning must go on).
///
/// A V1 query sends the Base64 text unencoded, so form decoding may have turned its `+` into spaces: when the text
/// as given does not decrypt, it is tried again with spaces read as `+`.
pub fn decrypt_contact(key: &SecretKey, text: &str) -> ContactValue {
    let plus = text.contains(' ').then(|| text.replace(' ', "+"));
    for candidate in std::iter::once(text).chain(plus.as_deref()) {
        for bits in [AesBits::Aes256, AesBits::Aes128] {
            if let Ok(plain) = CredentialCipher::new(key, bits).decrypt(candidate) {
                return ContactValue::Decrypted(plain);
            }
        }
    }
    ContactValue::Raw(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_whose_plus_became_a_space_still_decrypts() {
        let key = SecretKey::new("1234567890abcdef1234567890abcdef");
        let cipher = CredentialCipher::new(&key, AesBits::Aes256);
        // Find an encryption whose Base64 has a '+', as a V1 query sends it unencoded.
        let encrypted = (0u8..=255)
            .map(|i| cipher.encrypt("13800000000", &iv_from_random([i; 16])))
            .find(|e| e.contains('+'))
            .expect("some IV gives a '+'");
        let form_decoded = encrypted.replace('+', " ");
        assert!(matches!(decrypt_contact(&key, &form_decoded), ContactValue::Decrypted(p) if p == "13800000000"));
        assert!(matches!(decrypt_contact(&key, "not encrypted"), ContactValue::Raw(r) if r == "not encrypted"));
    }

    #[test]
    fn encrypt_type_round_trip() {
        for bits in [AesBits::Aes256, AesBits::Aes128] {
            assert_eq!(AesBits::from_encrypt_type(bits.encrypt_type()), Some(bits));
        }
        assert_eq!(AesBits::from_encrypt_type("3"), None);
        assert_eq!(AesBits::from_encrypt_type(""), None);
        assert_eq!(AesBits::default(), AesBits::Aes256);
    }

    #[test]
    fn iv_uses_only_the_alphabet() {
        let iv = iv_from_random([0, 25, 26, 51, 52, 61, 62, 255, 128, 7, 8, 9, 10, 11, 12, 13]);
        assert!(iv.iter().all(u8::is_ascii_alphanumeric));
        assert_eq!(&iv[..8], b"AZaz09AH");
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        let c = CredentialCipher::new(&SecretKey::new("k"), AesBits::Aes256);
        assert_eq!(c.decrypt("short"), Err(AesError::Malformed));
        assert_eq!(c.decrypt("abcdefgh12345678"), Err(AesError::Malformed));
        assert_eq!(c.decrypt("abcdefgh12345678!!!!"), Err(AesError::NotBase64));
        assert_eq!(c.decrypt("abcdefgh12345678AAAA"), Err(AesError::BadLength));
        assert_eq!(c.decrypt("华为云华为云X12345678AAAA"), Err(AesError::Malformed));
    }

    #[test]
    fn non_alphanumeric_iv_is_mapped() {
        let c = CredentialCipher::new(&SecretKey::new("k"), AesBits::Aes128);
        let out = c.encrypt("x", &[0xFF; 16]);
        assert!(out.is_char_boundary(16) && out[..16].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(c.decrypt(&out).as_deref(), Ok("x"));
    }
}
