//! Applying a marketplace event to an instance record.

use super::config::{ProduceConfig, fill_template};
use super::ctx::{Ctx, Deadline};
use super::outbox::{self, DeliveryReport};
use super::state::{instance_key, mode};
use crate::lifecycle::{self, Event, InstanceRecord, Outcome, Provisioning, StoredAppInfo};
use crate::ports::atomic::{self, Change};
use crate::ports::{Backend, Clock, Random, Store, StoreError};
use sha2::Digest as _;

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
    let apply_at = |test: bool| {
        let key = instance_key(test, instance_id);
        let built_in = &built_in;
        async move {
            atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), &key, |current: Option<InstanceRecord>| {
                let t = lifecycle::apply(current, instance_id, test, event, mode, now);
                let Some(mut rec) = t.record else { return Change::Keep((t.outcome, None)) };
                if !t.changed {
                    return Change::Keep((t.outcome, Some(rec)));
                }
                if rec.app_info.is_none() && !rec.status.is_released() {
                    rec.app_info.clone_from(built_in);
                }
                Change::Write(rec.clone(), (t.outcome, Some(rec)))
            })
            .await
        }
    };
    let (mut outcome, mut rec) = apply_at(test).await?;
    // A production call for an instance that exists only as a debug one goes to it (the marketplace does not always
    // repeat testFlag). Never the reverse: a debug call (the daily dial test) must not change a production record,
    // so it is acknowledged without being applied.
    if rec.is_none() && !matches!(event, Event::Create { .. }) {
        if !test {
            if ctx.store.get(&instance_key(true, instance_id)).await?.is_some() {
                (outcome, rec) = apply_at(true).await?;
            }
        } else if ctx.store.get(&instance_key(false, instance_id)).await?.is_some() {
            return Ok((Outcome::Done, None));
        }
    }
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

/// What was recorded about an `orderNotify` (protocol §2.10), under `{ns}/order/{orderId}/{orderLineId}`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderNote {
    /// When the first notification arrived (ms epoch); also the forwarded event's timestamp, so that every attempt
    /// sends the same body.
    notified_ms: u64,
    /// Whether the seller's backend accepted it (forward mode).
    #[serde(default)]
    forwarded: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
}

impl atomic::Tokened for OrderNote {
    fn write_tokens(&self) -> &[String] {
        &self.writes
    }
    fn write_tokens_mut(&mut self) -> &mut Vec<String> {
        &mut self.writes
    }
}

/// Records an `orderNotify` and, in forward mode, hands it to the backend as `order.notified` before the
/// marketplace is answered: `Ok(Err(reason))` when the backend did not take it, so the marketplace is answered
/// `000005` and retries (for 3 hours; then 生产接口消息 restarts it). Once taken, repeats are answered at once.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn notify_order<S: Store, B: Backend, C: Clock, R: Random>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &ProduceConfig,
    deadline: &Deadline,
    test: bool,
    order_id: &str,
    order_line_id: &str,
) -> Result<Result<(), String>, StoreError> {
    let key = format!("{}/order/{order_id}/{order_line_id}", super::state::namespace(test));
    let now = ctx.clock.now_ms();
    let note =
        atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), &key, |current: Option<OrderNote>| match current {
            Some(note) => Change::Keep(note),
            None => Change::Write(
                OrderNote { notified_ms: now, forwarded: false, writes: Vec::new() },
                OrderNote { notified_ms: now, forwarded: false, writes: Vec::new() },
            ),
        })
        .await?;
    if cfg.backend.is_none() || note.forwarded {
        return Ok(Ok(()));
    }
    // The instance the line was keyed to (recorded when it is not the line's own, an on-demand one), whose event id
    // then names the line too: several lines may share that instance, and each notification is an event of its own.
    let own = crate::identity::instance_id_for_order_line(order_id, order_line_id);
    let (instance_id, identity) = match super::state::line_instance(ctx.store, test, order_id, order_line_id).await? {
        Some(id) if id != own => (id, format!("order-notify/{}:{order_id}/{order_line_id}", order_id.len())),
        _ => (own, "order-notify".to_owned()),
    };
    let id = lifecycle::event_id(&instance_id, &identity);
    let body = serde_json::json!({
        "id": id,
        "type": "order.notified",
        "timestamp": note.notified_ms,
        "data": { "orderId": order_id, "orderLineId": order_line_id, "testFlag": test, "instanceId": instance_id },
    })
    .to_string();
    match outbox::ask(ctx, cfg, deadline, &id, &body).await {
        Ok(reply) if (200..300).contains(&reply.status) => {
            atomic::update(ctx.store, ctx.random, ctx.clock.now_ms(), &key, |current: Option<OrderNote>| {
                let mut note = current.unwrap_or(OrderNote { notified_ms: now, forwarded: false, writes: Vec::new() });
                if note.forwarded {
                    return Change::Keep(());
                }
                note.forwarded = true;
                Change::Write(note, ())
            })
            .await?;
            Ok(Ok(()))
        }
        Ok(reply) => Ok(Err(format!("backend answered HTTP {} to order.notified", reply.status))),
        Err(reason) => Ok(Err(reason)),
    }
}

/// Asks the backend whether an instance may change to `product_info` (`changeInstanceCheck`, protocol §2.9), as
/// `instance.change_check`: a `2xx` allows it; a refusal may name a result code in its body
/// (`{"resultCode":"000100","resultMsg":"…"}`), else `000005`; no answer in time is `000005` too.
///
/// Returns the result code and, for a refusal, the reason to log.
pub async fn check_change<S, B: Backend, C: Clock, R>(
    ctx: &Ctx<'_, S, B, C, R>,
    cfg: &ProduceConfig,
    deadline: &Deadline,
    rec: &InstanceRecord,
    product_info: serde_json::Value,
) -> (crate::wire::result_code::ResultCode, Option<String>) {
    use crate::wire::result_code::ResultCode;
    let now = ctx.clock.now_ms();
    let digest = sha2::Sha256::digest(product_info.to_string().as_bytes());
    let id = lifecycle::event_id(&rec.instance_id, &format!("change-check/{}/{now}", hex::encode(&digest[..8])));
    let body = serde_json::json!({
        "id": id,
        "type": "instance.change_check",
        "timestamp": now,
        "data": { "instanceId": rec.instance_id, "testFlag": rec.test, "productInfo": product_info },
    })
    .to_string();
    match outbox::ask(ctx, cfg, deadline, &id, &body).await {
        Ok(reply) if (200..300).contains(&reply.status) => (ResultCode::Success, None),
        Ok(reply) => {
            let named = serde_json::from_slice::<serde_json::Value>(&reply.body)
                .ok()
                .and_then(|v| v.get("resultCode")?.as_str()?.parse::<ResultCode>().ok())
                .filter(|c| *c != ResultCode::Success);
            let reason = format!("backend refused the change (HTTP {})", reply.status);
            (named.unwrap_or(ResultCode::InternalError), Some(reason))
        }
        Err(reason) => (ResultCode::InternalError, Some(reason)),
    }
}
