//! The calls the SSO component makes to a tenant's OneAccess (protocol §6): the authorize URL, the token
//! endpoint (code and refresh grants, form-encoded) and userinfo.

use serde::Deserialize;

use crate::ports::{Backend, OutboundError};

/// The token endpoint's answer.
#[derive(Deserialize)]
pub struct Tokens {
    /// Bearer token for userinfo.
    pub access_token: String,
    /// Lifetime of the access token in seconds (OneAccess: 7200).
    #[serde(default = "default_expires_in")]
    pub expires_in: u64,
    /// The refresh token (30 days by default), if given.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

fn default_expires_in() -> u64 {
    7200
}

/// The userinfo fields the component uses (OneAccess sends more: `email`, `mobile`, `organizationCode`, …).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// The login account: what `authSync` names the user by.
    pub user_name: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// Why a OneAccess call did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OneAccessError {
    /// `400 invalid_grant` (an invalid, expired or reused code; an invalid refresh token) or another 400.
    #[error("OneAccess refused the grant ({0})")]
    InvalidGrant(String),
    /// `401` from the token endpoint: the application's client id or secret is not accepted.
    #[error("OneAccess refused the application's client credentials")]
    InvalidClient,
    /// `401` from userinfo: the access token is not accepted.
    #[error("OneAccess did not accept the access token")]
    Unauthorized,
    /// Any other status, or a body that is not the documented JSON.
    #[error("OneAccess answered unexpectedly (HTTP {0})")]
    Unexpected(u16),
    /// Not reached within the deadline.
    #[error("OneAccess did not answer in time")]
    Timeout,
    /// Not reachable (connection refused, denied by the allow-list, …).
    #[error("OneAccess could not be reached: {0}")]
    Unreachable(String),
}

impl From<OutboundError> for OneAccessError {
    fn from(e: OutboundError) -> Self {
        match e {
            OutboundError::Timeout => Self::Timeout,
            OutboundError::Denied => {
                Self::Unreachable("the host refused the call (add the domain to oneaccess_hosts)".into())
            }
            other => Self::Unreachable(other.to_string()),
        }
    }
}

/// The authorize URL that starts a login at the tenant's OneAccess (§6 step 2).
pub fn authorize_url(domain_url: &str, client_id: &str, redirect_uri: &str, state: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "get_user_info")
        .append_pair("state", state)
        .finish();
    format!("{domain_url}/api/v1/oauth2/authorize?{query}")
}

/// OneAccess's logout URL, which sends the browser on to `redirect_url` (§6 step 6).
pub fn logout_url(domain_url: &str, redirect_url: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new()).append_pair("redirect_url", redirect_url).finish();
    format!("{domain_url}/api/v1/logout?{query}")
}

/// One tenant's OneAccess, called through `backend` with at most `timeout_ms` per call.
pub struct OneAccess<'a, B> {
    /// Outbound HTTP.
    pub backend: &'a B,
    /// `https://{domain}` (see [`crate::kit::record::domain_url`]).
    pub domain_url: &'a str,
    /// The application's client id.
    pub client_id: &'a str,
    /// The application's client secret, decrypted.
    pub client_secret: &'a str,
}

impl<B: Backend> OneAccess<'_, B> {
    /// Exchanges an authorization code (§6 step 3); `redirect_uri` is sent when the code was issued for it.
    ///
    /// # Errors
    /// [`OneAccessError`].
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: Option<&str>,
        timeout_ms: u64,
    ) -> Result<Tokens, OneAccessError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("client_id", self.client_id)
            .append_pair("client_secret", self.client_secret)
            .append_pair("code", code)
            .append_pair("grant_type", "authorization_code");
        if let Some(uri) = redirect_uri {
            form.append_pair("redirect_uri", uri);
        }
        self.token(form.finish(), timeout_ms).await
    }

    /// Gets a new access token with the refresh token (§6 step 4).
    ///
    /// # Errors
    /// [`OneAccessError`]; `InvalidGrant` when the refresh token is no longer valid.
    pub async fn refresh(&self, refresh_token: &str, timeout_ms: u64) -> Result<Tokens, OneAccessError> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", self.client_id)
            .append_pair("client_secret", self.client_secret)
            .append_pair("refresh_token", refresh_token)
            .append_pair("grant_type", "refresh_token")
            .finish();
        self.token(form, timeout_ms).await
    }

    async fn token(&self, form: String, timeout_ms: u64) -> Result<Tokens, OneAccessError> {
        let url = format!("{}/api/v1/oauth2/token", self.domain_url);
        let headers = [
            ("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
            ("accept".to_owned(), "application/json".to_owned()),
        ];
        let reply = self.backend.post(&url, &headers, form.as_bytes(), timeout_ms).await?;
        match reply.status {
            200 => serde_json::from_slice::<Tokens>(&reply.body)
                .ok()
                .filter(|t| !t.access_token.is_empty())
                .ok_or(OneAccessError::Unexpected(200)),
            400 => Err(OneAccessError::InvalidGrant(error_name(&reply.body))),
            401 => Err(OneAccessError::InvalidClient),
            other => Err(OneAccessError::Unexpected(other)),
        }
    }

    /// Reads the user the access token belongs to (§6 step 5).
    ///
    /// # Errors
    /// [`OneAccessError`]; `Unauthorized` on 401.
    pub async fn userinfo(&self, access_token: &str, timeout_ms: u64) -> Result<UserInfo, OneAccessError> {
        let url = format!("{}/api/v1/oauth2/userinfo", self.domain_url);
        let headers = [
            ("authorization".to_owned(), format!("Bearer {access_token}")),
            ("accept".to_owned(), "application/json".to_owned()),
        ];
        let reply = self.backend.get(&url, &headers, timeout_ms).await?;
        match reply.status {
            200 => serde_json::from_slice::<UserInfo>(&reply.body)
                .ok()
                .filter(|u| !u.user_name.is_empty())
                .ok_or(OneAccessError::Unexpected(200)),
            401 => Err(OneAccessError::Unauthorized),
            other => Err(OneAccessError::Unexpected(other)),
        }
    }
}

/// The `error` of an OAuth error body (`invalid_grant`, …), kept to a short ASCII word for messages.
fn error_name(body: &[u8]) -> String {
    let name = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "no error code".into());
    name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect()
}
