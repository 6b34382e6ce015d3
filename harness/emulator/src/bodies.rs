//! Request bodies as KooGallery sends them: compact JSON with keys sorted at every level.
//!
//! Sorted, compact bytes are the same under every §4.1 signing candidate (raw, top-level sorted, fully sorted),
//! so a conforming endpoint accepts them whichever candidate it hashes. Every emulator request is a debug request
//! (`testFlag` `"1"`), like the seller center's debugging tool, so a run never touches production records.

use koogallery_core::signing::canonical_json::sorted_compact;
use koogallery_core::wire::time::{Precision, format_compact_utc};
use serde_json::{Value, json};

/// `testFlag` of every emulator request.
pub(crate) const TEST_FLAG: &str = "1";

/// Serialises a body the way the marketplace does.
pub(crate) fn encode(v: &Value) -> Vec<u8> {
    sorted_compact(v)
}

/// How a product is charged; one-time and on-demand orders carry it in the order-in-body `orderInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// 包周期: the documented body, without order details.
    Period,
    /// 按次.
    OneTime,
    /// 按需: one instance per order and product.
    OnDemand,
}

impl Style {
    /// The name used in report lines.
    pub fn name(self) -> &'static str {
        match self {
            Style::Period => "period",
            Style::OneTime => "one-time",
            Style::OnDemand => "on-demand",
        }
    }

    fn charging_mode(self) -> &'static str {
        match self {
            Style::Period => "PERIOD",
            Style::OneTime => "ONE_TIME",
            Style::OnDemand => "ON_DEMAND",
        }
    }
}

/// An order line the emulator buys. Ids embed the run tag, so runs never collide in the endpoint's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Order {
    pub order_id: String,
    pub line_id: String,
    pub product_id: String,
    pub style: Style,
}

impl Order {
    /// `EMU<run><tag>` with line `…-000001`.
    pub fn new(run: &str, tag: &str, style: Style) -> Self {
        let order_id = format!("EMU{run}{tag}");
        Self { line_id: format!("{order_id}-000001"), product_id: format!("EMUPROD{run}{tag}"), order_id, style }
    }

    /// A follow-up order of this one (renewal, upgrade, unsubscription): `<order>-<suffix>`, line `…-000001`.
    pub fn follow_up(&self, suffix: &str) -> (String, String) {
        let order = format!("{}-{suffix}", self.order_id);
        let line = format!("{order}-000001");
        (order, line)
    }
}

/// `newInstance` for `order` with this `businessId`.
pub(crate) fn new_instance(order: &Order, business_id: &str) -> Vec<u8> {
    let mut body = json!({
        "activity": "newInstance",
        "businessId": business_id,
        "orderId": order.order_id,
        "orderLineId": order.line_id,
        "testFlag": TEST_FLAG,
    });
    if order.style != Style::Period
        && let Some(map) = body.as_object_mut()
    {
        map.insert(
            "orderInfo".into(),
            json!([{
                "businessId": business_id,
                "chargingMode": order.style.charging_mode(),
                "orderId": order.order_id,
                "orderLineId": order.line_id,
                "productInfo": [{ "linearValue": "1", "productId": order.product_id, "skuCode": "emu-sku-1" }],
            }]),
        );
    }
    encode(&body)
}

/// `queryInstance` for a comma-separated id list.
pub(crate) fn query(instance_ids: &str) -> Vec<u8> {
    encode(&json!({ "activity": "queryInstance", "instanceId": instance_ids, "testFlag": TEST_FLAG }))
}

/// `refreshInstance` with `expireTime` in the 14-digit (`long == false`) or 17-digit form.
pub(crate) fn refresh(instance_id: &str, order: (&str, &str), scene: &str, expire_ms: u64, long: bool) -> Vec<u8> {
    let precision = if long { Precision::Millis17 } else { Precision::Seconds14 };
    encode(&json!({
        "activity": "refreshInstance",
        "expireTime": format_compact_utc(expire_ms, precision),
        "instanceId": instance_id,
        "orderId": order.0,
        "orderLineId": order.1,
        "scene": scene,
        "testFlag": TEST_FLAG,
    }))
}

/// `updateInstanceStatus` with `FREEZE` or `UNFREEZE`.
pub(crate) fn status(instance_id: &str, status: &str) -> Vec<u8> {
    encode(&json!({
        "activity": "updateInstanceStatus",
        "instanceId": instance_id,
        "status": status,
        "testFlag": TEST_FLAG,
    }))
}

/// `upgradeInstance` under a new order.
pub(crate) fn upgrade(instance_id: &str, order: (&str, &str)) -> Vec<u8> {
    encode(&json!({
        "activity": "upgradeInstance",
        "instanceId": instance_id,
        "orderId": order.0,
        "orderLineId": order.1,
        "testFlag": TEST_FLAG,
    }))
}

/// `changeInstanceCheck` towards another specification of `product_id`.
pub(crate) fn change_check(instance_id: &str, product_id: &str) -> Vec<u8> {
    encode(&json!({
        "activity": "changeInstanceCheck",
        "instanceId": instance_id,
        "productInfo": { "linearValue": "2", "productId": product_id, "skuCode": "emu-sku-2" },
        "testFlag": TEST_FLAG,
    }))
}

/// `orderNotify` for an order line.
pub(crate) fn order_notify(order_id: &str, line_id: &str) -> Vec<u8> {
    encode(&json!({ "activity": "orderNotify", "orderId": order_id, "orderLineId": line_id, "testFlag": TEST_FLAG }))
}

/// `releaseInstance`, with the unsubscription order when there is one.
pub(crate) fn release(instance_id: &str, order: Option<(&str, &str)>) -> Vec<u8> {
    let mut body = json!({ "activity": "releaseInstance", "instanceId": instance_id, "testFlag": TEST_FLAG });
    if let (Some((order_id, line_id)), Some(map)) = (order, body.as_object_mut()) {
        map.insert("orderId".into(), Value::from(order_id));
        map.insert("orderLineId".into(), Value::from(line_id));
    }
    encode(&body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use koogallery_core::signing::canonical_json::signing_candidates;

    #[test]
    fn period_body_is_the_documented_shape() {
        let order = Order::new("1", "P", Style::Period);
        let body = new_instance(&order, "b");
        assert_eq!(
            body,
            br#"{"activity":"newInstance","businessId":"b","orderId":"EMU1P","orderLineId":"EMU1P-000001","testFlag":"1"}"#
        );
    }

    #[test]
    fn nested_bodies_are_identical_under_every_signing_candidate() {
        let order = Order::new("1", "D", Style::OnDemand);
        for body in [new_instance(&order, "b"), change_check("i", "p"), release("i", Some(("o", "l")))] {
            let candidates = signing_candidates(&body).unwrap_or_default();
            assert_eq!(candidates, vec![body.clone()], "{}", String::from_utf8_lossy(&body));
        }
        let text = String::from_utf8(new_instance(&order, "b")).unwrap_or_default();
        assert!(text.contains(r#""chargingMode":"ON_DEMAND""#) && text.contains(r#""productId":"EMUPROD1D""#));
    }

    #[test]
    fn refresh_expire_time_has_both_documented_lengths() {
        let ms = 1_680_508_066_618;
        let short = String::from_utf8(refresh("i", ("o", "l"), "RENEWAL", ms, false)).unwrap_or_default();
        let long = String::from_utf8(refresh("i", ("o", "l"), "RENEWAL", ms, true)).unwrap_or_default();
        assert!(short.contains(r#""expireTime":"20230403074746""#), "{short}");
        assert!(long.contains(r#""expireTime":"20230403074746618""#), "{long}");
    }
}
