//! `harness oneaccess`: serve a mock OneAccess for local SSO runs (see [`crate::oneaccess`]).

use crate::exit_codes;
use crate::oneaccess::{DEFAULT_ACCESS_TOKEN_TTL_S, MockClient, MockConfig, MockOneAccess, MockUser};
use clap::Args;
use std::net::SocketAddr;

/// Serve a mock OneAccess (authorize, token, userinfo, logout) for local SSO runs.
///
/// Give the SSO component `http://<LISTEN>` as the tenant's `domainName`, and the `--client` pair as the
/// application's `clientId` / `clientSecret`. The first `--user` is logged in: the authorize endpoint sends the browser
/// straight back with a code for them.
#[derive(Debug, Args)]
pub struct OneAccessCommand {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:9300")]
    pub listen: SocketAddr,
    /// A registered client, `CLIENT_ID:SECRET` (repeatable; the secret may contain `:`).
    #[arg(long = "client", value_name = "CLIENT_ID:SECRET", required = true, value_parser = parse_client)]
    pub clients: Vec<MockClient>,
    /// A user, `USERNAME[:Display Name[:role]]` (repeatable; the first is logged in; default: `zhangsan`).
    #[arg(long = "user", value_name = "USERNAME[:NAME[:ROLE]]", value_parser = parse_user)]
    pub users: Vec<MockUser>,
    /// `expires_in` of the access tokens, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_ACCESS_TOKEN_TTL_S)]
    pub access_token_ttl: u64,
}

impl OneAccessCommand {
    /// Binds, prints the base URL and the client ids to stderr, serves until Ctrl-C / SIGTERM.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub fn execute(self) -> anyhow::Result<i32> {
        let users = if self.users.is_empty() { vec![MockUser::new("zhangsan", "张三")] } else { self.users };
        let config = MockConfig { clients: self.clients, users };
        let rt = super::runtime()?;
        rt.block_on(async move {
            let clients: Vec<String> = config.clients.iter().map(|c| c.client_id.clone()).collect();
            let login_user = config.users.first().map(|u| u.user_name.clone()).unwrap_or_default();
            let mock = MockOneAccess::start(self.listen, config).await?;
            mock.set_access_token_ttl_s(self.access_token_ttl);
            eprintln!("mock OneAccess at {}", mock.base_url());
            for client in &clients {
                eprintln!("  client: {client}");
            }
            eprintln!("  logged in: {login_user}");
            crate::server::shutdown_signal().await;
            drop(mock);
            tracing::info!("stopped");
            anyhow::Ok(exit_codes::SUCCESS)
        })
    }
}

/// `CLIENT_ID:SECRET`, split at the first `:`; neither part empty.
fn parse_client(text: &str) -> Result<MockClient, String> {
    match text.split_once(':') {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => Ok(MockClient::new(id, secret)),
        _ => Err("expected CLIENT_ID:SECRET".to_owned()),
    }
}

/// `USERNAME[:Display Name[:role]]`; the display name defaults to the user name, the role to `user`.
fn parse_user(text: &str) -> Result<MockUser, String> {
    let mut parts = text.splitn(3, ':');
    let user_name = parts.next().unwrap_or_default();
    if user_name.is_empty() {
        return Err("expected USERNAME[:Display Name[:role]]".to_owned());
    }
    let name = parts.next().filter(|n| !n.is_empty()).unwrap_or(user_name);
    let user = MockUser::new(user_name, name);
    Ok(match parts.next().filter(|r| !r.is_empty()) {
        Some(role) => user.with_role(role),
        None => user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oneaccess_client_and_user_flags() {
        let client = parse_client("app-1:se:cret").expect("parses");
        assert_eq!((client.client_id.as_str(), client.client_secret.as_str()), ("app-1", "se:cret"));
        assert!(parse_client("app-1").is_err());
        assert!(parse_client(":secret").is_err());
        assert!(parse_client("app-1:").is_err());

        let user = parse_user("lisi").expect("parses");
        assert_eq!((user.user_name.as_str(), user.name.as_str(), user.role.as_str()), ("lisi", "lisi", "user"));
        let user = parse_user("lisi:Li Si:admin").expect("parses");
        assert_eq!((user.user_name.as_str(), user.name.as_str(), user.role.as_str()), ("lisi", "Li Si", "admin"));
        assert!(parse_user("").is_err());
        assert!(parse_user(":Li Si").is_err());
    }
}
