//! The marketplace's query-order answer (§9.3), read leniently.
//!
//! V2 `newInstance` and `upgradeInstance` say nothing about what was bought; the merchant asks query order. Its
//! field types and lengths are not fully published (`customerType` is a number, `linearValue` a number,
//! `email` may be `null`), so every field here is optional, `null` is accepted anywhere, numbers and strings are
//! interchangeable, lists may arrive as strings holding JSON, and unknown fields are ignored. A marketplace that adds
//! or retypes a field must not break provisioning.
//!
//! 1. Call `GET /api/mkp-openapi-public/global/v1/order/query?orderId=…&orderLineId=…` (AK/SK signed).
//! 2. Parse the body with `serde_json::from_slice::<QueryOrderResponse>`.
//! 3. Check [`QueryOrderResponse::is_success`], then read [`OrderInfo::line`] for the order line.
//!
//! ```
//! use koogallery_core::wire::order::{ChargingMode, QueryOrderResponse};
//!
//! let body = r#"{"resultCode":"MKT.0000","orderInfo":{"orderId":"O1","orderLine":[
//!     {"orderLineId":"O1-000001","chargingMode":"ON_DEMAND","periodNumber":"1","productInfo":[{"productId":"P"}]}]}}"#;
//! let resp: QueryOrderResponse = serde_json::from_str(body).unwrap();
//! assert!(resp.is_success());
//! let line = resp.order_info.as_ref().and_then(|o| o.line("O1-000001")).unwrap();
//! assert_eq!(line.charging_mode, Some(ChargingMode::OnDemand));
//! assert_eq!(line.period_number, Some(1));
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::wire::lenient::{self, wire_enum};

/// The query-order success code.
pub const QUERY_ORDER_SUCCESS: &str = "MKT.0000";

wire_enum! {
    /// How an order line is charged. V1 sends `1` (period) / `3` (one-time); query order sends the names.
    pub enum ChargingMode {
        /// 包周期: a prepaid period (year, month, day, hour).
        Period => "PERIOD" | "1",
        /// 按次: one-time purchase.
        OneTime => "ONE_TIME" | "3",
        /// 按需: pay per use; idempotency also keys on `orderId` + `productId` (§2.3).
        OnDemand => "ON_DEMAND",
        /// 按需套餐包: on-demand package.
        OnDemandPkg => "ON_DEMAND_PKG",
    }
}

impl ChargingMode {
    /// The V1 integer code (`1` period, `3` one-time); other numbers are kept as unknown.
    pub fn from_v1_code(code: i64) -> Self {
        match code {
            1 => ChargingMode::Period,
            3 => ChargingMode::OneTime,
            other => ChargingMode::Unknown(other.to_string()),
        }
    }
}

wire_enum! {
    /// Why the order exists.
    pub enum OrderType {
        /// A new purchase.
        New => "NEW",
        /// A trial.
        Trial => "TRIAL",
        /// A trial turned commercial.
        TrialToFormal => "TRIAL_TO_FORMAL",
        /// An unsubscription.
        Unsubscribe => "UNSUBSCRIBE",
        /// A renewal.
        Renew => "RENEW",
        /// A specification change.
        Change => "CHANGE",
    }
}

/// A `{name, value}` pair (`extendParams`, V1 `saasExtendParams`). Both parts are kept as text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameValue {
    /// Parameter name (`emailDomainName`, `idNum`, …); `""` when absent.
    #[serde(default, deserialize_with = "string_or_empty")]
    pub name: String,
    /// Parameter value, `None` when absent or `null`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
}

fn string_or_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient::opt_string(d)?.unwrap_or_default())
}

/// The whole query-order answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryOrderResponse {
    /// `MKT.0000` on success.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub result_code: Option<String>,
    /// Human-readable result.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub result_msg: Option<String>,
    /// The order, on success.
    #[serde(default, deserialize_with = "lenient::opt_object_or_string", skip_serializing_if = "Option::is_none")]
    pub order_info: Option<OrderInfo>,
}

impl QueryOrderResponse {
    /// Whether the marketplace answered `MKT.0000`.
    pub fn is_success(&self) -> bool {
        self.result_code.as_deref() == Some(QUERY_ORDER_SUCCESS)
    }
}

/// `orderInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderInfo {
    /// Order ID.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// `NEW`, `TRIAL`, `TRIAL_TO_FORMAL`, `UNSUBSCRIBE`, `RENEW`, `CHANGE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_type: Option<OrderType>,
    /// `yyyyMMddHHmmss`, kept as text.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// The order lines.
    #[serde(default, deserialize_with = "lenient::vec_or_string")]
    pub order_line: Vec<OrderLine>,
    /// The buyer.
    #[serde(default, deserialize_with = "lenient::opt_object_or_string", skip_serializing_if = "Option::is_none")]
    pub buyer_info: Option<BuyerInfo>,
    /// Order-level extension parameters.
    #[serde(default, deserialize_with = "lenient::vec_or_string")]
    pub extend_params: Vec<NameValue>,
}

impl OrderInfo {
    /// The line with this `orderLineId`.
    pub fn line(&self, order_line_id: &str) -> Option<&OrderLine> {
        self.order_line.iter().find(|l| l.order_line_id.as_deref() == Some(order_line_id))
    }
}

/// `orderInfo.orderLine[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// Order line ID.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub order_line_id: Option<String>,
    /// Charging mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_mode: Option<ChargingMode>,
    /// `year`, `month`, `day`, `hour`, … kept as text.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub period_type: Option<String>,
    /// Number of periods.
    #[serde(default, deserialize_with = "lenient::opt_i64", skip_serializing_if = "Option::is_none")]
    pub period_number: Option<i64>,
    /// Expiry, `yyyyMMddHHmmss` (UTC) in the mock; kept as text.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    /// What was bought.
    #[serde(default, deserialize_with = "lenient::vec_or_string")]
    pub product_info: Vec<OrderProduct>,
    /// Line-level extension parameters (`emailDomainName`, `ip`, …).
    #[serde(default, deserialize_with = "lenient::vec_or_string")]
    pub extend_params: Vec<NameValue>,
    /// Price as sent (text).
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Price after discount as sent (text).
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub currency_after_discount: Option<String>,
}

impl OrderLine {
    /// The first product's ID — the on-demand idempotency key's second half.
    pub fn product_id(&self) -> Option<&str> {
        self.product_info.iter().find_map(|p| p.product_id.as_deref())
    }
}

/// `orderLine[].productInfo[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderProduct {
    /// Product ID.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// SKU (specification) code.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub sku_code: Option<String>,
    /// Linear attribute value (`50`), kept as text because its type is not published.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub linear_value: Option<String>,
    /// Product name (may be Chinese).
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
}

/// `orderInfo.buyerInfo`. `Debug` hides the phone number and e-mail (personal data never reaches logs).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyerInfo {
    /// Mobile phone (plain text in query order).
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub mobile_phone: Option<String>,
    /// E-mail.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Huawei Cloud account ID.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Account name.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// Real name.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub customer_real_name: Option<String>,
    /// Customer type; a number whose meaning is unpublished, kept as text.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub customer_type: Option<String>,
    /// IAM user ID.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// IAM user name.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

impl fmt::Debug for BuyerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("BuyerInfo")
            .field("mobile_phone", &redact(&self.mobile_phone))
            .field("email", &redact(&self.email))
            .field("customer_id", &self.customer_id)
            .field("customer_name", &self.customer_name)
            .field("customer_real_name", &redact(&self.customer_real_name))
            .field("customer_type", &self.customer_type)
            .field("user_id", &self.user_id)
            .field("user_name", &self.user_name)
            .finish()
    }
}

/// The mock order IDs the order-query API answers with canned orders (§9.3); the line ID is `<id>-000001`.
pub const MOCK_ORDER_IDS: [&str; 9] = [
    "MOCKPERIODYEARNEW",
    "MOCKONETIMENEW",
    "MOCKONDEMAND",
    "MOCKONDEMANDPKG",
    "MOCKPERIODDAYTRIAL",
    "MOCKMONTYTRIALTOFORMAL",
    "MOCKMONTYUNSUBSCRIBE",
    "MOCKMONTYRENEW",
    "MOCKMONTYCHANGE",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charging_mode_from_names_and_v1_codes() {
        assert_eq!(ChargingMode::parse("PERIOD"), ChargingMode::Period);
        assert_eq!(ChargingMode::parse("on_demand"), ChargingMode::OnDemand);
        assert_eq!(ChargingMode::parse("1"), ChargingMode::Period);
        assert_eq!(ChargingMode::from_v1_code(3), ChargingMode::OneTime);
        assert_eq!(ChargingMode::from_v1_code(2), ChargingMode::Unknown("2".into()));
        let m: Option<ChargingMode> = serde_json::from_str("3").ok();
        assert_eq!(m, Some(ChargingMode::OneTime));
        assert_eq!(serde_json::to_string(&ChargingMode::OnDemandPkg).ok().as_deref(), Some(r#""ON_DEMAND_PKG""#));
        assert_eq!(ChargingMode::parse("METERED").as_str(), "METERED");
    }

    #[test]
    fn buyer_debug_hides_contact_data() {
        let b =
            BuyerInfo { mobile_phone: Some("18688888888".into()), email: Some("a@b.c".into()), ..Default::default() };
        let text = format!("{b:?}");
        assert!(!text.contains("18688888888") && !text.contains("a@b.c"));
        assert!(text.contains("[REDACTED]"));
    }
}
