//! Reading what the kit syncs stored: the tenant for an id or code, an application's OneAccess credentials, whether
//! a user may use an application. What the SSO component builds a login on.
//!
//! Two small indexes make a tenant findable without its instance (the unified portal sends only the tenant id or
//! code): `kit/{ns}/by-tenant/{tenantId}` lists the instances a tenant has records under, `kit/{ns}/by-code/{code}`
//! the tenant ids with that code. They are written after the record and only ever grow, so they are a superset;
//! every lookup reads the records themselves and trusts only them.

use serde::{Deserialize, Serialize};

use super::record::{Application, TenantRecord, code_index_key, tenant_index_key, tenant_key};
use crate::crypto::rsa_secret::{ClientSecretKey, RsaSecretError};
use crate::ports::atomic::{self, Change, Tokened};
use crate::ports::{Random, Store, StoreError};

/// A set of names kept in one key.
#[derive(Debug, Default, Serialize, Deserialize)]
struct NameSet {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
}

impl Tokened for NameSet {
    fn write_tokens(&self) -> &[String] {
        &self.writes
    }
    fn write_tokens_mut(&mut self) -> &mut Vec<String> {
        &mut self.writes
    }
}

async fn add<S: Store, R: Random>(store: &S, random: &R, now_ms: u64, key: &str, name: &str) -> Result<(), StoreError> {
    // A read first: the index is usually complete already, and a read costs less than a swap.
    if atomic::read::<_, NameSet>(store, key).await?.is_some_and(|s| s.names.iter().any(|n| n == name)) {
        return Ok(());
    }
    atomic::update(store, random, now_ms, key, |current: Option<NameSet>| {
        let mut set = current.unwrap_or_default();
        if set.names.iter().any(|n| n == name) {
            return Change::Keep(());
        }
        set.names.push(name.to_owned());
        set.names.sort();
        Change::Write(set, ())
    })
    .await
}

async fn names<S: Store>(store: &S, key: &str) -> Result<Vec<String>, StoreError> {
    Ok(atomic::read::<_, NameSet>(store, key).await?.map(|s| s.names).unwrap_or_default())
}

/// Lists a record's tenant in the indexes (nothing is written when it is listed already).
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn index<S: Store, R: Random>(
    store: &S,
    random: &R,
    now_ms: u64,
    rec: &TenantRecord,
) -> Result<(), StoreError> {
    let Some(tenant) = &rec.tenant else { return Ok(()) };
    add(store, random, now_ms, &tenant_index_key(rec.test, &rec.tenant_id), &rec.instance_id).await?;
    if !tenant.tenant_code.is_empty() {
        add(store, random, now_ms, &code_index_key(rec.test, &tenant.tenant_code), &rec.tenant_id).await?;
    }
    Ok(())
}

/// The records of the tenant whose id — or else code — is `id_or_code`, one per instance it is bound to, each
/// with the tenant present (a deleted tenant is not found). Sorted by instance id.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn tenant<S: Store>(store: &S, test: bool, id_or_code: &str) -> Result<Vec<TenantRecord>, StoreError> {
    let mut found = records_of(store, test, id_or_code).await?;
    if found.is_empty() {
        for tenant_id in names(store, &code_index_key(test, id_or_code)).await? {
            let records = records_of(store, test, &tenant_id).await?;
            found
                .extend(records.into_iter().filter(|r| r.tenant.as_ref().is_some_and(|t| t.tenant_code == id_or_code)));
        }
    }
    Ok(found)
}

/// Whether the namespace has ever had a record of the tenant whose id or code is `id_or_code` (deleted or not): the
/// indexes only grow.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn ever_known<S: Store>(store: &S, test: bool, id_or_code: &str) -> Result<bool, StoreError> {
    Ok(!names(store, &tenant_index_key(test, id_or_code)).await?.is_empty()
        || !names(store, &code_index_key(test, id_or_code)).await?.is_empty())
}

async fn records_of<S: Store>(store: &S, test: bool, tenant_id: &str) -> Result<Vec<TenantRecord>, StoreError> {
    let mut found = Vec::new();
    for instance_id in names(store, &tenant_index_key(test, tenant_id)).await? {
        if let Some(rec) = atomic::read::<_, TenantRecord>(store, &tenant_key(test, &instance_id, tenant_id)).await?
            && rec.tenant.is_some()
        {
            found.push(rec);
        }
    }
    Ok(found)
}

/// The tenant record (of those [`tenant`] finds) holding application `app_id`, and the application.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn application<S: Store>(
    store: &S,
    test: bool,
    id_or_code: &str,
    app_id: &str,
) -> Result<Option<(TenantRecord, Application)>, StoreError> {
    Ok(tenant(store, test, id_or_code)
        .await?
        .into_iter()
        .find_map(|rec| rec.apps.get(app_id).cloned().map(|app| (rec, app))))
}

/// Whether `user_name` may use application `app_id` of the tenant: see [`TenantRecord::is_authorised`].
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn is_authorised<S: Store>(
    store: &S,
    test: bool,
    id_or_code: &str,
    app_id: &str,
    user_name: &str,
) -> Result<bool, StoreError> {
    Ok(tenant(store, test, id_or_code).await?.iter().any(|rec| rec.is_authorised(app_id, user_name)))
}

/// The application's OneAccess client secret in clear, decrypted now with the merchant key (it is stored
/// encrypted).
///
/// # Errors
/// [`RsaSecretError`] when it does not decrypt.
pub fn client_secret(app: &Application, key: &ClientSecretKey) -> Result<String, RsaSecretError> {
    key.decrypt(&app.client_secret).map(|(secret, _)| secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::apply::apply;
    use crate::ports::{MemoryStore, OsRandom};
    use crate::wire::kit::{KitSync, parse_kit_request};

    fn store_sync(store: &MemoryStore, sync: KitSync, body: serde_json::Value) {
        let req = parse_kit_request(sync, body.to_string().as_bytes()).expect("valid");
        let (test, instance_id, tenant_id) = crate::kit::apply::target(&req);
        let key = tenant_key(test, instance_id, tenant_id);
        let rec = pollster::block_on(async {
            atomic::update(store, &OsRandom, 1, &key, |cur: Option<TenantRecord>| {
                match apply(cur.clone(), &req, None, false, 1) {
                    Some(next) => Change::Write(next.clone(), Some(next)),
                    None => Change::Keep(cur),
                }
            })
            .await
        })
        .expect("store");
        if let Some(rec) = rec {
            pollster::block_on(index(store, &OsRandom, 1, &rec)).expect("index");
        }
    }

    #[test]
    fn a_tenant_is_found_by_id_or_code_and_users_only_while_authorised() {
        let store = MemoryStore::new();
        let common = |extra: serde_json::Value| {
            let mut v =
                serde_json::json!({"instanceId":"i","tenantId":"t-9","testFlag":0,"timeStamp":"20220413093539534"});
            if let (Some(m), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
                m.extend(e);
            }
            v
        };
        let user = |flag: i64| {
            common(serde_json::json!({"appId":"a","currentSyncTime":"x","flag":flag,
                "userList":[{"userName":"u","name":"U","orgCode":"o","role":"admin","enable":"true"}]}))
        };
        // A user synced before the tenant and the application is not yet authorised.
        store_sync(&store, KitSync::AuthSync, user(1));
        assert!(!pollster::block_on(is_authorised(&store, false, "t-9", "a", "u")).expect("store"));
        store_sync(
            &store,
            KitSync::TenantSync,
            common(
                serde_json::json!({"orderId":"o","tenantCode":"acme","name":"A","domainName":"acme.example.com/","flag":1}),
            ),
        );
        store_sync(
            &store,
            KitSync::ApplicationSync,
            common(serde_json::json!({"appId":"a","clientId":"c","clientSecret":"ct","flag":1})),
        );
        for id in ["t-9", "acme"] {
            assert!(pollster::block_on(is_authorised(&store, false, id, "a", "u")).expect("store"), "{id}");
        }
        let (rec, app) = pollster::block_on(application(&store, false, "acme", "a")).expect("store").expect("found");
        assert_eq!(
            (rec.tenant.map(|t| t.domain_url), app.client_id.as_str()),
            (Some("https://acme.example.com".into()), "c")
        );
        assert!(pollster::block_on(tenant(&store, true, "acme")).expect("store").is_empty(), "debug traffic is apart");
        store_sync(&store, KitSync::AuthSync, user(3));
        assert!(!pollster::block_on(is_authorised(&store, false, "acme", "a", "u")).expect("store"), "revoked");
        store_sync(&store, KitSync::AuthSync, user(1));
        assert!(pollster::block_on(is_authorised(&store, false, "acme", "a", "u")).expect("store"));
        store_sync(
            &store,
            KitSync::TenantSync,
            common(serde_json::json!({"orderId":"o","tenantCode":"acme","name":"A","domainName":"x","flag":0})),
        );
        assert!(
            pollster::block_on(tenant(&store, false, "acme")).expect("store").is_empty(),
            "a deleted tenant is not found"
        );
    }
}
