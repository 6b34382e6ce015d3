#![doc = include_str!("../README.md")]

pub mod agents;
pub mod crypto;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod identity;
pub mod kit;
pub mod license;
pub mod lifecycle;
pub mod marketplace;
pub mod openapi;
pub mod ports;
pub mod produce;
pub mod signing;
pub mod sso;
pub mod usage;
pub mod webhook;
pub mod wire;

pub use signing::error::AuthError;
pub use signing::keys::{KeyRing, SecretKey};
pub use signing::window::TimestampWindow;
pub use wire::result_code::ResultCode;
