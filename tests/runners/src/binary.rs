//! Finding the runner binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set (to anything but `0`) where Spin must be present: a missing Spin is then an error, not a skip. `.ci/run`
/// sets it.
pub const SPIN_REQUIRED_ENV: &str = "KOOGALLERY_REQUIRE_SPIN";

/// Which program serves the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunnerKind {
    /// `target/release/harness up`, the project's local runner.
    Harness,
    /// `spin up`, the real Spin CLI (≥ 4.1).
    Spin,
}

impl RunnerKind {
    /// Both runners, harness first.
    pub const ALL: [RunnerKind; 2] = [RunnerKind::Harness, RunnerKind::Spin];

    /// `harness up` or `spin up`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            RunnerKind::Harness => "harness up",
            RunnerKind::Spin => "spin up",
        }
    }
}

/// A binary that was found, and how.
#[derive(Debug, Clone)]
pub struct Located {
    /// The executable.
    pub path: PathBuf,
    /// How it was found (`$SPIN`, `PATH`, the workspace tools, the build), for messages.
    pub found_via: String,
}

/// The workspace root (where `spin.toml` and `target/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Finds the binary for `kind`.
///
/// Spin: `$SPIN` if set (it must work), else `spin` on `PATH` if it reports version 4.1 or later, else
/// `shared/tools/spin` in the nearest directory above the workspace (the project's tools, `../shared/tools/spin`),
/// or above the local repository it was cloned from; `scripts/find-spin` looks in the same places. The harness:
/// `target/release/harness`, built by `cargo build --release -p harness` (`scripts/test` does).
///
/// # Errors
/// Why no usable binary was found, with what to do about it.
pub fn locate(kind: RunnerKind) -> anyhow::Result<Located> {
    match kind {
        RunnerKind::Harness => {
            let path = workspace_root().join("target/release/harness");
            anyhow::ensure!(
                path.is_file(),
                "{} is missing: build it with `cargo build --release -p harness`",
                path.display()
            );
            Ok(Located { path, found_via: "the release build".into() })
        }
        RunnerKind::Spin => locate_spin(),
    }
}

fn locate_spin() -> anyhow::Result<Located> {
    if let Some(path) = std::env::var_os("SPIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        let version = spin_version(&path)
            .ok_or_else(|| anyhow::anyhow!("SPIN={} does not run (`--version` failed)", path.display()))?;
        anyhow::ensure!(at_least_4_1(&version), "SPIN={} is {version}; Spin 4.1 or later is needed", path.display());
        return Ok(Located { path, found_via: "$SPIN".into() });
    }
    if let Some(version) = spin_version(Path::new("spin"))
        && at_least_4_1(&version)
    {
        return Ok(Located { path: PathBuf::from("spin"), found_via: format!("PATH ({version})") });
    }
    let workspace = workspace_root().canonicalize().unwrap_or_else(|_| workspace_root());
    // A clone made elsewhere (CI's fresh clone) also looks above the local repository it was cloned from.
    let starts = std::iter::once(workspace.clone()).chain(local_origin(&workspace));
    for start in starts {
        for dir in start.ancestors().skip(1) {
            let tool = dir.join("shared/tools/spin");
            if tool.is_file() && spin_version(&tool).is_some_and(|v| at_least_4_1(&v)) {
                return Ok(Located { found_via: tool.display().to_string(), path: tool });
            }
        }
    }
    anyhow::bail!("no Spin 4.1 or later: set SPIN to a spin binary, put one on PATH, or provide ../shared/tools/spin")
}

/// The directory the workspace was cloned from, when `origin` is a local path.
fn local_origin(workspace: &Path) -> Option<PathBuf> {
    let out = Command::new("git").arg("-C").arg(workspace).args(["remote", "get-url", "origin"]).output().ok()?;
    let url = String::from_utf8_lossy(&out.stdout).trim().trim_start_matches("file://").to_owned();
    let dir = PathBuf::from(url).canonicalize().ok()?;
    (out.status.success() && dir.is_dir()).then_some(dir)
}

/// `spin --version` output (`spin 4.1.0-pre0 (…)`), if the binary runs.
fn spin_version(path: &Path) -> Option<String> {
    let out = Command::new(path).arg("--version").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether `spin X.Y.Z…` is at least 4.1.
fn at_least_4_1(version: &str) -> bool {
    let number = version.split_whitespace().nth(1).unwrap_or("");
    let mut parts = number.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (4, 1)
}

/// The Spin binary, or `None` after printing why the caller skips: a missing Spin is an error only when
/// [`SPIN_REQUIRED_ENV`] is set (CI).
///
/// # Panics
/// When Spin is required and cannot be found.
pub fn spin_or_skip(suite: &str) -> Option<Located> {
    match locate(RunnerKind::Spin) {
        Ok(found) => Some(found),
        Err(e) => {
            let required = std::env::var(SPIN_REQUIRED_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(!required, "{suite}: {e:#} ({SPIN_REQUIRED_ENV} is set)");
            eprintln!("SKIPPED on spin up: {suite}: {e:#}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::at_least_4_1;

    #[test]
    fn version_check_reads_major_and_minor() {
        assert!(at_least_4_1("spin 4.1.0-pre0 (94a8fc8a 2026-08-21)"));
        assert!(at_least_4_1("spin 5.0.0"));
        assert!(!at_least_4_1("spin 4.0.2 (abc)"));
        assert!(!at_least_4_1("spin 3.9.0"));
        assert!(!at_least_4_1("something else"));
    }
}
