//! Every signature scheme of the protocol, both directions, and the parts they share.
//!
//! One module per scheme, each a small value with `new(keys)`, `sign(..)` and `verify(.., now)`:
//!
//! | scheme | module | carried in |
//! |---|---|---|
//! | V2 basic interface | [`v2`] | query `signature`, `timestamp`, `nonce` |
//! | joint-operation kit | [`kit`] | headers `x-sign`, `x-timestamp`, `x-nonce` |
//! | legacy V1 | [`v1`] | query `authToken` |
//! | response signature | [`body_sign`] | header `Body-Sign` |
//! | usage push body | [`usage`] | body `signature`, `ts`, `nonce` |
//! | API Gateway AK/SK | [`apig`] | header `Authorization: SDK-HMAC-SHA256 …` |
//! | Agents gateway | [`agents_jwt`] | header `Authorization` (HS256 JWT) |
//!
//! Shared parts: [`keys`] (key rings for rotation), [`window`] (the two-sided timestamp window),
//! [`canonical_json`] (the payloads a JSON body may have been signed over) and [`error`] (the one
//! verification error every scheme returns). Every comparison of a MAC is constant-time.

pub mod agents_jwt;
pub mod apig;
pub mod body_sign;
pub mod canonical_json;
pub mod error;
pub mod keys;
pub mod kit;
pub mod usage;
pub mod v1;
pub mod v2;
pub mod window;

pub use error::AuthError;
