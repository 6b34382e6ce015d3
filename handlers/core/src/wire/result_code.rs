//! The six-digit `resultCode` every merchant answer carries (protocol §2.11).
//!
//! The marketplace reads business outcomes, authentication failures included, from this string inside an HTTP
//! `200` answer, so one enum keeps the codes, their wire form and the official demo's messages together.
//!
//! 1. Pick the code for the outcome (`000002` for any invalid field, `000001` for a bad signature, …).
//! 2. Put it in a response struct; it serialises as the six-digit string.
//! 3. Use [`ResultCode::default_message`] for `resultMsg` unless a more specific message helps (a `000002` should
//!    name the field, see [`crate::wire::validate::FieldError`]).
//!
//! ```
//! use koogallery_core::wire::result_code::ResultCode;
//!
//! let code: ResultCode = "000004".parse().unwrap();
//! assert_eq!(code, ResultCode::Processing);
//! assert_eq!(code.default_message(), "request is processing");
//! assert_eq!(serde_json::to_string(&ResultCode::Success).unwrap(), r#""000000""#);
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A KooGallery result code. The set is closed by the documentation; unknown codes fail to parse so that a typo in
/// a mock or a recorded answer is noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// `000000` — success.
    Success,
    /// `000001` — authentication failed (bad or missing signature / `authToken`).
    AuthFailed,
    /// `000002` — an invalid request parameter, also a missing or stale timestamp or nonce.
    InvalidParameter,
    /// `000003` — instance ID (or license ID) not found.
    InstanceNotFound,
    /// `000004` — request accepted and still being processed.
    Processing,
    /// `000005` — other internal error.
    InternalError,
    /// `000100` — no instance resource available.
    NoResource,
    /// `000101` — used, as the official demo does, for an `applicationSync` `clientSecret` that cannot be decrypted.
    /// (The intl pages give it a mobile-number meaning; the demo's use wins, see §2.11.)
    AppSecretInvalid,
    /// `000102` — e-mail address not specified or already exists.
    EmailInvalid,
    /// `000103` — product already purchased.
    AlreadyPurchased,
    /// `000104` — internal service error.
    InternalService,
    /// `000105` — account already subscribed to the benefit.
    BenefitSubscribed,
    /// `000106` — product resources sold out.
    SoldOut,
    /// `000107` — SaaS e-mail domain already exists.
    EmailDomainExists,
    /// `000900` — quota insufficient (online license).
    QuotaInsufficient,
    /// `000901` — license requested outside the order's validity period.
    OutsideOrderValidity,
    /// `000902` — a period license needs an expiry date.
    ExpiryRequired,
    /// `000903` — device fingerprint or hardware identifier required.
    DeviceIdRequired,
}

/// A string that is not one of the documented result codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResultCodeError {
    /// The text is not a known six-digit code.
    #[error("unknown result code")]
    Unknown,
}

impl ResultCode {
    /// Every code, in numeric order; handy for table-driven tests and for mocks that enumerate outcomes.
    pub const ALL: [ResultCode; 18] = [
        ResultCode::Success,
        ResultCode::AuthFailed,
        ResultCode::InvalidParameter,
        ResultCode::InstanceNotFound,
        ResultCode::Processing,
        ResultCode::InternalError,
        ResultCode::NoResource,
        ResultCode::AppSecretInvalid,
        ResultCode::EmailInvalid,
        ResultCode::AlreadyPurchased,
        ResultCode::InternalService,
        ResultCode::BenefitSubscribed,
        ResultCode::SoldOut,
        ResultCode::EmailDomainExists,
        ResultCode::QuotaInsufficient,
        ResultCode::OutsideOrderValidity,
        ResultCode::ExpiryRequired,
        ResultCode::DeviceIdRequired,
    ];

    /// The six-digit wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultCode::Success => "000000",
            ResultCode::AuthFailed => "000001",
            ResultCode::InvalidParameter => "000002",
            ResultCode::InstanceNotFound => "000003",
            ResultCode::Processing => "000004",
            ResultCode::InternalError => "000005",
            ResultCode::NoResource => "000100",
            ResultCode::AppSecretInvalid => "000101",
            ResultCode::EmailInvalid => "000102",
            ResultCode::AlreadyPurchased => "000103",
            ResultCode::InternalService => "000104",
            ResultCode::BenefitSubscribed => "000105",
            ResultCode::SoldOut => "000106",
            ResultCode::EmailDomainExists => "000107",
            ResultCode::QuotaInsufficient => "000900",
            ResultCode::OutsideOrderValidity => "000901",
            ResultCode::ExpiryRequired => "000902",
            ResultCode::DeviceIdRequired => "000903",
        }
    }

    /// The `resultMsg` to send when nothing more specific is known. The first seven are the official demo's strings,
    /// so answers look like the ones the marketplace is used to; the rest paraphrase the documentation, in ASCII.
    pub fn default_message(self) -> &'static str {
        match self {
            ResultCode::Success => "success",
            ResultCode::AuthFailed => "token is invalid",
            ResultCode::InvalidParameter => "param is invalid",
            ResultCode::InstanceNotFound => "instance is invalid",
            ResultCode::Processing => "request is processing",
            ResultCode::InternalError => "other inner error",
            ResultCode::NoResource => "no available resource",
            ResultCode::AppSecretInvalid => "something wrong with appSecret",
            ResultCode::EmailInvalid => "email is not specified or already exists",
            ResultCode::AlreadyPurchased => "product already purchased",
            ResultCode::InternalService => "internal service error",
            ResultCode::BenefitSubscribed => "account has already subscribed to the benefit",
            ResultCode::SoldOut => "product resources sold out",
            ResultCode::EmailDomainExists => "saas email domain already exists",
            ResultCode::QuotaInsufficient => "quota insufficient",
            ResultCode::OutsideOrderValidity => "apply for the license within the order validity period",
            ResultCode::ExpiryRequired => "a period license needs an expiry date",
            ResultCode::DeviceIdRequired => "device fingerprint or hardware identifier required",
        }
    }

    /// Whether the marketplace treats the answer as done (`000000`). Every other code makes it retry or fail.
    pub fn is_success(self) -> bool {
        self == ResultCode::Success
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResultCode {
    type Err = ResultCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResultCode::ALL.into_iter().find(|c| c.as_str() == s).ok_or(ResultCodeError::Unknown)
    }
}

impl Serialize for ResultCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResultCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(|_| serde::de::Error::custom(format_args!("unknown result code {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_wire_form() {
        for code in ResultCode::ALL {
            assert_eq!(code.as_str().len(), 6);
            assert_eq!(code.as_str().parse::<ResultCode>(), Ok(code));
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ResultCode>(&json).ok(), Some(code));
            assert!(code.default_message().is_ascii());
        }
    }

    #[test]
    fn documented_numbers() {
        assert_eq!(ResultCode::AppSecretInvalid.as_str(), "000101");
        assert_eq!(ResultCode::EmailInvalid.as_str(), "000102");
        assert_eq!(ResultCode::InternalService.as_str(), "000104");
        assert_eq!(ResultCode::DeviceIdRequired.as_str(), "000903");
        assert_eq!(ResultCode::InstanceNotFound.default_message(), "instance is invalid");
    }

    #[test]
    fn rejects_unknown_and_the_seven_digit_typo() {
        assert!("0000004".parse::<ResultCode>().is_err());
        assert!("000006".parse::<ResultCode>().is_err());
        assert!(serde_json::from_str::<ResultCode>("4").is_err());
    }
}
