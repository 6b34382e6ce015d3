//! One runner process: started on a fresh state directory and a free port, stopped with its process group.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::binary::{RunnerKind, locate, workspace_root};
use crate::client::HttpClient;
use crate::clock::PinnedClock;
use crate::redis_server::free_port;
use crate::state::{StateDump, Store};

/// How long a runner may take to answer its health check after starting (the first `spin up` on a machine also
/// unpacks Spin and compiles the components).
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// How long a runner may take to exit after `SIGTERM` before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

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
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self { variables: Vec::new(), store: Store::RunnerDefault, clock_ms: None, manifest: None }
    }
}

/// A running `harness up` or `spin up`. Killed (with its process group) and its state directory removed on drop.
#[derive(Debug)]
pub struct Runner {
    kind: RunnerKind,
    child: Option<Child>,
    origin: String,
    state_dir: PathBuf,
    store: Store,
    clock: Option<PinnedClock>,
    client: HttpClient,
}

impl Runner {
    /// Starts `kind` with `opts` and waits until `/.well-known/spin/health` answers `200`.
    ///
    /// # Errors
    /// The binary is missing, the process exits or does not become healthy (the error carries its log's tail).
    pub async fn start(kind: RunnerKind, opts: RunnerOptions) -> anyhow::Result<Self> {
        let binary = locate(kind)?;
        let state_dir = fresh_dir(kind)?;
        let port = free_port()?;
        let manifest = opts.manifest.clone().unwrap_or_else(|| workspace_root().join("spin.toml"));
        let clock = match opts.clock_ms {
            Some(ms) => Some(PinnedClock::new(&state_dir, ms)?),
            None => None,
        };
        let log_path = state_dir.join("runner.log");
        let log = std::fs::File::create(&log_path)?;

        let mut cmd = Command::new(&binary.path);
        cmd.arg("up").arg("-f").arg(&manifest);
        cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
        cmd.arg("--state-dir").arg(&state_dir);
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
        if let Some(c) = &clock {
            cmd.envs(c.env());
        }
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let child =
            cmd.spawn().map_err(|e| anyhow::anyhow!("cannot start {} ({}): {e}", kind.name(), binary.origin))?;

        let mut runner = Self {
            kind,
            child: Some(child),
            origin: format!("http://127.0.0.1:{port}"),
            state_dir,
            store: opts.store,
            clock,
            client: HttpClient::new(),
        };
        runner.wait_healthy().await?;
        Ok(runner)
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                anyhow::bail!("{} exited at start ({status}):\n{}", self.kind.name(), self.log_tail());
            }
            let probe = http::Request::get("/.well-known/spin/health").body(Bytes::new())?;
            if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(2), self.client.send(&self.origin, probe)).await
                && r.status() == http::StatusCode::OK
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!("{} not healthy after {START_TIMEOUT:?}:\n{}", self.kind.name(), self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
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

    /// The last lines the process printed (its log), for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.state_dir.join("runner.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Sends one request (path-and-query URI) and returns the complete answer.
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

    /// The `default` store now, while the runner runs (Spin's SQLite file or Redis; the harness's redb file is
    /// locked while it runs: use [`Runner::stop`]).
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn snapshot(&self) -> anyhow::Result<StateDump> {
        match (&self.store, self.kind) {
            (Store::Redis(url), _) => StateDump::from_redis(url),
            (Store::RunnerDefault, RunnerKind::Spin) => StateDump::from_spin_dir(&self.state_dir),
            (Store::RunnerDefault, RunnerKind::Harness) => {
                anyhow::bail!("the harness locks its store file while it runs: stop it first")
            }
        }
    }

    /// Stops the process (`SIGTERM` to its group, `SIGKILL` after [`STOP_TIMEOUT`]) and returns the `default`
    /// store as it left it.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn stop(mut self) -> anyhow::Result<StateDump> {
        self.terminate();
        match &self.store {
            Store::Redis(url) => StateDump::from_redis(url),
            Store::RunnerDefault => match self.kind {
                RunnerKind::Spin => StateDump::from_spin_dir(&self.state_dir),
                RunnerKind::Harness => StateDump::from_harness_dir(&self.state_dir).await,
            },
        }
    }

    fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = child.kill();
        let _ = child.wait();
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
    fn drop(&mut self) {
        self.terminate();
        if std::env::var_os("KEEP_RUNNER_STATE").is_none() {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
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
