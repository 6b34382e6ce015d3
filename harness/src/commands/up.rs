//! `harness up`: serve the application over HTTP, mirroring `spin up`.

use crate::app::AppBuilder;
use crate::exit_codes;
use anyhow::Context as _;
use clap::Args;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

/// Serve the application over HTTP, like `spin up`.
///
/// Variables come from `--variable name=value`, then `SPIN_VARIABLE_<NAME>`, then `SPIN_VARIABLE_<NAME>` in `./.env`,
/// then the manifest defaults, looked up again on every `get` (as `spin up`). Without a runtime config the
/// `default` key-value store is Spin's SQLite file `<state dir>/sqlite_key_value.db`, the state directory being
/// `--state-dir` or `<manifest dir>/.spin`, as under `spin up`: both runners share the state there.
#[derive(Debug, Args)]
pub struct UpCommand {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// The application manifest (or its directory).
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub from: PathBuf,
    /// A runtime config file with `[key_value_store.<label>]` sections.
    #[arg(long = "runtime-config-file")]
    pub runtime_config_file: Option<PathBuf>,
    /// The application state directory (default: `.spin/` next to the manifest), as `spin up --state-dir`.
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Set an application variable (repeatable).
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    pub variables: Vec<String>,
    /// Instances alive at once (each serving up to `--max-instance-concurrent-reuse-count` requests; more wait);
    /// sizes the instance pool.
    #[arg(long, default_value_t = 128)]
    pub max_concurrency: u32,
    /// Requests one instance serves before it is dropped, as `spin up` (Spin's default for WASIp3: 128). With
    /// `--max-instance-concurrent-reuse-count 1`, `1` gives every request a fresh instance.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_instance_reuse_count: u64,
    /// Requests one instance serves at the same time, as `spin up` (Spin's default: 16).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_instance_concurrent_reuse_count: u64,
    /// How long an idle instance is kept for the next request, as `spin up`: a number of seconds, or with an
    /// `ms` or `s` suffix.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub idle_instance_timeout: std::time::Duration,
    /// How long one request may run, its streamed response included, before it is abandoned with an error: a
    /// number of seconds, or with an `ms` or `s` suffix. Long, like Spin's (which sets none): a model's answer may
    /// stream for as long as `agents_deadline_s` allows (up to an hour).
    #[arg(long, default_value = "3660s", value_parser = parse_duration)]
    pub request_timeout: std::time::Duration,
    /// Do not use wasmtime's on-disk compilation cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Behave like Spin 4.1.0-pre0 on Redis: every `wasi:keyvalue/atomics` `swap` does its compare-and-set, then
    /// answers `cas-failed` (with a fresh `cas`) even when the write went through. Applies to every store.
    ///
    /// That Spin build ends a Redis swap with an `UNWATCH <key>` that Redis rejects; components must survive it.
    #[arg(
        long,
        env = "HARNESS_SPIN_REDIS_SWAP_DEFECT",
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub spin_redis_swap_defect: bool,
}

impl UpCommand {
    /// Validates everything, loads the components, binds, prints the routes, serves until Ctrl-C / SIGTERM.
    ///
    /// # Errors
    /// Configuration, load and bind errors (see [`crate::exit_codes`]).
    pub fn execute(self) -> anyhow::Result<i32> {
        let started = Instant::now();
        let manifest = super::manifest_path(&self.from);
        let rt = super::runtime()?;
        rt.block_on(async move {
            let mut builder = AppBuilder::from_manifest(&manifest)
                .variable_flags(&self.variables)
                .strict(true)
                .default_store_file(true)
                .guest_stdio(true)
                .max_concurrency(self.max_concurrency)
                .max_instance_reuse_count(usize::try_from(self.max_instance_reuse_count).unwrap_or(usize::MAX))
                .max_instance_concurrent_reuse_count(
                    usize::try_from(self.max_instance_concurrent_reuse_count).unwrap_or(usize::MAX),
                )
                .idle_instance_timeout(self.idle_instance_timeout)
                .request_timeout(self.request_timeout)
                .compile_cache(!self.no_cache)
                .spin_redis_swap_defect(self.spin_redis_swap_defect);
            if let Some(dir) = &self.state_dir {
                builder = builder.state_dir(dir);
            }
            if let Some(rc) = &self.runtime_config_file {
                builder = builder.runtime_config_file(rc);
            }
            let app = builder.build().await.with_context(|| format!("cannot load {}", manifest.display()))?;
            let listener = tokio::net::TcpListener::bind(self.listen)
                .await
                .with_context(|| format!("cannot listen on {}", self.listen))?;
            let local = listener.local_addr().with_context(|| format!("listener on {}", self.listen))?;

            for (label, backend) in app.store_descriptions() {
                tracing::info!(label = %label, backend = %backend, "key-value store");
            }
            // Earlier harness versions kept the default store in redb; its records are not read any more.
            let state_dir = self.state_dir.clone().unwrap_or_else(|| app.dir().join(crate::kv::DEFAULT_STATE_DIR));
            let old_store = state_dir.join("key_value.redb");
            if old_store.is_file() {
                tracing::warn!(
                    file = %old_store.display(),
                    "a store file of an earlier harness version is here and is NOT read: its instances and replay \
                     cache are not served; the default store is now Spin's sqlite_key_value.db in the same folder"
                );
            }
            if self.spin_redis_swap_defect {
                tracing::warn!("emulating Spin 4.1.0-pre0's Redis defect: every wasi:keyvalue swap answers cas-failed");
            }
            for (name, source) in app.variable_sources() {
                let source = source.map_or_else(|| "missing".to_owned(), |s| format!("{s:?}").to_lowercase());
                tracing::debug!(variable = %name, source = %source, "variable");
            }
            // Start-up banner, as `spin up` prints it. Write errors (a closed stdout) must not stop the server.
            let mut banner =
                format!("Logging component stdio to the console\n\nServing http://{local}\nAvailable Routes:\n");
            for route in app.router().routes() {
                let shown = route.display_route();
                let (path, suffix) = match shown.strip_suffix(" (wildcard)") {
                    Some(p) => (p.to_owned(), " (wildcard)"),
                    None => (shown.clone(), ""),
                };
                banner.push_str(&format!("  {}: http://{local}{path}{suffix}\n", route.component()));
            }
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
            drop(out);
            tracing::info!(startup_ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0), "ready");
            crate::server::serve(app, listener, crate::server::shutdown_signal()).await;
            tracing::info!("stopped");
            anyhow::Ok(exit_codes::SUCCESS)
        })
    }
}

/// `1.5`, `2s`, `500ms`: seconds unless suffixed (the forms `spin up` accepts for its durations).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, scale) = match text.strip_suffix("ms") {
        Some(n) => (n, 1e-3),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("{text:?} is not a duration (e.g. 1s, 500ms)"))?;
    std::time::Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_as_spin_up_takes_them() {
        assert_eq!(parse_duration("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
