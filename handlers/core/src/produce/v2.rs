//! V2 activities: POST JSON, query-string signature (`signature`, `timestamp`, `nonce`).

use super::config::ProduceConfig;
use super::ctx::Ctx;
use super::order_query::{self, Keyed, NotNow};
use super::replay;
use super::reply::{DispatchResult, Reply, Run, lifecycle_reply};
use super::state;
use super::{events, outbox};
use crate::crypto::aes_cred::{CredentialCipher, iv_from_random};
use crate::http::{Inbound, single_param};
use crate::lifecycle::{Event, InstanceRecord, Status, StoredAppInfo};
use crate::ports::{Backend, Clock, Random};
use crate::ports::{Store, StoreError};
use crate::signing::error::AuthError;
use crate::signing::v2::{V2Auth, V2Verifier};
use crate::wire::json_out::to_ascii_json;
use crate::wire::result_code::ResultCode;
use crate::wire::v2::{self as msg, V2Request, parse_v2_request};

const IFACE: &str = "v2";

pub(super) async fn handle<S: Store, B: Backend, C: Clock, R: Random>(
    req: &Inbound,
    cfg: &ProduceConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    run: &mut Run,
) -> Reply {
    run.key_index = match verify(req, cfg, ctx).await {
        Ok(key_index) => key_index,
        Err(refusal) => return refusal,
    };
    let request = match parse_v2_request(&req.body) {
        Ok(r) => r,
        Err(e) => {
            return Reply::error(IFACE, activity_of(&req.body).as_deref(), ResultCode::InvalidParameter, e.to_string());
        }
    };
    match dispatch(request, cfg, ctx, run).await {
        Ok(reply) => reply,
        Err((activity, e)) => internal(Some(activity), &e),
    }
}

/// Verifies a V2 request before its body is read: the query signature under `access_keys` within the timestamp
/// window, then (with `nonce_cache`) that its nonce is new. Returns the position of the key that verified it, or the
/// answer refusing it (`000001`, `000002`, or `000005` when the store failed). Shared with the license callbacks,
/// which use the same transport.
pub(crate) async fn verify<S: Store, B, C: Clock, R: Random>(
    req: &Inbound,
    cfg: &ProduceConfig,
    ctx: &Ctx<'_, S, B, C, R>,
) -> Result<usize, Reply> {
    let params = req.query_params();
    let auth = read_auth(&params).map_err(|field| {
        Reply::error(IFACE, None, ResultCode::InvalidParameter, format!("{field} appears more than once"))
    })?;
    let verifier = V2Verifier::new(cfg.keys.clone(), cfg.window);
    let verified = verifier.verify(auth, &req.body, ctx.clock.now_ms()).map_err(auth_error)?;
    if cfg.nonce_cache {
        let key = replay::nonce_key(&verified.nonce, verified.timestamp_ms);
        match replay::remember(ctx.store, &key).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(Reply::error(IFACE, None, ResultCode::AuthFailed, "nonce has been used before".into())
                    .with_reason("replayed nonce"));
            }
            Err(e) => return Err(internal(None, &e)),
        }
        super::sweep_replay_cache(cfg, ctx).await.map_err(|e| internal(None, &e))?;
    }
    Ok(verified.key_index)
}

fn read_auth(params: &[(String, String)]) -> Result<V2Auth<'_>, &'static str> {
    let get = |name: &'static str| single_param(params, name).map_err(|e| e.0);
    Ok(V2Auth { signature: get("signature")?, timestamp: get("timestamp")?, nonce: get("nonce")? })
}

fn auth_error(e: AuthError) -> Reply {
    if e.is_authentication_failure() {
        Reply::error(IFACE, None, ResultCode::AuthFailed, ResultCode::AuthFailed.default_message().to_owned())
            .with_reason(e.to_string())
    } else {
        let field = e.field().unwrap_or("request");
        Reply::error(IFACE, None, ResultCode::InvalidParameter, format!("{field} is invalid: {e}"))
    }
}

/// `000005` for a `newInstance` or `upgradeInstance` whose order cannot be read now: the marketplace retries it.
fn not_now_reply(activity: &str, not_now: NotNow) -> Reply {
    Reply::code(IFACE, activity, ResultCode::InternalError).with_reason(not_now.0)
}

fn internal(activity: Option<&str>, e: &StoreError) -> Reply {
    Reply::error(IFACE, activity, ResultCode::InternalError, ResultCode::InternalError.default_message().to_owned())
        .with_reason(e.to_string())
}

/// The `activity` field of a body that failed validation, for the log only.
fn activity_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("activity")?.as_str().map(str::to_owned)
}

async fn dispatch<S: Store, B: Backend, C: Clock, R: Random>(
    request: V2Request,
    cfg: &ProduceConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    run: &mut Run,
) -> DispatchResult {
    match request {
        V2Request::NewInstance(r) => {
            const A: &str = "newInstance";
            let details = order_details(r.order_info.as_ref(), r.buyer_info.as_ref());
            let in_body = on_demand_product(r.order_info.as_ref(), &r.order_line_id, &r.business_id);
            let keyed = match order_query::key_new_instance(&r, in_body, details, cfg, ctx, &run.deadline).await {
                Ok(Ok(keyed)) => keyed,
                Ok(Err(not_now)) => return Ok(not_now_reply(A, not_now)),
                Err(e) => return Err((A, e)),
            };
            let Keyed { instance_id, product_id, details, note } = keyed;
            let event = Event::Create { order_id: r.order_id, order_line_id: r.order_line_id, product_id, details };
            events::apply_event(ctx, cfg, &run.deadline, &mut run.report, r.test_flag.is_debug(), &instance_id, &event)
                .await
                .map_err(|e| (A, e))?;
            let body = to_ascii_json(&msg::NewInstanceResponse {
                result_code: ResultCode::Success,
                result_msg: ResultCode::Success.default_message().to_owned(),
                instance_id: instance_id.clone(),
            });
            let reply = Reply::new(IFACE, A, ResultCode::Success, body).with_instance(&instance_id);
            Ok(match note {
                Some(note) => reply.with_reason(note),
                None => reply,
            })
        }
        V2Request::QueryInstance(r) => query(r, cfg, ctx, run).await.map_err(|e| ("queryInstance", e)),
        V2Request::RefreshInstance(r) => {
            let event = Event::Renew {
                order_id: r.order_id,
                order_line_id: Some(r.order_line_id),
                scene: r.scene.as_str().to_owned(),
                expire_ms: r.expire_time_ms,
                product_id: r.product_id,
                unfreezes: false,
            };
            lifecycle_reply(IFACE, "refreshInstance", r.test_flag.is_debug(), &r.instance_id, &event, cfg, ctx, run)
                .await
        }
        V2Request::UpdateInstanceStatus(r) => {
            let event = match r.status {
                msg::InstanceStatusChange::Freeze => Event::Freeze,
                msg::InstanceStatusChange::Unfreeze => Event::Unfreeze,
            };
            lifecycle_reply(
                IFACE,
                "updateInstanceStatus",
                r.test_flag.is_debug(),
                &r.instance_id,
                &event,
                cfg,
                ctx,
                run,
            )
            .await
        }
        V2Request::ReleaseInstance(r) => {
            let event = Event::Release { order_id: r.order_id };
            lifecycle_reply(IFACE, "releaseInstance", r.test_flag.is_debug(), &r.instance_id, &event, cfg, ctx, run)
                .await
        }
        V2Request::UpgradeInstance(r) => {
            const A: &str = "upgradeInstance";
            let upgrade = match order_query::upgrade_details(&r, cfg, ctx, &run.deadline).await {
                Ok(Ok(upgrade)) => upgrade,
                Ok(Err(not_now)) => return Ok(not_now_reply(A, not_now).with_instance(&r.instance_id)),
                Err(e) => return Err((A, e)),
            };
            let event = Event::Upgrade {
                order_id: r.order_id,
                order_line_id: Some(r.order_line_id),
                product_id: upgrade.product_id,
                details: upgrade.details,
            };
            let reply =
                lifecycle_reply(IFACE, A, r.test_flag.is_debug(), &r.instance_id, &event, cfg, ctx, run).await?;
            Ok(match upgrade.note {
                Some(note) if reply.result_code() == ResultCode::Success => reply.with_reason(note),
                _ => reply,
            })
        }
        V2Request::ChangeInstanceCheck(r) => {
            const A: &str = "changeInstanceCheck";
            let rec = state::find(ctx.store, r.test_flag.is_debug(), &r.instance_id).await.map_err(|e| (A, e))?;
            let Some(rec) = rec.filter(|rec| !rec.status.is_released()) else {
                return Ok(Reply::code(IFACE, A, ResultCode::InstanceNotFound).with_instance(&r.instance_id));
            };
            if cfg.backend.is_none() {
                return Ok(Reply::code(IFACE, A, ResultCode::Success).with_instance(&r.instance_id));
            }
            // Forward mode: the seller's system decides.
            let (code, reason) =
                events::check_change(ctx, cfg, &run.deadline, &rec, product_info_json(&r.product_info)).await;
            let reply = Reply::code(IFACE, A, code).with_instance(&r.instance_id);
            Ok(match reason {
                Some(reason) => reply.with_reason(reason),
                None => reply,
            })
        }
        V2Request::OrderNotify(r) => {
            const A: &str = "orderNotify";
            let test = r.test_flag.is_debug();
            let notified = events::notify_order(ctx, cfg, &run.deadline, test, &r.order_id, &r.order_line_id)
                .await
                .map_err(|e| (A, e))?;
            Ok(match notified {
                Ok(()) => Reply::code(IFACE, A, ResultCode::Success),
                Err(reason) => Reply::code(IFACE, A, ResultCode::InternalError).with_reason(reason),
            })
        }
        V2Request::Kit(k) => Ok(Reply::error(
            IFACE,
            Some(k.sync().as_str()),
            ResultCode::AuthFailed,
            "kit syncs are verified with the kit key: send them with x-sign headers".into(),
        )
        .with_reason("kit sync under the basic-interface signature")),
    }
}

async fn query<S: Store, B: Backend, C: Clock, R: Random>(
    r: msg::QueryInstance,
    cfg: &ProduceConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    run: &mut Run,
) -> Result<Reply, StoreError> {
    const A: &str = "queryInstance";
    let test = r.test_flag.is_debug();
    let mut info = Vec::new();
    let mut pending = false;
    for id in &r.instance_ids {
        let Some(rec) = state::find(ctx.store, test, id).await? else { continue };
        let rec = outbox::deliver_now(ctx, cfg, &run.deadline, &mut run.report, rec).await?;
        match (&rec.status, &rec.app_info) {
            (Status::Released { .. }, _) => {}
            (Status::Pending { .. }, _) | (_, None) => pending = true,
            (_, Some(app)) => info.push(instance_info(&rec, app, cfg, run.answer_key(cfg), ctx.random)),
        }
    }
    let first = r.instance_ids.first().map(String::as_str).unwrap_or("");
    // Ready instances are answered even when others are still pending; 000004 only when none is ready.
    if info.is_empty() {
        let code = if pending { ResultCode::Processing } else { ResultCode::InstanceNotFound };
        return Ok(Reply::code(IFACE, A, code).with_instance(first));
    }
    let body = to_ascii_json(&msg::QueryInstanceResponse {
        result_code: ResultCode::Success,
        result_msg: ResultCode::Success.default_message().to_owned(),
        info,
    });
    Ok(Reply::new(IFACE, A, ResultCode::Success, body).with_instance(first))
}

fn instance_info<R: Random>(
    rec: &InstanceRecord,
    app: &StoredAppInfo,
    cfg: &ProduceConfig,
    key: &crate::signing::keys::SecretKey,
    random: &R,
) -> msg::InstanceInfo {
    let protect = |plain: &Option<String>| -> Option<String> {
        let plain = plain.as_ref()?;
        if !cfg.v2_encrypt_credentials {
            return Some(plain.clone());
        }
        let mut bytes = [0u8; 16];
        random.fill(&mut bytes);
        Some(CredentialCipher::new(key, cfg.encrypt_type).encrypt(plain, &iv_from_random(bytes)))
    };
    msg::InstanceInfo {
        instance_id: rec.instance_id.clone(),
        app_info: Some(msg::AppInfo {
            front_end_url: app.front_end_url.clone(),
            admin_url: app.admin_url.clone(),
            user_name: protect(&app.user_name),
            password: protect(&app.password),
            memo: app.memo.clone(),
        }),
        usage_info: None,
    }
}

/// The product id when the order-in-body variant says that **this request's** line is on-demand (`chargingMode`
/// `ON_DEMAND`) with one product: the on-demand idempotency key is then `orderId` + `productId` (protocol §2.3).
///
/// The line is the one whose `orderLineId` (or else `businessId`) is the request's, or the only line. When the line
/// cannot be told, or it carries several products, `None`: the order-line key keeps every line and product apart
/// rather than collapsing them into one instance.
fn on_demand_product(order_info: Option<&serde_json::Value>, order_line_id: &str, business_id: &str) -> Option<String> {
    let lines: Vec<&serde_json::Value> = match order_info? {
        serde_json::Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let field = |line: &serde_json::Value, name: &str| line.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let line = lines
        .iter()
        .find(|l| field(l, "orderLineId").as_deref() == Some(order_line_id))
        .or_else(|| lines.iter().find(|l| field(l, "businessId").as_deref() == Some(business_id)))
        .or_else(|| (lines.len() == 1).then(|| &lines[0]))?;
    if !field(line, "chargingMode")?.eq_ignore_ascii_case("ON_DEMAND") {
        return None;
    }
    let products: Vec<&serde_json::Value> = match line.get("productInfo")? {
        serde_json::Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    match products.as_slice() {
        [only] => field(only, "productId").filter(|p| !p.is_empty()),
        _ => None,
    }
}

/// `changeInstanceCheck`'s `productInfo` as the backend receives it: the known fields and every other one.
fn product_info_json(p: &msg::ProductInfo) -> serde_json::Value {
    let mut map = p.extra.clone();
    for (name, value) in [("productId", &p.product_id), ("skuCode", &p.sku_code), ("linearValue", &p.linear_value)] {
        if let Some(v) = value {
            map.insert(name.to_owned(), serde_json::Value::String(v.clone()));
        }
    }
    serde_json::Value::Object(map)
}

fn order_details(
    order_info: Option<&serde_json::Value>,
    buyer_info: Option<&serde_json::Value>,
) -> Option<serde_json::Value> {
    if order_info.is_none() && buyer_info.is_none() {
        return None;
    }
    Some(serde_json::json!({ "orderInfo": order_info, "buyerInfo": buyer_info }))
}

#[cfg(test)]
mod tests {
    use super::on_demand_product;
    use serde_json::json;

    #[test]
    fn each_line_and_product_of_an_on_demand_order_keeps_its_own_key() {
        let two_lines = json!([
            {"businessId":"b1","chargingMode":"ON_DEMAND","productInfo":[{"productId":"P1"}]},
            {"businessId":"b2","chargingMode":"ON_DEMAND","productInfo":[{"productId":"P2"}]},
        ]);
        assert_eq!(on_demand_product(Some(&two_lines), "L2", "b2").as_deref(), Some("P2"));
        assert_eq!(on_demand_product(Some(&two_lines), "L1", "b1").as_deref(), Some("P1"));
        // A line that cannot be told apart, or one with several products: the order-line key.
        assert_eq!(on_demand_product(Some(&two_lines), "L3", "b3"), None);
        let two_products = json!({"chargingMode":"ON_DEMAND","productInfo":[{"productId":"P1"},{"productId":"P2"}]});
        assert_eq!(on_demand_product(Some(&two_products), "L1", "b1"), None);
        let by_line = json!([{"orderLineId":"L9","chargingMode":"on_demand","productInfo":{"productId":"P9"}}]);
        assert_eq!(on_demand_product(Some(&by_line), "L9", "x").as_deref(), Some("P9"));
        let period = json!({"chargingMode":"PERIOD","productInfo":[{"productId":"P1"}]});
        assert_eq!(on_demand_product(Some(&period), "L1", "b1"), None);
    }
}
