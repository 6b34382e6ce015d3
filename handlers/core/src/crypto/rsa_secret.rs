//! RSA-OAEP decryption of the kit `applicationSync` `clientSecret` (protocol §4.6).
//!
//! The marketplace encrypts the OneAccess client secret with the merchant's public key (≥ 3072 bits, OAEP). The
//! OAEP hash is not documented, so [`decrypt_client_secret`] tries the three variants a Java sender can produce,
//! (SHA-256, MGF1-SHA-256), (SHA-256, MGF1-SHA-1) — SunJCE's `OAEPWithSHA-256AndMGF1Padding` — and
//! (SHA-1, MGF1-SHA-1), over standard and URL-safe Base64, and reports which one worked so it can be pinned.
//!
//! # Security
//!
//! Errors never contain the secret or the key. Decryption is blinded with a ChaCha20 generator seeded from the
//! operating system. The `rsa` crate's private-key operation is not fully constant-time (RUSTSEC-2023-0071,
//! "Marvin"); the exposure is limited because the endpoint answers one fixed error for every failure and the
//! ciphertexts come from the marketplace over TLS.
//!
//! # How to use
//!
//! 1. Keep the merchant private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY` PEM) in a secret variable.
//! 2. Parse it once with [`ClientSecretKey::from_pem`] (or call [`decrypt_client_secret`] with the PEM).
//! 3. On failure answer `000101`.
//!
//! ```
//! use koogallery_core::crypto::rsa_secret::{decrypt_client_secret, encrypt_client_secret, OaepVariant, SystemRng};
//!
//! # let private_pem = include_str!("../../tests/data/rsa3072_pkcs8.pem");
//! # let public_pem = include_str!("../../tests/data/rsa3072_public.pem");
//! let mut rng = SystemRng::new().expect("OS randomness");
//! let ct = encrypt_client_secret(public_pem, "s3cret", OaepVariant::Sha256Mgf1Sha1, &mut rng).expect("encrypt");
//! let (secret, variant) = decrypt_client_secret(private_pem, &ct).expect("decrypt");
//! assert_eq!((secret.as_str(), variant), ("s3cret", OaepVariant::Sha256Mgf1Sha1));
//! ```

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{CryptoRng, RngCore, SeedableRng};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::Sha256;

pub use rsa::rand_core::CryptoRngCore;

/// The OAEP parameter sets that are tried, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OaepVariant {
    /// SHA-256 label hash, MGF1 with SHA-256 (most libraries' "OAEP-SHA256").
    Sha256Mgf1Sha256,
    /// SHA-256 label hash, MGF1 with SHA-1: Java SunJCE `RSA/ECB/OAEPWithSHA-256AndMGF1Padding`.
    Sha256Mgf1Sha1,
    /// SHA-1 throughout: Java `RSA/ECB/OAEPPadding`.
    Sha1Mgf1Sha1,
}

impl OaepVariant {
    /// Every variant, in trial order.
    pub const ALL: [Self; 3] = [Self::Sha256Mgf1Sha256, Self::Sha256Mgf1Sha1, Self::Sha1Mgf1Sha1];

    /// A short name for configuration and logs: `sha256`, `sha256-mgf1-sha1`, `sha1`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sha256Mgf1Sha256 => "sha256",
            Self::Sha256Mgf1Sha1 => "sha256-mgf1-sha1",
            Self::Sha1Mgf1Sha1 => "sha1",
        }
    }

    /// Reads [`Self::name`] back (to pin the variant in configuration).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name().eq_ignore_ascii_case(name.trim()))
    }

    fn padding(self) -> Oaep {
        match self {
            Self::Sha256Mgf1Sha256 => Oaep::new::<Sha256>(),
            Self::Sha256Mgf1Sha1 => Oaep::new_with_mgf_hash::<Sha256, Sha1>(),
            Self::Sha1Mgf1Sha1 => Oaep::new::<Sha1>(),
        }
    }
}

/// Why the client secret could not be decrypted (or encrypted). Never contains key or secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RsaSecretError {
    /// The private key is not a PKCS#8 or PKCS#1 RSA private key in PEM.
    #[error("private key is not a PKCS#8 or PKCS#1 RSA PEM")]
    InvalidPrivateKey,
    /// The public key is not an SPKI or PKCS#1 RSA public key in PEM.
    #[error("public key is not an SPKI or PKCS#1 RSA PEM")]
    InvalidPublicKey,
    /// The ciphertext is neither standard nor URL-safe Base64.
    #[error("ciphertext is not Base64")]
    NotBase64,
    /// No OAEP variant decrypts the ciphertext under this key.
    #[error("ciphertext does not decrypt under this key with any OAEP variant")]
    DecryptionFailed,
    /// The plaintext is not UTF-8.
    #[error("decrypted secret is not UTF-8")]
    NotUtf8,
    /// Encryption failed (plaintext too long for the key and padding).
    #[error("plaintext cannot be encrypted with this key and padding")]
    EncryptionFailed,
    /// The operating system's random source failed.
    #[error("system random source unavailable")]
    Random,
}

/// A ChaCha20 generator seeded from the operating system, for blinding and OAEP seeds. Seeding can fail and
/// says so; drawing afterwards cannot.
pub struct SystemRng(ChaCha20Rng);

impl SystemRng {
    /// Seeds from the OS.
    ///
    /// # Errors
    /// [`RsaSecretError::Random`] when the OS refuses randomness.
    pub fn new() -> Result<Self, RsaSecretError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| RsaSecretError::Random)?;
        Ok(Self(ChaCha20Rng::from_seed(seed)))
    }
}

impl std::fmt::Debug for SystemRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SystemRng([REDACTED])")
    }
}

impl RngCore for SystemRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_chacha::rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl CryptoRng for SystemRng {}

/// Spin variables often hold a PEM with literal `\n` sequences instead of line breaks; undo that.
fn normalise_pem(pem: &str) -> String {
    let pem = pem.trim();
    if pem.contains('\n') { pem.to_owned() } else { pem.replace("\\n", "\n") }
}

/// A parsed merchant private key: parse once, decrypt many.
#[derive(Clone)]
pub struct ClientSecretKey {
    key: RsaPrivateKey,
    fingerprint: [u8; 32],
}

impl std::fmt::Debug for ClientSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecretKey([REDACTED])")
    }
}

impl ClientSecretKey {
    /// Parses a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM.
    ///
    /// # Errors
    /// [`RsaSecretError::InvalidPrivateKey`].
    pub fn from_pem(pem: &str) -> Result<Self, RsaSecretError> {
        let pem = normalise_pem(pem);
        let key = RsaPrivateKey::from_pkcs8_pem(&pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&pem))
            .map_err(|_| RsaSecretError::InvalidPrivateKey)?;
        let spki = rsa::pkcs8::EncodePublicKey::to_public_key_der(&key.to_public_key())
            .map_err(|_| RsaSecretError::InvalidPrivateKey)?;
        let fingerprint = <Sha256 as sha2::Digest>::digest(spki.as_bytes()).into();
        Ok(Self { key, fingerprint })
    }

    /// SHA-256 of the public key (its DER `SubjectPublicKeyInfo`, what `BEGIN PUBLIC KEY` holds): names the key
    /// without revealing it, so a secret encrypted under a rotated key is told apart from a repeat.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The key size in bits.
    pub fn bits(&self) -> usize {
        rsa::traits::PublicKeyParts::size(&self.key) * 8
    }

    /// Decrypts trying every [`OaepVariant`] in order.
    ///
    /// # Errors
    /// As [`Self::decrypt_with`].
    pub fn decrypt(&self, ciphertext: &str) -> Result<(String, OaepVariant), RsaSecretError> {
        self.decrypt_with(ciphertext, &OaepVariant::ALL)
    }

    /// Decrypts trying only `variants` (pin one after a real call confirmed it).
    ///
    /// # Errors
    /// [`RsaSecretError::NotBase64`], [`RsaSecretError::DecryptionFailed`], [`RsaSecretError::NotUtf8`],
    /// [`RsaSecretError::Random`].
    pub fn decrypt_with(
        &self,
        ciphertext: &str,
        variants: &[OaepVariant],
    ) -> Result<(String, OaepVariant), RsaSecretError> {
        let compact: String = ciphertext.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let mut blobs: Vec<Vec<u8>> = Vec::with_capacity(2);
        for engine in [&LENIENT_STANDARD, &LENIENT_URL_SAFE] {
            if let Ok(bytes) = engine.decode(&compact)
                && !blobs.contains(&bytes)
            {
                blobs.push(bytes);
            }
        }
        if blobs.is_empty() {
            return Err(RsaSecretError::NotBase64);
        }
        let mut rng = SystemRng::new()?;
        for blob in &blobs {
            for &variant in variants {
                if let Ok(plain) = self.key.decrypt_blinded(&mut rng, variant.padding(), blob) {
                    return String::from_utf8(plain).map(|s| (s, variant)).map_err(|_| RsaSecretError::NotUtf8);
                }
            }
        }
        Err(RsaSecretError::DecryptionFailed)
    }
}

const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const LENIENT_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decrypts a Base64 `clientSecret` with the merchant's PEM private key, trying every OAEP variant and both Base64
/// alphabets; returns the secret and the variant that worked.
///
/// # Errors
/// [`RsaSecretError`]: an unusable key, bad Base64, or no variant decrypting (answer `000101`).
pub fn decrypt_client_secret(private_key_pem: &str, ciphertext: &str) -> Result<(String, OaepVariant), RsaSecretError> {
    ClientSecretKey::from_pem(private_key_pem)?.decrypt(ciphertext)
}

/// Encrypts `plaintext` for the merchant's public key (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY` PEM) as the
/// marketplace would, standard Base64. For tests and the emulator.
///
/// # Errors
/// [`RsaSecretError::InvalidPublicKey`], [`RsaSecretError::EncryptionFailed`] (plaintext too long).
pub fn encrypt_client_secret(
    public_key_pem: &str,
    plaintext: &str,
    variant: OaepVariant,
    rng: &mut impl CryptoRngCore,
) -> Result<String, RsaSecretError> {
    let pem = normalise_pem(public_key_pem);
    let key = RsaPublicKey::from_public_key_pem(&pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(&pem))
        .map_err(|_| RsaSecretError::InvalidPublicKey)?;
    let ct = key.encrypt(rng, variant.padding(), plaintext.as_bytes()).map_err(|_| RsaSecretError::EncryptionFailed)?;
    Ok(STANDARD.encode(ct))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_round_trip() {
        for v in OaepVariant::ALL {
            assert_eq!(OaepVariant::from_name(v.name()), Some(v));
        }
        assert_eq!(OaepVariant::from_name("md5"), None);
    }

    #[test]
    fn garbage_keys_are_refused_without_echo() {
        let e = ClientSecretKey::from_pem("-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----").err();
        assert_eq!(e, Some(RsaSecretError::InvalidPrivateKey));
        let mut rng = SystemRng::new().expect("os rng");
        let e = encrypt_client_secret("not a pem", "x", OaepVariant::Sha1Mgf1Sha1, &mut rng).err();
        assert_eq!(e, Some(RsaSecretError::InvalidPublicKey));
    }
}
