//! Sample marketplace requests per activity, shaped like the documented examples (protocol §2.14, §3, §5.6).
//!
//! `harness sign` fills these in, like the seller center's debug tool: fresh `businessId`s, documented order and
//! instance ids, `testFlag` = debug. `--field` overrides or adds fields.

use serde_json::{Map, Value, json};

/// V2 basic-interface activities with a sample body.
pub const V2_ACTIVITIES: &[&str] = &[
    "newInstance",
    "queryInstance",
    "refreshInstance",
    "updateInstanceStatus",
    "releaseInstance",
    "upgradeInstance",
    "changeInstanceCheck",
    "orderNotify",
];

/// V1 activities with sample query parameters.
pub const V1_ACTIVITIES: &[&str] =
    &["newInstance", "refreshInstance", "expireInstance", "releaseInstance", "upgrade", "queryInstance"];

/// Kit sync interfaces with a sample body.
pub const KIT_NAMES: &[&str] = &["tenantSync", "applicationSync", "authSync", "singleOrgSync", "allOrgSync"];

const ORDER_ID: &str = "CS2211181819B4LVS";
const ORDER_LINE_ID: &str = "CS2211181819B4LVS-000001";
const INSTANCE_ID: &str = "10e758d0-31ad-4c4b-8f1b-81d03469a10e";
const PRODUCT_ID: &str = "OFFI461867333479178240";
const TENANT_ID: &str = "68cbc86abc2018ab880d92f36422fa0e";

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The sample V2 body for `activity` (keys in documented order), or `None` for an unknown activity.
pub fn v2_body(activity: &str, business_id: &str) -> Option<Map<String, Value>> {
    let v = match activity {
        "newInstance" => json!({"activity": activity, "businessId": business_id, "orderId": ORDER_ID,
            "orderLineId": ORDER_LINE_ID, "testFlag": "1"}),
        "queryInstance" => json!({"activity": activity, "instanceId": INSTANCE_ID, "testFlag": "1"}),
        "refreshInstance" => json!({"activity": activity, "expireTime": "20301124023618256",
            "instanceId": INSTANCE_ID, "orderId": ORDER_ID, "orderLineId": ORDER_LINE_ID, "productId": PRODUCT_ID,
            "scene": "RENEWAL", "testFlag": "1"}),
        "updateInstanceStatus" => json!({"activity": activity, "instanceId": INSTANCE_ID, "status": "FREEZE",
            "testFlag": "1"}),
        "releaseInstance" | "upgradeInstance" => json!({"activity": activity, "instanceId": INSTANCE_ID,
            "orderId": ORDER_ID, "orderLineId": ORDER_LINE_ID, "testFlag": "1"}),
        "changeInstanceCheck" => json!({"activity": activity, "instanceId": INSTANCE_ID,
            "productInfo": {"linearValue": 50, "productId": "OFFI846204237451911168", "productName": "基础版",
                "skuCode": "0a4d1578-5295-46a7-92d4-7c803dccc51d"}, "testFlag": "1"}),
        "orderNotify" => json!({"activity": activity, "orderId": ORDER_ID, "orderLineId": ORDER_LINE_ID,
            "testFlag": "1"}),
        _ => return None,
    };
    Some(object(v))
}

/// The sample V1 query parameters for `activity` (without `timeStamp` and `authToken`).
pub fn v1_params(activity: &str, business_id: &str) -> Option<Vec<(String, String)>> {
    let pairs: Vec<(&str, &str)> = match activity {
        "newInstance" => vec![
            ("activity", activity),
            ("customerId", "68cbc86abc2018ab880d92f36422fa0e"),
            ("customerName", "huaweitest"),
            ("businessId", business_id),
            ("orderId", ORDER_ID),
            ("skuCode", "0a4d1578-5295-46a7-92d4-7c803dccc51d"),
            ("productId", PRODUCT_ID),
            ("testFlag", "1"),
            ("expireTime", "20301124023618"),
        ],
        "refreshInstance" => vec![
            ("activity", activity),
            ("orderId", ORDER_ID),
            ("instanceId", INSTANCE_ID),
            ("productId", PRODUCT_ID),
            ("expireTime", "20311124023618"),
            ("testFlag", "1"),
        ],
        "expireInstance" | "releaseInstance" => {
            vec![("activity", activity), ("instanceId", INSTANCE_ID), ("orderId", ORDER_ID), ("testFlag", "1")]
        }
        "upgrade" => vec![
            ("activity", activity),
            ("instanceId", INSTANCE_ID),
            ("orderId", ORDER_ID),
            ("skuCode", "0a4d1578-5295-46a7-92d4-7c803dccc51d"),
            ("productId", PRODUCT_ID),
            ("testFlag", "1"),
        ],
        "queryInstance" => vec![("activity", activity), ("instanceId", INSTANCE_ID), ("testFlag", "1")],
        _ => return None,
    };
    Some(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

/// The sample kit body for sync interface `name`; `time_stamp` is the body's `yyyyMMddHHmmssSSS` field.
pub fn kit_body(name: &str, time_stamp: &str) -> Option<Map<String, Value>> {
    let v = match name {
        "tenantSync" => json!({"instanceId": INSTANCE_ID, "orderId": ORDER_ID, "tenantId": TENANT_ID,
            "tenantCode": "huawei", "name": "huaweitest", "domainName": "https://example.tenantaccount.com",
            "flag": 1, "testFlag": 1, "timeStamp": time_stamp}),
        "applicationSync" => json!({"instanceId": INSTANCE_ID, "tenantId": TENANT_ID, "appId": "app-001",
            "clientId": "client-001", "clientSecret": "", "flag": 1, "testFlag": 1, "timeStamp": time_stamp}),
        "authSync" => json!({"instanceId": INSTANCE_ID, "tenantId": TENANT_ID, "appId": "app-001",
            "userList": [{"userName": "zhangsan", "name": "张三", "orgCode": "10000", "role": "user",
                "enable": "true"}],
            "currentSyncTime": time_stamp, "flag": 1, "testFlag": 1, "timeStamp": time_stamp}),
        "singleOrgSync" => json!({"instanceId": INSTANCE_ID, "tenantId": TENANT_ID, "orgCode": "10000",
            "orgName": "开发部", "parentCode": "", "flag": 1, "testFlag": 1, "timeStamp": time_stamp}),
        "allOrgSync" => json!({"instanceId": INSTANCE_ID, "tenantId": TENANT_ID,
            "orgInfoList": [{"orgCode": "10000", "orgName": "开发部", "parentCode": ""}],
            "testFlag": 1, "timeStamp": time_stamp}),
        _ => return None,
    };
    Some(object(v))
}

/// Applies `name=value` (string value; a number if the sample field is a number) or `name:=<json>` overrides.
///
/// # Errors
/// The offending argument, if it has no `=` or its `:=` value is not JSON.
pub fn apply_fields(body: &mut Map<String, Value>, fields: &[String]) -> Result<(), String> {
    for f in fields {
        if let Some((k, raw)) = f.split_once(":=") {
            let v: Value = serde_json::from_str(raw).map_err(|e| format!("--field {f}: value is not JSON: {e}"))?;
            body.insert(k.to_owned(), v);
            continue;
        }
        let (k, v) = f.split_once('=').ok_or_else(|| format!("--field {f}: expected name=value or name:=json"))?;
        let value = match body.get(k) {
            Some(Value::Number(_)) => v.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(v)),
            _ => Value::from(v),
        };
        body.insert(k.to_owned(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_activity_has_a_sample() {
        for a in V2_ACTIVITIES {
            assert_eq!(v2_body(a, "b").and_then(|b| b.get("activity").cloned()), Some(Value::from(*a)));
        }
        for a in V1_ACTIVITIES {
            assert!(v1_params(a, "b").is_some_and(|p| p.iter().any(|(k, v)| k == "activity" && v == a)));
        }
        for n in KIT_NAMES {
            assert!(kit_body(n, "20220413093539534").is_some(), "{n}");
        }
        assert!(v2_body("nope", "b").is_none());
    }

    #[test]
    fn fields_keep_number_types_and_accept_json() {
        let mut body = kit_body("tenantSync", "t").expect("sample");
        apply_fields(&mut body, &["flag=0".into(), "name=x".into(), "extra:=[1,2]".into()]).expect("valid");
        assert_eq!(body["flag"], Value::from(0));
        assert_eq!(body["name"], Value::from("x"));
        assert_eq!(body["extra"], json!([1, 2]));
        assert!(apply_fields(&mut body, &["novalue".into()]).is_err());
    }
}
