//! Credential cryptography: how the marketplace encrypts what it hands the seller, and how the seller encrypts
//! what it hands back.
//!
//! - [`sha1prng`]: the JVM `SHA1PRNG` stream the marketplace's Java code derives AES keys from.
//! - [`aes_cred`]: the AES-CBC `iv + Base64` credential format (passwords in `appInfo`, encrypted contacts).
//! - [`rsa_secret`]: RSA-OAEP decryption of the kit `applicationSync` `clientSecret`.

pub mod aes_cred;
pub mod rsa_secret;
pub mod sha1prng;
