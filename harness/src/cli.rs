//! The `harness` command line: one subcommand per `XxxCommand` in [`crate::commands`].

use crate::commands::{BenchCommand, EmulateCommand, ReplayCommand, SignCommand, UpCommand};
use clap::{Parser, Subcommand};

/// Local KooGallery: run the Spin components without Spin, sign requests, replay cassettes.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about, propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
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
}

impl Cli {
    /// Runs the chosen command and returns the process exit code; errors are printed once, with their causes.
    pub fn run(self) -> i32 {
        init_tracing();
        let result = match self.command {
            Command::Up(c) => c.execute(),
            Command::Sign(c) => c.execute(),
            Command::Replay(c) => c.execute(),
            Command::Bench(c) => c.execute(),
            Command::Emulate(c) => c.execute(),
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
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,harness=info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
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
