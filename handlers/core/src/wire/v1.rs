//! Legacy V1 interfaces (§3): GET query parameters in, JSON with encrypted credentials out.
//!
//! V1 is marked withdrawn but products built on it are still called, so it is implemented in full. The handler
//! decodes the query string (the `authToken` check needs the decoded values anyway) and passes the pairs to
//! [`parse_v1_request`], which validates them against the tables and returns a typed request. Contact data
//! (`mobilePhone`, `email`) stays encrypted here — decryption happens in `aes_cred`, which tolerates failures.
//!
//! 1. Verify `authToken` (`signing::v1`).
//! 2. `parse_v1_request(&params)`; answer `000002` with the error text on `Err`.
//! 3. Match on [`V1Request`]; an unknown activity (for example the undocumented resource-status change, §3.8) comes
//!    out as [`V1Request::Unknown`] so that it can be logged with its parameters and answered `000002`.
//! 4. Answer with a response struct whose `appInfo` holds AES ciphertexts; check them with
//!    [`V1AppInfo::check_lengths`] (the 128-character limit includes the IV).
//!
//! ```
//! use koogallery_core::wire::v1::{parse_v1_request, V1Request};
//!
//! let query = "activity=newInstance&businessId=61e834ba-7b97-4418-b8f7-e5345137278c&customerId=68cbc86abc2018ab880d92f36422fa0e&expireTime=20200727153156&orderId=CS1906666666ABCDE&productId=00301-666666-0--0&testFlag=1&timeStamp=20200727073711903&authToken=Gzbfjf9LHRBcI3bFVi++sLinCNOBF6qa7is1fvjEgYQ=";
//! let params: Vec<(String, String)> =
//!     query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
//! let V1Request::NewInstance(req) = parse_v1_request(&params).unwrap() else { panic!("newInstance") };
//! assert_eq!((req.order_id.as_str(), req.product_id.as_str()), ("CS1906666666ABCDE", "00301-666666-0--0"));
//! assert_eq!(req.expire_time_ms, Some(1_595_863_916_000));
//!
//! let missing: Vec<(String, String)> = params.into_iter().filter(|(k, _)| k != "orderId").collect();
//! assert_eq!(parse_v1_request(&missing).unwrap_err().to_string(), "orderId is missing");
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::wire::lenient::{self, wire_enum};
use crate::wire::order::{ChargingMode, NameValue};
use crate::wire::result_code::ResultCode;
use crate::wire::time;
use crate::wire::v2::{MAX_ID, MAX_QUERY_IDS, TestFlag, UsageInfo, check_app_info_lengths};
use crate::wire::validate::{FieldError, check_len, optional_str, required_str};

/// Maximum length of an encrypted `userName` / `password` in a V1 answer, IV included (§3.2).
pub const MAX_CIPHERTEXT_CHARS: usize = 128;
/// The longest plaintext (in UTF-8 bytes) whose `iv + Base64(AES-CBC)` form fits [`MAX_CIPHERTEXT_CHARS`].
pub const MAX_PLAINTEXT_BYTES: usize = 79;

/// Length of `iv + Base64(AES-CBC-PKCS5(plaintext))` for a plaintext of `plaintext_bytes` UTF-8 bytes, so credential
/// generators can stay under the limit before encrypting.
pub fn ciphertext_len(plaintext_bytes: usize) -> usize {
    let padded = (plaintext_bytes / 16).saturating_add(1).saturating_mul(16);
    padded.div_ceil(3).saturating_mul(4).saturating_add(16)
}

/// Checks an `iv + base64` ciphertext against the 128-character limit.
///
/// # Errors
///
/// [`crate::wire::validate::FieldProblem::TooLong`] naming `field`.
pub fn check_ciphertext(field: &str, ciphertext: &str) -> Result<(), FieldError> {
    check_len(field, ciphertext, MAX_CIPHERTEXT_CHARS)
}

wire_enum! {
    /// V1 `activity`.
    pub enum V1Activity {
        /// New purchase.
        NewInstance => "newInstance",
        /// Renewal / trial → formal.
        RefreshInstance => "refreshInstance",
        /// Expiry: freeze.
        ExpireInstance => "expireInstance",
        /// Release.
        ReleaseInstance => "releaseInstance",
        /// Upgrade (the V1 name is `upgrade`, not `upgradeInstance`).
        Upgrade => "upgrade",
        /// Poll for the provisioning result.
        QueryInstance => "queryInstance",
    }
}

wire_enum! {
    /// `periodType`. Some pages also list `hour`.
    pub enum PeriodType {
        /// Yearly.
        Year => "year",
        /// Monthly.
        Month => "month",
        /// Daily.
        Day => "day",
        /// Hourly.
        Hour => "hour",
    }
}

/// V1 `newInstance` (§3.2). `Debug` hides the encrypted contact data.
#[derive(Clone, PartialEq, Eq)]
pub struct V1NewInstance {
    /// Buyer's Huawei Cloud account ID (max 100).
    pub customer_id: String,
    /// Account name (optional: pages disagree).
    pub customer_name: Option<String>,
    /// IAM user ID.
    pub user_id: Option<String>,
    /// IAM user name.
    pub user_name: Option<String>,
    /// `iv + Base64(AES-CBC)` of the phone number, still encrypted.
    pub mobile_phone: Option<String>,
    /// `iv + Base64(AES-CBC)` of the e-mail, still encrypted.
    pub email: Option<String>,
    /// Unique per request; never an idempotency key.
    pub business_id: String,
    /// Order ID.
    pub order_id: String,
    /// SKU code. Listed as mandatory, but the documented example omits it, so it is optional here.
    pub sku_code: Option<String>,
    /// Product ID; with `order_id`, the idempotency key (V1 has no order line).
    pub product_id: String,
    /// Trial (`trialFlag=1`) or not; `None` when absent.
    pub trial_flag: Option<bool>,
    /// `expireTime` as sent (absent for one-time and on-demand).
    pub expire_time: Option<String>,
    /// `expireTime` in ms since the epoch.
    pub expire_time_ms: Option<u64>,
    /// `1` / `3`, or a query-order name.
    pub charging_mode: Option<ChargingMode>,
    /// Decoded `saasExtendParams`.
    pub saas_extend_params: Vec<NameValue>,
    /// Linear attribute `amount`.
    pub amount: Option<i64>,
    /// Linear attribute `diskSize`.
    pub disk_size: Option<i64>,
    /// Linear attribute `bandWidth`.
    pub band_width: Option<i64>,
    /// `year` / `month` / `day` / `hour`.
    pub period_type: Option<PeriodType>,
    /// Number of periods.
    pub period_number: Option<i64>,
    /// Decimal amount as sent (kept as text to keep its precision; may be negative).
    pub order_amount: Option<String>,
    /// `provisionType`, semantics unpublished: stored raw.
    pub provision_type: Option<String>,
    /// Debug or production.
    pub test_flag: TestFlag,
    /// `timeStamp` in ms since the epoch.
    pub time_stamp_ms: u64,
}

impl fmt::Debug for V1NewInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("V1NewInstance")
            .field("customer_id", &self.customer_id)
            .field("customer_name", &self.customer_name)
            .field("user_id", &self.user_id)
            .field("user_name", &self.user_name)
            .field("mobile_phone", &redact(&self.mobile_phone))
            .field("email", &redact(&self.email))
            .field("business_id", &self.business_id)
            .field("order_id", &self.order_id)
            .field("sku_code", &self.sku_code)
            .field("product_id", &self.product_id)
            .field("trial_flag", &self.trial_flag)
            .field("expire_time", &self.expire_time)
            .field("charging_mode", &self.charging_mode)
            .field("saas_extend_params", &self.saas_extend_params.len())
            .field("period_type", &self.period_type)
            .field("period_number", &self.period_number)
            .field("order_amount", &self.order_amount)
            .field("test_flag", &self.test_flag)
            .finish_non_exhaustive()
    }
}

/// V1 `refreshInstance` (§3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1RefreshInstance {
    /// The renewal order; the idempotency key.
    pub order_id: String,
    /// The instance concerned.
    pub instance_id: String,
    /// New product ID.
    pub product_id: Option<String>,
    /// New expiry in ms since the epoch.
    pub expire_time_ms: u64,
    /// `expireTime` as sent.
    pub expire_time_raw: String,
    /// `trialToFormal=1`: a trial turned commercial.
    pub trial_to_formal: bool,
    /// `periodType`.
    pub period_type: Option<PeriodType>,
    /// `periodNumber`.
    pub period_number: Option<i64>,
    /// `orderAmount` as sent; negative for a renewal refund.
    pub order_amount: Option<String>,
    /// Debug or production.
    pub test_flag: TestFlag,
    /// `timeStamp` in ms since the epoch.
    pub time_stamp_ms: u64,
}

/// V1 `expireInstance` (§3.4): freeze.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1ExpireInstance {
    /// The instance to freeze.
    pub instance_id: String,
    /// The subscription order.
    pub order_id: String,
    /// Debug or production.
    pub test_flag: TestFlag,
    /// `timeStamp` in ms since the epoch.
    pub time_stamp_ms: u64,
}

/// V1 `releaseInstance` (§3.5). `orderId` is listed as mandatory but the documented example omits it, so it is
/// optional here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1ReleaseInstance {
    /// The instance to release.
    pub instance_id: String,
    /// The original purchase order.
    pub order_id: Option<String>,
    /// `orderAmount` as sent.
    pub order_amount: Option<String>,
    /// Debug or production.
    pub test_flag: TestFlag,
    /// `timeStamp` in ms since the epoch.
    pub time_stamp_ms: u64,
}

/// V1 `upgrade` (§3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Upgrade {
    /// The instance (unchanged).
    pub instance_id: String,
    /// The new order; the idempotency key.
    pub order_id: String,
    /// New SKU.
    pub sku_code: Option<String>,
    /// New product ID.
    pub product_id: Option<String>,
    /// Linear attribute `amount`.
    pub amount: Option<i64>,
    /// Linear attribute `diskSize`.
    pub disk_size: Option<i64>,
    /// Linear attribute `bandWidth`.
    pub band_width: Option<i64>,
    /// Decoded `saasExtendParams`.
    pub saas_extend_params: Vec<NameValue>,
    /// Debug or production.
    pub test_flag: TestFlag,
    /// `timeStamp` in ms since the epoch.
    pub time_stamp_ms: u64,
}

/// V1 `queryInstance` (§3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1QueryInstance {
    /// The requested IDs (1 to 100).
    pub instance_ids: Vec<String>,
    /// Debug or production.
    pub test_flag: TestFlag,
    /// `timeStamp` in ms since the epoch.
    pub time_stamp_ms: u64,
}

/// One validated V1 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V1Request {
    /// `newInstance` (boxed: it is by far the largest request).
    NewInstance(Box<V1NewInstance>),
    /// `refreshInstance`.
    RefreshInstance(V1RefreshInstance),
    /// `expireInstance`.
    ExpireInstance(V1ExpireInstance),
    /// `releaseInstance`.
    ReleaseInstance(V1ReleaseInstance),
    /// `upgrade`.
    Upgrade(V1Upgrade),
    /// `queryInstance`.
    QueryInstance(V1QueryInstance),
    /// An activity this version does not know; log it with its parameters and answer `000002`.
    Unknown {
        /// The activity as sent.
        activity: String,
        /// Debug or production, when readable.
        test_flag: TestFlag,
    },
}

impl V1Request {
    /// The activity name, for logs and dispatch.
    pub fn activity_name(&self) -> &str {
        match self {
            V1Request::NewInstance(_) => "newInstance",
            V1Request::RefreshInstance(_) => "refreshInstance",
            V1Request::ExpireInstance(_) => "expireInstance",
            V1Request::ReleaseInstance(_) => "releaseInstance",
            V1Request::Upgrade(_) => "upgrade",
            V1Request::QueryInstance(_) => "queryInstance",
            V1Request::Unknown { activity, .. } => activity,
        }
    }
}

/// Decoded query parameters with duplicate detection.
struct Params<'a>(&'a [(String, String)]);

impl<'a> Params<'a> {
    /// The single value of `name`; a repeated parameter is refused (which copy would the signature have meant?).
    fn get(&self, name: &str) -> Result<Option<&'a str>, FieldError> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(FieldError::invalid(name, "appears more than once"));
        }
        Ok(first)
    }

    fn required(&self, name: &str, max: usize) -> Result<String, FieldError> {
        required_str(name, self.get(name)?.map(str::to_owned), max)
    }

    fn optional(&self, name: &str, max: usize) -> Result<Option<String>, FieldError> {
        optional_str(name, self.get(name)?.map(str::to_owned), max)
    }

    fn integer(&self, name: &str) -> Result<Option<i64>, FieldError> {
        match self.optional(name, 20)? {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| FieldError::invalid(name, "must be an integer")),
        }
    }

    fn test_flag(&self) -> Result<TestFlag, FieldError> {
        match self.optional("testFlag", 2)?.as_deref().map(str::trim) {
            None => Ok(TestFlag::Production),
            Some("0") => Ok(TestFlag::Production),
            Some("1") => Ok(TestFlag::Debug),
            Some(_) => Err(FieldError::invalid("testFlag", "must be 0 or 1")),
        }
    }

    fn time_stamp(&self) -> Result<u64, FieldError> {
        let raw = self.required("timeStamp", 20)?;
        time::parse_compact_utc(raw.trim())
            .map_err(|_| FieldError::invalid("timeStamp", "must be yyyyMMddHHmmssSSS (UTC)"))
    }

    fn expire_time(&self, mandatory: bool) -> Result<Option<(u64, String)>, FieldError> {
        let raw = if mandatory { Some(self.required("expireTime", 20)?) } else { self.optional("expireTime", 20)? };
        let Some(raw) = raw else { return Ok(None) };
        let ms = time::parse_compact_utc(raw.trim())
            .map_err(|_| FieldError::invalid("expireTime", "must be yyyyMMddHHmmss or yyyyMMddHHmmssSSS (UTC)"))?;
        Ok(Some((ms, raw)))
    }

    fn period_type(&self) -> Result<Option<PeriodType>, FieldError> {
        Ok(self.optional("periodType", 20)?.map(|p| PeriodType::parse(p.trim())))
    }

    fn order_amount(&self) -> Result<Option<String>, FieldError> {
        let amount = self.optional("orderAmount", 32)?;
        match amount {
            Some(a) if !is_decimal(a.trim()) => Err(FieldError::invalid("orderAmount", "must be a decimal number")),
            other => Ok(other),
        }
    }

    fn charging_mode(&self) -> Result<Option<ChargingMode>, FieldError> {
        Ok(self.optional("chargingMode", 20)?.map(|m| {
            let m = m.trim();
            match m.parse::<i64>() {
                Ok(code) => ChargingMode::from_v1_code(code),
                Err(_) => ChargingMode::parse(m),
            }
        }))
    }

    fn extend_params(&self) -> Result<Vec<NameValue>, FieldError> {
        match self.optional("saasExtendParams", 65_536)? {
            None => Ok(Vec::new()),
            Some(encoded) => decode_extend_params(&encoded).ok_or_else(|| {
                FieldError::invalid("saasExtendParams", "must be Base64 of a JSON array of {name, value}")
            }),
        }
    }
}

/// `-12.5`, `3`, `+0.125`: an optional sign, digits, and an optional fraction.
fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    !(int.is_empty() && frac.is_empty()) && all_digits(int) && all_digits(frac) && !(s.ends_with('.') && int.is_empty())
}

/// Decodes `saasExtendParams`: Base64 (standard or URL-safe, padded or not; spaces from form decoding of a literal
/// `+` are turned back) of a JSON array of `{name, value}` (or a string holding that array).
pub fn decode_extend_params(encoded: &str) -> Option<Vec<NameValue>> {
    let cleaned: String = encoded.trim().chars().map(|c| if c == ' ' { '+' } else { c }).collect();
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(&cleaned).ok())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let items = lenient::array_or_string(&value).ok()??;
    let items: Vec<serde_json::Value> = items.into_iter().filter(|v| !v.is_null()).collect();
    serde_json::from_value(serde_json::Value::Array(items)).ok()
}

/// Parses and validates V1 query parameters (already percent-decoded). Call after `authToken` has been verified.
///
/// # Errors
///
/// A [`FieldError`] naming the first invalid parameter (a repeated parameter is invalid too).
pub fn parse_v1_request(params: &[(String, String)]) -> Result<V1Request, FieldError> {
    let p = Params(params);
    let activity = V1Activity::parse(p.required("activity", 32)?.trim());
    p.required("authToken", 50)?;
    let time_stamp_ms = p.time_stamp()?;
    Ok(match activity {
        V1Activity::NewInstance => {
            let customer_id = p.required("customerId", 100)?;
            let customer_name = p.optional("customerName", 255)?;
            let user_id = p.optional("userId", MAX_ID)?;
            let user_name = p.optional("userName", MAX_ID)?;
            let mobile_phone = p.optional("mobilePhone", 512)?;
            let email = p.optional("email", 512)?;
            let business_id = p.required("businessId", MAX_ID)?;
            let order_id = p.required("orderId", MAX_ID)?;
            let sku_code = p.optional("skuCode", MAX_ID)?;
            let product_id = p.required("productId", MAX_ID)?;
            let test_flag = p.test_flag()?;
            let trial_flag = match p.optional("trialFlag", 2)?.as_deref().map(str::trim) {
                None => None,
                Some("1") => Some(true),
                Some("0") => Some(false),
                Some(_) => return Err(FieldError::invalid("trialFlag", "must be 0 or 1")),
            };
            let expire = p.expire_time(false)?;
            V1Request::NewInstance(Box::new(V1NewInstance {
                customer_id,
                customer_name,
                user_id,
                user_name,
                mobile_phone,
                email,
                business_id,
                order_id,
                sku_code,
                product_id,
                trial_flag,
                expire_time_ms: expire.as_ref().map(|(ms, _)| *ms),
                expire_time: expire.map(|(_, raw)| raw),
                charging_mode: p.charging_mode()?,
                saas_extend_params: p.extend_params()?,
                amount: p.integer("amount")?,
                disk_size: p.integer("diskSize")?,
                band_width: p.integer("bandWidth")?,
                period_type: p.period_type()?,
                period_number: p.integer("periodNumber")?,
                order_amount: p.order_amount()?,
                provision_type: p.optional("provisionType", 64)?,
                test_flag,
                time_stamp_ms,
            }))
        }
        V1Activity::RefreshInstance => {
            let order_id = p.required("orderId", MAX_ID)?;
            let instance_id = p.required("instanceId", MAX_ID)?;
            let product_id = p.optional("productId", MAX_ID)?;
            let (expire_time_ms, expire_time_raw) =
                p.expire_time(true)?.ok_or_else(|| FieldError::missing("expireTime"))?;
            let trial_to_formal = match p.optional("trialToFormal", 2)?.as_deref().map(str::trim) {
                None | Some("0") => false,
                Some("1") => true,
                Some(_) => return Err(FieldError::invalid("trialToFormal", "must be 0 or 1")),
            };
            V1Request::RefreshInstance(V1RefreshInstance {
                order_id,
                instance_id,
                product_id,
                expire_time_ms,
                expire_time_raw,
                trial_to_formal,
                period_type: p.period_type()?,
                period_number: p.integer("periodNumber")?,
                order_amount: p.order_amount()?,
                test_flag: p.test_flag()?,
                time_stamp_ms,
            })
        }
        V1Activity::ExpireInstance => V1Request::ExpireInstance(V1ExpireInstance {
            instance_id: p.required("instanceId", MAX_ID)?,
            order_id: p.required("orderId", MAX_ID)?,
            test_flag: p.test_flag()?,
            time_stamp_ms,
        }),
        V1Activity::ReleaseInstance => V1Request::ReleaseInstance(V1ReleaseInstance {
            instance_id: p.required("instanceId", MAX_ID)?,
            order_id: p.optional("orderId", MAX_ID)?,
            order_amount: p.order_amount()?,
            test_flag: p.test_flag()?,
            time_stamp_ms,
        }),
        V1Activity::Upgrade => V1Request::Upgrade(V1Upgrade {
            instance_id: p.required("instanceId", MAX_ID)?,
            order_id: p.required("orderId", MAX_ID)?,
            sku_code: p.optional("skuCode", MAX_ID)?,
            product_id: p.optional("productId", MAX_ID)?,
            amount: p.integer("amount")?,
            disk_size: p.integer("diskSize")?,
            band_width: p.integer("bandWidth")?,
            saas_extend_params: p.extend_params()?,
            test_flag: p.test_flag()?,
            time_stamp_ms,
        }),
        V1Activity::QueryInstance => {
            let raw = p.get("instanceId")?.unwrap_or("");
            let instance_ids: Vec<String> =
                raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            if instance_ids.is_empty() {
                return Err(FieldError::missing("instanceId"));
            }
            if instance_ids.len() > MAX_QUERY_IDS {
                return Err(FieldError::invalid("instanceId", "lists more than 100 instance IDs"));
            }
            for id in &instance_ids {
                check_len("instanceId", id, MAX_ID)?;
            }
            V1Request::QueryInstance(V1QueryInstance { instance_ids, test_flag: p.test_flag()?, time_stamp_ms })
        }
        V1Activity::Unknown(activity) => V1Request::Unknown { activity, test_flag: p.test_flag().unwrap_or_default() },
    })
}

/// `{resultCode, resultMsg}` for V1 activities without extra fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V1BasicResponse {
    /// Outcome.
    pub result_code: ResultCode,
    /// Human-readable outcome.
    #[serde(default)]
    pub result_msg: String,
}

impl V1BasicResponse {
    /// An answer with the code's default message.
    pub fn new(result_code: ResultCode) -> Self {
        V1BasicResponse { result_code, result_msg: result_code.default_message().to_owned() }
    }
}

/// V1 `newInstance` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V1NewInstanceResponse {
    /// Outcome.
    pub result_code: ResultCode,
    /// Human-readable outcome.
    #[serde(default)]
    pub result_msg: String,
    /// `"1"` AES-256 (default) or `"2"` AES-128: how `appInfo` credentials are encrypted.
    #[serde(default)]
    pub encrypt_type: String,
    /// The instance ID.
    #[serde(default)]
    pub instance_id: String,
    /// Login information with encrypted credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_info: Option<V1AppInfo>,
}

/// V1 `queryInstance` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V1QueryInstanceResponse {
    /// Outcome.
    pub result_code: ResultCode,
    /// Human-readable outcome.
    #[serde(default)]
    pub result_msg: String,
    /// `"1"` or `"2"`, as in [`V1NewInstanceResponse`].
    #[serde(default)]
    pub encrypt_type: String,
    /// One entry per requested, existing instance.
    #[serde(default)]
    pub info: Vec<V1InstanceInfo>,
}

/// V1 `info[]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V1InstanceInfo {
    /// Instance ID.
    pub instance_id: String,
    /// Login information with encrypted credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_info: Option<V1AppInfo>,
    /// Usage of on-demand instances.
    #[serde(default, alias = "usageInfos", skip_serializing_if = "Option::is_none")]
    pub usage_info: Option<Vec<UsageInfo>>,
}

/// V1 `appInfo`: `userName` / `password` hold `iv + Base64(AES-CBC)` ciphertexts. `Debug` hides both.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V1AppInfo {
    /// Front-end / login URL (max 512).
    pub front_end_url: String,
    /// Admin console URL (max 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    /// Encrypted admin account (max 128 including the IV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Encrypted admin password (max 128 including the IV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Remark (max 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

impl V1AppInfo {
    /// Checks the documented limits; the ciphertexts must fit 128 characters including the 16-character IV.
    ///
    /// # Errors
    ///
    /// The first field that is too long, as `appInfo.<field>`.
    pub fn check_lengths(&self) -> Result<(), FieldError> {
        check_app_info_lengths(&self.front_end_url, &self.admin_url, &self.user_name, &self.password, &self.memo)
    }
}

impl fmt::Debug for V1AppInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("V1AppInfo")
            .field("front_end_url", &self.front_end_url)
            .field("admin_url", &self.admin_url)
            .field("user_name", &redact(&self.user_name))
            .field("password", &redact(&self.password))
            .field("memo", &self.memo)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphertext_length_formula_and_limit() {
        // 16-char IV + Base64 of one padded block (16 bytes → 24 chars).
        assert_eq!(ciphertext_len(0), 40);
        assert_eq!(ciphertext_len(15), 40);
        assert_eq!(ciphertext_len(16), 60);
        assert_eq!(ciphertext_len(MAX_PLAINTEXT_BYTES), 124);
        assert!(ciphertext_len(MAX_PLAINTEXT_BYTES) <= MAX_CIPHERTEXT_CHARS);
        assert!(ciphertext_len(MAX_PLAINTEXT_BYTES + 1) > MAX_CIPHERTEXT_CHARS);
        assert_eq!(check_ciphertext("appInfo.password", &"A".repeat(128)), Ok(()));
        assert_eq!(
            check_ciphertext("appInfo.password", &"A".repeat(129)),
            Err(FieldError::too_long("appInfo.password", 128, 129))
        );
    }

    #[test]
    fn decimals() {
        for ok in ["1", "-12.5", "+0.125", "0.5", ".5", "100."] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in ["", "-", ".", "1e3", "1,5", "abc", "1.2.3", "--1"] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }

    #[test]
    fn extend_params_with_form_decoded_plus() {
        // "[{\"name\":\"a\",\"value\":\"~~~\"}]" has a '+' in its Base64; form decoding turns it into a space.
        let json = r#"[{"name":"a","value":"~~~"}]"#;
        let encoded = STANDARD.encode(json);
        assert!(encoded.contains('+'));
        let mangled = encoded.replace('+', " ");
        let decoded = decode_extend_params(&mangled);
        assert_eq!(decoded, Some(vec![NameValue { name: "a".into(), value: Some("~~~".into()) }]));
        assert_eq!(decode_extend_params("!!!"), None);
        assert_eq!(decode_extend_params(&STANDARD.encode("{}")), None);
    }
}
