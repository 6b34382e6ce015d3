//! One module per subcommand; each is an `XxxCommand` (clap `Args`) with `execute(self) -> anyhow::Result<i32>`.

mod bench;
mod emulate;
mod marketplace;
mod oneaccess;
mod replay;
mod sign;
mod up;
mod upstream;

pub use bench::BenchCommand;
pub use emulate::EmulateCommand;
pub use marketplace::MarketplaceCommand;
pub use oneaccess::OneAccessCommand;
pub use replay::ReplayCommand;
pub use sign::SignCommand;
pub use up::UpCommand;
pub use upstream::UpstreamCommand;

/// A multi-threaded tokio runtime for one command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// `-f` may name the manifest or its directory (as `spin up -f` accepts).
fn manifest_path(from: &std::path::Path) -> std::path::PathBuf {
    if from.is_dir() { from.join("spin.toml") } else { from.to_owned() }
}
