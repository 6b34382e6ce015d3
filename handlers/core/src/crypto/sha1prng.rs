//! The JVM's SUN `SecureRandom` "SHA1PRNG", which the marketplace uses to turn the access key into an AES key
//! (test-vectors §2). It is the one algorithm written by hand here; SHA-1 itself comes from the `sha1` crate.
//!
//! # Security
//!
//! This is **not** a random number generator in any useful sense: seeded with a key, it is a deterministic key
//! derivation the marketplace happens to use. Use it only to reproduce that derivation.
//!
//! The state update adds `state + block + 1` byte by byte in Java's *signed* arithmetic (the carry is −1, 0 or
//! +1). An unsigned 160-bit add gives the same first 20 bytes and different later ones, so an AES-128 key would
//! still come out right and an AES-256 key wrong.
//!
//! # How to use
//!
//! ```
//! use koogallery_core::crypto::aes_cred::{self, AesBits};
//! use koogallery_core::crypto::sha1prng;
//! use koogallery_core::signing::keys::SecretKey;
//!
//! let key = aes_cred::aes_key(&SecretKey::new("123"), AesBits::Aes128);
//! assert_eq!(hex::encode(key), "23ae809ddacaf96af0fd78ed04b6a265");
//! assert_eq!(sha1prng::stream(b"123", 40)[..16], sha1prng::stream(b"123", 16)[..]);
//! ```

use sha1::{Digest, Sha1};

/// A SUN SHA1PRNG seeded once with `setSeed(seed)` on a fresh instance, before any output.
///
/// Like Java's `nextBytes`, the unused rest of a block is kept for the next call.
#[derive(Clone)]
pub struct Sha1Prng {
    state: [u8; 20],
    remainder: [u8; 20],
    remainder_len: usize,
}

impl Sha1Prng {
    /// A generator whose state is `SHA1(seed)`, as `setSeed` on a fresh instance leaves it.
    pub fn new(seed: &[u8]) -> Self {
        Self { state: Sha1::digest(seed).into(), remainder: [0; 20], remainder_len: 0 }
    }

    /// Fills `out` with the next bytes of the stream (Java `nextBytes`).
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut filled = 0;
        while filled < out.len() {
            if self.remainder_len == 0 {
                self.remainder = self.next_block();
                self.remainder_len = 20;
            }
            let start = 20 - self.remainder_len;
            let take = self.remainder_len.min(out.len() - filled);
            out[filled..filled + take].copy_from_slice(&self.remainder[start..start + take]);
            self.remainder_len -= take;
            filled += take;
        }
    }

    /// Emits `SHA1(state)` and advances the state by `state + block + 1` (signed carries).
    fn next_block(&mut self) -> [u8; 20] {
        let block: [u8; 20] = Sha1::digest(self.state).into();
        let mut carry: i32 = 1;
        let mut changed = false;
        for (s, b) in self.state.iter_mut().zip(block.iter()) {
            let v = i32::from(*s as i8) + i32::from(*b as i8) + carry;
            let t = v.to_le_bytes()[0]; // low 8 bits
            changed |= t != *s;
            *s = t;
            carry = v >> 8; // arithmetic shift: −1, 0 or +1
        }
        if !changed {
            self.state[0] = self.state[0].wrapping_add(1);
        }
        block
    }
}

impl std::fmt::Debug for Sha1Prng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha1Prng([REDACTED])")
    }
}

/// The first `n` bytes of the SHA1PRNG stream for `seed`.
pub fn stream(seed: &[u8], n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    Sha1Prng::new(seed).fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_reads_equal_one_read() {
        let mut prng = Sha1Prng::new(b"123");
        let mut a = [0u8; 7];
        let mut b = [0u8; 30];
        prng.fill(&mut a);
        prng.fill(&mut b);
        assert_eq!([&a[..], &b[..]].concat(), stream(b"123", 37));
    }

    /// test-vectors §2.2: the internal states can only be checked from inside (Java cannot show them).
    #[test]
    fn step_by_step_trace_2_2() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/sha1prng_trace_test_vectors_md.json")).expect("json");
        let seed = doc["seed"].as_str().expect("seed");
        let steps = doc["steps"].as_array().expect("steps");
        let mut prng = Sha1Prng::new(seed.as_bytes());
        let mut checked = 0;
        for (i, step) in steps.iter().enumerate() {
            let name = step["name"].as_str().expect("name");
            let want = step["hex"].as_str().expect("hex");
            let got = if name.starts_with("state") { hex::encode(prng.state) } else { hex::encode(prng.next_block()) };
            assert_eq!(got, want, "trace step #{i} ({name})");
            checked += 1;
        }
        assert_eq!(checked, 9);
    }

    #[test]
    fn first_block_is_sha1_of_sha1_of_seed() {
        let inner: [u8; 20] = Sha1::digest(b"seed").into();
        let outer: [u8; 20] = Sha1::digest(inner).into();
        assert_eq!(stream(b"seed", 20), outer.to_vec());
    }
}
