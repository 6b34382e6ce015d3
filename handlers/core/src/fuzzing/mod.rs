//! Entry points for the fuzz targets in `fuzz/` (see there). Not part of the public API.
//!
//! Each function takes the fuzzer's bytes, drives one entry point of the crate and checks an *oracle* with
//! `assert!`: a panic here is a finding, never a normal outcome. Round trips are the main oracle (sign → verify,
//! encrypt → decrypt, parse → serialise → parse), and verifiers are also fed bodies signed right here, so the fuzzer
//! gets past the signature check into the parsers behind it.
//!
//! 1. A fuzz target is one line: `fuzz_target!(|data: &[u8]| { let _ = fuzzing::v2_verify(data); });`.
//! 2. `tests/fuzz_seeds.rs` runs every seed of `fuzz/corpus/<name>/` through the function `<name>` here; a seed whose
//!    file name starts with `accept` must return `true`, one starting with `reject` must return `false`.
//! 3. What `true` means is documented on each function ("the input got past validation").
//!
//! Inputs are text-friendly so seeds can be written by hand: header fields are separated by `\n` and the last field
//! (usually a body) is the rest of the input, newlines included. Bytes that are not UTF-8 are replaced (`U+FFFD`)
//! wherever an API takes `&str`, as an HTTP layer would.
//!
//! ```
//! use koogallery_core::fuzzing;
//!
//! // now \n signature \n timestamp \n nonce \n body  (test-vectors §6.1)
//! let seed = b"1680508066618\nA3086BF160E99C0F507576161BBE4911A01C1179403F02133EB263559D4530E8\n1680508066618\n\
//! 50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA\n\
//! {\"activity\":\"newInstance\",\"businessId\":\"87b94795-0603-4e24-8ae5-69420d60e3c8\",\"orderId\":\"CS2211181819B4LVS\",\"orderLineId\":\"CS2211181819B4LVS-000001\",\"testFlag\":\"1\"}";
//! assert!(fuzzing::v2_verify(seed));
//! assert!(!fuzzing::v2_verify(b"garbage"));
//! ```

mod agents;
mod crypto;
mod input;
mod kit;
mod license;
mod produce;
mod signing;
mod sso;
mod usage;
mod wire;

pub use agents::agents_stream;
pub use crypto::{aes_decrypt, aes_round_trip};
pub use kit::kit;
pub use license::license;
pub use produce::produce;
pub use signing::{
    apig, body_sign, jwt, kit_signed, kit_verify, usage_sign, v1_signed, v1_verify, v2_signed, v2_verify,
};
pub use sso::sso;
pub use usage::usage;
pub use wire::{
    canonical_json, parse_agents_usage, parse_kit, parse_license, parse_order, parse_usage, parse_v1, parse_v2,
};
