//! The canned orders of the nine documented mock order IDs (protocol §9.3).
//!
//! `MOCKPERIODYEARNEW` is the response recorded by the official demo, verbatim. The others are made up to match
//! their scenario: a distinct `productId` (`OFFI-<order id>`) and `skuCode` each, the `chargingMode` and
//! `orderType` their name says, period fields only for period and package orders, the same buyer.

use serde_json::{Value, json};

/// The recorded answer for `MOCKPERIODYEARNEW` (§9.3), byte for byte.
pub(crate) const RECORDED_PERIOD_YEAR_NEW: &str = r#"{"resultCode":"MKT.0000","resultMsg":"Success","orderInfo":{"orderId":"MOCKPERIODYEARNEW","orderType":"NEW","createTime":"20241121090846","orderLine":[{"orderLineId":"MOCKPERIODYEARNEW-000001","chargingMode":"PERIOD","periodType":"year","periodNumber":1,"expireTime":"20251121235959","productInfo":[{"productId":"OFFI846204237451911168","skuCode":"0a4d1578-5295-46a7-92d4-7c803dccc51d","linearValue":50,"productName":"MOCK测试商品,测试规格,基础版,包周期"}],"extendParams":[{"name":"emailDomainName","value":"test.xxxx.com"},{"name":"ip","value":"127.0.0.1"}],"currency":"100","currencyAfterDiscount":"100"}],"buyerInfo":{"mobilePhone":"18688888888","email":null,"customerId":"459bbbec25d24749b2eb83be37b602a8","customerName":"mock_user_01","customerRealName":"测试用户1","customerType":0,"userId":null,"userName":null},"extendParams":[]}}"#;

/// How a made-up order differs from the others.
struct Scenario {
    order_id: &'static str,
    order_type: &'static str,
    charging_mode: &'static str,
    /// `periodType`, `periodNumber`, `expireTime`; `None`: all three `null` (on-demand and one-time orders).
    period: Option<(&'static str, u32, &'static str)>,
    /// `currency` and `currencyAfterDiscount`.
    price: &'static str,
    /// Ends `productName`.
    label: &'static str,
}

const SCENARIOS: [Scenario; 8] = [
    Scenario {
        order_id: "MOCKONETIMENEW",
        order_type: "NEW",
        charging_mode: "ONE_TIME",
        period: None,
        price: "200",
        label: "一次性",
    },
    Scenario {
        order_id: "MOCKONDEMAND",
        order_type: "NEW",
        charging_mode: "ON_DEMAND",
        period: None,
        price: "0",
        label: "按需",
    },
    Scenario {
        order_id: "MOCKONDEMANDPKG",
        order_type: "NEW",
        charging_mode: "ON_DEMAND_PKG",
        period: Some(("month", 1, "20241221235959")),
        price: "50",
        label: "按需套餐包",
    },
    Scenario {
        order_id: "MOCKPERIODDAYTRIAL",
        order_type: "TRIAL",
        charging_mode: "PERIOD",
        period: Some(("day", 1, "20241122235959")),
        price: "0",
        label: "按天试用",
    },
    Scenario {
        order_id: "MOCKMONTYTRIALTOFORMAL",
        order_type: "TRIAL_TO_FORMAL",
        charging_mode: "PERIOD",
        period: Some(("month", 1, "20241221235959")),
        price: "10",
        label: "包月试用转正",
    },
    Scenario {
        order_id: "MOCKMONTYUNSUBSCRIBE",
        order_type: "UNSUBSCRIBE",
        charging_mode: "PERIOD",
        period: Some(("month", 1, "20241221235959")),
        price: "10",
        label: "包月退订",
    },
    Scenario {
        order_id: "MOCKMONTYRENEW",
        order_type: "RENEW",
        charging_mode: "PERIOD",
        period: Some(("month", 1, "20250121235959")),
        price: "10",
        label: "包月续费",
    },
    Scenario {
        order_id: "MOCKMONTYCHANGE",
        order_type: "CHANGE",
        charging_mode: "PERIOD",
        period: Some(("month", 1, "20241221235959")),
        price: "20",
        label: "包月变更",
    },
];

/// The `orderInfo` of a made-up order.
fn order_info(s: &Scenario) -> Value {
    let (period_type, period_number, expire_time) = match s.period {
        Some((t, n, e)) => (json!(t), json!(n), json!(e)),
        None => (Value::Null, Value::Null, Value::Null),
    };
    let sku = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("mock-sku:{}", s.order_id).as_bytes());
    json!({
        "orderId": s.order_id,
        "orderType": s.order_type,
        "createTime": "20241121090846",
        "orderLine": [{
            "orderLineId": format!("{}-000001", s.order_id),
            "chargingMode": s.charging_mode,
            "periodType": period_type,
            "periodNumber": period_number,
            "expireTime": expire_time,
            "productInfo": [{
                "productId": format!("OFFI-{}", s.order_id),
                "skuCode": sku.hyphenated().to_string(),
                "linearValue": null,
                "productName": format!("MOCK测试商品,测试规格,基础版,{}", s.label),
            }],
            "extendParams": [{ "name": "emailDomainName", "value": "test.xxxx.com" }, { "name": "ip", "value": "127.0.0.1" }],
            "currency": s.price,
            "currencyAfterDiscount": s.price,
        }],
        "buyerInfo": {
            "mobilePhone": "18688888888",
            "email": null,
            "customerId": "459bbbec25d24749b2eb83be37b602a8",
            "customerName": "mock_user_01",
            "customerRealName": "测试用户1",
            "customerType": 0,
            "userId": null,
            "userName": null,
        },
        "extendParams": [],
    })
}

/// Every canned order: `(order id, orderInfo)`.
pub(crate) fn canned() -> Vec<(String, Value)> {
    let recorded: Value = serde_json::from_str(RECORDED_PERIOD_YEAR_NEW).unwrap_or_default();
    let mut orders = vec![("MOCKPERIODYEARNEW".to_owned(), recorded.get("orderInfo").cloned().unwrap_or_default())];
    orders.extend(SCENARIOS.iter().map(|s| (s.order_id.to_owned(), order_info(s))));
    orders
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nine_documented_ids_each_once() {
        let orders = canned();
        let ids: Vec<&str> = orders.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, koogallery_core::wire::order::MOCK_ORDER_IDS);
        let mut products: Vec<&str> =
            orders.iter().filter_map(|(_, o)| o["orderLine"][0]["productInfo"][0]["productId"].as_str()).collect();
        products.sort_unstable();
        products.dedup();
        assert_eq!(products.len(), 9, "a distinct productId per order");
        for (id, order) in &orders {
            assert_eq!(order["orderId"], json!(id));
            assert_eq!(order["orderLine"][0]["orderLineId"], json!(format!("{id}-000001")));
        }
    }

    #[test]
    fn the_recorded_order_is_kept_verbatim() {
        let orders = canned();
        let answer = json!({ "resultCode": "MKT.0000", "resultMsg": "Success", "orderInfo": orders[0].1 });
        assert_eq!(serde_json::to_string(&answer).expect("serialises"), RECORDED_PERIOD_YEAR_NEW);
    }
}
