//! On-demand usage push, merchant → marketplace (§9.4): the body, its validation, the answer and its codes.
//!
//! Records the marketplace refuses are validated only later and asynchronously (per-record error `94060999`), so a
//! bad record is best caught before it is sent. [`UsagePushRequest::validate`] applies every documented rule plus
//! the conservative ones this project follows: at most 100 records per batch (one page says 100, another 1000),
//! `begin_time` not more than 21 days old, `usage_value` > 0 with at most 4 decimals, unique `metering_sn`.
//!
//! 1. Build [`UsageRecord`]s with a stable `metering_sn` (the marketplace deduplicates on it; keep it across retries).
//! 2. Split them with [`batches`], validate each batch with [`UsagePushRequest::validate`] and the current time.
//! 3. Serialise and sign (`signing::usage`), send, read the answer as [`UsagePushResponse`]; retry only when
//!    [`should_retry`] says so.
//!
//! ```
//! use koogallery_core::wire::usage::{UsagePushRequest, UsageRecord};
//!
//! let record = UsageRecord {
//!     instance_id: "7f141bf1-aec8-4859-8323-fb3a8ad50721".into(),
//!     record_time: "20240306T020000Z".into(),
//!     begin_time: "20240306T010000Z".into(),
//!     end_time: "20240306T015959Z".into(),
//!     usage_value: "12.5".into(),
//!     metering_sn: "sn-1".into(),
//!     relate_pkg_instance: None,
//! };
//! let batch = UsagePushRequest { usage_records: vec![record] };
//! let now = 1_709_690_865_879; // 2024-03-06T02:07:45.879Z
//! assert!(batch.validate(now).is_ok());
//! assert!(batch.validate(now + 22 * 86_400_000).is_err()); // begin_time is now more than 21 days old
//! ```

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::wire::lenient::{self, wire_enum};
use crate::wire::time;
use crate::wire::validate::{FieldError, check_len, required_str};

/// Records per batch this project sends (the stricter of the documented 100 and 1000).
pub const MAX_RECORDS_PER_BATCH: usize = 100;
/// The oldest `begin_time` the marketplace accepts, relative to now (`MKT.9004`).
pub const MAX_BEGIN_AGE_MS: u64 = 21 * 86_400_000;

/// The usage-push body: `{"usage_records":[…]}` (snake_case on the wire).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsagePushRequest {
    /// The records.
    #[serde(default, deserialize_with = "lenient::vec_or_string")]
    pub usage_records: Vec<UsageRecord>,
}

/// One usage record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The on-demand **instance** ID (not the package's), max 64.
    pub instance_id: String,
    /// When the record was produced, `yyyyMMdd'T'HHmmss'Z'`.
    pub record_time: String,
    /// Metering start, same format; at most 21 days old when sent.
    pub begin_time: String,
    /// Metering end, same format; not before `begin_time`.
    pub end_time: String,
    /// Usage, Double(12,4) > 0, written as a string (read from a string or a number).
    #[serde(deserialize_with = "usage_value_text")]
    pub usage_value: String,
    /// Unique, stable record ID (max 64); the marketplace deduplicates on it.
    pub metering_sn: String,
    /// Package instance, required for stop-when-used-up (用完即停) packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relate_pkg_instance: Option<String>,
}

fn usage_value_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    lenient::opt_string(d)?.ok_or_else(|| serde::de::Error::custom("usage_value is missing"))
}

/// Why a usage batch must not be sent as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// A record field is missing, too long or malformed (named as `usage_records[i].field`).
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The batch has no records.
    #[error("usage_records is empty")]
    Empty,
    /// The batch has more records than [`MAX_RECORDS_PER_BATCH`].
    #[error("usage_records has {actual} records, more than {max}")]
    TooManyRecords {
        /// The limit.
        max: usize,
        /// The count.
        actual: usize,
    },
    /// A record's `begin_time` is more than 21 days before now (`MKT.9004`); the record can no longer be billed.
    #[error("usage_records[{index}].begin_time is more than 21 days old")]
    BeginTooOld {
        /// The record's index.
        index: usize,
    },
    /// A record's `end_time` is before its `begin_time`.
    #[error("usage_records[{index}].end_time is before begin_time")]
    EndBeforeBegin {
        /// The record's index.
        index: usize,
    },
    /// Two records share a `metering_sn`; the marketplace would drop one of them.
    #[error("usage_records[{index}].metering_sn repeats an earlier record")]
    DuplicateMeteringSn {
        /// The later record's index.
        index: usize,
    },
}

/// Whether a record starting at `begin_ms` may still be pushed at `now_ms` (at most 21 days old).
pub fn is_begin_time_fresh(begin_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(begin_ms) <= MAX_BEGIN_AGE_MS
}

/// Checks a `usage_value`: plain decimal digits, > 0, at most 8 integer and 4 fractional digits (Double(12,4)).
///
/// # Errors
///
/// A fixed description of what is wrong.
pub fn check_usage_value(value: &str) -> Result<(), &'static str> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (value.contains('.') && frac.is_empty()) {
        return Err("must be a positive decimal number");
    }
    if frac.len() > 4 {
        return Err("must have at most 4 decimal places");
    }
    if int.trim_start_matches('0').len() > 8 {
        return Err("must have at most 8 integer digits");
    }
    if int.bytes().chain(frac.bytes()).all(|b| b == b'0') {
        return Err("must be greater than 0");
    }
    Ok(())
}

impl UsageRecord {
    /// Validates one record at position `index` against the rules above, at time `now_ms`.
    ///
    /// # Errors
    ///
    /// The first [`UsageError`] found.
    pub fn validate(&self, index: usize, now_ms: u64) -> Result<(), UsageError> {
        let path = |name: &str| format!("usage_records[{index}].{name}");
        required_str(&path("instance_id"), Some(self.instance_id.clone()), 64)?;
        let sdk_time = |name: &str, value: &str| {
            time::parse_sdk_date(value).map_err(|_| FieldError::invalid(path(name), "must be yyyyMMdd'T'HHmmss'Z'"))
        };
        sdk_time("record_time", &self.record_time)?;
        let begin = sdk_time("begin_time", &self.begin_time)?;
        let end = sdk_time("end_time", &self.end_time)?;
        check_len(&path("usage_value"), &self.usage_value, 20)?;
        check_usage_value(&self.usage_value).map_err(|why| FieldError::invalid(path("usage_value"), why))?;
        required_str(&path("metering_sn"), Some(self.metering_sn.clone()), 64)?;
        if let Some(pkg) = &self.relate_pkg_instance {
            check_len(&path("relate_pkg_instance"), pkg, 64)?;
        }
        if end < begin {
            return Err(UsageError::EndBeforeBegin { index });
        }
        if !is_begin_time_fresh(begin, now_ms) {
            return Err(UsageError::BeginTooOld { index });
        }
        Ok(())
    }
}

impl UsagePushRequest {
    /// Validates a batch about to be sent at `now_ms`: 1 to 100 records, each valid, `metering_sn` unique.
    ///
    /// # Errors
    ///
    /// The first [`UsageError`] found.
    pub fn validate(&self, now_ms: u64) -> Result<(), UsageError> {
        if self.usage_records.is_empty() {
            return Err(UsageError::Empty);
        }
        if self.usage_records.len() > MAX_RECORDS_PER_BATCH {
            return Err(UsageError::TooManyRecords { max: MAX_RECORDS_PER_BATCH, actual: self.usage_records.len() });
        }
        let mut seen = HashSet::new();
        for (index, record) in self.usage_records.iter().enumerate() {
            record.validate(index, now_ms)?;
            if !seen.insert(record.metering_sn.as_str()) {
                return Err(UsageError::DuplicateMeteringSn { index });
            }
        }
        Ok(())
    }
}

/// Splits records into batches of at most [`MAX_RECORDS_PER_BATCH`].
pub fn batches(records: &[UsageRecord]) -> std::slice::Chunks<'_, UsageRecord> {
    records.chunks(MAX_RECORDS_PER_BATCH)
}

wire_enum! {
    /// A marketplace OpenAPI result code (`MKT.xxxx`, and the per-record `94060999`).
    pub enum MarketplaceCode {
        /// `MKT.0000` success (HTTP 200).
        Success => "MKT.0000",
        /// `MKT.0999` system error (500).
        SystemError => "MKT.0999",
        /// `MKT.0100` failure of input parameter (500).
        InputFailure => "MKT.0100",
        /// `MKT.0101` invalid parameter (400).
        InvalidParameter => "MKT.0101",
        /// `MKT.0102` invalid body sign (400): the `signature` header is wrong.
        InvalidBodySign => "MKT.0102",
        /// `MKT.0199` parameter error (400).
        ParameterError => "MKT.0199",
        /// `MKT.0150` illegal operation (401).
        IllegalOperation => "MKT.0150",
        /// `MKT.0151` no authority (401).
        NoAuthority => "MKT.0151",
        /// `MKT.0154` illegal token (401): AK/SK signature refused.
        IllegalToken => "MKT.0154",
        /// `MKT.9001` instance ID not found (500).
        InstanceNotFound => "MKT.9001",
        /// `MKT.9002` invalid usage entries (500).
        InvalidUsageEntries => "MKT.9002",
        /// `MKT.9003` records over the limit (500).
        RecordsOverLimit => "MKT.9003",
        /// `MKT.9004` `begin_time` beyond 21 days (500).
        BeginTimeTooOld => "MKT.9004",
        /// `94060999`: a record failed the later, asynchronous validation.
        RecordFailed => "94060999",
    }
}

impl MarketplaceCode {
    /// Whether sending the same request again can never succeed (a 500 that is really a refusal).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            MarketplaceCode::InputFailure
                | MarketplaceCode::InvalidParameter
                | MarketplaceCode::InvalidBodySign
                | MarketplaceCode::ParameterError
                | MarketplaceCode::IllegalOperation
                | MarketplaceCode::NoAuthority
                | MarketplaceCode::IllegalToken
                | MarketplaceCode::InstanceNotFound
                | MarketplaceCode::InvalidUsageEntries
                | MarketplaceCode::RecordsOverLimit
                | MarketplaceCode::BeginTimeTooOld
                | MarketplaceCode::RecordFailed
        )
    }
}

/// Whether a push answered with `http_status` (and `code`, when the body had one) should be retried with back-off:
/// `5xx` and `429` yes, unless the code says the request itself is wrong; other `4xx` and `2xx` never (§9.4).
pub fn should_retry(http_status: u16, code: Option<&MarketplaceCode>) -> bool {
    let transient_status = http_status == 429 || (500..600).contains(&http_status);
    transient_status && !code.is_some_and(MarketplaceCode::is_permanent)
}

/// The usage-push answer. Field names are not published; both `error_code`/`error_msg` and `resultCode`/`resultMsg`
/// are read, and `error_code`/`error_msg` are written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsagePushResponse {
    /// `MKT.xxxx`.
    #[serde(
        default,
        alias = "resultCode",
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_code: Option<String>,
    /// Message.
    #[serde(
        default,
        alias = "resultMsg",
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_msg: Option<String>,
}

impl UsagePushResponse {
    /// The code, typed.
    pub fn code(&self) -> Option<MarketplaceCode> {
        self.error_code.as_deref().map(MarketplaceCode::parse)
    }

    /// Whether the marketplace accepted the batch (`MKT.0000`).
    pub fn is_success(&self) -> bool {
        self.code() == Some(MarketplaceCode::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_values() {
        for ok in ["1", "12.5", "0.0001", "99999999.9999", "00012"] {
            assert_eq!(check_usage_value(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_usage_value("0"), Err("must be greater than 0"));
        assert_eq!(check_usage_value("0.0000"), Err("must be greater than 0"));
        assert_eq!(check_usage_value("1.23456"), Err("must have at most 4 decimal places"));
        assert_eq!(check_usage_value("123456789"), Err("must have at most 8 integer digits"));
        for bad in ["", "-1", "1e3", "1.", ".5", "1,5", " 1"] {
            assert_eq!(check_usage_value(bad), Err("must be a positive decimal number"), "{bad:?}");
        }
    }

    #[test]
    fn retry_policy() {
        assert!(should_retry(500, Some(&MarketplaceCode::SystemError)));
        assert!(should_retry(503, None));
        assert!(should_retry(429, None));
        assert!(!should_retry(500, Some(&MarketplaceCode::BeginTimeTooOld)));
        assert!(!should_retry(400, Some(&MarketplaceCode::InvalidBodySign)));
        assert!(!should_retry(401, None));
        assert!(!should_retry(200, Some(&MarketplaceCode::Success)));
    }

    #[test]
    fn freshness_boundary() {
        assert!(is_begin_time_fresh(0, MAX_BEGIN_AGE_MS));
        assert!(!is_begin_time_fresh(0, MAX_BEGIN_AGE_MS + 1));
        assert!(is_begin_time_fresh(10, 5)); // in the future: not this rule's concern
    }
}
