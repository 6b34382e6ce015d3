//! One runner process: started on a fresh state directory and a free port (or a given one), stopped with `SIGTERM`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use koogallery_core::marketplace::v1_time_stamp;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::binary::{Located, RunnerKind, locate, workspace_root};
use crate::client::HttpClient;
use crate::clock::PinnedClock;
use crate::redis_server::free_port;
use crate::state::{StateDump, Store};

/// How long a runner may take to answer its health check after starting (the first `spin up` on a machine also
/// unpacks Spin and compiles the components).
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// How long a runner may take to exit after `SIGTERM` before it is killed (longer than `harness up`'s drain).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// How to start a runner.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Application variables, passed as `SPIN_VARIABLE_<NAME>` (no `SPIN_VARIABLE_*` is inherited).
    pub variables: Vec<(String, String)>,
    /// The `default` store.
    pub store: Store,
    /// Pin the process's wall clock at this time (ms since the epoch); `None`: the real clock.
    pub clock_ms: Option<u64>,
    /// The manifest; default: the workspace's `spin.toml`.
    pub manifest: Option<PathBuf>,
    /// Run on this existing state directory (`--state-dir`), e.g. one another runner left, and leave it in place
    /// afterwards (its owner removes it); default: a fresh temporary one, removed with the runner.
    pub state_dir: Option<PathBuf>,
    /// Listen on this loopback port, so the origin is known before the start (e.g. for a callback URL given as a
    /// variable); default: a free port picked at start.
    pub port: Option<u16>,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            variables: Vec::new(),
            store: Store::RunnerDefault,
            clock_ms: None,
            manifest: None,
            state_dir: None,
            port: None,
        }
    }
}

/// A running `harness up` or `spin up`. Stopped, and its state directory removed, on drop.
///
/// The process stays in the test's process group, so Ctrl-C on `cargo test` reaches it too; a test process killed
/// outright (`SIGKILL`) cannot stop its runners.
#[derive(Debug)]
pub struct Runner {
    kind: RunnerKind,
    child: Option<Child>,
    origin: String,
    state_dir: PathBuf,
    /// Whether `state_dir` is ours to remove (not given in [`RunnerOptions::state_dir`]).
    owns_state_dir: bool,
    store: Store,
    clock: Option<PinnedClock>,
    client: HttpClient,
}

impl Runner {
    /// Starts `kind` with `opts` and waits until `/.well-known/spin/health` answers `200` from it; with a pinned
    /// clock, also checks that the runner's `Date` header shows the pinned time.
    ///
    /// # Errors
    /// The binary or libfaketime is missing, the process exits, does not become healthy, or does not see the pinned
    /// clock (the error carries its log's tail).
    pub async fn start(kind: RunnerKind, opts: RunnerOptions) -> anyhow::Result<Self> {
        let binary = locate(kind)?;
        let owns_state_dir = opts.state_dir.is_none();
        let state_dir = match &opts.state_dir {
            Some(dir) => dir.clone(),
            None => fresh_dir(kind)?,
        };
        let started = opts.port.map_or_else(free_port, Ok).and_then(|port| {
            let clock = opts.clock_ms.map(|ms| PinnedClock::new(&state_dir, ms)).transpose()?;
            let child = spawn(kind, &binary, &opts, &state_dir, port, clock.as_ref())?;
            Ok((port, clock, child))
        });
        let (port, clock, child) = match started {
            Ok(started) => started,
            Err(e) => {
                if owns_state_dir {
                    let _ = std::fs::remove_dir_all(&state_dir);
                }
                return Err(e);
            }
        };
        // From here the runner owns the process and the directory: dropping it on an error cleans both up.
        let mut runner = Self {
            kind,
            child: Some(child),
            origin: format!("http://127.0.0.1:{port}"),
            state_dir,
            owns_state_dir,
            store: opts.store,
            clock,
            client: HttpClient::new(),
        };
        runner.wait_healthy(opts.clock_ms).await?;
        Ok(runner)
    }

    /// Polls the health endpoint until our child answers `200` (and is still alive afterwards, so the answer was
    /// not from another process that took the port).
    async fn wait_healthy(&mut self, pinned_ms: Option<u64>) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.ensure_running()?;
            let probe = http::Request::get("/.well-known/spin/health").body(Bytes::new())?;
            if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(2), self.client.send(&self.origin, probe)).await
                && r.status() == http::StatusCode::OK
            {
                self.ensure_running()?;
                if let Some(ms) = pinned_ms {
                    let date = r.headers().get(http::header::DATE).and_then(|d| d.to_str().ok()).unwrap_or("");
                    anyhow::ensure!(
                        http_date_shows(date, ms),
                        "{} does not see the pinned clock (Date {date:?}, pinned {}): is libfaketime loaded?",
                        self.kind.name(),
                        v1_time_stamp(ms)
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!("{} not healthy after {START_TIMEOUT:?}:\n{}", self.kind.name(), self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            Some(status) => anyhow::bail!("{} exited at start ({status}):\n{}", self.kind.name(), self.log_tail()),
            None => Ok(()),
        }
    }

    /// Which runner this is.
    pub fn kind(&self) -> RunnerKind {
        self.kind
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The state directory (`--state-dir`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Everything the process printed so far (its log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("runner.log")).unwrap_or_default()
    }

    /// The last 40 lines of the runner's output, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.state_dir.join("runner.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Sends one request (its URI a path and query) and returns the complete answer.
    ///
    /// # Errors
    /// No answer (see [`HttpClient::send`]).
    pub async fn send(&self, request: http::Request<Bytes>) -> anyhow::Result<http::Response<Bytes>> {
        self.client.send(&self.origin, request).await
    }

    /// Moves the pinned clock.
    ///
    /// # Errors
    /// The runner was started without [`RunnerOptions::clock_ms`], or the clock file cannot be written.
    pub fn set_clock_ms(&self, ms: u64) -> anyhow::Result<()> {
        match &self.clock {
            Some(c) => c.set_ms(ms),
            None => anyhow::bail!("{} was started on the real clock (set RunnerOptions::clock_ms)", self.kind.name()),
        }
    }

    /// The `default` store now, while the runner runs (the SQLite file in its state directory, or Redis).
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn snapshot(&self) -> anyhow::Result<StateDump> {
        match &self.store {
            Store::Redis(url) => StateDump::from_redis(url),
            Store::RunnerDefault => StateDump::from_state_dir(&self.state_dir),
        }
    }

    /// Stops the process (`SIGTERM`, which `spin up` passes on to its `spin trigger http` child; `SIGKILL` after
    /// [`STOP_TIMEOUT`]) and returns the `default` store as it left it.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn stop(mut self) -> anyhow::Result<StateDump> {
        if let Some(mut child) = self.child.take() {
            signal(&child, Signal::SIGTERM);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        match &self.store {
            Store::Redis(url) => StateDump::from_redis(url),
            Store::RunnerDefault => StateDump::from_state_dir(&self.state_dir),
        }
    }
}

#[async_trait::async_trait]
impl harness::cassette::Target for Runner {
    async fn set_clock_ms(&mut self, ms: u64) -> anyhow::Result<()> {
        Runner::set_clock_ms(self, ms)
    }

    async fn send(&mut self, request: http::Request<Bytes>) -> anyhow::Result<http::Response<Bytes>> {
        Runner::send(self, request).await
    }
}

impl Drop for Runner {
    /// Stops a runner that was not [`Runner::stop`]ped (a failed test): `SIGTERM`, a short grace, `SIGKILL`; then
    /// removes its state directory unless it was given ([`RunnerOptions::state_dir`]) or `KEEP_RUNNER_STATE` is
    /// set (to read `runner.log` afterwards).
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.owns_state_dir && std::env::var_os("KEEP_RUNNER_STATE").is_none() {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
    }
}

/// Starts the runner process: `<binary> up -f <manifest> --listen … --state-dir …`, output to `runner.log`.
fn spawn(
    kind: RunnerKind,
    binary: &Located,
    opts: &RunnerOptions,
    state_dir: &Path,
    port: u16,
    clock: Option<&PinnedClock>,
) -> anyhow::Result<Child> {
    let manifest = opts.manifest.clone().unwrap_or_else(|| workspace_root().join("spin.toml"));
    let log = std::fs::File::create(state_dir.join("runner.log"))?;
    let mut cmd = Command::new(&binary.path);
    cmd.arg("up").arg("-f").arg(&manifest);
    cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
    cmd.arg("--state-dir").arg(state_dir);
    if let Some(text) = opts.store.runtime_config() {
        let rc = state_dir.join("runtime-config.toml");
        std::fs::write(&rc, text)?;
        cmd.arg("--runtime-config-file").arg(rc);
    }
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SPIN_VARIABLE_") {
            cmd.env_remove(name);
        }
    }
    for (name, value) in &opts.variables {
        cmd.env(format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()), value);
    }
    if let Some(c) = clock {
        cmd.envs(c.env());
    }
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    cmd.spawn().map_err(|e| anyhow::anyhow!("cannot start {} (found via {}): {e}", kind.name(), binary.found_via))
}

/// Sends `sig` to the child (one that already exited is fine).
fn signal(child: &Child, sig: Signal) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
    }
}

/// Whether an HTTP `Date` header (`Mon, 03 Apr 2023 07:47:46 GMT`) shows the second of `ms`.
fn http_date_shows(date: &str, ms: u64) -> bool {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let t = v1_time_stamp(ms); // yyyyMMddHHmmssSSS
    let month = t.get(4..6).and_then(|m| m.parse::<usize>().ok()).and_then(|m| MONTHS.get(m.wrapping_sub(1)));
    match (t.get(0..4), month, t.get(6..8), t.get(8..10), t.get(10..12), t.get(12..14)) {
        (Some(y), Some(mon), Some(d), Some(h), Some(mi), Some(s)) => {
            date.contains(&format!("{d} {mon} {y} {h}:{mi}:{s} GMT"))
        }
        _ => false,
    }
}

/// A new, empty directory under the system temporary directory.
fn fresh_dir(kind: RunnerKind) -> anyhow::Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let tag = match kind {
        RunnerKind::Harness => "harness",
        RunnerKind::Spin => "spin",
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "koogallery-{tag}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::http_date_shows;

    #[test]
    fn date_header_check_matches_the_second() {
        let ms = 1_680_508_066_618; // 2023-04-03 07:47:46.618 UTC
        assert!(http_date_shows("Mon, 03 Apr 2023 07:47:46 GMT", ms));
        assert!(!http_date_shows("Mon, 03 Apr 2023 07:47:47 GMT", ms));
        assert!(!http_date_shows("Mon, 30 Nov 2026 15:00:00 GMT", ms));
        assert!(!http_date_shows("", ms));
    }
}
