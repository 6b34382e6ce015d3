//! The timestamp freshness window shared by the V2, kit, usage and API Gateway checks.
//!
//! The documentation says "reject when the difference exceeds 60 s"; the official demo only rejects old
//! timestamps. This window is two-sided (`|now − ts| ≤ window_ms`), so a request stamped in the future cannot be
//! replayed later either.
//!
//! # How to use
//!
//! 1. Keep a [`TimestampWindow`] in the configuration (default: 60 000 ms, milliseconds only).
//! 2. Call [`TimestampWindow::check`] with the received text and the injected clock.
//!
//! ```
//! use koogallery_core::signing::error::AuthError;
//! use koogallery_core::signing::window::TimestampWindow;
//!
//! let w = TimestampWindow::default();
//! assert_eq!(w.check("1680508066618", 1_680_508_066_618 + 60_000), Ok(1_680_508_066_618));
//! assert_eq!(w.check("1680508066618", 1_680_508_066_618 + 60_001), Err(AuthError::TimestampTooOld));
//! assert_eq!(w.check("1680508066", 1_680_508_066_000), Err(AuthError::MalformedTimestamp));
//! let seconds = TimestampWindow { accept_seconds: true, ..w };
//! assert_eq!(seconds.check("1680508066", 1_680_508_066_000), Ok(1_680_508_066_000));
//! ```

use crate::signing::error::AuthError;

/// The default window, 60 s, as the documentation and the demo use.
pub const DEFAULT_WINDOW_MS: u64 = 60_000;

/// How far a request timestamp may be from the local clock, in either direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampWindow {
    /// Largest accepted `|now − ts|` in milliseconds (inclusive).
    pub window_ms: u64,
    /// Also accept 10-digit second timestamps. Off by default: every documented example is 13-digit ms, and one
    /// page's "seconds" wording is the only hint otherwise.
    pub accept_seconds: bool,
}

impl Default for TimestampWindow {
    fn default() -> Self {
        Self { window_ms: DEFAULT_WINDOW_MS, accept_seconds: false }
    }
}

impl TimestampWindow {
    /// Parses `ts` (13 digits = ms; 10 digits = s when [`Self::accept_seconds`]) into milliseconds, without
    /// checking freshness.
    ///
    /// # Errors
    /// [`AuthError::MissingTimestamp`] for an empty string, [`AuthError::MalformedTimestamp`] for anything else
    /// that is not such a number.
    pub fn parse(&self, ts: &str) -> Result<u64, AuthError> {
        if ts.is_empty() {
            return Err(AuthError::MissingTimestamp);
        }
        if !ts.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AuthError::MalformedTimestamp);
        }
        let value: u64 = ts.parse().map_err(|_| AuthError::MalformedTimestamp)?;
        match ts.len() {
            13 => Ok(value),
            10 if self.accept_seconds => value.checked_mul(1000).ok_or(AuthError::MalformedTimestamp),
            _ => Err(AuthError::MalformedTimestamp),
        }
    }

    /// Parses `ts` and checks `|now_ms − ts| ≤ window_ms`; returns the timestamp in milliseconds.
    ///
    /// # Errors
    /// The errors of [`Self::parse`], then [`AuthError::TimestampTooOld`] or [`AuthError::TimestampTooNew`].
    pub fn check(&self, ts: &str, now_ms: u64) -> Result<u64, AuthError> {
        let ts_ms = self.parse(ts)?;
        self.check_ms(ts_ms, now_ms)?;
        Ok(ts_ms)
    }

    /// The freshness check alone, for timestamps that arrive in another format (API Gateway `X-Sdk-Date`).
    ///
    /// # Errors
    /// [`AuthError::TimestampTooOld`] or [`AuthError::TimestampTooNew`].
    pub fn check_ms(&self, ts_ms: u64, now_ms: u64) -> Result<(), AuthError> {
        if ts_ms < now_ms && now_ms - ts_ms > self.window_ms {
            Err(AuthError::TimestampTooOld)
        } else if ts_ms > now_ms && ts_ms - now_ms > self.window_ms {
            Err(AuthError::TimestampTooNew)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: u64 = 1_680_508_066_618;

    #[test]
    fn window_is_inclusive_and_two_sided() {
        let w = TimestampWindow::default();
        assert_eq!(w.check("1680508066618", TS), Ok(TS));
        assert_eq!(w.check("1680508066618", TS + 60_000), Ok(TS));
        assert_eq!(w.check("1680508066618", TS - 60_000), Ok(TS));
        assert_eq!(w.check("1680508066618", TS + 60_001), Err(AuthError::TimestampTooOld));
        assert_eq!(w.check("1680508066618", TS - 60_001), Err(AuthError::TimestampTooNew));
    }

    #[test]
    fn malformed_timestamps_are_rejected() {
        let w = TimestampWindow { accept_seconds: true, ..TimestampWindow::default() };
        for bad in ["168050806661", "16805080666180", "+680508066618", "1680508066618 ", "１680508066618", "abc"] {
            assert_eq!(w.check(bad, TS), Err(AuthError::MalformedTimestamp), "{bad}");
        }
        assert_eq!(w.check("", TS), Err(AuthError::MissingTimestamp));
    }

    #[test]
    fn custom_window_width() {
        let w = TimestampWindow { window_ms: 5, accept_seconds: false };
        assert!(w.check("1680508066618", TS + 5).is_ok());
        assert_eq!(w.check("1680508066618", TS + 6), Err(AuthError::TimestampTooOld));
        assert_eq!(w.check_ms(u64::MAX, 0), Err(AuthError::TimestampTooNew));
    }
}
