//! A wall clock pinned for an unmodified runner process, through libfaketime.
//!
//! The runner is started with `LD_PRELOAD=libfaketimeMT.so.1` and `FAKETIME_TIMESTAMP_FILE` pointing at a file
//! this type writes; with `FAKETIME_NO_CACHE=1` every `clock_gettime(CLOCK_REALTIME)` in the process (the
//! guest's `wasi:clocks/wall-clock`, the `Date` header) reads the file again, so the test moves the clock between
//! requests. The monotonic clock stays real (`DONT_FAKE_MONOTONIC=1`): timers and timeouts behave normally.

use std::path::{Path, PathBuf};

use koogallery_core::marketplace::v1_time_stamp;

/// Finds `libfaketimeMT.so.1`, the synchronised build: the plain `libfaketime.so.1` parses the time file into one
/// static buffer without a lock, so two of a runner's threads reading the clock at once can tear it and one of them
/// gets the real time (libfaketime PR #547; seen here as a rare spurious "timestamp too old" on `spin up`).
/// `FAKETIME_LIB` if set (it must exist), else Debian's `faketime` package location,
/// `/usr/lib/<multiarch>/faketime/` or `/usr/lib/faketime/`.
fn find_library() -> anyhow::Result<PathBuf> {
    const INSTALL: &str = "apt-get install -y faketime, or set FAKETIME_LIB";
    if let Some(path) = std::env::var_os("FAKETIME_LIB").map(PathBuf::from) {
        anyhow::ensure!(path.is_file(), "FAKETIME_LIB={} is not a file", path.display());
        return Ok(path);
    }
    let multiarch = std::fs::read_dir("/usr/lib").into_iter().flatten().flatten().map(|e| e.path());
    std::iter::once(PathBuf::from("/usr/lib"))
        .chain(multiarch)
        .map(|dir| dir.join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("libfaketime is needed to pin a runner's clock: {INSTALL}"))
}

/// A clock file for libfaketime. The time is frozen at the written instant (millisecond precision) until the
/// next [`PinnedClock::set_ms`].
#[derive(Debug)]
pub struct PinnedClock {
    file: PathBuf,
    library: PathBuf,
}

impl PinnedClock {
    /// A clock file under `dir`, set to `ms` (since the epoch).
    ///
    /// # Errors
    /// libfaketime is not installed, or the file cannot be written.
    pub fn new(dir: &Path, ms: u64) -> anyhow::Result<Self> {
        let clock = Self { file: dir.join("faketime"), library: find_library()? };
        clock.set_ms(ms)?;
        Ok(clock)
    }

    /// Moves the clock to `ms`. The file is replaced atomically, so the runner never reads half a time.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn set_ms(&self, ms: u64) -> anyhow::Result<()> {
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", faketime_text(ms)))?;
        std::fs::rename(&tmp, &self.file)?;
        Ok(())
    }

    /// The environment a runner process needs to see this clock.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), self.library.display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE".into(), self.file.display().to_string()),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("DONT_FAKE_MONOTONIC".into(), "1".into()),
            ("TZ".into(), "UTC".into()),
        ]
    }
}

/// `YYYY-MM-DD hh:mm:ss.mmm000500` (UTC): libfaketime's absolute, frozen form. libfaketime reads the fraction as a
/// double, so `.619` would become 618 999 999 ns and a guest truncating to milliseconds would see one ms early; the
/// extra 500 ns keep the millisecond exact.
fn faketime_text(ms: u64) -> String {
    let t = v1_time_stamp(ms); // yyyyMMddHHmmssSSS
    if t.len() != 17 || !t.is_ascii() {
        return t;
    }
    format!("{}-{}-{} {}:{}:{}.{}000500", &t[0..4], &t[4..6], &t[6..8], &t[8..10], &t[10..12], &t[12..14], &t[14..17])
}

#[cfg(test)]
mod tests {
    use super::faketime_text;

    #[test]
    fn clock_text_is_utc_with_milliseconds() {
        // test-vectors §6.1's timestamp.
        assert_eq!(faketime_text(1_680_508_066_618), "2023-04-03 07:47:46.618000500");
        assert_eq!(faketime_text(0), "1970-01-01 00:00:00.000000500");
    }
}
