//! Basic SaaS interface V2 (§2): the request bodies the marketplace POSTs to the production URL, and the answers.
//!
//! Every activity arrives at one URL with its name in the body's `activity`. [`parse_v2_request`] validates the whole
//! body against the documentation's tables — mandatory fields, maximum lengths (in characters), enum values,
//! `testFlag` as `"0"`/`"1"` or a number — and returns one typed request, or a [`FieldError`] naming the first
//! field at fault, which the handler answers with `000002`. Call it only after the signature has been verified.
//!
//! 1. Verify the signature (`signing::v2`).
//! 2. `parse_v2_request(body)`; on `Err(e)` answer `000002` with `e.to_string()` as `resultMsg`.
//! 3. Match on [`V2Request`]; kit activities that reach the production URL come out as [`V2Request::Kit`].
//! 4. Answer with one of the response structs, serialised by [`crate::wire::json_out::to_ascii_json`].
//!
//! ```
//! use koogallery_core::wire::json_out::to_ascii_json;
//! use koogallery_core::wire::result_code::ResultCode;
//! use koogallery_core::wire::v2::{parse_v2_request, NewInstanceResponse, V2Request};
//!
//! let body = br#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;
//! let V2Request::NewInstance(req) = parse_v2_request(body).unwrap() else { panic!("newInstance") };
//! assert!(req.test_flag.is_debug());
//! let answer = NewInstanceResponse::success("i-1".into());
//! assert_eq!(to_ascii_json(&answer), br#"{"resultCode":"000000","resultMsg":"success","instanceId":"i-1"}"#);
//!
//! let err = parse_v2_request(br#"{"activity":"newInstance","orderId":"CS1","businessId":"b"}"#).unwrap_err();
//! assert_eq!(err.to_string(), "orderLineId is missing");
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::wire::kit::{self, KitRequest};
use crate::wire::lenient::wire_enum;
use crate::wire::result_code::ResultCode;
pub use crate::wire::test_flag::TestFlag;
use crate::wire::time;
use crate::wire::validate::{self, FieldError, Fields, check_len};

/// Maximum length of `activity` (20 or 32 depending on the page; the larger is used).
pub const MAX_ACTIVITY: usize = 32;
/// Maximum length of an order, order-line, business or instance ID.
pub const MAX_ID: usize = 64;
/// Maximum number of instance IDs in one `queryInstance`.
pub const MAX_QUERY_IDS: usize = 100;

wire_enum! {
    /// The body's `activity`: the eight basic activities and the kit names the official demo also dispatches.
    pub enum Activity {
        /// New purchase.
        NewInstance => "newInstance",
        /// Poll for the provisioning result.
        QueryInstance => "queryInstance",
        /// Renewal, trial → formal, renewal cancellation, renewal with change.
        RefreshInstance => "refreshInstance",
        /// Freeze / unfreeze.
        UpdateInstanceStatus => "updateInstanceStatus",
        /// Release.
        ReleaseInstance => "releaseInstance",
        /// Specification upgrade.
        UpgradeInstance => "upgradeInstance",
        /// Pre-check of a specification change.
        ChangeInstanceCheck => "changeInstanceCheck",
        /// Order notification.
        OrderNotify => "orderNotify",
        /// Kit: tenant sync.
        TenantSync => "tenantSync",
        /// Kit: application sync.
        ApplicationSync => "applicationSync",
        /// Kit: user authorisation sync.
        AuthSync => "authSync",
        /// Kit: incremental organisation sync.
        SingleOrgSync => "singleOrgSync",
        /// Kit: full organisation sync.
        AllOrgSync => "allOrgSync",
    }
}

impl Activity {
    /// The kit sync this activity names, if it is one.
    pub fn kit_sync(&self) -> Option<kit::KitSync> {
        match self {
            Activity::TenantSync => Some(kit::KitSync::TenantSync),
            Activity::ApplicationSync => Some(kit::KitSync::ApplicationSync),
            Activity::AuthSync => Some(kit::KitSync::AuthSync),
            Activity::SingleOrgSync => Some(kit::KitSync::SingleOrgSync),
            Activity::AllOrgSync => Some(kit::KitSync::AllOrgSync),
            _ => None,
        }
    }
}

wire_enum! {
    /// `refreshInstance` `scene`. Unknown scenes are accepted (the expiry is still updated, §2.5).
    pub enum Scene {
        /// Trial turned commercial.
        TrialToFormal => "TRIAL_TO_FORMAL",
        /// Renewal.
        Renewal => "RENEWAL",
        /// Renewal cancelled (退续订).
        UnsubscribeRenewalPeriod => "UNSUBSCRIBE_RENEWAL_PERIOD",
        /// Renewal with a specification change (newer CN pages only).
        RenewalChange => "RENEWAL_CHANGE",
    }
}

/// `updateInstanceStatus` `status`. Exactly `FREEZE` / `UNFREEZE` (not the `FROZEN`/`UNFROZEN` some community code
/// uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceStatusChange {
    /// Freeze on expiry; data must be kept until release.
    Freeze,
    /// Unfreeze after a renewal.
    Unfreeze,
}

impl InstanceStatusChange {
    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatusChange::Freeze => "FREEZE",
            InstanceStatusChange::Unfreeze => "UNFREEZE",
        }
    }

    /// Reads `FREEZE` / `UNFREEZE` (ASCII case ignored).
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("FREEZE") {
            Some(InstanceStatusChange::Freeze)
        } else if s.eq_ignore_ascii_case("UNFREEZE") {
            Some(InstanceStatusChange::Unfreeze)
        } else {
            None
        }
    }
}

/// `newInstance` (§2.3). The order-details-in-body variant's `buyerInfo` / `orderInfo` are kept raw (decoded from a
/// JSON string when sent as one): query order stays the source of truth. `Debug` hides `buyerInfo` (contact data).
#[derive(Clone, PartialEq)]
pub struct NewInstance {
    /// KooGallery order ID.
    pub order_id: String,
    /// Order line ID; with `order_id`, the idempotency key.
    pub order_line_id: String,
    /// Different on every request, retries included: never an idempotency key.
    pub business_id: String,
    /// Debug or production.
    pub test_flag: TestFlag,
    /// `buyerInfo` of the order-in-body variant.
    pub buyer_info: Option<Value>,
    /// `orderInfo` of the order-in-body variant (an array of order lines).
    pub order_info: Option<Value>,
}

impl fmt::Debug for NewInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewInstance")
            .field("order_id", &self.order_id)
            .field("order_line_id", &self.order_line_id)
            .field("business_id", &self.business_id)
            .field("test_flag", &self.test_flag)
            .field("buyer_info", &self.buyer_info.as_ref().map(|_| "[REDACTED]"))
            .field("order_info", &self.order_info)
            .finish()
    }
}

/// `queryInstance` (§2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInstance {
    /// The requested IDs in request order (1 to 100), split from the comma-separated `instanceId`.
    pub instance_ids: Vec<String>,
    /// Debug or production.
    pub test_flag: TestFlag,
}

/// `refreshInstance` (§2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshInstance {
    /// Why the expiry changes.
    pub scene: Scene,
    /// The commercial / renewal / cancelled order; the idempotency key.
    pub order_id: String,
    /// Its order line.
    pub order_line_id: String,
    /// The instance concerned.
    pub instance_id: String,
    /// New product ID, when the billing-period type changes or on trial → formal.
    pub product_id: Option<String>,
    /// New expiry, ms since the epoch (from 14 or 17 digits, UTC).
    pub expire_time_ms: u64,
    /// `expireTime` as received.
    pub expire_time_raw: String,
    /// Debug or production.
    pub test_flag: TestFlag,
}

/// `updateInstanceStatus` (§2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateInstanceStatus {
    /// The instance concerned.
    pub instance_id: String,
    /// Freeze or unfreeze.
    pub status: InstanceStatusChange,
    /// Debug or production.
    pub test_flag: TestFlag,
}

/// `releaseInstance` (§2.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInstance {
    /// The instance to release.
    pub instance_id: String,
    /// The unsubscription order, when the release follows an unsubscription.
    pub order_id: Option<String>,
    /// Its order line.
    pub order_line_id: Option<String>,
    /// Debug or production.
    pub test_flag: TestFlag,
}

/// `upgradeInstance` (§2.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeInstance {
    /// The instance (unchanged by the upgrade).
    pub instance_id: String,
    /// The new upgrade order; the idempotency key.
    pub order_id: String,
    /// Its order line.
    pub order_line_id: String,
    /// Debug or production.
    pub test_flag: TestFlag,
}

/// `changeInstanceCheck` `productInfo`: fields are unpublished; the likely ones are read, the rest kept.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProductInfo {
    /// Target product ID.
    pub product_id: Option<String>,
    /// Target SKU code.
    pub sku_code: Option<String>,
    /// Target linear value, as text.
    pub linear_value: Option<String>,
    /// Every other field, as received.
    pub extra: Map<String, Value>,
}

/// `changeInstanceCheck` (§2.9).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeInstanceCheck {
    /// The instance to change.
    pub instance_id: String,
    /// The target product / specification (sent as an object or as a string holding one).
    pub product_info: ProductInfo,
    /// Debug or production.
    pub test_flag: TestFlag,
}

/// `orderNotify` (§2.10). `testFlag` is mandatory here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderNotify {
    /// Order ID.
    pub order_id: String,
    /// Order line ID.
    pub order_line_id: String,
    /// Debug or production.
    pub test_flag: TestFlag,
}

/// One validated V2 request.
#[derive(Debug, Clone, PartialEq)]
pub enum V2Request {
    /// `newInstance`.
    NewInstance(NewInstance),
    /// `queryInstance`.
    QueryInstance(QueryInstance),
    /// `refreshInstance`.
    RefreshInstance(RefreshInstance),
    /// `updateInstanceStatus`.
    UpdateInstanceStatus(UpdateInstanceStatus),
    /// `releaseInstance`.
    ReleaseInstance(ReleaseInstance),
    /// `upgradeInstance`.
    UpgradeInstance(UpgradeInstance),
    /// `changeInstanceCheck`.
    ChangeInstanceCheck(ChangeInstanceCheck),
    /// `orderNotify`.
    OrderNotify(OrderNotify),
    /// A kit sync body that arrived at the production URL; dispatch it to the kit handler (§2.2).
    Kit(KitRequest),
}

impl V2Request {
    /// The activity name, for logs and dispatch.
    pub fn activity_name(&self) -> &'static str {
        match self {
            V2Request::NewInstance(_) => "newInstance",
            V2Request::QueryInstance(_) => "queryInstance",
            V2Request::RefreshInstance(_) => "refreshInstance",
            V2Request::UpdateInstanceStatus(_) => "updateInstanceStatus",
            V2Request::ReleaseInstance(_) => "releaseInstance",
            V2Request::UpgradeInstance(_) => "upgradeInstance",
            V2Request::ChangeInstanceCheck(_) => "changeInstanceCheck",
            V2Request::OrderNotify(_) => "orderNotify",
            V2Request::Kit(k) => k.sync().as_str(),
        }
    }

    /// The request's `testFlag`.
    pub fn test_flag(&self) -> TestFlag {
        match self {
            V2Request::NewInstance(r) => r.test_flag,
            V2Request::QueryInstance(r) => r.test_flag,
            V2Request::RefreshInstance(r) => r.test_flag,
            V2Request::UpdateInstanceStatus(r) => r.test_flag,
            V2Request::ReleaseInstance(r) => r.test_flag,
            V2Request::UpgradeInstance(r) => r.test_flag,
            V2Request::ChangeInstanceCheck(r) => r.test_flag,
            V2Request::OrderNotify(r) => r.test_flag,
            V2Request::Kit(k) => k.test_flag(),
        }
    }
}

/// Parses and validates a V2 body. Call only after the signature has been verified.
///
/// # Errors
///
/// A [`FieldError`] naming the first invalid field: `body` when the body is not a JSON object, `activity` when it
/// is missing or unknown, otherwise the field of the activity's table that is missing, too long or invalid.
pub fn parse_v2_request(body: &[u8]) -> Result<V2Request, FieldError> {
    let value = validate::parse_object(body)?;
    let f = Fields::new(&value)?;
    let activity = Activity::parse(&f.required("activity", MAX_ACTIVITY)?);
    if let Some(sync) = activity.kit_sync() {
        return kit::parse_kit_fields(sync, &f).map(V2Request::Kit);
    }
    Ok(match activity {
        Activity::NewInstance => V2Request::NewInstance(NewInstance {
            order_id: f.required("orderId", MAX_ID)?,
            order_line_id: f.required("orderLineId", MAX_ID)?,
            business_id: f.required("businessId", MAX_ID)?,
            test_flag: TestFlag::read_optional(&f, "testFlag")?,
            buyer_info: raw_structured(&f, "buyerInfo"),
            order_info: raw_structured(&f, "orderInfo"),
        }),
        Activity::QueryInstance => V2Request::QueryInstance(QueryInstance {
            instance_ids: instance_id_list(&f, "instanceId")?,
            test_flag: TestFlag::read_optional(&f, "testFlag")?,
        }),
        Activity::RefreshInstance => {
            let scene = Scene::parse(&f.required("scene", MAX_ID)?);
            let order_id = f.required("orderId", MAX_ID)?;
            let order_line_id = f.required("orderLineId", MAX_ID)?;
            let instance_id = f.required("instanceId", MAX_ID)?;
            let product_id = f.optional("productId", MAX_ID)?;
            let (expire_time_ms, expire_time_raw) = expire_time(&f, "expireTime")?;
            V2Request::RefreshInstance(RefreshInstance {
                scene,
                order_id,
                order_line_id,
                instance_id,
                product_id,
                expire_time_ms,
                expire_time_raw,
                test_flag: TestFlag::read_optional(&f, "testFlag")?,
            })
        }
        Activity::UpdateInstanceStatus => {
            let instance_id = f.required("instanceId", MAX_ID)?;
            let status = InstanceStatusChange::parse(&f.required("status", 32)?)
                .ok_or_else(|| FieldError::invalid("status", "must be FREEZE or UNFREEZE"))?;
            V2Request::UpdateInstanceStatus(UpdateInstanceStatus {
                instance_id,
                status,
                test_flag: TestFlag::read_optional(&f, "testFlag")?,
            })
        }
        Activity::ReleaseInstance => V2Request::ReleaseInstance(ReleaseInstance {
            instance_id: f.required("instanceId", MAX_ID)?,
            order_id: f.optional("orderId", MAX_ID)?,
            order_line_id: f.optional("orderLineId", MAX_ID)?,
            test_flag: TestFlag::read_optional(&f, "testFlag")?,
        }),
        Activity::UpgradeInstance => V2Request::UpgradeInstance(UpgradeInstance {
            instance_id: f.required("instanceId", MAX_ID)?,
            order_id: f.required("orderId", MAX_ID)?,
            order_line_id: f.required("orderLineId", MAX_ID)?,
            test_flag: TestFlag::read_optional(&f, "testFlag")?,
        }),
        Activity::ChangeInstanceCheck => V2Request::ChangeInstanceCheck(ChangeInstanceCheck {
            instance_id: f.required("instanceId", MAX_ID)?,
            product_info: product_info(&f, "productInfo")?,
            test_flag: TestFlag::read_optional(&f, "testFlag")?,
        }),
        Activity::OrderNotify => V2Request::OrderNotify(OrderNotify {
            order_id: f.required("orderId", MAX_ID)?,
            order_line_id: f.required("orderLineId", MAX_ID)?,
            test_flag: TestFlag::read_required(&f, "testFlag")?,
        }),
        _ => return Err(FieldError::invalid("activity", "unknown activity")),
    })
}

/// Splits a comma-separated `instanceId` list: entries trimmed, empty entries dropped (as Java's `split` drops
/// trailing ones), 1 to 100 IDs of at most 64 characters each.
pub(crate) fn instance_id_list(f: &Fields<'_>, name: &str) -> Result<Vec<String>, FieldError> {
    let path = f.path(name);
    let raw = f.string(name)?.unwrap_or_default();
    let ids: Vec<String> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if ids.is_empty() {
        return Err(FieldError::missing(path));
    }
    if ids.len() > MAX_QUERY_IDS {
        return Err(FieldError::invalid(path, "lists more than 100 instance IDs"));
    }
    for id in &ids {
        check_len(&path, id, MAX_ID)?;
    }
    Ok(ids)
}

/// A mandatory `expireTime`: 14 or 17 digits, UTC (max 20 characters).
pub(crate) fn expire_time(f: &Fields<'_>, name: &str) -> Result<(u64, String), FieldError> {
    let raw = f.required(name, 20)?;
    let ms = time::parse_compact_utc(raw.trim())
        .map_err(|_| FieldError::invalid(f.path(name), "must be yyyyMMddHHmmss or yyyyMMddHHmmssSSS (UTC)"))?;
    Ok((ms, raw))
}

/// A nested structure kept raw: `None` when absent, `null` or `""`; a string holding JSON is decoded; anything else
/// is kept as sent (these fields are informational, never a reason to refuse a purchase).
fn raw_structured(f: &Fields<'_>, name: &str) -> Option<Value> {
    match f.raw(name)? {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => Some(v),
            _ => Some(Value::String(s.clone())),
        },
        other => Some(other.clone()),
    }
}

/// `productInfo` as an object, a string holding one, or a one-element array of objects.
fn product_info(f: &Fields<'_>, name: &str) -> Result<ProductInfo, FieldError> {
    let path = f.path(name);
    let map = match f.raw(name) {
        Some(Value::Array(items)) => match items.first() {
            Some(Value::Object(m)) => Some(m.clone()),
            _ => return Err(FieldError::invalid(path, "must be a JSON object")),
        },
        _ => f.object(name)?,
    };
    let mut map = map.ok_or_else(|| FieldError::missing(path.clone()))?;
    let inner = Fields::nested(&map, &path);
    let info = ProductInfo {
        product_id: inner.optional("productId", MAX_ID)?,
        sku_code: inner.optional("skuCode", MAX_ID)?,
        linear_value: inner.optional("linearValue", MAX_ID)?,
        extra: Map::new(),
    };
    for known in ["productId", "skuCode", "linearValue"] {
        map.remove(known);
    }
    Ok(ProductInfo { extra: map, ..info })
}

/// `{resultCode, resultMsg}`: the answer of every activity without extra fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BasicResponse {
    /// Outcome.
    pub result_code: ResultCode,
    /// Human-readable outcome (ASCII; for `000002`, names the field).
    #[serde(default)]
    pub result_msg: String,
}

impl BasicResponse {
    /// An answer with the code's default message.
    pub fn new(result_code: ResultCode) -> Self {
        BasicResponse { result_code, result_msg: result_code.default_message().to_owned() }
    }

    /// An answer with a specific message.
    pub fn with_message(result_code: ResultCode, result_msg: impl Into<String>) -> Self {
        BasicResponse { result_code, result_msg: result_msg.into() }
    }
}

/// `newInstance` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewInstanceResponse {
    /// Outcome.
    pub result_code: ResultCode,
    /// Human-readable outcome.
    #[serde(default)]
    pub result_msg: String,
    /// The (deterministic) instance ID.
    #[serde(default)]
    pub instance_id: String,
}

impl NewInstanceResponse {
    /// `000000` with the instance ID.
    pub fn success(instance_id: String) -> Self {
        NewInstanceResponse {
            result_code: ResultCode::Success,
            result_msg: ResultCode::Success.default_message().to_owned(),
            instance_id,
        }
    }
}

/// `queryInstance` answer; `info` is always sent (mandatory on the CN page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryInstanceResponse {
    /// Outcome.
    pub result_code: ResultCode,
    /// Human-readable outcome.
    #[serde(default)]
    pub result_msg: String,
    /// One entry per requested, existing instance.
    #[serde(default)]
    pub info: Vec<InstanceInfo>,
}

/// `InstanceInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    /// Instance ID.
    pub instance_id: String,
    /// Login information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_info: Option<AppInfo>,
    /// Usage, for on-demand products only (`usageInfos` accepted when reading).
    #[serde(default, alias = "usageInfos", skip_serializing_if = "Option::is_none")]
    pub usage_info: Option<Vec<UsageInfo>>,
}

/// `AppInfo`: how the buyer logs in. V2 sends `userName` / `password` in plain text by default (§2.4), so `Debug`
/// hides the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    /// Front-end / login URL (max 512).
    pub front_end_url: String,
    /// Admin console URL (max 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    /// Admin account (max 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Admin password (max 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Remark (max 1024); non-ASCII is escaped by [`crate::wire::json_out`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

impl AppInfo {
    /// Checks the documented maximum lengths (512 / 512 / 128 / 128 / 1024), naming `appInfo.<field>`.
    ///
    /// # Errors
    ///
    /// The first field that is too long.
    pub fn check_lengths(&self) -> Result<(), FieldError> {
        check_app_info_lengths(&self.front_end_url, &self.admin_url, &self.user_name, &self.password, &self.memo)
    }
}

pub(crate) fn check_app_info_lengths(
    front_end_url: &str,
    admin_url: &Option<String>,
    user_name: &Option<String>,
    password: &Option<String>,
    memo: &Option<String>,
) -> Result<(), FieldError> {
    check_len("appInfo.frontEndUrl", front_end_url, 512)?;
    let optional = [
        (admin_url, "appInfo.adminUrl", 512),
        (user_name, "appInfo.userName", 128),
        (password, "appInfo.password", 128),
        (memo, "appInfo.memo", 1024),
    ];
    for (value, field, max) in optional {
        if let Some(v) = value {
            check_len(field, v, max)?;
        }
    }
    Ok(())
}

impl fmt::Debug for AppInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppInfo")
            .field("front_end_url", &self.front_end_url)
            .field("admin_url", &self.admin_url)
            .field("user_name", &self.user_name)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("memo", &self.memo)
            .finish()
    }
}

/// `UsageInfo` (V1 and on-demand `queryInstance`, §3.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageInfo {
    /// Related instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_instance_id: Option<String>,
    /// Usage, Double(12,4).
    pub usage_value: f64,
    /// `yyyyMMddHHmmssSSS`, UTC.
    pub statistical_time: String,
    /// Dashboard URL (max 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_names_round_trip() {
        for name in ["newInstance", "orderNotify", "allOrgSync", "changeInstanceCheck"] {
            assert_eq!(Activity::parse(name).as_str(), name);
            assert!(Activity::parse(name).is_known());
        }
        assert_eq!(Activity::parse("resourceStatusChange"), Activity::Unknown("resourceStatusChange".into()));
        assert_eq!(Activity::parse("tenantSync").kit_sync(), Some(kit::KitSync::TenantSync));
    }

    #[test]
    fn app_info_debug_redacts_password() {
        let a = AppInfo {
            front_end_url: "https://x".into(),
            admin_url: None,
            user_name: Some("hwadmin".into()),
            password: Some("Huawei12345".into()),
            memo: None,
        };
        let text = format!("{a:?}");
        assert!(!text.contains("Huawei12345"));
        assert!(text.contains("[REDACTED]"));
    }

    #[test]
    fn app_info_lengths() {
        let mut a =
            AppInfo { front_end_url: "u".repeat(512), admin_url: None, user_name: None, password: None, memo: None };
        assert_eq!(a.check_lengths(), Ok(()));
        a.memo = Some("备".repeat(1025));
        assert_eq!(a.check_lengths(), Err(FieldError::too_long("appInfo.memo", 1024, 1025)));
        a.front_end_url.push('x');
        assert_eq!(a.check_lengths(), Err(FieldError::too_long("appInfo.frontEndUrl", 512, 513)));
    }
}
