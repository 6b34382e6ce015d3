//! UTC times as the marketplace writes them: `yyyyMMdd'T'HHmmss'Z'` (`X-Sdk-Date`, usage records) and
//! `yyyyMMddHHmmss` (license and order times), to and from milliseconds since the Unix epoch.
//!
//! The mock's own code rather than core's `wire::time`: the mock checks what the components produce with core's
//! helpers, so it must not share them.

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are small and positive by construction.
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// The number written by `digits` (ASCII digits only).
fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u32, |n, d| n.checked_mul(10)?.checked_add(u32::from(d - b'0')))
}

/// Milliseconds since the epoch of `yyyyMMdd` (in `date`) and `HHmmss` (in `time`), if a real UTC time from 1970 on.
fn to_ms(date: &[u8], time: &[u8]) -> Option<u64> {
    if date.len() != 8 || time.len() != 6 {
        return None;
    }
    let (year, month, day) = (number(&date[..4])?, number(&date[4..6])?, number(&date[6..])?);
    let (hour, minute, second) = (number(&time[..2])?, number(&time[2..4])?, number(&time[4..])?);
    let year = i64::from(year);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = i64::from(hour * 3600 + minute * 60 + second);
    u64::try_from(days_from_civil(year, month, day) * DAY_MS + seconds * 1000).ok()
}

/// Parses `yyyyMMdd'T'HHmmss'Z'` (exactly 16 characters).
pub(crate) fn parse_sdk_date(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    to_ms(&b[..8], &b[9..15])
}

/// Parses `yyyyMMddHHmmss` (exactly 14 digits).
pub(crate) fn parse_compact(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 14 {
        return None;
    }
    to_ms(&b[..8], &b[8..])
}

/// The calendar fields of `ms`.
fn fields(ms: u64) -> (i64, u32, u32, u64, u64, u64) {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    let (year, month, day) = civil_from_days(ms.div_euclid(DAY_MS));
    let secs = u64::try_from(ms.rem_euclid(DAY_MS) / 1000).unwrap_or(0);
    (year, month, day, secs / 3600, secs / 60 % 60, secs % 60)
}

/// Writes `ms` as `yyyyMMddHHmmss`.
pub(crate) fn format_compact(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = fields(ms);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

/// Writes `ms` as `yyyyMMdd'T'HHmmss'Z'`.
#[cfg_attr(not(test), allow(dead_code, reason = "used by the tests"))]
pub(crate) fn format_sdk_date(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = fields(ms);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        // 2024-03-17T14:42:37Z, the API Gateway vector's date.
        assert_eq!(parse_sdk_date("20240317T144237Z"), Some(1_710_686_557_000));
        assert_eq!(format_sdk_date(1_710_686_557_999), "20240317T144237Z");
        assert_eq!(parse_compact("19700101000000"), Some(0));
        assert_eq!(parse_compact("20301231235959"), Some(1_924_991_999_000));
        assert_eq!(format_compact(1_924_991_999_000), "20301231235959");
        assert_eq!(parse_sdk_date("20240229T000000Z").map(format_sdk_date).as_deref(), Some("20240229T000000Z"));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in ["", "20240317T144237", "20240317 144237Z", "2024031TT144237Z", "20230229T000000Z"] {
            assert_eq!(parse_sdk_date(bad), None, "{bad}");
        }
        for bad in ["2024031714423", "20241317144237", "20240317244237", "20240317146037", "2024-3-17144237"] {
            assert_eq!(parse_compact(bad), None, "{bad}");
        }
        assert_eq!(parse_compact("+2024031714423"), None);
    }
}
