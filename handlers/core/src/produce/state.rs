//! Reading and writing instance records, applying lifecycle events, and delivering forwarded events.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::config::{ProduceConfig, fill_template};
use super::ctx::Ctx;
use crate::lifecycle::{self, Event, InstanceRecord, Outcome, Provisioning, StoredAppInfo};
use crate::ports::{Backend, Clock, Random};
use crate::ports::{Store, StoreError};
use crate::webhook::WebhookSigner;

/// Store namespace: debug traffic (`testFlag=1`) never touches production records.
pub fn namespace(test: bool) -> &'static str {
    if test { "test" } else { "live" }
}

/// Key of an instance record.
pub fn instance_key(test: bool, instance_id: &str) -> String {
    format!("{}/instance/{instance_id}", namespace(test))
}

/// Key of a seen nonce.
pub fn nonce_key(nonce: &str) -> String {
    format!("nonce/{nonce}")
}

/// Loads a record; an unreadable record is a store error (never silently replaced).
pub async fn load<S: Store>(store: &S, test: bool, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
    match store.get(&instance_key(test, instance_id)).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| StoreError(format!("record {} is not valid JSON", instance_key(test, instance_id)))),
    }
}

/// Writes a record.
pub async fn save<S: Store>(store: &S, rec: &InstanceRecord) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(rec).map_err(|e| StoreError(e.to_string()))?;
    store.set(&instance_key(rec.test, &rec.instance_id), &bytes).await
}

/// The provisioning mode the configuration selects.
pub fn mode(cfg: &ProduceConfig) -> Provisioning {
    if cfg.backend.is_some() { Provisioning::Forward } else { Provisioning::BuiltIn }
}

/// Reads, applies, delivers and writes back: the whole life of one lifecycle request.
///
/// Returns the outcome and the record as stored afterwards.
pub async fn apply_event<S: Store, B: Backend, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &ProduceConfig,
    test: bool,
    instance_id: &str,
    event: &Event,
) -> Result<(Outcome, Option<InstanceRecord>), StoreError> {
    let now = ctx.clock.now_ms();
    let current = load(ctx.store, test, instance_id).await?;
    let t = lifecycle::apply(current, instance_id, test, event, mode(cfg), now);
    let Some(mut rec) = t.record else { return Ok((t.outcome, None)) };
    if t.changed && mode(cfg) == Provisioning::BuiltIn && rec.app_info.is_none() && !rec.status.is_released() {
        rec.app_info = Some(built_in_app_info(cfg, &rec));
    }
    if t.changed {
        // Persist before talking to the backend: a crash or timeout afterwards loses nothing.
        save(ctx.store, &rec).await?;
    }
    if deliver(ctx, cfg, &mut rec).await {
        save(ctx.store, &rec).await?;
    }
    Ok((t.outcome, Some(rec)))
}

/// Sends queued events to the backend in order, stopping at the first failure. Returns whether `rec` changed.
///
/// A `2xx` answer removes the event from the outbox; for `instance.created` the answer may carry
/// `{"appInfo": {...}}`, which becomes the instance's login information (otherwise the URL templates are used).
pub async fn deliver<S: Store, B: Backend, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &ProduceConfig,
    rec: &mut InstanceRecord,
) -> bool {
    let Some(target) = &cfg.backend else { return false };
    if rec.outbox.is_empty() {
        return false;
    }
    let signer = WebhookSigner::new(&target.secret);
    let mut changed = false;
    while let Some(next) = rec.outbox.first().cloned() {
        let headers = signer.headers(&next.id, next.body.as_bytes(), ctx.clock.now_ms());
        match ctx.backend.post(&target.url, &headers, next.body.as_bytes()).await {
            Ok(reply) if (200..300).contains(&reply.status) => {
                rec.outbox.remove(0);
                changed = true;
                if next.kind == "instance.created" {
                    let info = backend_app_info(&reply.body).unwrap_or_else(|| built_in_app_info(cfg, rec));
                    lifecycle::provisioned(rec, info, ctx.clock.now_ms());
                }
            }
            _ => {
                if let Some(first) = rec.outbox.first_mut() {
                    first.attempts = first.attempts.saturating_add(1);
                }
                return true;
            }
        }
    }
    changed
}

/// Login information from a backend answer `{"appInfo": {"frontEndUrl": ..., ...}}`, if it has one.
fn backend_app_info(body: &[u8]) -> Option<StoredAppInfo> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Reply {
        app_info: Option<StoredAppInfo>,
    }
    let reply: Reply = serde_json::from_slice(body).ok()?;
    reply.app_info.filter(|a| !a.front_end_url.is_empty())
}

/// Login information for built-in provisioning: URLs from the templates, a deterministic per-instance password.
///
/// The password is derived (HMAC of the instance id under the signing key), so concurrent duplicate
/// `newInstance` calls compute identical records and no compare-and-swap is needed.
pub fn built_in_app_info(cfg: &ProduceConfig, rec: &InstanceRecord) -> StoredAppInfo {
    StoredAppInfo {
        front_end_url: fill_template(&cfg.front_end_url, &rec.instance_id, &rec.order_id),
        admin_url: cfg.admin_url.as_deref().map(|t| fill_template(t, &rec.instance_id, &rec.order_id)),
        user_name: Some(cfg.admin_user.clone()),
        password: Some(derived_password(cfg, &rec.instance_id)),
        memo: cfg.memo.clone(),
    }
}

fn derived_password(cfg: &ProduceConfig, instance_id: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(cfg.keys.signing_key().as_bytes()) else {
        return String::new();
    };
    mac.update(b"koogallery-edge/password/v1/");
    mac.update(instance_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    let body: String = digest.iter().take(14).map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    // Satisfy the usual complexity rules (upper, lower, digit, symbol) whatever the digest gave.
    format!("Kg{body}7!")
}
