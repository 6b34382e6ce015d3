//! Applying a marketplace event to an instance record.

use super::config::{ProduceConfig, fill_template};
use super::ctx::{Ctx, Deadline};
use super::outbox::{self, DeliveryReport};
use super::state::{instance_key, mode};
use crate::lifecycle::{self, Event, InstanceRecord, Outcome, Provisioning, StoredAppInfo};
use crate::ports::atomic::{self, Change};
use crate::ports::{Backend, Clock, Random, Store, StoreError};

/// Applies an event atomically, then delivers what the record owes the backend: the whole life of one lifecycle
/// request.
///
/// The event is applied inside a compare-and-swap update, so a concurrent request's change to the same instance is
/// never overwritten, and the event for the backend is queued in that same write, so no change exists without its
/// event. The backend is called only after the record is stored ([`outbox::deliver_now`]).
///
/// Returns the outcome and the record as stored afterwards.
pub async fn apply_event<S: Store, B: Backend, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &ProduceConfig,
    deadline: &Deadline,
    report: &mut DeliveryReport,
    test: bool,
    instance_id: &str,
    event: &Event,
) -> Result<(Outcome, Option<InstanceRecord>), StoreError> {
    let now = ctx.clock.now_ms();
    let mode = mode(cfg);
    // Drawn before the update so that deciding stays free of effects; used only if this request creates the record.
    let built_in = (mode == Provisioning::BuiltIn).then(|| built_in_app_info(cfg, instance_id, event, ctx.random));
    let key = instance_key(test, instance_id);
    let (outcome, rec) = atomic::update(ctx.store, ctx.random, &key, |current: Option<InstanceRecord>| {
        let t = lifecycle::apply(current, instance_id, test, event, mode, now);
        let Some(mut rec) = t.record else { return Change::Keep((t.outcome, None)) };
        if !t.changed {
            return Change::Keep((t.outcome, Some(rec)));
        }
        if rec.app_info.is_none() && !rec.status.is_released() {
            rec.app_info.clone_from(&built_in);
        }
        Change::Write(rec.clone(), (t.outcome, Some(rec)))
    })
    .await?;
    match rec {
        Some(rec) => Ok((outcome, Some(outbox::deliver_now(ctx, cfg, deadline, report, rec).await?))),
        None => Ok((outcome, None)),
    }
}

/// Login information for built-in provisioning: URLs from the templates and a random password.
///
/// The password is drawn once, when the record is created; concurrent duplicate `newInstance` calls agree on the
/// one that the first stored record carries, because records are written by compare-and-swap.
fn built_in_app_info<R: Random>(cfg: &ProduceConfig, instance_id: &str, event: &Event, random: &R) -> StoredAppInfo {
    let order_id = match event {
        Event::Create { order_id, .. } => order_id.as_str(),
        _ => "",
    };
    StoredAppInfo {
        front_end_url: fill_template(&cfg.front_end_url, instance_id, order_id),
        admin_url: cfg.admin_url.as_deref().map(|t| fill_template(t, instance_id, order_id)),
        user_name: Some(cfg.admin_user.clone()),
        password: Some(random_password(random)),
        memo: cfg.memo.clone(),
    }
}

/// A 20-character password from an unambiguous alphabet, with an upper-case letter, a lower-case letter, a digit
/// and a symbol so that the usual complexity rules accept it.
fn random_password<R: Random>(random: &R) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    // 256 is not a multiple of 57; rejecting bytes >= 228 keeps every letter equally likely.
    let mut body = String::new();
    let mut bytes = [0u8; 64];
    while body.len() < 16 {
        random.fill(&mut bytes);
        for b in bytes.iter().filter(|b| usize::from(**b) < ALPHABET.len() * 4) {
            if body.len() < 16 {
                body.push(ALPHABET[usize::from(*b) % ALPHABET.len()] as char);
            }
        }
    }
    format!("Kg{body}7!")
}
