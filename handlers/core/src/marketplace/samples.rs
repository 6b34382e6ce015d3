//! Request bodies as KooGallery sends them, one builder per activity, shaped like the documented examples
//! (protocol §2.14, §3, §5.6).
//!
//! Every body here is a debug request (`testFlag` `"1"`), like the seller center's debugging tool, so nothing built
//! from these touches production records. V2 bodies have their keys sorted at every level, which makes the raw
//! bytes identical to every §4.1 signing candidate: a conforming endpoint accepts them whichever candidate it
//! hashes. `harness sign` fills the builders with the documented ids ([`documented_v2`], [`documented_v1`],
//! [`documented_kit`]); the emulator fills them with ids unique to its run.
//!
//! ```
//! use koogallery_core::marketplace::samples::{self, Charging, OrderLine};
//! let order = OrderLine::new("CS1", "CS1-000001", "OFFI1", Charging::Period);
//! let body = samples::encode(&samples::new_instance(&order, "b-1"));
//! assert_eq!(body, br#"{"activity":"newInstance","businessId":"b-1","orderId":"CS1","orderLineId":"CS1-000001","testFlag":"1"}"#);
//! ```

use serde_json::{Map, Value, json};

use crate::signing::canonical_json::sorted_compact;

/// `testFlag` of every sample body: a debug request.
pub const TEST_FLAG: &str = "1";

/// V2 basic-interface activities with a documented sample body.
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

/// V1 activities with documented sample query parameters.
pub const V1_ACTIVITIES: &[&str] =
    &["newInstance", "refreshInstance", "expireInstance", "releaseInstance", "upgrade", "queryInstance"];

/// Kit sync interfaces with a documented sample body.
pub const KIT_NAMES: &[&str] = &["tenantSync", "applicationSync", "authSync", "singleOrgSync", "allOrgSync"];

/// The documented order of the examples.
pub const DOC_ORDER_ID: &str = "CS2211181819B4LVS";
/// The documented order line of the examples.
pub const DOC_ORDER_LINE_ID: &str = "CS2211181819B4LVS-000001";
/// The documented instance of the examples.
pub const DOC_INSTANCE_ID: &str = "10e758d0-31ad-4c4b-8f1b-81d03469a10e";
/// The documented product of the examples.
pub const DOC_PRODUCT_ID: &str = "OFFI461867333479178240";
/// The documented tenant (and V1 customer) of the examples.
pub const DOC_TENANT_ID: &str = "68cbc86abc2018ab880d92f36422fa0e";
const DOC_SKU_CODE: &str = "0a4d1578-5295-46a7-92d4-7c803dccc51d";

/// How a product is charged; one-time and on-demand orders carry it in the order-in-body `orderInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charging {
    /// 包周期: the documented body, without order details.
    Period,
    /// 按次.
    OneTime,
    /// 按需: one instance per order and product.
    OnDemand,
}

impl Charging {
    /// A short name for report lines.
    pub fn name(self) -> &'static str {
        match self {
            Charging::Period => "period",
            Charging::OneTime => "one-time",
            Charging::OnDemand => "on-demand",
        }
    }

    /// The wire `chargingMode`.
    pub fn charging_mode(self) -> &'static str {
        match self {
            Charging::Period => "PERIOD",
            Charging::OneTime => "ONE_TIME",
            Charging::OnDemand => "ON_DEMAND",
        }
    }
}

/// An order line being bought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// `orderId`.
    pub order_id: String,
    /// `orderLineId`.
    pub line_id: String,
    /// `productId` (carried in `orderInfo` for one-time and on-demand orders).
    pub product_id: String,
    /// How it is charged.
    pub charging: Charging,
}

impl OrderLine {
    /// An order line from its ids.
    pub fn new(order_id: &str, line_id: &str, product_id: &str, charging: Charging) -> Self {
        Self { order_id: order_id.into(), line_id: line_id.into(), product_id: product_id.into(), charging }
    }
}

/// Serialises a body the way the marketplace does: compact, keys sorted at every level.
pub fn encode(body: &Map<String, Value>) -> Vec<u8> {
    sorted_compact(&Value::Object(body.clone()))
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `newInstance` for `order` with this `businessId`; one-time and on-demand orders carry `orderInfo`.
pub fn new_instance(order: &OrderLine, business_id: &str) -> Map<String, Value> {
    let mut body = object(json!({
        "activity": "newInstance",
        "businessId": business_id,
        "orderId": order.order_id,
        "orderLineId": order.line_id,
        "testFlag": TEST_FLAG,
    }));
    if order.charging != Charging::Period {
        body.insert(
            "orderInfo".into(),
            json!([{
                "businessId": business_id,
                "chargingMode": order.charging.charging_mode(),
                "orderId": order.order_id,
                "orderLineId": order.line_id,
                "productInfo": [{ "linearValue": "1", "productId": order.product_id, "skuCode": "emu-sku-1" }],
            }]),
        );
        body.sort_keys();
    }
    body
}

/// `queryInstance` for one id or a comma-separated list.
pub fn query(instance_ids: &str) -> Map<String, Value> {
    object(json!({ "activity": "queryInstance", "instanceId": instance_ids, "testFlag": TEST_FLAG }))
}

/// `refreshInstance` under the renewal order `(orderId, orderLineId)`, with `productId` when given and
/// `expireTime` as written (14 or 17 digits).
pub fn refresh(
    instance_id: &str,
    order: (&str, &str),
    product_id: Option<&str>,
    scene: &str,
    expire_time: &str,
) -> Map<String, Value> {
    let mut body = object(json!({
        "activity": "refreshInstance",
        "expireTime": expire_time,
        "instanceId": instance_id,
        "orderId": order.0,
        "orderLineId": order.1,
        "scene": scene,
        "testFlag": TEST_FLAG,
    }));
    if let Some(product_id) = product_id {
        body.insert("productId".into(), Value::from(product_id));
        body.sort_keys();
    }
    body
}

/// `updateInstanceStatus` with `FREEZE` or `UNFREEZE`.
pub fn status(instance_id: &str, status: &str) -> Map<String, Value> {
    object(json!({
        "activity": "updateInstanceStatus",
        "instanceId": instance_id,
        "status": status,
        "testFlag": TEST_FLAG,
    }))
}

/// `upgradeInstance` under the upgrade order `(orderId, orderLineId)`.
pub fn upgrade(instance_id: &str, order: (&str, &str)) -> Map<String, Value> {
    object(json!({
        "activity": "upgradeInstance",
        "instanceId": instance_id,
        "orderId": order.0,
        "orderLineId": order.1,
        "testFlag": TEST_FLAG,
    }))
}

/// `changeInstanceCheck` towards the specification `product_info` (`linearValue`, `productId`, `skuCode`, …, in
/// sorted order, as the marketplace sends them).
pub fn change_check(instance_id: &str, product_info: Value) -> Map<String, Value> {
    object(json!({
        "activity": "changeInstanceCheck",
        "instanceId": instance_id,
        "productInfo": product_info,
        "testFlag": TEST_FLAG,
    }))
}

/// `orderNotify` for an order line.
pub fn order_notify(order_id: &str, line_id: &str) -> Map<String, Value> {
    object(json!({ "activity": "orderNotify", "orderId": order_id, "orderLineId": line_id, "testFlag": TEST_FLAG }))
}

/// `releaseInstance`, with the unsubscription order `(orderId, orderLineId)` when there is one.
pub fn release(instance_id: &str, order: Option<(&str, &str)>) -> Map<String, Value> {
    let mut body = object(json!({ "activity": "releaseInstance", "instanceId": instance_id, "testFlag": TEST_FLAG }));
    if let Some((order_id, line_id)) = order {
        body.insert("orderId".into(), Value::from(order_id));
        body.insert("orderLineId".into(), Value::from(line_id));
        body.sort_keys();
    }
    body
}

/// The documented V2 example for `activity`, with this `businessId`; `None` for an activity without one.
pub fn documented_v2(activity: &str, business_id: &str) -> Option<Map<String, Value>> {
    let order = (DOC_ORDER_ID, DOC_ORDER_LINE_ID);
    Some(match activity {
        "newInstance" => new_instance(
            &OrderLine::new(DOC_ORDER_ID, DOC_ORDER_LINE_ID, DOC_PRODUCT_ID, Charging::Period),
            business_id,
        ),
        "queryInstance" => query(DOC_INSTANCE_ID),
        "refreshInstance" => refresh(DOC_INSTANCE_ID, order, Some(DOC_PRODUCT_ID), "RENEWAL", "20301124023618256"),
        "updateInstanceStatus" => status(DOC_INSTANCE_ID, "FREEZE"),
        "releaseInstance" => release(DOC_INSTANCE_ID, Some(order)),
        "upgradeInstance" => upgrade(DOC_INSTANCE_ID, order),
        "changeInstanceCheck" => change_check(
            DOC_INSTANCE_ID,
            json!({"linearValue": 50, "productId": "OFFI846204237451911168", "productName": "基础版",
                "skuCode": DOC_SKU_CODE}),
        ),
        "orderNotify" => order_notify(DOC_ORDER_ID, DOC_ORDER_LINE_ID),
        _ => return None,
    })
}

/// The documented V1 query parameters for `activity` (without `timeStamp` and `authToken`); `None` for an
/// activity without an example.
pub fn documented_v1(activity: &str, business_id: &str) -> Option<Vec<(String, String)>> {
    let pairs: Vec<(&str, &str)> = match activity {
        "newInstance" => vec![
            ("activity", activity),
            ("customerId", DOC_TENANT_ID),
            ("customerName", "huaweitest"),
            ("businessId", business_id),
            ("orderId", DOC_ORDER_ID),
            ("skuCode", DOC_SKU_CODE),
            ("productId", DOC_PRODUCT_ID),
            ("testFlag", TEST_FLAG),
            ("expireTime", "20301124023618"),
        ],
        "refreshInstance" => vec![
            ("activity", activity),
            ("orderId", DOC_ORDER_ID),
            ("instanceId", DOC_INSTANCE_ID),
            ("productId", DOC_PRODUCT_ID),
            ("expireTime", "20311124023618"),
            ("testFlag", TEST_FLAG),
        ],
        "expireInstance" | "releaseInstance" => {
            vec![
                ("activity", activity),
                ("instanceId", DOC_INSTANCE_ID),
                ("orderId", DOC_ORDER_ID),
                ("testFlag", TEST_FLAG),
            ]
        }
        "upgrade" => vec![
            ("activity", activity),
            ("instanceId", DOC_INSTANCE_ID),
            ("orderId", DOC_ORDER_ID),
            ("skuCode", DOC_SKU_CODE),
            ("productId", DOC_PRODUCT_ID),
            ("testFlag", TEST_FLAG),
        ],
        "queryInstance" => vec![("activity", activity), ("instanceId", DOC_INSTANCE_ID), ("testFlag", TEST_FLAG)],
        _ => return None,
    };
    Some(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

/// The documented kit body for sync interface `name`; `time_stamp` is the body's `yyyyMMddHHmmssSSS` field.
/// `None` for an unknown interface.
pub fn documented_kit(name: &str, time_stamp: &str) -> Option<Map<String, Value>> {
    let v = match name {
        "tenantSync" => json!({"instanceId": DOC_INSTANCE_ID, "orderId": DOC_ORDER_ID, "tenantId": DOC_TENANT_ID,
            "tenantCode": "huawei", "name": "huaweitest", "domainName": "https://example.tenantaccount.com",
            "flag": 1, "testFlag": 1, "timeStamp": time_stamp}),
        "applicationSync" => json!({"instanceId": DOC_INSTANCE_ID, "tenantId": DOC_TENANT_ID, "appId": "app-001",
            "clientId": "client-001", "clientSecret": "", "flag": 1, "testFlag": 1, "timeStamp": time_stamp}),
        "authSync" => json!({"instanceId": DOC_INSTANCE_ID, "tenantId": DOC_TENANT_ID, "appId": "app-001",
            "userList": [{"userName": "zhangsan", "name": "张三", "orgCode": "10000", "role": "user",
                "enable": "true"}],
            "currentSyncTime": time_stamp, "flag": 1, "testFlag": 1, "timeStamp": time_stamp}),
        "singleOrgSync" => json!({"instanceId": DOC_INSTANCE_ID, "tenantId": DOC_TENANT_ID, "orgCode": "10000",
            "orgName": "开发部", "parentCode": "", "flag": 1, "testFlag": 1, "timeStamp": time_stamp}),
        "allOrgSync" => json!({"instanceId": DOC_INSTANCE_ID, "tenantId": DOC_TENANT_ID,
            "orgInfoList": [{"orgCode": "10000", "orgName": "开发部", "parentCode": ""}],
            "testFlag": 1, "timeStamp": time_stamp}),
        _ => return None,
    };
    Some(object(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::canonical_json::signing_candidates;

    #[test]
    fn every_listed_activity_has_a_documented_sample() {
        for a in V2_ACTIVITIES {
            assert_eq!(documented_v2(a, "b").and_then(|b| b.get("activity").cloned()), Some(Value::from(*a)));
        }
        for a in V1_ACTIVITIES {
            assert!(documented_v1(a, "b").is_some_and(|p| p.iter().any(|(k, v)| k == "activity" && v == a)));
        }
        for n in KIT_NAMES {
            assert!(documented_kit(n, "20220413093539534").is_some(), "{n}");
        }
        assert!(documented_v2("nope", "b").is_none());
    }

    #[test]
    fn v2_bodies_are_identical_under_every_signing_candidate() {
        let order = OrderLine::new("o", "o-1", "p", Charging::OnDemand);
        let mut bodies = vec![
            new_instance(&order, "b"),
            change_check("i", json!({"productId": "p", "skuCode": "s"})),
            release("i", Some(("o", "l"))),
        ];
        bodies.extend(V2_ACTIVITIES.iter().filter_map(|a| documented_v2(a, "b")));
        for body in bodies {
            let raw = serde_json::to_vec(&body).unwrap_or_default();
            assert_eq!(raw, encode(&body), "keys not sorted: {}", String::from_utf8_lossy(&raw));
            assert_eq!(signing_candidates(&raw).unwrap_or_default(), vec![raw.clone()]);
        }
        let text = String::from_utf8(encode(&new_instance(&order, "b"))).unwrap_or_default();
        assert!(text.contains(r#""chargingMode":"ON_DEMAND""#) && text.contains(r#""productId":"p""#));
    }

    #[test]
    fn period_new_instance_is_the_documented_example() {
        let body = documented_v2("newInstance", "87b94795-0603-4e24-8ae5-69420d60e3c8").expect("sample");
        assert_eq!(
            encode(&body),
            br#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#
        );
    }
}
