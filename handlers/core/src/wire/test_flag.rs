//! `testFlag`, the debug marker shared by the basic interface, the kit syncs and the license calls.

use crate::wire::validate::{FieldError, Fields};

/// `testFlag`: debug requests (`1`) come from the seller's debugging tool and the daily dial test; they must keep
/// working in production and never touch production records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TestFlag {
    /// `0` (the default when absent): a real purchase.
    #[default]
    Production,
    /// `1`: a debug request.
    Debug,
}

impl TestFlag {
    /// Whether this is a debug request.
    pub fn is_debug(self) -> bool {
        self == TestFlag::Debug
    }

    /// The wire text, `"0"` or `"1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TestFlag::Production => "0",
            TestFlag::Debug => "1",
        }
    }

    /// Reads `testFlag` (or another field of the same shape) as `"0"`/`"1"` or `0`/`1`; `None` when absent, `null`
    /// or `""`.
    ///
    /// # Errors
    ///
    /// `must be 0 or 1` for any other value.
    pub fn read(fields: &Fields<'_>, name: &str) -> Result<Option<TestFlag>, FieldError> {
        match fields.integer(name) {
            Ok(None) => Ok(None),
            Ok(Some(0)) => Ok(Some(TestFlag::Production)),
            Ok(Some(1)) => Ok(Some(TestFlag::Debug)),
            _ => Err(FieldError::invalid(fields.path(name), "must be 0 or 1")),
        }
    }

    /// Reads an optional `testFlag`, defaulting to production.
    ///
    /// # Errors
    ///
    /// As [`TestFlag::read`].
    pub fn read_optional(fields: &Fields<'_>, name: &str) -> Result<TestFlag, FieldError> {
        Ok(Self::read(fields, name)?.unwrap_or_default())
    }

    /// Reads a mandatory `testFlag` (`orderNotify`, kit syncs).
    ///
    /// # Errors
    ///
    /// Missing, or as [`TestFlag::read`].
    pub fn read_required(fields: &Fields<'_>, name: &str) -> Result<TestFlag, FieldError> {
        Self::read(fields, name)?.ok_or_else(|| FieldError::missing(fields.path(name)))
    }
}
