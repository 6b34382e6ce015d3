//! Wire form of the joint-operation kit syncs (§5): documented bodies, every documented shape variation, missing and
//! overlong fields named (nested ones with their path), and the answer's exact bytes.

use koogallery_core::wire::json_out::to_ascii_json;
use koogallery_core::wire::kit::{KitRequest, KitResponse, KitSync, OrgInfo, Role, SyncFlag, parse_kit_request};
use koogallery_core::wire::result_code::ResultCode;
use koogallery_core::wire::time::{CivilDate, parse_compact_utc};
use koogallery_core::wire::v2::TestFlag;
use koogallery_core::wire::validate::{FieldError, FieldProblem};
use serde_json::{Value, json};

const DOCUMENTED: &str = include_str!("data/wire/kit_documented_bodies.json");

fn documented(sync: &str) -> Value {
    let list: Vec<Value> = serde_json::from_str(DOCUMENTED).expect("data file is JSON");
    let entry = list.iter().find(|e| e["sync"] == sync).expect("sync in data file");
    serde_json::from_str(entry["body"].as_str().unwrap_or_default()).expect("body is JSON")
}

fn application() -> Value {
    json!({"instanceId":"huaiweitest123456","tenantId":"68cbc86abc2018ab880d92f36422fa0e","appId":"app-1","clientId":"client-1",
        "clientSecret":"QmFzZTY0Q2lwaGVydGV4dA==","flag":1,"testFlag":0,"timeStamp":"20220413093539534"})
}

fn auth() -> Value {
    json!({"instanceId":"huaiweitest123456","tenantId":"68cbc86abc2018ab880d92f36422fa0e","appId":"app-1",
        "userList":[{"userName":"zhangsan","name":"张三","orgCode":"10000","position":"dev","employeeCode":"E1","employeeType":1,
            "role":"admin","enable":"true","mobile":"13800000000","email":"zs@example.com","workPlace":"Nanjing","entryDate":"2022-4-1"}],
        "currentSyncTime":"20220413093539534","flag":1,"testFlag":0,"timeStamp":"20220413093539534"})
}

fn all_org() -> Value {
    json!({"instanceId":"huaiweitest123456","tenantId":"68cbc86abc2018ab880d92f36422fa0e",
        "orgInfoList":"[{\"orgCode\":\"10000\",\"orgName\":\"开发部\",\"parentCode\":\"\"},{\"orgCode\":\"10001\",\"orgName\":\"测试组\",\"parentCode\":\"10000\"}]",
        "flag":1,"testFlag":0,"timeStamp":"20220413093539534"})
}

fn body_for(sync: KitSync) -> Value {
    match sync {
        KitSync::TenantSync => documented("tenantSync"),
        KitSync::ApplicationSync => application(),
        KitSync::AuthSync => auth(),
        KitSync::SingleOrgSync => documented("singleOrgSync"),
        KitSync::AllOrgSync => all_org(),
    }
}

fn parse(sync: KitSync, v: &Value) -> Result<KitRequest, FieldError> {
    parse_kit_request(sync, v.to_string().as_bytes())
}

fn with(mut v: Value, field: &str, value: Value) -> Value {
    v[field] = value;
    v
}

fn without(mut v: Value, field: &str) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove(field);
    }
    v
}

#[test]
fn documented_bodies_parse() {
    let Ok(KitRequest::TenantSync(t)) = parse(KitSync::TenantSync, &documented("tenantSync")) else {
        panic!("tenantSync")
    };
    assert_eq!(t.instance_id, "huaiweitest123456");
    assert_eq!(t.tenant_code, "huawei");
    assert_eq!(t.domain_name, "https://example.tenantaccount.com");
    assert_eq!((t.flag, t.test_flag), (SyncFlag::Add, TestFlag::Production));
    // timeStamp is Beijing time: 09:35:39.534 +08:00 = 01:35:39.534Z.
    assert_eq!(t.time_stamp_ms, parse_compact_utc("20220413013539534").ok());

    let Ok(KitRequest::SingleOrgSync(o)) = parse(KitSync::SingleOrgSync, &documented("singleOrgSync")) else {
        panic!("single")
    };
    assert_eq!((o.org_code.as_str(), o.org_name.as_str(), o.parent_code), ("10000", "开发部", None));
}

#[test]
fn constructed_bodies_for_the_other_syncs_parse() {
    let Ok(KitRequest::ApplicationSync(a)) = parse(KitSync::ApplicationSync, &application()) else {
        panic!("application")
    };
    assert_eq!((a.app_id.as_str(), a.client_id.as_str()), ("app-1", "client-1"));
    assert!(!format!("{a:?}").contains("QmFzZTY0"), "clientSecret stays out of Debug");

    let Ok(KitRequest::AuthSync(s)) = parse(KitSync::AuthSync, &auth()) else { panic!("auth") };
    let u = &s.user_list[0];
    assert_eq!((u.user_name.as_str(), u.name.as_str(), &u.role, u.enable), ("zhangsan", "张三", &Role::Admin, true));
    assert_eq!(u.employee_type, Some(1));
    assert_eq!(u.entry_date_parsed, Some(CivilDate { year: 2022, month: 4, day: 1 }));
    assert_eq!(u.entry_date.as_deref(), Some("2022-4-1"));

    // The documented allOrgSync shape: orgInfoList as a JSON string, plus a `flag`.
    let Ok(KitRequest::AllOrgSync(all)) = parse(KitSync::AllOrgSync, &all_org()) else { panic!("allOrg") };
    assert_eq!(
        all.org_info_list,
        vec![
            OrgInfo { org_code: "10000".into(), org_name: "开发部".into(), parent_code: None },
            OrgInfo { org_code: "10001".into(), org_name: "测试组".into(), parent_code: Some("10000".into()) },
        ]
    );
    assert_eq!(all.flag, Some(SyncFlag::Add));
}

#[test]
fn shape_variations_parse() {
    // flag / testFlag as numeric strings.
    let strings = with(with(documented("tenantSync"), "flag", json!("2")), "testFlag", json!("1"));
    assert!(
        matches!(parse(KitSync::TenantSync, &strings), Ok(KitRequest::TenantSync(t)) if t.flag == SyncFlag::Modify && t.test_flag == TestFlag::Debug)
    );

    // Seller-side credential setup: empty instanceId and orderId (and null).
    let setup = with(with(documented("tenantSync"), "instanceId", json!("")), "orderId", Value::Null);
    assert!(
        matches!(parse(KitSync::TenantSync, &setup), Ok(KitRequest::TenantSync(t)) if t.instance_id.is_empty() && t.order_id.is_empty())
    );
    assert!(parse(KitSync::AllOrgSync, &with(all_org(), "instanceId", json!(""))).is_ok());

    // userList as a JSON string (V1), with the V1 `extension` object, and revoke (flag 3).
    let user = json!({"userName":"lisi","name":"李四","orgCode":"10001","role":"user","enable":false,
        "extension":{"entryDate":"2022-04-13","employeeType":"2","workPlace":"Xi'an"}});
    let v1 = with(with(auth(), "userList", json!(json!([user]).to_string())), "flag", json!(3));
    let Ok(KitRequest::AuthSync(s)) = parse(KitSync::AuthSync, &v1) else { panic!("auth V1 shape") };
    let u = &s.user_list[0];
    assert_eq!(s.flag, SyncFlag::Revoke);
    assert_eq!((u.enable, u.employee_type, u.work_place.as_deref()), (false, Some(2), Some("Xi'an")));
    assert_eq!(u.entry_date_parsed, Some(CivilDate { year: 2022, month: 4, day: 13 }));
    // The extension as a string holding an object.
    let ext_string = json!([{"userName":"w","name":"w","orgCode":"o","role":"user","enable":"TRUE","extension":"{\"workPlace\":\"Wuhan\"}"}]);
    let Ok(KitRequest::AuthSync(s)) = parse(KitSync::AuthSync, &with(auth(), "userList", ext_string)) else {
        panic!("ext string")
    };
    assert_eq!(s.user_list[0].work_place.as_deref(), Some("Wuhan"));
    // Unknown roles are kept, not refused.
    let odd_role = json!([{"userName":"w","name":"w","orgCode":"o","role":"auditor","enable":"true"}]);
    assert!(
        matches!(parse(KitSync::AuthSync, &with(auth(), "userList", odd_role)), Ok(KitRequest::AuthSync(s)) if s.user_list[0].role == Role::Unknown("auditor".into()))
    );

    // V1 allOrgSync: `orgInfo` (a string) with `name` instead of `orgName`, no flag.
    let v1_all = json!({"instanceId":"i","tenantId":"t","orgInfo":"[{\"orgCode\":\"1\",\"name\":\"总部\"}]","testFlag":"0","timeStamp":"20220413093539534"});
    let Ok(KitRequest::AllOrgSync(all)) = parse(KitSync::AllOrgSync, &v1_all) else { panic!("V1 allOrg") };
    assert_eq!(all.org_info_list, vec![OrgInfo { org_code: "1".into(), org_name: "总部".into(), parent_code: None }]);
    assert_eq!(all.flag, None);
    // orgInfoList as a real array.
    let array = with(all_org(), "orgInfoList", json!([{"orgCode":"1","orgName":"a"}]));
    assert!(matches!(parse(KitSync::AllOrgSync, &array), Ok(KitRequest::AllOrgSync(a)) if a.org_info_list.len() == 1));

    // singleOrgSync with V1's `name`.
    let single = with(without(documented("singleOrgSync"), "orgName"), "name", json!("开发部"));
    assert!(
        matches!(parse(KitSync::SingleOrgSync, &single), Ok(KitRequest::SingleOrgSync(o)) if o.org_name == "开发部")
    );

    // An unparsable body timeStamp is kept raw, not refused (it is informational only).
    let odd_stamp = with(documented("tenantSync"), "timeStamp", json!("2022-04-13 09:35:39"));
    assert!(
        matches!(parse(KitSync::TenantSync, &odd_stamp), Ok(KitRequest::TenantSync(t)) if t.time_stamp_ms.is_none())
    );
}

/// (sync, mandatory top-level fields). `instanceId` / `orderId` may be empty, `null` or absent: the marketplace signs
/// its canonical form with `null` entries dropped, so those three are one signed message.
const MANDATORY: &[(KitSync, &[&str])] = &[
    (KitSync::TenantSync, &["tenantId", "tenantCode", "name", "domainName", "flag", "testFlag", "timeStamp"]),
    (KitSync::ApplicationSync, &["tenantId", "appId", "clientId", "clientSecret", "flag", "testFlag", "timeStamp"]),
    (KitSync::AuthSync, &["tenantId", "appId", "userList", "currentSyncTime", "flag", "testFlag", "timeStamp"]),
    (KitSync::SingleOrgSync, &["tenantId", "orgCode", "orgName", "flag", "testFlag", "timeStamp"]),
    (KitSync::AllOrgSync, &["tenantId", "orgInfoList", "testFlag", "timeStamp"]),
];

#[test]
fn every_missing_mandatory_field_is_named() {
    for (sync, fields) in MANDATORY {
        for field in *fields {
            let absent = parse(*sync, &without(body_for(*sync), field));
            assert_eq!(absent, Err(FieldError::missing(*field)), "{sync}.{field} absent");
            let null = parse(*sync, &with(body_for(*sync), field, Value::Null));
            assert_eq!(null, Err(FieldError::missing(*field)), "{sync}.{field} null");
        }
        // Empty, null and absent instanceId all read as "" (seller-side credential setup).
        for body in [
            without(body_for(*sync), "instanceId"),
            with(body_for(*sync), "instanceId", Value::Null),
            with(body_for(*sync), "instanceId", Value::String(String::new())),
        ] {
            let parsed = parse(*sync, &body);
            assert!(parsed.is_ok(), "{sync}: {parsed:?}");
        }
    }
    assert!(parse(KitSync::TenantSync, &without(documented("tenantSync"), "orderId")).is_ok());
}

#[test]
fn nested_missing_fields_carry_their_path() {
    for field in ["userName", "name", "orgCode", "role", "enable"] {
        let mut body = auth();
        let second = json!({"userName":"b","name":"b","orgCode":"o","role":"user","enable":"true"});
        body["userList"] = json!([body["userList"][0].clone(), without(second, field)]);
        assert_eq!(
            parse(KitSync::AuthSync, &body),
            Err(FieldError::missing(format!("userList[1].{field}"))),
            "{field}"
        );
    }
    let list = with(all_org(), "orgInfoList", json!([{"orgName":"a"}]));
    assert_eq!(parse(KitSync::AllOrgSync, &list), Err(FieldError::missing("orgInfoList[0].orgCode")));
    let list = with(all_org(), "orgInfoList", json!([{"orgCode":"1"}]));
    assert_eq!(parse(KitSync::AllOrgSync, &list), Err(FieldError::missing("orgInfoList[0].orgName")));
    let v1 = json!({"instanceId":"i","tenantId":"t","orgInfo":[{"name":"n"}],"testFlag":0,"timeStamp":"1"});
    assert_eq!(parse(KitSync::AllOrgSync, &v1), Err(FieldError::missing("orgInfo[0].orgCode")));
}

/// (sync, field, documented maximum)
const MAX_LENGTHS: &[(KitSync, &str, usize)] = &[
    (KitSync::TenantSync, "instanceId", 64),
    (KitSync::TenantSync, "orderId", 64),
    (KitSync::TenantSync, "tenantId", 64),
    (KitSync::TenantSync, "tenantCode", 64),
    (KitSync::TenantSync, "name", 255),
    (KitSync::TenantSync, "domainName", 255),
    (KitSync::ApplicationSync, "instanceId", 64),
    (KitSync::ApplicationSync, "tenantId", 64),
    (KitSync::ApplicationSync, "appId", 64),
    (KitSync::ApplicationSync, "clientId", 64),
    (KitSync::SingleOrgSync, "orgCode", 64),
    (KitSync::SingleOrgSync, "orgName", 128),
    (KitSync::SingleOrgSync, "parentCode", 64),
];

#[test]
fn every_length_overflow_is_named() {
    for (sync, field, max) in MAX_LENGTHS {
        let at_limit = with(body_for(*sync), field, json!("名".repeat(*max)));
        assert!(parse(*sync, &at_limit).is_ok(), "{sync}.{field} at {max}");
        let over = with(body_for(*sync), field, json!("名".repeat(max + 1)));
        let err = parse(*sync, &over).expect_err("overflow");
        assert_eq!(
            (err.field.as_str(), err.problem),
            (*field, FieldProblem::TooLong { max: *max, actual: max + 1 }),
            "{sync}"
        );
    }
    // User fields (§5.3 table).
    for (field, max) in [
        ("userName", 64),
        ("name", 64),
        ("orgCode", 64),
        ("position", 64),
        ("employeeCode", 64),
        ("role", 32),
        ("mobile", 32),
        ("email", 128),
    ] {
        let mut body = auth();
        body["userList"][0][field] = json!("x".repeat(max + 1));
        let err = parse(KitSync::AuthSync, &body).expect_err("user overflow");
        assert_eq!(err, FieldError::too_long(format!("userList[0].{field}"), max, max + 1));
    }
    for (field, max) in [("orgCode", 64), ("orgName", 128), ("parentCode", 64)] {
        let list = json!([{"orgCode":"1","orgName":"a", field: "x".repeat(max + 1)}]);
        let err = parse(KitSync::AllOrgSync, &with(all_org(), "orgInfoList", list)).expect_err("org overflow");
        assert_eq!(err, FieldError::too_long(format!("orgInfoList[0].{field}"), max, max + 1));
    }
}

#[test]
fn invalid_values_are_named() {
    let cases = [
        (KitSync::TenantSync, with(documented("tenantSync"), "flag", json!(3)), "flag"),
        (KitSync::TenantSync, with(documented("tenantSync"), "flag", json!("one")), "flag"),
        (KitSync::TenantSync, with(documented("tenantSync"), "testFlag", json!(2)), "testFlag"),
        (KitSync::AuthSync, with(auth(), "flag", json!(4)), "flag"),
        (KitSync::AuthSync, with(auth(), "userList", json!("not json")), "userList"),
        (KitSync::AuthSync, with(auth(), "userList", json!({"userName":"x"})), "userList"),
        (KitSync::AuthSync, with(auth(), "userList", json!([1])), "userList[0]"),
        (KitSync::AllOrgSync, with(all_org(), "orgInfoList", json!(5)), "orgInfoList"),
    ];
    for (i, (sync, body, field)) in cases.iter().enumerate() {
        let err = parse(*sync, body).expect_err("must fail");
        assert_eq!(err.field, *field, "case {i}");
        assert!(matches!(err.problem, FieldProblem::Invalid(_)), "case {i}: {err}");
    }
    let mut bad_enable = auth();
    bad_enable["userList"][0]["enable"] = json!("yes");
    assert_eq!(
        parse(KitSync::AuthSync, &bad_enable),
        Err(FieldError::invalid("userList[0].enable", "must be true or false"))
    );
    assert_eq!(
        parse_kit_request(KitSync::TenantSync, b"null"),
        Err(FieldError::invalid("body", "must be a JSON object"))
    );
}

#[test]
fn response_bytes() {
    assert_eq!(
        to_ascii_json(&KitResponse::new(ResultCode::Success)),
        br#"{"resultCode":"000000","resultMsg":"success"}"#
    );
    assert_eq!(
        to_ascii_json(&KitResponse::new(ResultCode::AppSecretInvalid)),
        br#"{"resultCode":"000101","resultMsg":"something wrong with appSecret"}"#
    );
    let documented: KitResponse =
        serde_json::from_str(r#"{"resultCode":"000000","resultMsg":"success"}"#).expect("parses");
    assert_eq!(documented, KitResponse::new(ResultCode::Success));
}
