//! The `harness` command line: one subcommand per `XxxCommand` in [`crate::commands`].

use crate::commands::{
    BenchCommand, EmulateCommand, MarketplaceCommand, OneAccessCommand, ReplayCommand, SignCommand, UpCommand,
    UpstreamCommand,
};
use clap::{Parser, Subcommand};

/// Local KooGallery: run the Spin components without Spin, sign requests, replay cassettes.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about, propagate_version = true)]
pub struct Cli {
    /// How log lines are written to stderr: `plain` (human-readable; coloured only on a terminal) or `json` (one
    /// JSON object per line, for log shipping). Accepted before or after the subcommand.
    #[arg(long, global = true, value_enum, env = "HARNESS_LOG_FORMAT", default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The format of the log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal, so pipes and files stay clean.
    Plain,
    /// One JSON object per line with the event's fields at the top level (`method`, `path`, `status`, …), never
    /// coloured: what log shippers parse.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the application over HTTP, like `spin up`.
    Up(UpCommand),
    /// Print a correctly signed marketplace request as a curl command line.
    Sign(SignCommand),
    /// Run recorded request cassettes against the components and print a pass/fail table.
    Replay(ReplayCommand),
    /// Measure in-process request latency (p50/p90/p99) and throughput.
    Bench(BenchCommand),
    /// Act as KooGallery against any endpoint and print a conformance report.
    Emulate(EmulateCommand),
    /// Serve a mock OneAccess (authorize, token, userinfo, logout) for local SSO runs.
    Oneaccess(OneAccessCommand),
    /// Serve a mock OpenAI-compatible model server for local agents-gateway runs.
    Upstream(UpstreamCommand),
    /// Serve a mock Huawei marketplace OpenAPI (order query, usage push, licenses) for local runs.
    Marketplace(MarketplaceCommand),
}

impl Cli {
    /// Runs the chosen command and returns the process exit code; errors are printed once, with their causes.
    pub fn run(self) -> i32 {
        init_tracing(self.log_format);
        let result = match self.command {
            Command::Up(c) => c.execute(),
            Command::Sign(c) => c.execute(),
            Command::Replay(c) => c.execute(),
            Command::Bench(c) => c.execute(),
            Command::Emulate(c) => c.execute(),
            Command::Oneaccess(c) => c.execute(),
            Command::Upstream(c) => c.execute(),
            Command::Marketplace(c) => c.execute(),
        };
        match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                crate::exit_codes::for_error(&e)
            }
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default `info` for the harness and `warn` elsewhere.
///
/// Colours are decided here, from whether stderr is a terminal, rather than left on: escape codes in a piped or
/// redirected log break `grep` and log shippers.
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,harness=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Plain => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_ansi(false).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn up_defaults_mirror_spin_up() {
        let cli = Cli::try_parse_from(["harness", "up"]).expect("parses");
        let Command::Up(up) = cli.command else { panic!("not up") };
        assert_eq!(up.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(up.from, std::path::PathBuf::from("spin.toml"));
        let cli = Cli::try_parse_from(["harness", "up", "-f", "x/spin.toml", "--variable", "a=b", "--variable", "c=d"])
            .expect("parses");
        let Command::Up(up) = cli.command else { panic!("not up") };
        assert_eq!(up.variables, ["a=b", "c=d"]);
    }

    #[test]
    fn oneaccess_subcommand_parses() {
        let cli = Cli::try_parse_from(["harness", "oneaccess", "--client", "app-1:s3cret"]).expect("parses");
        let Command::Oneaccess(c) = cli.command else { panic!("not oneaccess") };
        assert_eq!(c.listen.to_string(), "127.0.0.1:9300");
        assert_eq!(c.clients.len(), 1);
        assert!(c.users.is_empty());
        let args = ["harness", "oneaccess", "--client", "a:b", "--client", "c:d", "--user", "lisi:Li Si:admin"];
        let cli = Cli::try_parse_from(args).expect("parses");
        let Command::Oneaccess(c) = cli.command else { panic!("not oneaccess") };
        assert_eq!(c.clients.len(), 2);
        assert_eq!(c.users[0].role, "admin");
        assert!(Cli::try_parse_from(["harness", "oneaccess"]).is_err(), "--client is required");
        assert!(Cli::try_parse_from(["harness", "oneaccess", "--client", "nosecret"]).is_err());
    }

    #[test]
    fn log_format_is_global_and_defaults_to_plain() {
        if std::env::var_os("HARNESS_LOG_FORMAT").is_none() {
            let cli = Cli::try_parse_from(["harness", "up"]).expect("parses");
            assert_eq!(cli.log_format, LogFormat::Plain);
        }
        for args in [["harness", "--log-format", "json", "up"], ["harness", "up", "--log-format", "json"]] {
            assert_eq!(Cli::try_parse_from(args).expect("parses").log_format, LogFormat::Json);
        }
        assert!(Cli::try_parse_from(["harness", "--log-format", "xml", "up"]).is_err());
        let command = Cli::command();
        let arg = command.get_arguments().find(|a| a.get_id() == "log_format").expect("the flag");
        assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some("HARNESS_LOG_FORMAT"));
    }

    #[test]
    fn spin_redis_swap_defect_is_off_by_default_and_set_by_flag_or_env() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).expect("parses");
            let Command::Up(up) = cli.command else { panic!("not up") };
            up.spin_redis_swap_defect
        };
        let from_env = std::env::var_os("HARNESS_SPIN_REDIS_SWAP_DEFECT").is_some();
        if !from_env {
            assert!(!parse(&["harness", "up"]));
        }
        assert!(parse(&["harness", "up", "--spin-redis-swap-defect"]));
        let command = Cli::command();
        let up = command.find_subcommand("up").expect("up");
        let arg = up.get_arguments().find(|a| a.get_id() == "spin_redis_swap_defect").expect("the flag");
        assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some("HARNESS_SPIN_REDIS_SWAP_DEFECT"));
    }
}
