//! `harness marketplace`: serve a mock Huawei marketplace OpenAPI (order query, usage push, license activation and
//! heartbeat) for local runs (see [`crate::marketplace`]).

use crate::exit_codes;
use crate::marketplace::{
    DEFAULT_AK, DEFAULT_ISV_KEY, DEFAULT_SK, Endpoint, MarketplaceConfig, MockMarketplace, SEED_LICENSE,
    SEED_LICENSE_NOT_RECEIVED,
};
use clap::Args;
use std::net::SocketAddr;

/// Serve a mock Huawei marketplace OpenAPI: order query, usage push, license activate and heartbeat.
///
/// Give the components `http://<LISTEN>` as their OpenAPI endpoint and the same AK/SK (and ISV key, for usage
/// pushes). Every call is checked as the marketplace does (AK/SK signature, usage body signature and records) and
/// recorded. The nine documented MOCK order IDs are answered; licenses `MOCK-LICENSE-0001` (activatable) and
/// `MOCK-LICENSE-NOTRECEIVED` exist. For local use only: the control routes `POST /_mock/fail`, `POST
/// /_mock/clear`, `GET /_mock/received` and `GET /_mock/usage` need no authentication.
#[derive(Debug, Args)]
pub struct MarketplaceCommand {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:9500")]
    pub listen: SocketAddr,
    /// The access key (AK) calls must be signed under.
    #[arg(long, value_name = "AK", env = "HARNESS_MARKETPLACE_AK", hide_env_values = true, default_value = DEFAULT_AK)]
    pub ak: String,
    /// The secret key (SK) the AK/SK signature is checked with. Prefer the environment variable: a command line is
    /// visible to every local user.
    #[arg(long, value_name = "SK", env = "HARNESS_MARKETPLACE_SK", hide_env_values = true, default_value = DEFAULT_SK)]
    pub sk: String,
    /// The basic-interface key ("ISV对接密钥") usage pushes' `signature` header is checked with. Prefer the
    /// environment variable.
    #[arg(
        long,
        value_name = "KEY",
        env = "HARNESS_MARKETPLACE_ISV_KEY",
        hide_env_values = true,
        default_value = DEFAULT_ISV_KEY
    )]
    pub isv_key: String,
    /// Accept any `X-Sdk-Date` (still signed), not only within 15 minutes of this machine's clock: for components
    /// on a virtual clock.
    #[arg(long)]
    pub no_date_check: bool,
}

impl MarketplaceCommand {
    /// Binds, prints the base URL to stderr, serves until Ctrl-C / SIGTERM.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub fn execute(self) -> anyhow::Result<i32> {
        let mut config = MarketplaceConfig::new(self.ak, self.sk, self.isv_key);
        if self.no_date_check {
            config = config.without_date_check();
        }
        let ak = config.ak.clone();
        let rt = super::runtime()?;
        rt.block_on(async move {
            let mock = MockMarketplace::start(self.listen, config).await?;
            eprintln!("mock marketplace at {}", mock.base_url());
            eprintln!("  access key: {ak} (secret key and ISV key not shown)");
            for endpoint in Endpoint::ALL {
                eprintln!("  {:<9} {}{}", endpoint.name(), mock.base_url(), endpoint.path());
            }
            eprintln!("  licenses: {SEED_LICENSE}, {SEED_LICENSE_NOT_RECEIVED}");
            eprintln!("  X-Sdk-Date check: {}", if self.no_date_check { "off" } else { "±15 min" });
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
    use clap::{CommandFactory as _, Parser as _};

    #[test]
    fn marketplace_subcommand_parses() {
        let cli = Cli::try_parse_from(["harness", "marketplace"]).expect("parses");
        let Command::Marketplace(c) = cli.command else { panic!("not marketplace") };
        assert_eq!(c.listen.to_string(), "127.0.0.1:9500");
        assert!(!c.no_date_check);
        if std::env::var_os("HARNESS_MARKETPLACE_AK").is_none() {
            assert_eq!(c.ak, "mock-ak");
        }
        if std::env::var_os("HARNESS_MARKETPLACE_SK").is_none() {
            assert_eq!(c.sk, "mock-sk");
        }
        if std::env::var_os("HARNESS_MARKETPLACE_ISV_KEY").is_none() {
            assert_eq!(c.isv_key, "mock-isv-key");
        }
        let args = [
            "harness",
            "marketplace",
            "--listen",
            "127.0.0.1:0",
            "--ak",
            "a",
            "--sk",
            "s",
            "--isv-key",
            "k",
            "--no-date-check",
        ];
        let Command::Marketplace(c) = Cli::try_parse_from(args).expect("parses").command else {
            panic!("not marketplace")
        };
        assert_eq!((c.listen.port(), c.ak.as_str(), c.sk.as_str(), c.isv_key.as_str()), (0, "a", "s", "k"));
        assert!(c.no_date_check);
        assert!(Cli::try_parse_from(["harness", "marketplace", "--listen", "nowhere"]).is_err());
    }

    #[test]
    fn secrets_come_from_hidden_environment_variables() {
        let command = Cli::command();
        let sub = command.find_subcommand("marketplace").expect("marketplace");
        for (id, env) in [
            ("ak", "HARNESS_MARKETPLACE_AK"),
            ("sk", "HARNESS_MARKETPLACE_SK"),
            ("isv_key", "HARNESS_MARKETPLACE_ISV_KEY"),
        ] {
            let arg = sub.get_arguments().find(|a| a.get_id() == id).expect("the flag");
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(env));
            assert!(arg.is_hide_env_values_set(), "{id}");
        }
    }
}
