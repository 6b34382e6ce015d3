//! Legacy V1 activities: GET with query parameters, `authToken`, encrypted credentials, `Body-Sign` on every answer.

use super::config::ProduceConfig;
use super::ctx::Ctx;
use super::reply::{DispatchResult, Reply, lifecycle_reply};
use super::state::{self, apply_event, load};
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
) -> Reply {
    let params = req.query_params();
    for name in ["authToken", "timeStamp", "activity"] {
        if single_param(&params, name).is_err() {
            return Reply::error(IFACE, None, ResultCode::InvalidParameter, format!("{name} appears more than once"));
        }
    }
    if let Err(e) = V1AuthToken::new(cfg.keys.clone()).verify(&req.query) {
        return if e.is_authentication_failure() {
            Reply::error(IFACE, None, ResultCode::AuthFailed, ResultCode::AuthFailed.default_message().to_owned())
                .with_reason(e.to_string())
        } else {
            let field = e.field().unwrap_or("timeStamp");
            Reply::error(IFACE, None, ResultCode::InvalidParameter, format!("{field} is invalid: {e}"))
        };
    }
    if let Some(window) = cfg.v1_window {
        let stamp = single_param(&params, "timeStamp").ok().flatten().unwrap_or("");
        let fresh = crate::wire::time::parse_compact_utc(stamp)
            .ok()
            .is_some_and(|ts| ts.abs_diff(ctx.clock.now_ms()) <= window.window_ms);
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
    match dispatch(request, cfg, ctx).await {
        Ok(reply) => reply,
        Err((activity, e)) => Reply::error(
            IFACE,
            Some(activity),
            ResultCode::InternalError,
            ResultCode::InternalError.default_message().to_owned(),
        )
        .with_reason(e.to_string()),
    }
}

async fn dispatch<S: Store, B: Backend, C: Clock, R: Random>(
    request: V1Request,
    cfg: &ProduceConfig,
    ctx: &Ctx<'_, S, B, C, R>,
) -> DispatchResult {
    match request {
        V1Request::NewInstance(r) => {
            const A: &str = "newInstance";
            let test = r.test_flag.is_debug();
            // V1 has no order line: one instance per (orderId, productId).
            let instance_id = identity::instance_id_for_on_demand(&r.order_id, &r.product_id);
            let details = new_instance_details(&r, cfg);
            let event = Event::Create {
                order_id: r.order_id.clone(),
                order_line_id: String::new(),
                product_id: Some(r.product_id.clone()),
                details: Some(details),
            };
            let (_, rec) = apply_event(ctx, cfg, test, &instance_id, &event).await.map_err(|e| (A, e))?;
            let app_info = rec.as_ref().and_then(|rec| encrypted_app_info(rec, cfg, ctx.random));
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
            };
            lifecycle_reply(IFACE, "refreshInstance", r.test_flag.is_debug(), &r.instance_id, &event, cfg, ctx).await
        }
        V1Request::ExpireInstance(r) => {
            lifecycle_reply(IFACE, "expireInstance", r.test_flag.is_debug(), &r.instance_id, &Event::Freeze, cfg, ctx)
                .await
        }
        V1Request::ReleaseInstance(r) => {
            let event = Event::Release { order_id: r.order_id };
            lifecycle_reply(IFACE, "releaseInstance", r.test_flag.is_debug(), &r.instance_id, &event, cfg, ctx).await
        }
        V1Request::Upgrade(r) => {
            let details = serde_json::json!({ "skuCode": r.sku_code, "productId": r.product_id });
            let event = Event::Upgrade {
                order_id: r.order_id,
                order_line_id: None,
                product_id: r.product_id,
                details: Some(details),
            };
            lifecycle_reply(IFACE, "upgrade", r.test_flag.is_debug(), &r.instance_id, &event, cfg, ctx).await
        }
        V1Request::QueryInstance(r) => {
            const A: &str = "queryInstance";
            let test = r.test_flag.is_debug();
            let mut info = Vec::new();
            let mut pending = false;
            for id in &r.instance_ids {
                let Some(mut rec) = load(ctx.store, test, id).await.map_err(|e| (A, e))? else { continue };
                if state::deliver(ctx, cfg, &mut rec).await {
                    state::save(ctx.store, &rec).await.map_err(|e| (A, e))?;
                }
                match rec.status {
                    Status::Released { .. } => {}
                    Status::Pending { .. } => pending = true,
                    _ => info.push(msg::V1InstanceInfo {
                        instance_id: rec.instance_id.clone(),
                        app_info: encrypted_app_info(&rec, cfg, ctx.random),
                        usage_info: None,
                    }),
                }
            }
            let first = r.instance_ids.first().map(String::as_str).unwrap_or("");
            if pending {
                return Ok(Reply::code(IFACE, A, ResultCode::Processing).with_instance(first));
            }
            if info.is_empty() {
                return Ok(Reply::code(IFACE, A, ResultCode::InstanceNotFound).with_instance(first));
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
fn new_instance_details(r: &msg::V1NewInstance, cfg: &ProduceConfig) -> serde_json::Value {
    let contact = |v: &Option<String>| v.as_deref().map(|c| decrypt_contact(cfg.keys.signing_key(), c).into_string());
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
fn encrypted_app_info<R: Random>(rec: &InstanceRecord, cfg: &ProduceConfig, random: &R) -> Option<msg::V1AppInfo> {
    let app = rec.app_info.as_ref()?;
    let cipher = CredentialCipher::new(cfg.keys.signing_key(), cfg.encrypt_type);
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
