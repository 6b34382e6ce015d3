//! The protocol's compact time formats, read and written over the `time` crate's calendar.
//!
//! KooGallery uses four textual forms: `yyyyMMddHHmmss` and `yyyyMMddHHmmssSSS` in UTC (expiry times, V1
//! `timeStamp`), the kit body's `timeStamp` in the same digits but **UTC+8** (§5.1), and the API Gateway's
//! `yyyyMMdd'T'HHmmss'Z'` (`X-Sdk-Date`, usage records). All are converted to and from milliseconds since the Unix
//! epoch, the unit the rest of the crate uses, with full range checks (month 1–12, day within the month including
//! leap years, hour 0–23, minute and second 0–59). The calendar arithmetic and range checks are `time`'s
//! (`Date::from_calendar_date`, `Time::from_hms_milli`, `OffsetDateTime`); the shape checks stay here because
//! `time`'s format descriptions would report a bad hour before an impossible day of the month, accept a leading `+`
//! and year 0, and cannot tell a non-digit from an out-of-range value, and its formatting is fallible and stops at
//! year 9999 where these writers are total.
//!
//! 1. Parse expiry times with [`parse_compact_utc`] (14 or 17 digits).
//! 2. Parse a kit body `timeStamp` with [`parse_kit_timestamp`]; never use it for security decisions.
//! 3. Write times with [`format_compact_utc`] / [`format_sdk_date`].
//!
//! ```
//! use koogallery_core::wire::time::{format_compact_utc, parse_compact_utc, parse_kit_timestamp, Precision};
//!
//! let ms = parse_compact_utc("20221124023618256").unwrap();
//! assert_eq!(ms, 1_669_257_378_256);
//! assert_eq!(format_compact_utc(ms, Precision::Seconds14), "20221124023618");
//! // The same digits in a kit body are Beijing time, eight hours ahead of UTC.
//! assert_eq!(parse_kit_timestamp("20221124023618256").unwrap(), ms - 8 * 3_600_000);
//! assert!(parse_compact_utc("20230229000000").is_err()); // 2023 is not a leap year
//! ```

use std::fmt;

use time::{Date, Duration, Month, OffsetDateTime, Time};

const MS_PER_DAY: u64 = 86_400_000;
/// UTC+8 (Beijing time), the zone of the kit body's `timeStamp`.
const UTC8_OFFSET_MS: u64 = 8 * 3_600_000;

/// Why a time string was refused. The messages never echo the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// The text does not have one of the accepted lengths / shapes.
    #[error("time has the wrong length or shape")]
    Format,
    /// A position that must hold a digit holds something else.
    #[error("time contains a non-digit")]
    NotDigits,
    /// A component is outside its range; names the component (`month`, `day`, …).
    #[error("time has an out-of-range {0}")]
    OutOfRange(&'static str),
    /// The time is before 1970-01-01T00:00:00Z and has no millisecond-epoch value.
    #[error("time is before 1970")]
    BeforeEpoch,
}

/// How many digits [`format_compact_utc`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `yyyyMMddHHmmss` — the documented `expireTime` form.
    Seconds14,
    /// `yyyyMMddHHmmssSSS` — the V1 `timeStamp` and usage `statisticalTime` form.
    Millis17,
}

/// A calendar date without a time or zone (the kit's `entryDate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    /// Year, 1–9999.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day of the month, 1–31 as the month allows.
    pub day: u8,
}

impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in a month of a year (`month` 1–12; 0 for anything else).
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Reads `len` ASCII digits at `at` as a number.
fn digits(bytes: &[u8], at: usize, len: usize) -> Result<u32, TimeError> {
    let slice = bytes.get(at..at + len).ok_or(TimeError::Format)?;
    slice.iter().try_fold(0u32, |acc, b| {
        if b.is_ascii_digit() { Ok(acc * 10 + u32::from(b - b'0')) } else { Err(TimeError::NotDigits) }
    })
}

/// A checked calendar date: `time` checks the month, then the day within the month (leap years included), and its
/// error names the component.
fn checked_date(year: u32, month: u32, day: u32) -> Result<Date, TimeError> {
    // Year 0 is valid in `time` but not in the protocol's four-digit years.
    if year == 0 {
        return Err(TimeError::OutOfRange("year"));
    }
    let year = i32::try_from(year).map_err(|_| TimeError::OutOfRange("year"))?;
    let month = u8::try_from(month).ok().and_then(|m| Month::try_from(m).ok()).ok_or(TimeError::OutOfRange("month"))?;
    let day = u8::try_from(day).map_err(|_| TimeError::OutOfRange("day"))?;
    Date::from_calendar_date(year, month, day).map_err(|e| TimeError::OutOfRange(e.name()))
}

/// Milliseconds since the epoch for calendar fields, checked in the order year, month, day, hour, minute, second.
fn to_epoch_ms(
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
) -> Result<u64, TimeError> {
    let date = checked_date(year, month, day)?;
    // Every component comes from at most three digits, so the narrowing cannot fail.
    let narrow = |v: u32, name| u8::try_from(v).map_err(|_| TimeError::OutOfRange(name));
    let millis = u16::try_from(millis).map_err(|_| TimeError::OutOfRange("millisecond"))?;
    let time =
        Time::from_hms_milli(narrow(hour, "hour")?, narrow(minute, "minute")?, narrow(second, "second")?, millis)
            .map_err(|e| TimeError::OutOfRange(e.name()))?;
    let nanos = date.with_time(time).assume_utc().unix_timestamp_nanos();
    u64::try_from(nanos / 1_000_000).map_err(|_| TimeError::BeforeEpoch)
}

/// Parses the digits of `yyyyMMddHHmmss` (14) or `yyyyMMddHHmmssSSS` (17) as a wall-clock time in UTC.
fn parse_compact_digits(s: &str) -> Result<u64, TimeError> {
    let b = s.as_bytes();
    if b.len() != 14 && b.len() != 17 {
        return Err(TimeError::Format);
    }
    let millis = if b.len() == 17 { digits(b, 14, 3)? } else { 0 };
    to_epoch_ms(
        digits(b, 0, 4)?,
        digits(b, 4, 2)?,
        digits(b, 6, 2)?,
        digits(b, 8, 2)?,
        digits(b, 10, 2)?,
        digits(b, 12, 2)?,
        millis,
    )
}

/// Parses `yyyyMMddHHmmss` (14 digits) or `yyyyMMddHHmmssSSS` (17 digits) as UTC, returning milliseconds since the
/// epoch. Both lengths are accepted because `expireTime` is documented with 14 digits but sent with 17 (§2.5).
///
/// # Errors
///
/// [`TimeError::Format`] for any other length, [`TimeError::NotDigits`], [`TimeError::OutOfRange`] naming the
/// component, [`TimeError::BeforeEpoch`].
pub fn parse_compact_utc(s: &str) -> Result<u64, TimeError> {
    parse_compact_digits(s)
}

/// Parses a kit body `timeStamp` (17 digits, or 14) written in UTC+8, returning milliseconds since the epoch (§5.1).
///
/// # Errors
///
/// As [`parse_compact_utc`]; [`TimeError::BeforeEpoch`] for a Beijing time before 1970-01-01T08:00.
pub fn parse_kit_timestamp(s: &str) -> Result<u64, TimeError> {
    parse_compact_digits(s)?.checked_sub(UTC8_OFFSET_MS).ok_or(TimeError::BeforeEpoch)
}

/// 400 Gregorian years (146 097 days), after which the calendar repeats.
const MS_PER_400_YEARS: u64 = 146_097 * MS_PER_DAY;
/// 9999-12-31T23:59:59.999Z, the last instant `time` represents without its `large-dates` feature.
const LAST_MS: u64 = 253_402_300_799_999;

/// The calendar fields of a millisecond timestamp, in UTC. Instants after year 9999 (never sent, but every `u64`
/// has an answer) are moved back by whole 400-year cycles for `time` and the cycles added to the year.
fn fields(ms: u64) -> (u64, u8, u8, u8, u8, u8, u16) {
    let cycles = ms.saturating_sub(LAST_MS).div_ceil(MS_PER_400_YEARS);
    let in_range = ms - cycles * MS_PER_400_YEARS;
    let t = OffsetDateTime::UNIX_EPOCH.saturating_add(Duration::milliseconds(in_range.cast_signed()));
    let year = u64::from(t.year().unsigned_abs()) + cycles * 400;
    (year, u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second(), t.millisecond())
}

/// Writes milliseconds since the epoch as `yyyyMMddHHmmss` or `yyyyMMddHHmmssSSS` in UTC (the 14-digit form drops
/// the milliseconds, it does not round).
pub fn format_compact_utc(ms: u64, precision: Precision) -> String {
    let (y, mo, d, h, mi, s, millis) = fields(ms);
    match precision {
        Precision::Seconds14 => format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}"),
        Precision::Millis17 => format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}{millis:03}"),
    }
}

/// Writes milliseconds since the epoch as `yyyyMMdd'T'HHmmss'Z'` (the API Gateway `X-Sdk-Date` and usage-record
/// form), dropping the milliseconds.
pub fn format_sdk_date(ms: u64) -> String {
    let (y, mo, d, h, mi, s, _) = fields(ms);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Parses `yyyyMMdd'T'HHmmss'Z'` (UTC) into milliseconds since the epoch.
///
/// # Errors
///
/// [`TimeError::Format`] unless the text is exactly 8 digits, `T`, 6 digits, `Z`; otherwise as
/// [`parse_compact_utc`].
pub fn parse_sdk_date(s: &str) -> Result<u64, TimeError> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return Err(TimeError::Format);
    }
    to_epoch_ms(
        digits(b, 0, 4)?,
        digits(b, 4, 2)?,
        digits(b, 6, 2)?,
        digits(b, 9, 2)?,
        digits(b, 11, 2)?,
        digits(b, 13, 2)?,
        0,
    )
}

/// Parses a loosely written date `yyyy-M-d` (one- or two-digit month and day, `-` or `/` separators), as the kit's
/// `entryDate` is documented (`yyyy-MM-d`).
///
/// # Errors
///
/// [`TimeError::Format`] for another shape, [`TimeError::OutOfRange`] for an impossible date.
pub fn parse_loose_date(s: &str) -> Result<CivilDate, TimeError> {
    let mut parts = s.trim().split(['-', '/']);
    let (Some(y), Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TimeError::Format);
    };
    if y.len() != 4 || !(1..=2).contains(&m.len()) || !(1..=2).contains(&d.len()) {
        return Err(TimeError::Format);
    }
    let year = digits(y.as_bytes(), 0, 4)?;
    let month = digits(m.as_bytes(), 0, m.len())?;
    let day = digits(d.as_bytes(), 0, d.len())?;
    let date = checked_date(year, month, day)?;
    // Four digits: the year is at most 9999, so the narrowing is lossless.
    Ok(CivilDate { year: date.year().unsigned_abs() as u16, month: u8::from(date.month()), day: date.day() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(parse_compact_utc("19700101000000"), Ok(0));
        assert_eq!(parse_compact_utc("19700101000000001"), Ok(1));
        // The documented refreshInstance expireTime (17 digits).
        assert_eq!(parse_compact_utc("20221124023618256"), Ok(1_669_257_378_256));
        // The documented V2 newInstance timestamp 1680508066618 is 2023-04-03T07:47:46.618Z.
        assert_eq!(parse_compact_utc("20230403074746618"), Ok(1_680_508_066_618));
        assert_eq!(format_compact_utc(1_680_508_066_618, Precision::Millis17), "20230403074746618");
        assert_eq!(format_compact_utc(1_680_508_066_618, Precision::Seconds14), "20230403074746");
        assert_eq!(parse_compact_utc("99991231235959999"), Ok(253_402_300_799_999));
    }

    #[test]
    fn fourteen_and_seventeen_digits_agree() {
        let a = parse_compact_utc("20251121235959");
        let b = parse_compact_utc("20251121235959000");
        assert_eq!(a, b);
        assert!(a.is_ok());
    }

    #[test]
    fn leap_days() {
        assert!(parse_compact_utc("20240229120000").is_ok());
        assert!(parse_compact_utc("20000229000000").is_ok()); // divisible by 400
        assert_eq!(parse_compact_utc("19000229000000"), Err(TimeError::OutOfRange("day"))); // by 100 only
        assert_eq!(parse_compact_utc("20230229000000"), Err(TimeError::OutOfRange("day")));
        assert_eq!(
            parse_compact_utc("20240301000000").ok().map(|ms| ms - 86_400_000),
            parse_compact_utc("20240229000000").ok()
        );
    }

    #[test]
    fn invalid_components_name_themselves() {
        assert_eq!(parse_compact_utc("20221324023618"), Err(TimeError::OutOfRange("month")));
        assert_eq!(parse_compact_utc("20220024023618"), Err(TimeError::OutOfRange("month")));
        assert_eq!(parse_compact_utc("20220431023618"), Err(TimeError::OutOfRange("day")));
        assert_eq!(parse_compact_utc("20220400023618"), Err(TimeError::OutOfRange("day")));
        assert_eq!(parse_compact_utc("20220430243618"), Err(TimeError::OutOfRange("hour")));
        assert_eq!(parse_compact_utc("20220430236018"), Err(TimeError::OutOfRange("minute")));
        assert_eq!(parse_compact_utc("20220430235960"), Err(TimeError::OutOfRange("second")));
        assert_eq!(parse_compact_utc("19691231235959"), Err(TimeError::BeforeEpoch));
    }

    #[test]
    fn wrong_lengths_and_non_digits() {
        for s in ["", "2022112402361", "202211240236182", "2022112402361825", "202211240236182560"] {
            assert_eq!(parse_compact_utc(s), Err(TimeError::Format), "{s:?}");
        }
        assert_eq!(parse_compact_utc("2022112402361a"), Err(TimeError::NotDigits));
        assert_eq!(parse_compact_utc("+0221124023618"), Err(TimeError::NotDigits));
        assert_eq!(parse_compact_utc("２０２２１１２４０２３６１"), Err(TimeError::Format));
    }

    #[test]
    fn kit_timestamp_is_utc_plus_8() {
        // Documented kit example timeStamp: 2022-04-13 09:35:39.534 Beijing = 01:35:39.534Z.
        assert_eq!(parse_kit_timestamp("20220413093539534"), parse_compact_utc("20220413013539534"));
        assert_eq!(parse_kit_timestamp("20220413093539"), parse_compact_utc("20220413013539"));
        assert_eq!(parse_kit_timestamp("19700101080000000"), Ok(0));
        assert_eq!(parse_kit_timestamp("19700101075959999"), Err(TimeError::BeforeEpoch));
    }

    #[test]
    fn sdk_date_round_trip() {
        // Published API Gateway vector date.
        let ms = parse_sdk_date("20191115T033655Z");
        assert_eq!(ms, Ok(1_573_789_015_000));
        assert_eq!(format_sdk_date(1_573_789_015_999), "20191115T033655Z");
        assert_eq!(parse_sdk_date("20240306T020000Z").map(format_sdk_date).as_deref(), Ok("20240306T020000Z"));
        assert_eq!(parse_sdk_date("20240306 020000Z"), Err(TimeError::Format));
        assert_eq!(parse_sdk_date("20240306T020000"), Err(TimeError::Format));
        assert_eq!(parse_sdk_date("20240231T020000Z"), Err(TimeError::OutOfRange("day")));
    }

    #[test]
    fn formatting_inverts_parsing_across_eras() {
        let mut day = 0u64;
        // Every day of 1970..2100 at a varying time of day.
        while day < 47_482 {
            let ms = day * MS_PER_DAY + (day * 7_919_123) % MS_PER_DAY;
            let text = format_compact_utc(ms, Precision::Millis17);
            assert_eq!(parse_compact_utc(&text), Ok(ms), "{text}");
            day += 1;
        }
    }

    #[test]
    fn loose_dates() {
        assert_eq!(parse_loose_date("2022-4-1"), Ok(CivilDate { year: 2022, month: 4, day: 1 }));
        assert_eq!(parse_loose_date("2022-04-13").map(|d| d.to_string()).as_deref(), Ok("2022-04-13"));
        assert_eq!(parse_loose_date("2024/2/29").map(|d| d.day), Ok(29));
        assert_eq!(parse_loose_date("2023-2-29"), Err(TimeError::OutOfRange("day")));
        assert_eq!(parse_loose_date("2023-13-1"), Err(TimeError::OutOfRange("month")));
        assert_eq!(parse_loose_date("22-1-1"), Err(TimeError::Format));
        assert_eq!(parse_loose_date("2022-1-1-1"), Err(TimeError::Format));
    }

    #[test]
    fn sdk_dates_round_trip_and_impossible_dates_are_refused() {
        assert_eq!(parse_sdk_date("19700101T000000Z"), Ok(0));
        assert_eq!(parse_sdk_date("20240317T144237Z"), Ok(1_710_686_557_000));
        assert_eq!(format_sdk_date(1_710_686_557_999), "20240317T144237Z");
        assert_eq!(format_sdk_date(951_782_400_000), "20000229T000000Z");
        for bad in ["20240230T000000Z", "20241317T000000Z", "20240317T246000Z", "20240317 144237Z", "2024031T144237Z"] {
            assert!(parse_sdk_date(bad).is_err(), "{bad}");
        }
        for ms in [0u64, 86_399_000, 1_709_690_865_000, 4_102_444_800_000] {
            assert_eq!(parse_sdk_date(&format_sdk_date(ms)), Ok(ms));
        }
    }
}
