//! A stand-in for `harness emulate URL` until the harness subcommand lands:
//! `EMULATE_KEY=… cargo run --release -p emulator --example emulate -- http://127.0.0.1:3000/produce [--v1]`.
//! The key comes from the environment so it stays out of shell history and process lists.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: EMULATE_KEY=<access key> emulate <production URL> [--v1]");
        return ExitCode::from(2);
    };
    let v1 = args.any(|a| a == "--v1");
    let key = std::env::var("EMULATE_KEY").unwrap_or_default();
    match emulator::run(emulator::EmulateOptions { url, key, v1, ..Default::default() }).await {
        Ok(report) => {
            report.print_table();
            if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("emulate: {e:#}");
            ExitCode::from(2)
        }
    }
}
