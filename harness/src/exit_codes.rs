//! The `harness` binary's exit codes. Each error maps to exactly one; scripts and CI can branch on them.

/// Everything worked (for `replay`: every step passed).
pub const SUCCESS: i32 = 0;
/// `replay`: at least one cassette step failed (a finding about the components, not a harness error).
pub const TEST_FAILURES: i32 = 1;
/// Bad command line (clap's own usage errors also exit with 2).
pub const USAGE: i32 = 2;
/// Invalid configuration: manifest, runtime config, variables, cassette files, keys.
pub const CONFIG: i32 = 3;
/// A component could not be compiled or linked (e.g. missing file, unsupported import).
pub const LOAD: i32 = 4;
/// An I/O failure: the listen address could not be bound, a file could not be written.
pub const IO: i32 = 5;
/// Anything else: a bug or an unexpected runtime failure.
pub const INTERNAL: i32 = 70;

/// The exit code for an error that ended a command, from the first typed error in its chain.
pub fn for_error(error: &anyhow::Error) -> i32 {
    use crate::app::BuildError;
    for cause in error.chain() {
        if let Some(b) = cause.downcast_ref::<BuildError>() {
            return match b {
                BuildError::Load { .. } | BuildError::Engine(_) => LOAD,
                BuildError::Manifest(crate::manifest::ManifestError::MissingSource { .. }) => LOAD,
                _ => CONFIG,
            };
        }
        if cause.downcast_ref::<crate::manifest::ManifestError>().is_some()
            || cause.downcast_ref::<crate::runtime_config::RuntimeConfigError>().is_some()
            || cause.downcast_ref::<crate::variables::VariableError>().is_some()
            || cause.downcast_ref::<crate::cassette::CassetteError>().is_some()
        {
            return CONFIG;
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return USAGE;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return IO;
        }
    }
    INTERNAL
}

/// A command-line problem clap cannot detect (e.g. a `--field` that is not `name=value`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
