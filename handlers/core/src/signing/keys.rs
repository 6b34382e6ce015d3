//! Secret keys and key rings (several keys, for rotation).
//!
//! # Security
//!
//! [`SecretKey`] prints `[REDACTED]` in `Debug` and `Display` and wipes its bytes when dropped, so a key in a
//! config struct cannot leak through a log line or an error message.
//!
//! # How to use
//!
//! 1. Read the `access_keys` variable and parse it with [`KeyRing::parse_list`].
//! 2. Sign with [`KeyRing::signing_key`] (the first key).
//! 3. Verify against [`KeyRing::iter`] (every key), so a new key can be added before the marketplace switches.
//!
//! ```
//! use koogallery_core::signing::keys::KeyRing;
//!
//! let ring = KeyRing::parse_list("new-key, old-key").expect("two keys");
//! assert_eq!(ring.signing_key().expose(), "new-key");
//! assert_eq!(ring.iter().count(), 2);
//! assert_eq!(format!("{:?}", ring.signing_key()), "[REDACTED]");
//! assert!(KeyRing::parse_list(" , ").is_err());
//! ```

use std::fmt;

use zeroize::Zeroize;

/// A shared secret (access key, kit key, SK). Kept as the string the seller configured: every scheme uses its
/// UTF-8 bytes (HMAC key, SHA1PRNG seed).
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a key string.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key text, for the few places that need it (V1 concatenates it with `timeStamp`). Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key's UTF-8 bytes: the HMAC key and SHA1PRNG seed of every scheme.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// True for the empty key (which no scheme accepts as configuration).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretKey {
    fn from(key: String) -> Self {
        Self(key)
    }
}

impl From<&str> for SecretKey {
    fn from(key: &str) -> Self {
        Self(key.to_owned())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Why a key list was refused. Messages say where, never what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The list holds no key at all.
    #[error("the key list is empty")]
    Empty,
    /// An entry between commas is blank (a typo such as `k1,,k2`); its 0-based position is given.
    #[error("key number {0} in the list is blank")]
    BlankEntry(usize),
}

/// A non-empty list of keys: the first signs, all verify. Rotation without downtime needs both keys
/// accepted for a while, which is why every verifier takes a ring rather than one key.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<SecretKey>,
}

impl KeyRing {
    /// A ring of one key.
    pub fn single(key: SecretKey) -> Self {
        Self { keys: vec![key] }
    }

    /// A ring from a list; the first key signs.
    ///
    /// # Errors
    /// [`KeyError::Empty`] for an empty list, [`KeyError::BlankEntry`] when a key is the empty string.
    pub fn new(keys: Vec<SecretKey>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        if let Some(i) = keys.iter().position(SecretKey::is_empty) {
            return Err(KeyError::BlankEntry(i));
        }
        Ok(Self { keys })
    }

    /// Parses a comma-separated list (`"k1, k2"`), trimming spaces around each key.
    ///
    /// # Errors
    /// [`KeyError::Empty`] when the text is blank, [`KeyError::BlankEntry`] when one entry is blank
    /// (`"k1,,k2"`, a trailing comma): a silently dropped entry would hide a configuration mistake.
    pub fn parse_list(text: &str) -> Result<Self, KeyError> {
        if text.trim().is_empty() {
            return Err(KeyError::Empty);
        }
        Self::new(text.split(',').map(|k| SecretKey::new(k.trim())).collect())
    }

    /// The key responses and outbound requests are signed with: the first of the list.
    pub fn signing_key(&self) -> &SecretKey {
        // `new` guarantees at least one key; indexing through `first` keeps this panic-free regardless.
        self.keys.first().unwrap_or(&EMPTY_KEY)
    }

    /// Every key, signing key first; verifiers accept a signature made with any of them.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &SecretKey> + Clone {
        self.keys.iter()
    }

    /// Number of keys (at least one).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a ring holds at least one key. Present because `len` is.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Never reached (a ring is never empty); it only lets [`KeyRing::signing_key`] avoid a panic path.
static EMPTY_KEY: SecretKey = SecretKey(String::new());

impl From<SecretKey> for KeyRing {
    fn from(key: SecretKey) -> Self {
        Self::single(key)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRing([REDACTED] x {})", self.keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_list_trims_and_keeps_order() {
        let ring = KeyRing::parse_list(" a ,b,  c").expect("three keys");
        let keys: Vec<&str> = ring.iter().map(SecretKey::expose).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(ring.signing_key().expose(), "a");
        assert_eq!(ring.len(), 3);
    }

    #[test]
    fn parse_list_rejects_empty_lists_and_entries() {
        assert_eq!(KeyRing::parse_list("").err(), Some(KeyError::Empty));
        assert_eq!(KeyRing::parse_list("  ").err(), Some(KeyError::Empty));
        assert_eq!(KeyRing::parse_list("a,,b").err(), Some(KeyError::BlankEntry(1)));
        assert_eq!(KeyRing::parse_list("a,").err(), Some(KeyError::BlankEntry(1)));
        assert_eq!(KeyRing::new(Vec::new()).err(), Some(KeyError::Empty));
    }

    #[test]
    fn keys_are_redacted_everywhere() {
        let key = SecretKey::new("super-secret");
        assert_eq!(format!("{key:?}"), "[REDACTED]");
        assert_eq!(format!("{key}"), "[REDACTED]");
        let ring = KeyRing::single(key);
        assert!(!format!("{ring:?}").contains("super-secret"));
        assert_eq!(ring.signing_key().as_bytes(), b"super-secret");
    }
}
