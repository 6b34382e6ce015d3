//! `harness`: the local KooGallery runner and test driver. See `harness --help` and the crate docs.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let code = harness::cli::Cli::parse().run();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
