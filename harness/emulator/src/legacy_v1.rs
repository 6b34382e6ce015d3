//! The legacy V1 interface (GET with `authToken`): a full lifecycle, with the `encryptType` and AES-encrypted
//! credentials checked by decrypting them with the key, as the marketplace does before showing them to the buyer.

use koogallery_core::crypto::aes_cred::{AesBits, CredentialCipher};
use koogallery_core::marketplace::Marketplace;
use koogallery_core::marketplace::fresh_uuid;
use koogallery_core::marketplace::samples::TEST_FLAG;
use koogallery_core::ports::system_now_ms;
use koogallery_core::signing::keys::{KeyRing, SecretKey};
use koogallery_core::wire::time::{Precision, format_compact_utc};
use serde_json::Value;

use crate::rules::{Recorder, Verdict};
use crate::session::{Answer, Finding, Session, expect, expect_instance};

/// Extra parameters of a V1 request, besides `activity`, `instanceId`, `testFlag` and `timeStamp`.
type Params = Vec<(&'static str, String)>;

const ACTIVITIES: [&str; 7] = ["v1.new", "v1.query", "v1.refresh", "v1.expire", "v1.upgrade", "v1.release", "v1.auth"];

/// Runs the `v1.*` rules, or records them as skipped when V1 was not asked for.
pub(crate) async fn run(s: &Session, rec: &mut Recorder, enabled: bool) {
    if !enabled {
        for id in ACTIVITIES {
            rec.record(id, Verdict::Skip("V1 not requested (--v1)".to_owned()));
        }
        return;
    }
    let order_id = format!("EMU{}V", s.run);
    let product_id = format!("EMUPROD{}V", s.run);
    let created = new_instance(s, &order_id, &product_id).await;
    let id = created.as_ref().ok().cloned();
    rec.record("v1.new", created.map(|id| format!("instanceId {id}, same on retry")).into());
    let needs =
        || id.clone().ok_or_else(|| Finding::general("not checked: needs the instance from v1.new, which failed"));
    rec.record(
        "v1.query",
        match needs() {
            Ok(id) => query(s, &id).await,
            Err(f) => Err(f),
        }
        .into(),
    );
    let steps: [(&str, &str, Params); 4] = [
        (
            "v1.refresh",
            "refreshInstance",
            vec![
                ("orderId", format!("{order_id}-R1")),
                (
                    "expireTime",
                    format_compact_utc(system_now_ms().saturating_add(400 * 86_400_000), Precision::Seconds14),
                ),
                ("periodType", "year".into()),
                ("periodNumber", "1".into()),
            ],
        ),
        ("v1.expire", "expireInstance", vec![("orderId", order_id.clone())]),
        (
            "v1.upgrade",
            "upgrade",
            vec![
                ("orderId", format!("{order_id}-U1")),
                ("productId", product_id.clone()),
                ("skuCode", "emu-sku-2".into()),
                ("amount", "2".into()),
            ],
        ),
        ("v1.release", "releaseInstance", vec![("orderId", order_id.clone())]),
    ];
    for (rule, activity, extra) in steps {
        let verdict = match needs() {
            Ok(id) => twice(s, activity, &id, &extra).await,
            Err(f) => Err(f),
        };
        rec.record(rule, verdict.into());
    }
    rec.record("v1.auth", bad_token(s, &order_id, &product_id).await.into());
}

fn time_stamp() -> String {
    format_compact_utc(system_now_ms(), Precision::Millis17)
}

fn new_params(order_id: &str, product_id: &str) -> Params {
    vec![
        ("activity", "newInstance".into()),
        ("businessId", fresh_uuid()),
        ("customerId", "68cbc86abc2018ab880d92f36422fa0e".into()),
        ("customerName", "emulator".into()),
        ("orderId", order_id.into()),
        ("productId", product_id.into()),
        ("skuCode", "emu-sku-1".into()),
        ("chargingMode", "1".into()),
        ("periodType", "year".into()),
        ("periodNumber", "1".into()),
        ("expireTime", format_compact_utc(system_now_ms().saturating_add(365 * 86_400_000), Precision::Seconds14)),
        ("testFlag", TEST_FLAG.into()),
        ("timeStamp", time_stamp()),
    ]
}

async fn send(s: &Session, mp: Option<&Marketplace>, activity: &str, note: &str, params: &[(&str, String)]) -> Answer {
    let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let req = match mp {
        Some(mp) => mp.v1(s.path(), &borrowed),
        None => s.sign_v1(&borrowed),
    };
    s.send(req, s.label("GET", activity, note), false).await
}

async fn new_instance(s: &Session, order_id: &str, product_id: &str) -> Result<String, Finding> {
    let first = send(s, None, "newInstance", "first call", &new_params(order_id, product_id)).await;
    let id = expect_instance(&first)?;
    check_credentials(&first, first.json.as_ref().and_then(|j| j.get("appInfo")), s.keys())?;
    let retry = send(s, None, "newInstance", "retry with a fresh businessId", &new_params(order_id, product_id)).await;
    let again = expect_instance(&retry)?;
    if again != id {
        return Err(Finding::at(&retry, format!("retry got instanceId {again}, first call got {id}")));
    }
    Ok(id)
}

async fn query(s: &Session, id: &str) -> Result<String, Finding> {
    let mut last = None;
    for poll in 1..=crate::lifecycle::QUERY_POLLS {
        let params = [
            ("activity", "queryInstance".to_owned()),
            ("instanceId", id.to_owned()),
            ("testFlag", TEST_FLAG.to_owned()),
            ("timeStamp", time_stamp()),
        ];
        let answer = send(s, None, "queryInstance", &format!("poll {poll}"), &params).await;
        if answer.is("000004") {
            last = Some(answer.label);
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            continue;
        }
        expect(&answer, "000000")?;
        let entry = answer
            .json
            .as_ref()
            .and_then(|j| j.get("info"))
            .and_then(Value::as_array)
            .and_then(|info| info.iter().find(|e| e.get("instanceId").and_then(Value::as_str) == Some(id)));
        let Some(app) = entry.and_then(|e| e.get("appInfo")) else {
            return Err(Finding::at(&answer, format!("000000 without an info[] entry with appInfo for {id}")));
        };
        if app.get("frontEndUrl").and_then(Value::as_str).is_none_or(|u| u.trim().is_empty()) {
            return Err(Finding::at(&answer, "appInfo has no frontEndUrl"));
        }
        let decrypted = check_credentials(&answer, Some(app), s.keys())?;
        return Ok(format!("ready after {poll} poll(s); {decrypted}"));
    }
    Err(Finding { detail: format!("still 000004 after {} polls", crate::lifecycle::QUERY_POLLS), request: last })
}

/// Checks `encryptType` and that `userName`/`password`, when present, decrypt under one of the keys.
fn check_credentials(answer: &Answer, app: Option<&Value>, keys: &KeyRing) -> Result<String, Finding> {
    let Some(encrypt_type) = answer.field("encryptType") else {
        return Err(Finding::at(answer, "no encryptType in a V1 answer"));
    };
    let Some(bits) = AesBits::from_encrypt_type(encrypt_type) else {
        return Err(Finding::at(
            answer,
            format!("encryptType {encrypt_type:?} is neither 1 (AES-256) nor 2 (AES-128)"),
        ));
    };
    let mut decrypted = Vec::new();
    for field in ["userName", "password"] {
        let Some(text) = app.and_then(|a| a.get(field)).and_then(Value::as_str) else { continue };
        let ok = keys.iter().any(|k| CredentialCipher::new(k, bits).decrypt(text).is_ok());
        if !ok {
            return Err(Finding::at(
                answer,
                format!("appInfo.{field} does not decrypt with the key (encryptType {encrypt_type})"),
            ));
        }
        decrypted.push(field);
    }
    Ok(if decrypted.is_empty() {
        format!("encryptType {encrypt_type}, no credentials returned")
    } else {
        format!("encryptType {encrypt_type}, {} decrypt", decrypted.join(" and "))
    })
}

async fn twice(s: &Session, activity: &str, id: &str, extra: &[(&str, String)]) -> Result<String, Finding> {
    for note in ["first", "repeated"] {
        let mut params = vec![("activity", activity.to_owned()), ("instanceId", id.to_owned())];
        params.extend(extra.iter().cloned());
        params.push(("testFlag", TEST_FLAG.to_owned()));
        params.push(("timeStamp", time_stamp()));
        expect(&send(s, None, activity, note, &params).await, "000000")?;
    }
    Ok("000000 twice".to_owned())
}

async fn bad_token(s: &Session, order_id: &str, product_id: &str) -> Result<String, Finding> {
    let other = Marketplace::new(KeyRing::single(SecretKey::new(format!("emulator-wrong-key-{}", s.run))));
    let wrong =
        send(s, Some(&other), "newInstance", "authToken made with another key", &new_params(order_id, product_id))
            .await;
    expect(&wrong, "000001")?;
    // A correct token, then one parameter changed after signing.
    let params = new_params(order_id, product_id);
    let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut req = s.sign_v1(&borrowed);
    req.query = req.query.replacen("productId=", "productId=X", 1);
    let tampered = s.send(req, s.label("GET", "newInstance", "parameter changed after signing"), false).await;
    expect(&tampered, "000001")?;
    Ok("wrong and tampered authTokens answered 000001".to_owned())
}
