//! License products (授权码 2.0, §8): activation and heartbeat through the marketplace OpenAPI, and the three
//! marketplace → merchant license callbacks.
//!
//! The OpenAPI answers carry `license_code_info` as a **string holding JSON**; it is decoded here into
//! [`LicenseCodeInfo`] (and written back the same way, so mocks answer like the marketplace). The callbacks' `activity`
//! names are not published, so [`parse_license_callback`] classifies them by their fields: `license` + `status` is a
//! status change, `license` + `expireTime` an expiry update, `license` alone a release.
//!
//! 1. Activation: build [`ActivateRequest`], [`ActivateRequest::validate`], send it AK/SK-signed, read
//!    [`ActivateResponse`] and judge it with [`LicenseOutcome::classify`] (HTTP status first, then `error_code`).
//! 2. Callbacks: verify the V2 signature, `parse_license_callback(body)`, answer with
//!    [`crate::wire::v2::BasicResponse`] (`000003` when the license is unknown).
//!
//! ```
//! use koogallery_core::wire::license::{ActivateResponse, LicenseOutcome, LicenseStatus};
//!
//! let body = r#"{"error_code":"92020000","error_msg":"success","data":{"license_code_info":"{\"status\":\"ALIVE\",\"expire_time\":\"20230726121646\",\"product_id\":\"12345\",\"amount\":2,\"order_id\":\"CS123\"}"}}"#;
//! let resp: ActivateResponse = serde_json::from_str(body).unwrap();
//! let info = resp.data.and_then(|d| d.license_code_info).unwrap();
//! assert_eq!((info.status, info.amount), (Some(LicenseStatus::Alive), Some(2)));
//! assert_eq!(LicenseOutcome::classify(200, resp.error_code.as_deref()), LicenseOutcome::Success);
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::wire::lenient::{self, wire_enum};
use crate::wire::time;
use crate::wire::v2::{self, InstanceStatusChange, Scene, TestFlag};
use crate::wire::validate::{self, FieldError, Fields, check_len, required_str};

/// Maximum length of a license code.
pub const MAX_LICENSE: usize = 64;

/// Activation body: `{"license":…,"real_effect_time":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivateRequest {
    /// The authorisation code (max 64).
    pub license: String,
    /// When the license takes effect, `yyyyMMddHHmmss` UTC (max 16), not earlier than the order time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_effect_time: Option<String>,
}

impl ActivateRequest {
    /// Checks the documented limits before sending.
    ///
    /// # Errors
    ///
    /// `license` missing or too long; `real_effect_time` too long or not a valid time.
    pub fn validate(&self) -> Result<(), FieldError> {
        required_str("license", Some(self.license.clone()), MAX_LICENSE)?;
        if let Some(t) = &self.real_effect_time {
            check_len("real_effect_time", t, 16)?;
            time::parse_compact_utc(t)
                .map_err(|_| FieldError::invalid("real_effect_time", "must be yyyyMMddHHmmss (UTC)"))?;
        }
        Ok(())
    }
}

/// Heartbeat body: `{"license":…,"heartbeatInfo":{…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    /// The authorisation code (max 64).
    pub license: String,
    /// Optional, being phased out.
    #[serde(rename = "heartbeatInfo", default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_info: Option<HeartbeatInfo>,
}

/// `heartbeatInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatInfo {
    /// The account using the software (max 256).
    pub third_party_account: String,
    /// The software's IP (max 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

impl HeartbeatRequest {
    /// Checks the documented limits before sending.
    ///
    /// # Errors
    ///
    /// The first field missing or too long.
    pub fn validate(&self) -> Result<(), FieldError> {
        required_str("license", Some(self.license.clone()), MAX_LICENSE)?;
        if let Some(info) = &self.heartbeat_info {
            required_str("heartbeatInfo.thirdPartyAccount", Some(info.third_party_account.clone()), 256)?;
            if let Some(ip) = &info.ip {
                check_len("heartbeatInfo.ip", ip, 32)?;
            }
        }
        Ok(())
    }
}

wire_enum! {
    /// A license's state.
    pub enum LicenseStatus {
        /// Active.
        Alive => "ALIVE",
        /// Expired.
        Expired => "EXPIRED",
        /// Released.
        Released => "RELEASED",
    }
}

/// The decoded `license_code_info` string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseCodeInfo {
    /// `ALIVE` after activation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<LicenseStatus>,
    /// Expiry, `yyyyMMddHHmmss`.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    /// Product.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Order.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Licensed amount.
    #[serde(default, deserialize_with = "lenient::opt_i64", skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
}

/// Activation `data`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivateData {
    /// Sent as a string holding JSON; decoded (and re-encoded as a string when serialised).
    #[serde(
        default,
        deserialize_with = "lenient::opt_object_or_string",
        serialize_with = "lenient::ser_as_json_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub license_code_info: Option<LicenseCodeInfo>,
}

/// Activation answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivateResponse {
    /// `92020000` on success.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Message.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    /// Payload.
    #[serde(default, deserialize_with = "lenient::opt_object_or_string", skip_serializing_if = "Option::is_none")]
    pub data: Option<ActivateData>,
}

/// Heartbeat `data` (`LicenseInfo`); unlisted fields are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LicenseInfo {
    /// The code.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub license_code: Option<String>,
    /// `ALIVE`, `EXPIRED`, `RELEASED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<LicenseStatus>,
    /// Activation time.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub activate_time: Option<String>,
    /// Expiry.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Heartbeat answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// `92020000` on success.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Message.
    #[serde(default, deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    /// Payload.
    #[serde(default, deserialize_with = "lenient::opt_object_or_string", skip_serializing_if = "Option::is_none")]
    pub data: Option<LicenseInfo>,
}

wire_enum! {
    /// License OpenAPI `error_code` (§8.3).
    pub enum LicenseErrorCode {
        /// `92020000` success.
        Success => "92020000",
        /// `92020001` internal error (also sent with 403 and 500).
        InternalError => "92020001",
        /// `92020002` invalid param.
        InvalidParam => "92020002",
        /// `92020003` illegal state (e.g. already activated).
        IllegalState => "92020003",
        /// `92020004` cannot activate before the user received it.
        NotReceived => "92020004",
        /// `92020005` license code does not exist.
        NotExist => "92020005",
        /// `92020011` license code not activated.
        NotActivated => "92020011",
        /// `92020020` invalid license code exists.
        InvalidCodeExists => "92020020",
        /// `95000001` request parameter invalid (400).
        ReqParamInvalid => "95000001",
        /// `95000002` method not supported (405).
        MethodNotSupported => "95000002",
        /// `95000003` content type not supported (415).
        ContentTypeNotSupported => "95000003",
        /// `95000004` message not readable (400).
        NotReadable => "95000004",
    }
}

/// How a license OpenAPI call ended. `92020001` appears with HTTP 200, 403 and 500, so the status decides first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseOutcome {
    /// HTTP 200 and `92020000`.
    Success,
    /// HTTP 401/403: the AK/SK signature or the account's rights are wrong; fix configuration, do not retry.
    Unauthorized,
    /// HTTP 5xx: retry with back-off.
    ServerError,
    /// Any other answer: the marketplace refused the request for the given reason.
    Rejected(LicenseErrorCode),
}

impl LicenseOutcome {
    /// Classifies an answer by HTTP status first, then by `error_code`.
    pub fn classify(http_status: u16, error_code: Option<&str>) -> Self {
        let code = || LicenseErrorCode::parse(error_code.unwrap_or(""));
        match http_status {
            200 if code() == LicenseErrorCode::Success => LicenseOutcome::Success,
            401 | 403 => LicenseOutcome::Unauthorized,
            500..=599 => LicenseOutcome::ServerError,
            _ => LicenseOutcome::Rejected(code()),
        }
    }
}

/// Expiry update callback (更新授权码有效期): `license` + `expireTime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseExpiryUpdate {
    /// The `activity` value seen (names are unpublished; logged).
    pub activity: Option<String>,
    /// The license.
    pub license: String,
    /// New expiry, ms since the epoch (14 or 17 digits, UTC).
    pub expire_time_ms: u64,
    /// `expireTime` as sent.
    pub expire_time_raw: String,
    /// Order.
    pub order_id: Option<String>,
    /// Order line.
    pub order_line_id: Option<String>,
    /// Product.
    pub product_id: Option<String>,
    /// `RENEWAL` / `UNSUBSCRIBE_RENEWAL_PERIOD` (others kept).
    pub scene: Option<Scene>,
    /// Debug or production.
    pub test_flag: TestFlag,
}

/// Status change callback (变更授权码状态): `license` + `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseStatusChange {
    /// The `activity` value seen.
    pub activity: Option<String>,
    /// The license.
    pub license: String,
    /// Freeze or unfreeze.
    pub status: InstanceStatusChange,
    /// Order.
    pub order_id: Option<String>,
    /// Order line.
    pub order_line_id: Option<String>,
    /// Debug or production.
    pub test_flag: TestFlag,
}

/// Release callback (释放授权码): `license` alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRelease {
    /// The `activity` value seen.
    pub activity: Option<String>,
    /// The license.
    pub license: String,
    /// Order.
    pub order_id: Option<String>,
    /// Order line.
    pub order_line_id: Option<String>,
    /// Debug or production.
    pub test_flag: TestFlag,
}

/// One marketplace → merchant license callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseCallback {
    /// Expiry update.
    UpdateExpiry(LicenseExpiryUpdate),
    /// Freeze / unfreeze.
    ChangeStatus(LicenseStatusChange),
    /// Release.
    Release(LicenseRelease),
}

/// The answer to a license callback: `{resultCode, resultMsg}` with codes `000000`–`000005`.
pub type LicenseCallbackResponse = v2::BasicResponse;

/// Parses a license callback body, classifying it by its fields. Call after the V2 signature check.
///
/// # Errors
///
/// A [`FieldError`] naming the first invalid field (`license` missing, `status` not `FREEZE`/`UNFREEZE`,
/// `expireTime` not 14 or 17 digits, …).
pub fn parse_license_callback(body: &[u8]) -> Result<LicenseCallback, FieldError> {
    let value = validate::parse_object(body)?;
    let f = Fields::new(&value)?;
    let activity = f.optional("activity", 64)?;
    let license = f.required("license", MAX_LICENSE)?;
    let order_id = f.optional("orderId", v2::MAX_ID)?;
    let order_line_id = f.optional("orderLineId", v2::MAX_ID)?;
    if let Some(status) = f.optional("status", 32)? {
        let status = InstanceStatusChange::parse(status.trim())
            .ok_or_else(|| FieldError::invalid("status", "must be FREEZE or UNFREEZE"))?;
        let test_flag = TestFlag::read_optional(&f, "testFlag")?;
        return Ok(LicenseCallback::ChangeStatus(LicenseStatusChange {
            activity,
            license,
            status,
            order_id,
            order_line_id,
            test_flag,
        }));
    }
    if f.optional("expireTime", 20)?.is_some() {
        let (expire_time_ms, expire_time_raw) = v2::expire_time(&f, "expireTime")?;
        let product_id = f.optional("productId", v2::MAX_ID)?;
        let scene = f.optional("scene", 64)?.map(|s| Scene::parse(&s));
        let test_flag = TestFlag::read_optional(&f, "testFlag")?;
        return Ok(LicenseCallback::UpdateExpiry(LicenseExpiryUpdate {
            activity,
            license,
            expire_time_ms,
            expire_time_raw,
            order_id,
            order_line_id,
            product_id,
            scene,
            test_flag,
        }));
    }
    let test_flag = TestFlag::read_optional(&f, "testFlag")?;
    Ok(LicenseCallback::Release(LicenseRelease { activity, license, order_id, order_line_id, test_flag }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_branches_on_status_first() {
        assert_eq!(LicenseOutcome::classify(200, Some("92020000")), LicenseOutcome::Success);
        assert_eq!(
            LicenseOutcome::classify(200, Some("92020001")),
            LicenseOutcome::Rejected(LicenseErrorCode::InternalError)
        );
        assert_eq!(LicenseOutcome::classify(403, Some("92020001")), LicenseOutcome::Unauthorized);
        assert_eq!(LicenseOutcome::classify(500, Some("92020001")), LicenseOutcome::ServerError);
        assert_eq!(
            LicenseOutcome::classify(400, Some("95000001")),
            LicenseOutcome::Rejected(LicenseErrorCode::ReqParamInvalid)
        );
        assert_eq!(
            LicenseOutcome::classify(200, None),
            LicenseOutcome::Rejected(LicenseErrorCode::Unknown(String::new()))
        );
    }

    #[test]
    fn activate_request_limits() {
        let ok = ActivateRequest { license: "L".repeat(64), real_effect_time: Some("20230626121646".into()) };
        assert_eq!(ok.validate(), Ok(()));
        let long = ActivateRequest { license: "L".repeat(65), real_effect_time: None };
        assert_eq!(long.validate(), Err(FieldError::too_long("license", 64, 65)));
        let bad_time = ActivateRequest { license: "L".into(), real_effect_time: Some("20231326121646".into()) };
        assert_eq!(bad_time.validate(), Err(FieldError::invalid("real_effect_time", "must be yyyyMMddHHmmss (UTC)")));
    }
}
