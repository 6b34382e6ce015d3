//! The messages on the wire, per interface family, with the helpers that read them leniently and validate them.
//!
//! - Requests and answers: [`v2`] (basic interface), [`v1`] (legacy), [`kit`] (joint-operation syncs),
//!   [`order`] (query order), [`usage`] (usage push), [`license`], [`agents`] (Agents-gateway usage).
//! - Shared reading rules: [`lenient`] (numbers as strings, lists as JSON strings), [`validate`] (field errors
//!   that name the field), [`time`] (the compact `yyyyMMddHHmmss[SSS]` forms), [`test_flag`].
//! - Answers: [`result_code`] (the six-digit codes), [`json_out`] (ASCII-only JSON, the exact bytes signed).
//!
//! serde types here carry no logic; parsing functions return a typed request or a [`validate::FieldError`].

pub mod agents;
pub mod json_out;
pub mod kit;
pub mod lenient;
pub mod license;
pub mod order;
pub mod result_code;
pub mod test_flag;
pub mod time;
pub mod usage;
pub mod v1;
pub mod v2;
pub mod validate;
