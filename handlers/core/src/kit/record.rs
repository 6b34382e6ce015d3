//! What the kit syncs store: one [`TenantRecord`] per (namespace, instance, tenant), holding the tenant, its
//! applications, their authorised users and the department tree.
//!
//! One record per tenant keeps every sync a single compare-and-swap write: a full organisation sync replaces the
//! tree in one write (no reader sees half a tree), the tree's no-dangling-parent rule is checked against the whole
//! tree, and the events a change owes the seller's backend are queued in the same write as the change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lifecycle::PendingDelivery;
use crate::ports::atomic::Tokened;
use crate::produce::outbox::Outboxed;
use crate::wire::kit::Role;

/// Schema version of [`TenantRecord`].
pub const RECORD_VERSION: u32 = 1;

/// Key prefix of every kit record and index.
pub const PREFIX: &str = "kit/";

/// Store namespace: debug traffic (`testFlag=1`) never touches production records.
fn namespace(test: bool) -> &'static str {
    if test { "test" } else { "live" }
}

/// A key segment that cannot be confused with a separator: `%` → `%25`, `/` → `%2F`.
fn segment(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

/// Key of the record of `tenant_id` under `instance_id` (which may be empty: seller credential setup).
pub fn tenant_key(test: bool, instance_id: &str, tenant_id: &str) -> String {
    format!("{PREFIX}{}/tenant/{}/{}", namespace(test), segment(instance_id), segment(tenant_id))
}

/// Key of the index from a tenant id to the instances it has records under.
pub fn tenant_index_key(test: bool, tenant_id: &str) -> String {
    format!("{PREFIX}{}/by-tenant/{}", namespace(test), segment(tenant_id))
}

/// Key of the index from a tenant code to the tenant ids carrying it.
pub fn code_index_key(test: bool, tenant_code: &str) -> String {
    format!("{PREFIX}{}/by-code/{}", namespace(test), segment(tenant_code))
}

/// The tenant as `tenantSync` described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// Tenant code (the unified portal may pass it instead of the id).
    pub tenant_code: String,
    /// Tenant name.
    pub name: String,
    /// The OneAccess domain as sent.
    pub domain_name: String,
    /// The OneAccess base URL: `domain_name` with `https://` added when it has no scheme, no trailing `/` (§6).
    pub domain_url: String,
    /// The order of the binding (empty during credential setup).
    pub order_id: String,
}

/// An application (`applicationSync`): the OneAccess client of the tenant for this product.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// OneAccess client id.
    pub client_id: String,
    /// The client secret as received: RSA-OAEP ciphertext under the seller's key, decrypted only when used.
    pub client_secret: String,
    /// [`secret_digest`] of the decrypted secret: RSA-OAEP ciphertext differs at every encryption, so a repeated
    /// sync is recognised by this, not by the ciphertext. Absent in records from before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_digest: Option<String>,
}

impl Application {
    /// Whether `other` is the same client: same id, and the same secret (by digest when both have one).
    pub fn same_client(&self, other: &Self) -> bool {
        let same_secret = self.client_secret == other.client_secret
            || matches!((&self.secret_digest, &other.secret_digest), (Some(a), Some(b)) if a == b);
        self.client_id == other.client_id && same_secret
    }
}

/// A one-way digest of a decrypted client secret and the key it was encrypted for (SHA-256 over a fixed label, a NUL,
/// the key's [`crate::crypto::rsa_secret::ClientSecretKey::fingerprint`] and the secret, hex), to recognise a
/// repeated secret without keeping it in clear; a secret sent again under a rotated key is a change (its stored
/// ciphertext must decrypt under the current key). Client secrets are long random strings, so the digest does not
/// reveal them.
pub fn secret_digest(key_fingerprint: &[u8; 32], plaintext: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"koogallery-edge kit client secret\0")
        .chain_update(key_fingerprint)
        .chain_update(plaintext)
        .finalize();
    hex::encode(digest)
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// A user of an application (`authSync`). `Debug` hides contact data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorisedUser {
    /// Login account.
    pub user_name: String,
    /// Display name.
    pub name: String,
    /// Department code.
    pub org_code: String,
    /// `user` or `admin`.
    pub role: Role,
    /// Whether the account is enabled.
    pub enable: bool,
    /// Whether the user is authorised for the application (`false` after a revoke, flag 3).
    pub authorised: bool,
    /// Position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// Employee number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_code: Option<String>,
    /// Employee type as sent (1 regular, 2 intern, 3 dispatched, 4 outsourced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_type: Option<i64>,
    /// Mobile number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Work place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_place: Option<String>,
    /// Entry date as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_date: Option<String>,
}

impl std::fmt::Debug for AuthorisedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorisedUser")
            .field("user_name", &self.user_name)
            .field("role", &self.role)
            .field("enable", &self.enable)
            .field("authorised", &self.authorised)
            .finish_non_exhaustive()
    }
}

/// A department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    /// Department name.
    pub org_name: String,
    /// The parent as the tree holds it: `None` (top level) or a department of the tree; never dangling.
    pub parent_code: Option<String>,
    /// The parent as the marketplace sent it, kept so that a department whose parent has not arrived (or was
    /// deleted) is attached again when it does.
    pub declared_parent: Option<String>,
}

/// Everything the kit syncs stored about one tenant of one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRecord {
    /// Schema version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The instance (empty for seller credential setup).
    pub instance_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// Debug traffic.
    pub test: bool,
    /// The tenant's details; `None` until a `tenantSync` add or modify (another sync may come first) and after a
    /// delete.
    pub tenant: Option<Tenant>,
    /// Applications by `appId`.
    #[serde(default)]
    pub apps: BTreeMap<String, Application>,
    /// Users by `appId`, then `userName`.
    #[serde(default)]
    pub users: BTreeMap<String, BTreeMap<String, AuthorisedUser>>,
    /// The department tree by `orgCode`.
    #[serde(default)]
    pub orgs: BTreeMap<String, Org>,
    /// Number of changes applied; part of event ids, so every change's event has its own id.
    #[serde(default)]
    pub seq: u64,
    /// Events not yet accepted by the backend, oldest first.
    #[serde(default)]
    pub outbox: Vec<PendingDelivery>,
    /// Events given up on after too many attempts.
    #[serde(default)]
    pub dead_letters: Vec<PendingDelivery>,
    /// Recent write tokens (see `ports::atomic`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<String>,
}

impl TenantRecord {
    /// An empty record for a tenant no sync has described yet.
    pub fn new(test: bool, instance_id: &str, tenant_id: &str) -> Self {
        Self {
            v: RECORD_VERSION,
            instance_id: instance_id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            test,
            tenant: None,
            apps: BTreeMap::new(),
            users: BTreeMap::new(),
            orgs: BTreeMap::new(),
            seq: 0,
            outbox: Vec::new(),
            dead_letters: Vec::new(),
            writes: Vec::new(),
        }
    }

    /// Whether `user_name` may use application `app_id`: the tenant exists, the application exists, and the user
    /// is authorised (not revoked) and enabled.
    pub fn is_authorised(&self, app_id: &str, user_name: &str) -> bool {
        self.tenant.is_some()
            && self.apps.contains_key(app_id)
            && self.users.get(app_id).and_then(|users| users.get(user_name)).is_some_and(|u| u.authorised && u.enable)
    }
}

impl Tokened for TenantRecord {
    fn write_tokens(&self) -> &[String] {
        &self.writes
    }
    fn write_tokens_mut(&mut self) -> &mut Vec<String> {
        &mut self.writes
    }
}

impl Outboxed for TenantRecord {
    type Accepted = std::convert::Infallible;
    fn store_key(&self) -> String {
        tenant_key(self.test, &self.instance_id, &self.tenant_id)
    }
    fn index_entry(&self) -> String {
        self.store_key()
    }
    fn label(&self) -> (bool, String, Option<String>) {
        (self.test, self.instance_id.clone(), Some(self.tenant_id.clone()))
    }
    fn outbox(&self) -> &Vec<PendingDelivery> {
        &self.outbox
    }
    fn outbox_mut(&mut self) -> &mut Vec<PendingDelivery> {
        &mut self.outbox
    }
    fn dead_letters(&self) -> &Vec<PendingDelivery> {
        &self.dead_letters
    }
    fn dead_letters_mut(&mut self) -> &mut Vec<PendingDelivery> {
        &mut self.dead_letters
    }
    fn accepted(&mut self, accepted: std::convert::Infallible, _now_ms: u64) {
        match accepted {}
    }
}

/// The OneAccess base URL for a `domainName` (§6): used as it is when it has an `http(s)://` scheme, else with
/// `https://` in front; without a trailing `/`.
pub fn domain_url(domain_name: &str) -> String {
    let d = domain_name.trim();
    let lower = d.to_ascii_lowercase();
    let url = if lower.starts_with("https://") || lower.starts_with("http://") {
        d.to_owned()
    } else {
        format!("https://{d}")
    };
    url.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_segments_apart() {
        assert_eq!(tenant_key(false, "i-1", "t-1"), "kit/live/tenant/i-1/t-1");
        assert_eq!(tenant_key(true, "", "t"), "kit/test/tenant//t");
        assert_ne!(tenant_key(false, "a/b", "c"), tenant_key(false, "a", "b/c"));
        assert_eq!(tenant_key(false, "a%2Fb", "c"), "kit/live/tenant/a%252Fb/c");
    }

    #[test]
    fn domain_names_become_base_urls() {
        assert_eq!(domain_url("https://example.tenantaccount.com/"), "https://example.tenantaccount.com");
        assert_eq!(domain_url("example.tenantaccount.com"), "https://example.tenantaccount.com");
        assert_eq!(domain_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(domain_url(" HTTPS://Example.com// "), "HTTPS://Example.com");
    }
}
