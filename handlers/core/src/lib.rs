#![doc = include_str!("../README.md")]

// --- signing and credential crypto ---
pub mod aes_cred;
pub mod agents_jwt;
pub mod apig;
pub mod auth;
pub mod auth_token_v1;
pub mod body_sign;
pub mod canonical_json;
pub mod keys;
pub mod rsa_secret;
pub mod sha1prng;
pub mod sign_kit;
pub mod sign_usage;
pub mod sign_v2;
pub mod window;

// --- message types and validation ---
pub mod agents;
pub mod identity;
pub mod json_out;
pub mod kit;
pub mod lenient;
pub mod license;
pub mod order;
pub mod result_code;
pub mod time;
pub mod usage;
pub mod v1;
pub mod v2;
pub mod validate;

// --- request handling, state and lifecycle ---
pub mod env;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod lifecycle;
pub mod marketplace;
pub mod produce;
pub mod store;
pub mod webhook;

pub use auth::AuthError;
pub use keys::{KeyRing, SecretKey};
pub use result_code::ResultCode;
pub use window::TimestampWindow;
