//! Legacy V1 activities: GET with query parameters, `authToken`, encrypted credentials, `Body-Sign` on every answer.

use super::config::ProduceConfig;
use super::ctx::Ctx;
use super::replay;
use super::reply::{DispatchResult, Reply, Run, lifecycle_reply};
use super::state;
use super::{events, outbox};
use crate::crypto::aes_cred::{CredentialCipher, decrypt_contact, iv_from_random};
use crate::http::{Inbound, single_param};
use crate::identity;
use crate::lifecycle::{Event, InstanceRecord, Status};
use crate::ports::Store;
use crate::ports::{Backend, Clock, Random};
use crate::signing::v1::V1AuthToken;
use crate::wire::json_out::to_ascii_json;
use crate::wire::result_code::ResultCode;
use crate::wire::v1::{self as msg, V1Request, parse_v1_request};

const IFACE: &str = "v1";

pub(super) async fn handle<S: Store, B: Backend, C: Clock, R: Random>(
    req: &Inbound,
    cfg: &ProduceConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    run: &mut Run,
) -> Reply {
    let params = req.query_params();
    for name in ["authToken", "timeStamp", "activity"] {
        if single_param(&params, name).is_err() {
            return Reply::error(IFACE, None, ResultCode::InvalidParameter, format!("{name} appears more than once"));
        }
    }
    match V1AuthToken::new(cfg.keys.clone()).verify_key(&req.query) {
        Ok(index) => run.key_index = index,
        Err(e) if e.is_authentication_failure() => {
            return Reply::error(
                IFACE,
                None,
                ResultCode::AuthFailed,
                ResultCode::AuthFailed.default_message().to_owned(),
            )
            .with_reason(e.to_string());
        }
        Err(e) => {
            let field = e.field().unwrap_or("timeStamp");
            return Reply::error(IFACE, None, ResultCode::InvalidParameter, format!("{field} is invalid: {e}"));
        }
    }
    let stamp = single_param(&params, "timeStamp").ok().flatten().unwrap_or("");
    let stamp_ms = crate::wire::time::parse_compact_utc(stamp).ok();
    if let Some(window) = cfg.v1_window {
        let fresh = stamp_ms.is_some_and(|ts| ts.abs_diff(ctx.clock.now_ms()) <= window.window_ms);
        if !fresh {
            return Reply::error(
                IFACE,
                None,
                ResultCode::InvalidParameter,
                "timeStamp is outside the allowed window".into(),
            );
        }
    }
    let request = match parse_v1_request(&params) {
        Ok(r) => r,
        Err(e) => {
            let activity = single_param(&params, "activity").ok().flatten();
            return Reply::error(IFACE, activity, ResultCode::InvalidParameter, e.to_string());
        }
    };
    if cfg.nonce_cache
        && let Err(e) = super::sweep_replay_cache(cfg, ctx).await
    {
        return internal(None, &e);
    }
    // A repeat of an applied state change is acknowledged, not applied again: an old `expireInstance` URL replayed
    // after a renewal must not freeze the instance.
    let repeat_key = match (&request, single_param(&params, "authToken").ok().flatten()) {
        (
            V1Request::RefreshInstance(_)
            | V1Request::ExpireInstance(_)
            | V1Request::ReleaseInstance(_)
            | V1Request::Upgrade(_),
            Some(token),
        ) if cfg.nonce_cache => {
            Some(replay::v1_request_key(&token.replace(' ', "+"), stamp_ms.unwrap_or_else(|| ctx.clock.now_ms())))
        }
        _ => None,
    };
    let activity = request.activity_name().to_owned();
    if let Some(key) = &repeat_key {
        match replay::seen(ctx.store, key).await {
            Ok(false) => {}
            Ok(true) => {
                return Reply::code(IFACE, &activity, ResultCode::Success).with_reason("repeat of an applied request");
            }
            Err(e) => return internal(Some(&activity), &e),
        }
    }
    let reply = match dispatch(request, cfg, ctx, run).await {
        Ok(reply) => reply,
        Err((activity, e)) => return internal(Some(activity), &e),
    };
    if let Some(key) = repeat_key
        && reply.result_code() == ResultCode::Success
        && let Err(e) = replay::remember(ctx.store, &key).await
    {
        return internal(Some(&activity), &e);
    }
    reply
}

fn internal(activity: Option<&str>, e: &crate::ports::StoreError) -> Reply {
    Reply::error(IFACE, activity, ResultCode::InternalError, ResultCode::InternalError.default_message().to_owned())
        .with_reason(e.to_string())
}

async fn dispatch<S: Store, B: Backend, C: Clock, R: Random>(
    request: V1Request,
    cfg: &ProduceConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    run: &mut Run,
) -> DispatchResult {
    match request {
        V1Request::NewInstance(r) => {
            const A: &str = "newInstance";
            let test = r.test_flag.is_debug();
            // V1 has no order line: one instance per (orderId, productId).
            let instance_id = identity::instance_id_for_on_demand(&r.order_id, &r.product_id);
            let details = new_instance_details(&r, run.answer_key(cfg));
            let event = Event::Create {
                order_id: r.order_id.clone(),
                order_line_id: String::new(),
                product_id: Some(r.product_id.clone()),
                details: Some(details),
            };
            let (_, rec) = events::apply_event(ctx, cfg, &run.deadline, &mut run.report, test, &instance_id, &event)
                .await
                .map_err(|e| (A, e))?;
            let app_info = rec.as_ref().and_then(|rec| encrypted_app_info(rec, cfg, run.answer_key(cfg), ctx.random));
            let body = to_ascii_json(&msg::V1NewInstanceResponse {
                result_code: ResultCode::Success,
                result_msg: ResultCode::Success.default_message().to_owned(),
                encrypt_type: cfg.encrypt_type.encrypt_type().to_owned(),
                instance_id: instance_id.clone(),
                app_info,
            });
            Ok(Reply::new(IFACE, A, ResultCode::Success, body).with_instance(&instance_id))
        }
        V1Request::RefreshInstance(r) => {
            let event = Event::Renew {
                order_id: r.order_id,
                order_line_id: None,
                scene: if r.trial_to_formal { "TRIAL_TO_FORMAL".into() } else { "RENEWAL".into() },
                expire_ms: r.expire_time_ms,
                product_id: r.product_id,
                // V1 has no unfreeze call: a renewal of an instance frozen by `expireInstance` ends the freeze.
                unfreezes: true,
            };
            lifecycle_reply(IFACE, "refreshInstance", r.test_flag.is_debug(), &r.instance_id, &event, cfg, ctx, run)
                .await
        }
        V1Request::ExpireInstance(r) => {
            lifecycle_reply(
                IFACE,
                "expireInstance",
                r.test_flag.is_debug(),
                &r.instance_id,
                &Event::Freeze,
                cfg,
                ctx,
                run,
            )
            .await
        }
        V1Request::ReleaseInstance(r) => {
            let event = Event::Release { order_id: r.order_id };
            lifecycle_reply(IFACE, "releaseInstance", r.test_flag.is_debug(), &r.instance_id, &event, cfg, ctx, run)
                .await
        }
        V1Request::Upgrade(r) => {
            let details = serde_json::json!({ "skuCode": r.sku_code, "productId": r.product_id });
            let event = Event::Upgrade {
                order_id: r.order_id,
                order_line_id: None,
                product_id: r.product_id,
                details: Some(details),
            };
            lifecycle_reply(IFACE, "upgrade", r.test_flag.is_debug(), &r.instance_id, &event, cfg, ctx, run).await
        }
        V1Request::QueryInstance(r) => {
            const A: &str = "queryInstance";
            let test = r.test_flag.is_debug();
            let mut info = Vec::new();
            let mut pending = false;
            for id in &r.instance_ids {
                let Some(rec) = state::find(ctx.store, test, id).await.map_err(|e| (A, e))? else { continue };
                let rec =
                    outbox::deliver_now(ctx, cfg, &run.deadline, &mut run.report, rec).await.map_err(|e| (A, e))?;
                match rec.status {
                    Status::Released { .. } => {}
                    Status::Pending { .. } => pending = true,
                    _ => info.push(msg::V1InstanceInfo {
                        instance_id: rec.instance_id.clone(),
                        app_info: encrypted_app_info(&rec, cfg, run.answer_key(cfg), ctx.random),
                        usage_info: None,
                    }),
                }
            }
            let first = r.instance_ids.first().map(String::as_str).unwrap_or("");
            // Ready instances are answered even when others are still pending; 000004 only when none is ready.
            if info.is_empty() {
                let code = if pending { ResultCode::Processing } else { ResultCode::InstanceNotFound };
                return Ok(Reply::code(IFACE, A, code).with_instance(first));
            }
            let body = to_ascii_json(&msg::V1QueryInstanceResponse {
                result_code: ResultCode::Success,
                result_msg: ResultCode::Success.default_message().to_owned(),
                encrypt_type: cfg.encrypt_type.encrypt_type().to_owned(),
                info,
            });
            Ok(Reply::new(IFACE, A, ResultCode::Success, body).with_instance(first))
        }
        other => {
            let name = other.activity_name().to_owned();
            let clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).take(32).collect();
            Ok(Reply::error(
                IFACE,
                Some(&name),
                ResultCode::InvalidParameter,
                format!("activity {clean} is not supported"),
            ))
        }
    }
}

/// The order details kept with a V1 instance; contact data is decrypted (or kept raw when it cannot be).
fn new_instance_details(r: &msg::V1NewInstance, key: &crate::signing::keys::SecretKey) -> serde_json::Value {
    let contact = |v: &Option<String>| v.as_deref().map(|c| decrypt_contact(key, c).into_string());
    serde_json::json!({
        "customerId": r.customer_id,
        "customerName": r.customer_name,
        "userId": r.user_id,
        "userName": r.user_name,
        "mobilePhone": contact(&r.mobile_phone),
        "email": contact(&r.email),
        "skuCode": r.sku_code,
        "productId": r.product_id,
        "trialFlag": r.trial_flag,
        "expireTime": r.expire_time,
        "chargingMode": r.charging_mode,
        "periodType": r.period_type,
        "periodNumber": r.period_number,
        "orderAmount": r.order_amount,
        "saasExtendParams": r.saas_extend_params,
    })
}

/// Login information with `userName`/`password` AES-encrypted as V1 requires.
fn encrypted_app_info<R: Random>(
    rec: &InstanceRecord,
    cfg: &ProduceConfig,
    key: &crate::signing::keys::SecretKey,
    random: &R,
) -> Option<msg::V1AppInfo> {
    let app = rec.app_info.as_ref()?;
    let cipher = CredentialCipher::new(key, cfg.encrypt_type);
    let encrypt = |plain: &Option<String>| {
        plain.as_ref().map(|p| {
            let mut bytes = [0u8; 16];
            random.fill(&mut bytes);
            cipher.encrypt(p, &iv_from_random(bytes))
        })
    };
    Some(msg::V1AppInfo {
        front_end_url: app.front_end_url.clone(),
        admin_url: app.admin_url.clone(),
        user_name: encrypt(&app.user_name),
        password: encrypt(&app.password),
        memo: app.memo.clone(),
    })
}
