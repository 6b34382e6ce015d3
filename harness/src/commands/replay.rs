//! `harness replay DIR`: run every cassette in a directory and print a pass/fail table.

use crate::cassette;
use crate::exit_codes;
use clap::Args;
use std::path::PathBuf;

/// Run recorded request cassettes (`DIR/*.json`, format in CASSETTES.md) and print a pass/fail table.
///
/// Each cassette gets a fresh app with in-memory stores and a virtual clock; time-bound requests are re-signed
/// under that clock. Exits 1 if any step fails.
#[derive(Debug, Args)]
pub struct ReplayCommand {
    /// The directory of cassettes.
    pub dir: PathBuf,
    /// The application manifest (or its directory).
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub from: PathBuf,
    /// Set an application variable for every cassette (repeatable; overrides the cassettes' own).
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    pub variables: Vec<String>,
}

impl ReplayCommand {
    /// Loads all cassettes (failing fast on an invalid one), runs them, prints the table.
    ///
    /// # Errors
    /// Invalid cassettes or an app that cannot be built; failing steps are not errors (exit code 1).
    pub fn execute(self) -> anyhow::Result<i32> {
        for v in &self.variables {
            crate::variables::parse_flag(v)?;
        }
        let cassettes = cassette::load_dir(&self.dir)?;
        let manifest = super::manifest_path(&self.from);
        let rt = super::runtime()?;
        let results = rt.block_on(async {
            let mut all = Vec::new();
            for c in &cassettes {
                all.extend(cassette::run(c, &manifest, &self.variables).await?);
            }
            anyhow::Ok(all)
        })?;
        print!("{}", cassette::table(&results));
        Ok(if results.iter().all(|r| r.passed) { exit_codes::SUCCESS } else { exit_codes::TEST_FAILURES })
    }
}
