//! `harness emulate URL`: act as KooGallery against any production endpoint and print a conformance report.

use crate::exit_codes;
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;

/// Act as the marketplace against URL (ours via `up`, a deployed one, or another implementation): full lifecycles,
/// retries with fresh businessIds, concurrent duplicates, forged and stale signatures, malformed and oversize bodies,
/// V1 and kit syncs; then print one line per rule. Exits 1 if any rule fails.
///
/// The key is read from `--key` or, better (it stays out of shell history), `KOOGALLERY_KEY`; likewise the kit key
/// (`KOOGALLERY_KIT_KEY`) and the backend secret (`KOOGALLERY_BACKEND_SECRET`).
///
/// With `--backend-listen` the emulator also plays the seller's backend (a webhook receiver checking each event's
/// signature): start the endpoint with `SPIN_VARIABLE_BACKEND_URL=http://<ADDR>`,
/// `SPIN_VARIABLE_BACKEND_ORIGIN=http://<ADDR>` (the components' allowed outbound host) and the same
/// `SPIN_VARIABLE_BACKEND_SECRET`, and the `kit.events*` rules check that repeated kit syncs send exactly one event
/// per change.
#[derive(Args)]
pub struct EmulateCommand {
    /// The production URL, e.g. http://127.0.0.1:3000/produce.
    pub url: String,
    /// The basic-interface key (comma list allowed: the first signs).
    #[arg(long, env = "KOOGALLERY_KEY", hide_env_values = true)]
    pub key: String,
    /// Also run the legacy V1 rules.
    #[arg(long)]
    pub v1: bool,
    /// The production address for kit syncs (`{kit-url}/produceAPI/v2/<name>`); kit rules are skipped without it.
    #[arg(long)]
    pub kit_url: Option<String>,
    /// The kit key.
    #[arg(long, env = "KOOGALLERY_KIT_KEY", hide_env_values = true)]
    pub kit_key: Option<String>,
    /// A PEM file with the merchant's RSA public key, to encrypt `applicationSync` secrets.
    #[arg(long)]
    pub kit_rsa_public_key: Option<PathBuf>,
    /// Run a webhook receiver on this address (e.g. 127.0.0.1:8787) for the kit.events rules; they are skipped
    /// without it.
    #[arg(long, value_name = "ADDR")]
    pub backend_listen: Option<String>,
    /// The endpoint's backend_secret, to verify the events' webhook-signature (needed with --backend-listen).
    #[arg(long, env = "KOOGALLERY_BACKEND_SECRET", hide_env_values = true)]
    pub backend_secret: Option<String>,
    /// Concurrent duplicates sent at once.
    #[arg(long, default_value_t = emulator::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// The endpoint's timestamp window in ms (stale requests are sent just outside it).
    #[arg(long, default_value_t = emulator::DEFAULT_WINDOW_MS)]
    pub timestamp_window_ms: u64,
    /// Also write the report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write the report as a self-contained HTML page.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl std::fmt::Debug for EmulateCommand {
    // The keys and the backend secret never reach a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("EmulateCommand")
            .field("url", &self.url)
            .field("key", &"[REDACTED]")
            .field("v1", &self.v1)
            .field("kit_url", &self.kit_url)
            .field("kit_key", &redacted(&self.kit_key))
            .field("kit_rsa_public_key", &self.kit_rsa_public_key)
            .field("backend_listen", &self.backend_listen)
            .field("backend_secret", &redacted(&self.backend_secret))
            .finish_non_exhaustive()
    }
}

impl EmulateCommand {
    /// Runs every rule and prints the report.
    ///
    /// # Errors
    /// Bad options or an unwritable report file; failing rules are findings (exit code 1), not errors.
    pub fn execute(self) -> anyhow::Result<i32> {
        let kit_rsa_public_key = match &self.kit_rsa_public_key {
            Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?),
            None => None,
        };
        let opts = emulator::EmulateOptions {
            url: self.url,
            key: self.key,
            v1: self.v1,
            kit_url: self.kit_url,
            kit_key: self.kit_key,
            kit_rsa_public_key,
            backend_listen: self.backend_listen,
            backend_secret: self.backend_secret,
            concurrency: self.concurrency,
            timestamp_window_ms: self.timestamp_window_ms,
            json_out: self.json,
            html_out: self.html,
            progress: !self.quiet,
        };
        let report = super::runtime()?.block_on(emulator::run(opts))?;
        report.print_table();
        Ok(if report.passed() { exit_codes::SUCCESS } else { exit_codes::TEST_FAILURES })
    }
}
