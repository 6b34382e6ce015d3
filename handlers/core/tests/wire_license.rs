//! Wire form of the license interfaces (§8): the documented activation exchange, heartbeat, and the three
//! marketplace → merchant callbacks classified by their fields.

use koogallery_core::wire::json_out::to_ascii_json;
use koogallery_core::wire::license::{
    ActivateData, ActivateRequest, ActivateResponse, HeartbeatInfo, HeartbeatRequest, HeartbeatResponse,
    LicenseCallback, LicenseCallbackResponse, LicenseCodeInfo, LicenseErrorCode, LicenseStatus, parse_license_callback,
};
use koogallery_core::wire::result_code::ResultCode;
use koogallery_core::wire::v2::{InstanceStatusChange, Scene, TestFlag};
use koogallery_core::wire::validate::{FieldError, FieldProblem};
use serde_json::{Value, json};

const ACTIVATE_RESPONSE: &str = r#"{"error_code":"92020000","error_msg":"success","data":{"license_code_info":"{\"status\":\"ALIVE\",\"expire_time\":\"20230726121646\",\"product_id\":\"12345\",\"amount\":2,\"order_id\":\"CS123\"}"}}"#;

#[test]
fn documented_activation_exchange() {
    let request = ActivateRequest { license: "<code>".into(), real_effect_time: Some("20230626121646".into()) };
    assert_eq!(
        serde_json::to_string(&request).expect("serialise"),
        r#"{"license":"<code>","real_effect_time":"20230626121646"}"#
    );
    let bare = ActivateRequest { license: "L".into(), real_effect_time: None };
    assert_eq!(serde_json::to_string(&bare).expect("serialise"), r#"{"license":"L"}"#);

    let resp: ActivateResponse = serde_json::from_str(ACTIVATE_RESPONSE).expect("documented answer");
    assert_eq!(resp.error_code.as_deref(), Some("92020000"));
    let info = resp.data.as_ref().and_then(|d| d.license_code_info.clone()).expect("license_code_info decoded");
    assert_eq!(
        info,
        LicenseCodeInfo {
            status: Some(LicenseStatus::Alive),
            expire_time: Some("20230726121646".into()),
            product_id: Some("12345".into()),
            order_id: Some("CS123".into()),
            amount: Some(2),
        }
    );
    // Written back the marketplace's way: license_code_info as a string holding JSON (what a mock must send).
    let rewritten = serde_json::to_string(&resp).expect("serialise");
    let reread: ActivateResponse = serde_json::from_str(&rewritten).expect("reparse");
    assert_eq!(reread, resp);
    let raw: Value = serde_json::from_str(&rewritten).expect("json");
    assert!(raw["data"]["license_code_info"].is_string());
}

#[test]
fn license_code_info_as_object_or_null() {
    let object: ActivateData =
        serde_json::from_str(r#"{"license_code_info":{"status":"EXPIRED","amount":"3"}}"#).expect("object form");
    assert_eq!(object.license_code_info.map(|i| (i.status, i.amount)), Some((Some(LicenseStatus::Expired), Some(3))));
    let null: ActivateData = serde_json::from_str(r#"{"license_code_info":null}"#).expect("null");
    assert_eq!(null.license_code_info, None);
    let failed: ActivateResponse =
        serde_json::from_str(r#"{"error_code":"92020003","error_msg":"illegal state","data":null}"#).expect("failure");
    assert_eq!(failed.error_code.as_deref().map(LicenseErrorCode::parse), Some(LicenseErrorCode::IllegalState));
}

#[test]
fn heartbeat_exchange() {
    let req = HeartbeatRequest {
        license: "L".into(),
        heartbeat_info: Some(HeartbeatInfo { third_party_account: "acc".into(), ip: Some("10.0.0.1".into()) }),
    };
    assert_eq!(
        serde_json::to_string(&req).expect("serialise"),
        r#"{"license":"L","heartbeatInfo":{"thirdPartyAccount":"acc","ip":"10.0.0.1"}}"#
    );
    assert_eq!(req.validate(), Ok(()));
    let long_ip = HeartbeatRequest {
        heartbeat_info: Some(HeartbeatInfo { third_party_account: "a".into(), ip: Some("1".repeat(33)) }),
        ..req
    };
    assert_eq!(long_ip.validate(), Err(FieldError::too_long("heartbeatInfo.ip", 32, 33)));

    let resp: HeartbeatResponse = serde_json::from_str(
        r#"{"error_code":"92020000","error_msg":"success","data":{"license_code":"L","status":"RELEASED","activate_time":"20230626121646","sku_code":"s"}}"#,
    )
    .expect("heartbeat answer");
    let data = resp.data.expect("data");
    assert_eq!(data.status, Some(LicenseStatus::Released));
    assert_eq!(data.extra.get("sku_code"), Some(&json!("s")));
}

#[test]
fn error_code_table() {
    let table = [
        ("92020000", LicenseErrorCode::Success),
        ("92020001", LicenseErrorCode::InternalError),
        ("92020002", LicenseErrorCode::InvalidParam),
        ("92020003", LicenseErrorCode::IllegalState),
        ("92020004", LicenseErrorCode::NotReceived),
        ("92020005", LicenseErrorCode::NotExist),
        ("92020011", LicenseErrorCode::NotActivated),
        ("92020020", LicenseErrorCode::InvalidCodeExists),
        ("95000001", LicenseErrorCode::ReqParamInvalid),
        ("95000002", LicenseErrorCode::MethodNotSupported),
        ("95000003", LicenseErrorCode::ContentTypeNotSupported),
        ("95000004", LicenseErrorCode::NotReadable),
    ];
    for (text, code) in table {
        assert_eq!(LicenseErrorCode::parse(text), code);
    }
}

fn callback(v: &Value) -> Result<LicenseCallback, FieldError> {
    parse_license_callback(v.to_string().as_bytes())
}

#[test]
fn callbacks_are_classified_by_their_fields() {
    let status =
        json!({"activity":"changeLicenseStatus","license":"LIC-1","status":"FREEZE","orderId":"O","testFlag":"1"});
    let Ok(LicenseCallback::ChangeStatus(s)) = callback(&status) else { panic!("status change") };
    assert_eq!((s.license.as_str(), s.status, s.test_flag), ("LIC-1", InstanceStatusChange::Freeze, TestFlag::Debug));
    assert_eq!(s.activity.as_deref(), Some("changeLicenseStatus"));

    for stamp in ["20240101000000", "20240101000000000"] {
        let expiry = json!({"license":"LIC-1","expireTime":stamp,"scene":"RENEWAL","productId":"P","orderId":"O","orderLineId":"O-1"});
        let Ok(LicenseCallback::UpdateExpiry(e)) = callback(&expiry) else { panic!("expiry {stamp}") };
        assert_eq!(e.expire_time_ms, 1_704_067_200_000);
        assert_eq!(e.scene, Some(Scene::Renewal));
        assert_eq!(e.activity, None);
    }

    let release = json!({"activity":"releaseLicense","license":"LIC-1","orderId":"O"});
    assert!(
        matches!(callback(&release), Ok(LicenseCallback::Release(r)) if r.license == "LIC-1" && r.order_id.as_deref() == Some("O"))
    );

    // status wins when both are present.
    let both = json!({"license":"LIC-1","status":"UNFREEZE","expireTime":"20240101000000"});
    assert!(
        matches!(callback(&both), Ok(LicenseCallback::ChangeStatus(s)) if s.status == InstanceStatusChange::Unfreeze)
    );
}

#[test]
fn callback_errors_are_named() {
    assert_eq!(callback(&json!({"status":"FREEZE"})), Err(FieldError::missing("license")));
    assert_eq!(callback(&json!({"license":""})), Err(FieldError::missing("license")));
    let long = callback(&json!({"license":"L".repeat(65)})).expect_err("too long");
    assert_eq!((long.field.as_str(), long.problem), ("license", FieldProblem::TooLong { max: 64, actual: 65 }));
    assert_eq!(
        callback(&json!({"license":"L","status":"FROZEN"})),
        Err(FieldError::invalid("status", "must be FREEZE or UNFREEZE"))
    );
    let bad_time = callback(&json!({"license":"L","expireTime":"2024-01-01"})).expect_err("bad time");
    assert_eq!(bad_time.field, "expireTime");
}

#[test]
fn callback_answer_bytes() {
    assert_eq!(
        to_ascii_json(&LicenseCallbackResponse::new(ResultCode::InstanceNotFound)),
        br#"{"resultCode":"000003","resultMsg":"instance is invalid"}"#
    );
}
