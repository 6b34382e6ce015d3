//! `harness`: the local KooGallery runner and test driver. See `harness --help` and the crate docs.

fn main() -> std::process::ExitCode {
    let code = harness::main();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
