//! `harness upstream`: serve a mock OpenAI-compatible model server for local agents-gateway runs (see
//! [`crate::upstream`]).

use crate::exit_codes;
use crate::upstream::{DEFAULT_CHUNK_DELAY, MockUpstream, UpstreamConfig};
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

/// Serve a mock OpenAI-compatible model server (chat, completions, embeddings, responses, models).
///
/// Give the agents gateway `http://<LISTEN>` as its upstream. The request's `model` picks the answer: `gpt-mock`
/// (or any unknown name) answers as OpenAI; `usage-input-output`, `usage-nested`, `usage-gemini`, `usage-extra` and
/// `no-usage` vary the usage's shape; with `"stream": true`, `usage-anthropic`, `usage-every-chunk`, `crlf`,
/// `gated` and `error-mid-stream` vary the events; `error-500`, `error-400`, `hang` and `slow` misbehave. Tokens
/// are counted, not guessed: prompt = words of the prompt, completion = `max_tokens` (default 5), reply `w1 … wN`.
#[derive(Debug, Args)]
pub struct UpstreamCommand {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:9400")]
    pub listen: SocketAddr,
    /// The API key clients must send as `Authorization: Bearer KEY` (default: none needed). Prefer the environment
    /// variable: a command line is visible to every local user.
    #[arg(long, value_name = "KEY", env = "HARNESS_UPSTREAM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The pause between two events of a stream, in milliseconds (`slow` waits ten of them).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_CHUNK_DELAY.as_millis() as u64)]
    pub chunk_delay_ms: u64,
}

impl UpstreamCommand {
    /// Binds, prints the base URL to stderr, serves until Ctrl-C / SIGTERM.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub fn execute(self) -> anyhow::Result<i32> {
        let key_required = self.api_key.is_some();
        let config = UpstreamConfig { api_key: self.api_key, chunk_delay: Duration::from_millis(self.chunk_delay_ms) };
        let rt = super::runtime()?;
        rt.block_on(async move {
            let mock = MockUpstream::start(self.listen, config).await?;
            eprintln!("mock upstream at {} (OpenAI base URL {}/v1)", mock.base_url(), mock.base_url());
            eprintln!("  api key: {}", if key_required { "required" } else { "not needed" });
            eprintln!("  chunk delay: {} ms", self.chunk_delay_ms);
            crate::server::shutdown_signal().await;
            drop(mock);
            tracing::info!("stopped");
            anyhow::Ok(exit_codes::SUCCESS)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    #[test]
    fn upstream_subcommand_parses() {
        let cli = Cli::try_parse_from(["harness", "upstream"]).expect("parses");
        let Command::Upstream(c) = cli.command else { panic!("not upstream") };
        assert_eq!(c.listen.to_string(), "127.0.0.1:9400");
        assert_eq!(c.chunk_delay_ms, 20);
        if std::env::var_os("HARNESS_UPSTREAM_API_KEY").is_none() {
            assert_eq!(c.api_key, None);
        }
        let args = ["harness", "upstream", "--listen", "127.0.0.1:0", "--api-key", "k", "--chunk-delay-ms", "5"];
        let cli = Cli::try_parse_from(args).expect("parses");
        let Command::Upstream(c) = cli.command else { panic!("not upstream") };
        assert_eq!((c.listen.port(), c.api_key.as_deref(), c.chunk_delay_ms), (0, Some("k"), 5));
        assert!(Cli::try_parse_from(["harness", "upstream", "--chunk-delay-ms", "-1"]).is_err());
    }
}
