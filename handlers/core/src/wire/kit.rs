//! Joint-operation (联营) kit sync bodies (§5): tenants, applications, authorised users and departments.
//!
//! The five syncs arrive as JSON at `/produceAPI/v2/<name>` (V2) or `/produceAPI/<name>` (V1), and their shapes
//! vary between pages and generations: `flag` / `testFlag` as integers or numeric strings; `userList`,
//! `orgInfoList` / `orgInfo` as arrays or as strings holding arrays; `orgName` or `name`; V1's `extension` object
//! holding `entryDate`, `employeeType`, `workPlace`; empty `instanceId` / `orderId` while the seller sets up an app
//! credential. [`parse_kit_request`] accepts every one of these and names the first invalid field otherwise.
//!
//! 1. Route on the path suffix with [`KitSync::from_path`].
//! 2. Verify `x-sign` (`signing::kit`).
//! 3. `parse_kit_request(sync, body)`; answer `000002` with the error text on `Err`.
//! 4. Apply the sync idempotently and answer with [`KitResponse`].
//!
//! ```
//! use koogallery_core::wire::kit::{parse_kit_request, KitRequest, KitSync, SyncFlag};
//!
//! let (sync, _) = KitSync::from_path("/saasproduce/produceAPI/v2/singleOrgSync").unwrap();
//! let body = r#"{"instanceId":"i","tenantId":"t","orgCode":"10000","orgName":"开发部","parentCode":"","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}"#;
//! let KitRequest::SingleOrgSync(org) = parse_kit_request(sync, body.as_bytes()).unwrap() else { panic!() };
//! assert_eq!((org.flag, org.org_name.as_str(), org.parent_code), (SyncFlag::Add, "开发部", None));
//! ```
//!
//! The body's `timeStamp` is Beijing time (UTC+8) and is parsed as such into `time_stamp_ms`; it is informational
//! only — freshness is judged on the signed `x-timestamp` header.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::lenient::{self, wire_enum};
use crate::wire::result_code::ResultCode;
use crate::wire::test_flag::TestFlag;
use crate::wire::time::{self, CivilDate};
use crate::wire::validate::{self, FieldError, Fields};

/// Maximum length of the kit's IDs and codes.
const MAX_ID: usize = 64;
/// A generous bound for the undocumented lengths of `timeStamp` and `currentSyncTime`.
const MAX_STAMP: usize = 64;

/// Which kit sync a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KitSync {
    /// `tenantSync`.
    TenantSync,
    /// `applicationSync`.
    ApplicationSync,
    /// `authSync`.
    AuthSync,
    /// `singleOrgSync`.
    SingleOrgSync,
    /// `allOrgSync`.
    AllOrgSync,
}

/// Which generation's path a kit request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KitGeneration {
    /// `/produceAPI/<name>`: `authToken` header, `Body-Sign` answer.
    V1,
    /// `/produceAPI/v2/<name>`: `x-sign` headers.
    V2,
}

impl KitSync {
    /// All five syncs.
    pub const ALL: [KitSync; 5] =
        [KitSync::TenantSync, KitSync::ApplicationSync, KitSync::AuthSync, KitSync::SingleOrgSync, KitSync::AllOrgSync];

    /// The sync's name, as in the path and in a V2 `activity`.
    pub fn as_str(self) -> &'static str {
        match self {
            KitSync::TenantSync => "tenantSync",
            KitSync::ApplicationSync => "applicationSync",
            KitSync::AuthSync => "authSync",
            KitSync::SingleOrgSync => "singleOrgSync",
            KitSync::AllOrgSync => "allOrgSync",
        }
    }

    /// The sync with exactly this name.
    pub fn from_name(name: &str) -> Option<Self> {
        KitSync::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Routes on the path **suffix** (§5): `…/produceAPI/v2/<name>` is V2, `…/produceAPI/<name>` is V1, whatever
    /// comes before (the production URL's own path or nothing). A query string and a trailing `/` are ignored.
    pub fn from_path(path: &str) -> Option<(Self, KitGeneration)> {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let path = path.strip_suffix('/').unwrap_or(path);
        let (rest, name) = path.rsplit_once('/')?;
        let sync = KitSync::from_name(name)?;
        if rest.ends_with("/produceAPI/v2") || rest == "produceAPI/v2" {
            Some((sync, KitGeneration::V2))
        } else if rest.ends_with("/produceAPI") || rest == "produceAPI" {
            Some((sync, KitGeneration::V1))
        } else {
            None
        }
    }
}

impl fmt::Display for KitSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kit's `flag`: what happened to the synced object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncFlag {
    /// `0` 删除: delete (succeeds even when nothing exists).
    Delete,
    /// `1` 新增: add (a repeated add creates nothing new and succeeds).
    Add,
    /// `2` 修改: modify.
    Modify,
    /// `3` 取消授权: revoke authorisation (`authSync` only).
    Revoke,
}

impl SyncFlag {
    /// The wire integer.
    pub fn code(self) -> i64 {
        match self {
            SyncFlag::Delete => 0,
            SyncFlag::Add => 1,
            SyncFlag::Modify => 2,
            SyncFlag::Revoke => 3,
        }
    }

    /// Reads a flag; `allow_revoke` admits `3` (only `authSync` documents it).
    fn read(f: &Fields<'_>, name: &str, allow_revoke: bool) -> Result<Option<SyncFlag>, FieldError> {
        let why = if allow_revoke { "must be 0, 1, 2 or 3" } else { "must be 0, 1 or 2" };
        match f.integer(name) {
            Ok(None) => Ok(None),
            Ok(Some(0)) => Ok(Some(SyncFlag::Delete)),
            Ok(Some(1)) => Ok(Some(SyncFlag::Add)),
            Ok(Some(2)) => Ok(Some(SyncFlag::Modify)),
            Ok(Some(3)) if allow_revoke => Ok(Some(SyncFlag::Revoke)),
            _ => Err(FieldError::invalid(f.path(name), why)),
        }
    }

    fn read_required(f: &Fields<'_>, name: &str, allow_revoke: bool) -> Result<SyncFlag, FieldError> {
        Self::read(f, name, allow_revoke)?.ok_or_else(|| FieldError::missing(f.path(name)))
    }
}

wire_enum! {
    /// An authorised user's role.
    pub enum Role {
        /// Ordinary user.
        User => "user",
        /// Administrator.
        Admin => "admin",
    }
}

/// The body `timeStamp` (mandatory) and its value read as UTC+8, when it parses.
fn time_stamp(f: &Fields<'_>) -> Result<(String, Option<u64>), FieldError> {
    let raw = f.required("timeStamp", MAX_STAMP)?;
    let ms = time::parse_kit_timestamp(raw.trim()).ok();
    Ok((raw, ms))
}

/// `tenantSync` (§5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSync {
    /// Instance; empty while the seller applies for an app credential.
    pub instance_id: String,
    /// Order; empty likewise.
    pub order_id: String,
    /// Tenant ID.
    pub tenant_id: String,
    /// Tenant code.
    pub tenant_code: String,
    /// Tenant name (max 255).
    pub name: String,
    /// The tenant's OneAccess domain, possibly with a scheme (max 255).
    pub domain_name: String,
    /// Delete / add / modify.
    pub flag: SyncFlag,
    /// Debug or production.
    pub test_flag: TestFlag,
    /// Body `timeStamp` as sent.
    pub time_stamp: String,
    /// Body `timeStamp` read as UTC+8, when it parses.
    pub time_stamp_ms: Option<u64>,
}

/// `applicationSync` (§5.2). `Debug` hides `client_secret`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApplicationSync {
    /// Instance (may be empty during credential setup).
    pub instance_id: String,
    /// Tenant ID.
    pub tenant_id: String,
    /// Application ID.
    pub app_id: String,
    /// OneAccess client ID.
    pub client_id: String,
    /// RSA-OAEP ciphertext of the OneAccess client secret (§4.6), still encrypted.
    pub client_secret: String,
    /// Delete / add / modify.
    pub flag: SyncFlag,
    /// Debug or production.
    pub test_flag: TestFlag,
    /// Body `timeStamp` as sent.
    pub time_stamp: String,
    /// Body `timeStamp` read as UTC+8, when it parses.
    pub time_stamp_ms: Option<u64>,
}

impl fmt::Debug for ApplicationSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplicationSync")
            .field("instance_id", &self.instance_id)
            .field("tenant_id", &self.tenant_id)
            .field("app_id", &self.app_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("flag", &self.flag)
            .field("test_flag", &self.test_flag)
            .field("time_stamp", &self.time_stamp)
            .finish()
    }
}

/// One authorised user (`authSync.userList[]`). `Debug` hides `mobile` and `email`.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// 联营 login account; with instance + tenant + app, the idempotency key.
    pub user_name: String,
    /// Display name.
    pub name: String,
    /// Organisation code.
    pub org_code: String,
    /// Position.
    pub position: Option<String>,
    /// Employee number.
    pub employee_code: Option<String>,
    /// `1` regular, `2` intern, `3` dispatched, `4` outsourced (kept as sent).
    pub employee_type: Option<i64>,
    /// `user` or `admin`.
    pub role: Role,
    /// Whether the account is enabled (`"true"` / `"false"`).
    pub enable: bool,
    /// Mobile number.
    pub mobile: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Work place.
    pub work_place: Option<String>,
    /// `entryDate` as sent (documented as `yyyy-MM-d`).
    pub entry_date: Option<String>,
    /// `entryDate` read leniently, when it parses.
    pub entry_date_parsed: Option<CivilDate>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("User")
            .field("user_name", &self.user_name)
            .field("name", &self.name)
            .field("org_code", &self.org_code)
            .field("position", &self.position)
            .field("employee_code", &self.employee_code)
            .field("employee_type", &self.employee_type)
            .field("role", &self.role)
            .field("enable", &self.enable)
            .field("mobile", &redact(&self.mobile))
            .field("email", &redact(&self.email))
            .field("work_place", &self.work_place)
            .field("entry_date", &self.entry_date)
            .finish()
    }
}

/// `authSync` (§5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSync {
    /// Instance (may be empty during credential setup).
    pub instance_id: String,
    /// Tenant ID.
    pub tenant_id: String,
    /// Application ID.
    pub app_id: String,
    /// The users concerned (an array, or a string holding one in V1).
    pub user_list: Vec<User>,
    /// When the platform ran the sync, as sent.
    pub current_sync_time: String,
    /// Delete / add / modify / revoke.
    pub flag: SyncFlag,
    /// Debug or production.
    pub test_flag: TestFlag,
    /// Body `timeStamp` as sent.
    pub time_stamp: String,
    /// Body `timeStamp` read as UTC+8, when it parses.
    pub time_stamp_ms: Option<u64>,
}

/// `singleOrgSync` (§5.4): one department changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleOrgSync {
    /// Instance (may be empty during credential setup).
    pub instance_id: String,
    /// Tenant ID.
    pub tenant_id: String,
    /// Organisation code.
    pub org_code: String,
    /// Organisation name (`orgName`, or V1's `name`; max 128).
    pub org_name: String,
    /// Parent code; `None` (sent empty) for a top-level organisation.
    pub parent_code: Option<String>,
    /// Delete / add / modify.
    pub flag: SyncFlag,
    /// Debug or production.
    pub test_flag: TestFlag,
    /// Body `timeStamp` as sent.
    pub time_stamp: String,
    /// Body `timeStamp` read as UTC+8, when it parses.
    pub time_stamp_ms: Option<u64>,
}

/// One organisation of a full sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgInfo {
    /// Organisation code; with instance + tenant, the idempotency key.
    pub org_code: String,
    /// Organisation name (`orgName` or `name`).
    pub org_name: String,
    /// Parent code; `None` for a top-level organisation.
    pub parent_code: Option<String>,
}

/// `allOrgSync` (§5.5): the tenant's whole organisation tree, replacing the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllOrgSync {
    /// Instance (may be empty during credential setup).
    pub instance_id: String,
    /// Tenant ID.
    pub tenant_id: String,
    /// The organisations (`orgInfoList`, or V1's `orgInfo`; an array or a string holding one).
    pub org_info_list: Vec<OrgInfo>,
    /// `flag`, sent by the documented example but meaningless for a full sync; kept, never required.
    pub flag: Option<SyncFlag>,
    /// Debug or production.
    pub test_flag: TestFlag,
    /// Body `timeStamp` as sent.
    pub time_stamp: String,
    /// Body `timeStamp` read as UTC+8, when it parses.
    pub time_stamp_ms: Option<u64>,
}

/// One validated kit sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KitRequest {
    /// `tenantSync`.
    TenantSync(TenantSync),
    /// `applicationSync`.
    ApplicationSync(ApplicationSync),
    /// `authSync`.
    AuthSync(AuthSync),
    /// `singleOrgSync`.
    SingleOrgSync(SingleOrgSync),
    /// `allOrgSync`.
    AllOrgSync(AllOrgSync),
}

impl KitRequest {
    /// Which sync this is.
    pub fn sync(&self) -> KitSync {
        match self {
            KitRequest::TenantSync(_) => KitSync::TenantSync,
            KitRequest::ApplicationSync(_) => KitSync::ApplicationSync,
            KitRequest::AuthSync(_) => KitSync::AuthSync,
            KitRequest::SingleOrgSync(_) => KitSync::SingleOrgSync,
            KitRequest::AllOrgSync(_) => KitSync::AllOrgSync,
        }
    }

    /// The request's `testFlag`.
    pub fn test_flag(&self) -> TestFlag {
        match self {
            KitRequest::TenantSync(r) => r.test_flag,
            KitRequest::ApplicationSync(r) => r.test_flag,
            KitRequest::AuthSync(r) => r.test_flag,
            KitRequest::SingleOrgSync(r) => r.test_flag,
            KitRequest::AllOrgSync(r) => r.test_flag,
        }
    }

    /// The instance concerned (empty during credential setup).
    pub fn instance_id(&self) -> &str {
        match self {
            KitRequest::TenantSync(r) => &r.instance_id,
            KitRequest::ApplicationSync(r) => &r.instance_id,
            KitRequest::AuthSync(r) => &r.instance_id,
            KitRequest::SingleOrgSync(r) => &r.instance_id,
            KitRequest::AllOrgSync(r) => &r.instance_id,
        }
    }
}

/// Parses and validates a kit sync body. Call only after `x-sign` (or V1 `authToken`) has been verified.
///
/// # Errors
///
/// A [`FieldError`] naming the first invalid field (`body` when the body is not a JSON object; nested fields as
/// `userList[i].userName`, `orgInfoList[i].orgCode`).
pub fn parse_kit_request(sync: KitSync, body: &[u8]) -> Result<KitRequest, FieldError> {
    let value = validate::parse_object(body)?;
    parse_kit_fields(sync, &Fields::new(&value)?)
}

/// Parses a kit sync from an already decoded body (also used for kit bodies reaching the V2 production URL).
pub(crate) fn parse_kit_fields(sync: KitSync, f: &Fields<'_>) -> Result<KitRequest, FieldError> {
    Ok(match sync {
        KitSync::TenantSync => {
            let instance_id = f.required_may_be_empty("instanceId", MAX_ID)?;
            let order_id = f.required_may_be_empty("orderId", MAX_ID)?;
            let tenant_id = f.required("tenantId", MAX_ID)?;
            let tenant_code = f.required("tenantCode", MAX_ID)?;
            let name = f.required("name", 255)?;
            let domain_name = f.required("domainName", 255)?;
            let flag = SyncFlag::read_required(f, "flag", false)?;
            let test_flag = TestFlag::read_required(f, "testFlag")?;
            let (time_stamp, time_stamp_ms) = time_stamp(f)?;
            KitRequest::TenantSync(TenantSync {
                instance_id,
                order_id,
                tenant_id,
                tenant_code,
                name,
                domain_name,
                flag,
                test_flag,
                time_stamp,
                time_stamp_ms,
            })
        }
        KitSync::ApplicationSync => {
            let instance_id = f.required_may_be_empty("instanceId", MAX_ID)?;
            let tenant_id = f.required("tenantId", MAX_ID)?;
            let app_id = f.required("appId", MAX_ID)?;
            let client_id = f.required("clientId", MAX_ID)?;
            let client_secret = f.required("clientSecret", 4096)?;
            let flag = SyncFlag::read_required(f, "flag", false)?;
            let test_flag = TestFlag::read_required(f, "testFlag")?;
            let (time_stamp, time_stamp_ms) = time_stamp(f)?;
            KitRequest::ApplicationSync(ApplicationSync {
                instance_id,
                tenant_id,
                app_id,
                client_id,
                client_secret,
                flag,
                test_flag,
                time_stamp,
                time_stamp_ms,
            })
        }
        KitSync::AuthSync => {
            let instance_id = f.required_may_be_empty("instanceId", MAX_ID)?;
            let tenant_id = f.required("tenantId", MAX_ID)?;
            let app_id = f.required("appId", MAX_ID)?;
            let items = f.array("userList")?.ok_or_else(|| FieldError::missing(f.path("userList")))?;
            let user_list = items
                .iter()
                .enumerate()
                .map(|(i, item)| user(item, &format!("{}[{i}]", f.path("userList"))))
                .collect::<Result<Vec<_>, _>>()?;
            let current_sync_time = f.required("currentSyncTime", MAX_STAMP)?;
            let flag = SyncFlag::read_required(f, "flag", true)?;
            let test_flag = TestFlag::read_required(f, "testFlag")?;
            let (time_stamp, time_stamp_ms) = time_stamp(f)?;
            KitRequest::AuthSync(AuthSync {
                instance_id,
                tenant_id,
                app_id,
                user_list,
                current_sync_time,
                flag,
                test_flag,
                time_stamp,
                time_stamp_ms,
            })
        }
        KitSync::SingleOrgSync => {
            let instance_id = f.required_may_be_empty("instanceId", MAX_ID)?;
            let tenant_id = f.required("tenantId", MAX_ID)?;
            let org_code = f.required("orgCode", MAX_ID)?;
            let org_name = org_name(f)?;
            let parent_code = f.optional("parentCode", MAX_ID)?;
            let flag = SyncFlag::read_required(f, "flag", false)?;
            let test_flag = TestFlag::read_required(f, "testFlag")?;
            let (time_stamp, time_stamp_ms) = time_stamp(f)?;
            KitRequest::SingleOrgSync(SingleOrgSync {
                instance_id,
                tenant_id,
                org_code,
                org_name,
                parent_code,
                flag,
                test_flag,
                time_stamp,
                time_stamp_ms,
            })
        }
        KitSync::AllOrgSync => {
            let instance_id = f.required_may_be_empty("instanceId", MAX_ID)?;
            let tenant_id = f.required("tenantId", MAX_ID)?;
            let list_name =
                if f.raw("orgInfoList").is_none() && f.raw("orgInfo").is_some() { "orgInfo" } else { "orgInfoList" };
            let items = f.array(list_name)?.ok_or_else(|| FieldError::missing(f.path("orgInfoList")))?;
            let org_info_list = items
                .iter()
                .enumerate()
                .map(|(i, item)| org_info(item, &format!("{}[{i}]", f.path(list_name))))
                .collect::<Result<Vec<_>, _>>()?;
            // `flag` is ignored for a full sync; an unreadable one is not worth refusing the sync for.
            let flag = SyncFlag::read(f, "flag", false).ok().flatten();
            let test_flag = TestFlag::read_required(f, "testFlag")?;
            let (time_stamp, time_stamp_ms) = time_stamp(f)?;
            KitRequest::AllOrgSync(AllOrgSync {
                instance_id,
                tenant_id,
                org_info_list,
                flag,
                test_flag,
                time_stamp,
                time_stamp_ms,
            })
        }
    })
}

/// `orgName`, or V1's `name`; reported as `orgName` when both are missing.
fn org_name(f: &Fields<'_>) -> Result<String, FieldError> {
    let name = if f.raw("orgName").is_none() && f.raw("name").is_some() { "name" } else { "orgName" };
    f.required(name, 128)
}

/// An element of a list: an object, or a string holding one.
fn element(item: &Value, path: &str) -> Result<serde_json::Map<String, Value>, FieldError> {
    match lenient::object_or_string(item) {
        Ok(Some(map)) => Ok(map),
        _ => Err(FieldError::invalid(path, "must be a JSON object")),
    }
}

fn org_info(item: &Value, path: &str) -> Result<OrgInfo, FieldError> {
    let map = element(item, path)?;
    let f = Fields::nested(&map, path);
    Ok(OrgInfo {
        org_code: f.required("orgCode", MAX_ID)?,
        org_name: org_name(&f)?,
        parent_code: f.optional("parentCode", MAX_ID)?,
    })
}

fn user(item: &Value, path: &str) -> Result<User, FieldError> {
    let map = element(item, path)?;
    let f = Fields::nested(&map, path);
    let ext_path = f.path("extension");
    let extension = f.object("extension")?;
    let ext = extension.as_ref().map(|m| Fields::nested(m, &ext_path));
    // V1 moves these three into `extension`; read the user object first, then the extension.
    let from_either = |name: &str| -> Result<Option<String>, FieldError> {
        match f.optional(name, 255)? {
            Some(v) => Ok(Some(v)),
            None => ext.as_ref().map_or(Ok(None), |e| e.optional(name, 255)),
        }
    };
    let user_name = f.required("userName", MAX_ID)?;
    let name = f.required("name", MAX_ID)?;
    let org_code = f.required("orgCode", MAX_ID)?;
    let position = f.optional("position", MAX_ID)?;
    let employee_code = f.optional("employeeCode", MAX_ID)?;
    let employee_type = match f.integer("employeeType")? {
        Some(t) => Some(t),
        None => ext.as_ref().map_or(Ok(None), |e| e.integer("employeeType"))?,
    };
    let role = Role::parse(&f.required("role", 32)?);
    let enable = match f.required("enable", 8)?.trim() {
        s if s.eq_ignore_ascii_case("true") => true,
        s if s.eq_ignore_ascii_case("false") => false,
        _ => return Err(FieldError::invalid(f.path("enable"), "must be true or false")),
    };
    let mobile = f.optional("mobile", 32)?;
    let email = f.optional("email", 128)?;
    let work_place = from_either("workPlace")?;
    let entry_date = from_either("entryDate")?;
    let entry_date_parsed = entry_date.as_deref().and_then(|d| time::parse_loose_date(d).ok());
    Ok(User {
        user_name,
        name,
        org_code,
        position,
        employee_code,
        employee_type,
        role,
        enable,
        mobile,
        email,
        work_place,
        entry_date,
        entry_date_parsed,
    })
}

/// Every kit answer: `{"resultCode":…,"resultMsg":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KitResponse {
    /// Outcome (`000101` for an undecryptable `clientSecret`).
    pub result_code: ResultCode,
    /// Human-readable outcome.
    #[serde(default)]
    pub result_msg: String,
}

impl KitResponse {
    /// An answer with the code's default message.
    pub fn new(result_code: ResultCode) -> Self {
        KitResponse { result_code, result_msg: result_code.default_message().to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_on_the_path_suffix() {
        assert_eq!(KitSync::from_path("/produceAPI/v2/tenantSync"), Some((KitSync::TenantSync, KitGeneration::V2)));
        assert_eq!(
            KitSync::from_path("/saasproduce/produceAPI/v2/allOrgSync/"),
            Some((KitSync::AllOrgSync, KitGeneration::V2))
        );
        assert_eq!(KitSync::from_path("/produceAPI/authSync?x=1"), Some((KitSync::AuthSync, KitGeneration::V1)));
        assert_eq!(KitSync::from_path("/produceAPI/v3/authSync"), None);
        assert_eq!(KitSync::from_path("/other/tenantSync"), None);
        assert_eq!(KitSync::from_path("/produceAPI/v2/unknownSync"), None);
        assert_eq!(KitSync::from_path("/xproduceAPI/v2/tenantSync"), None);
    }

    #[test]
    fn secrets_and_contacts_are_redacted_in_debug() {
        let body = br#"{"instanceId":"","tenantId":"t","appId":"a","clientId":"c","clientSecret":"SECRET-CIPHERTEXT","flag":1,"testFlag":1,"timeStamp":"20220413093539534"}"#;
        let parsed = parse_kit_request(KitSync::ApplicationSync, body);
        let text = format!("{parsed:?}");
        assert!(parsed.is_ok());
        assert!(!text.contains("SECRET-CIPHERTEXT"));
        let users = br#"{"instanceId":"i","tenantId":"t","appId":"a","currentSyncTime":"x","flag":1,"testFlag":0,"timeStamp":"1",
            "userList":[{"userName":"u","name":"n","orgCode":"o","role":"user","enable":"true","mobile":"13800000000","email":"u@x.cn"}]}"#;
        let text = format!("{:?}", parse_kit_request(KitSync::AuthSync, users));
        assert!(text.contains("userName") || text.contains("user_name"));
        assert!(!text.contains("13800000000") && !text.contains("u@x.cn"));
    }
}
