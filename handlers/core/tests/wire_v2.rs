//! Wire form of the basic interface V2 (§2): the documented bodies parse, every shape variation parses, every
//! mandatory field's absence and every length overflow is a `FieldError` naming the field, and the answers
//! serialise to exact bytes.

use koogallery_core::wire::json_out::to_ascii_json;
use koogallery_core::wire::result_code::ResultCode;
use koogallery_core::wire::v2::{
    AppInfo, BasicResponse, InstanceInfo, InstanceStatusChange, NewInstanceResponse, QueryInstanceResponse, Scene,
    TestFlag, UsageInfo, V2Request, parse_v2_request,
};
use koogallery_core::wire::validate::{FieldError, FieldProblem};
use serde_json::{Value, json};

const DOCUMENTED: &str = include_str!("data/wire/v2_documented_requests.json");
const DEMO_QUERY_RESPONSE: &str = include_str!("data/wire/v2_query_instance_demo_response.json");

fn documented() -> Vec<(String, String)> {
    let list: Vec<Value> = serde_json::from_str(DOCUMENTED).expect("data file is JSON");
    list.iter()
        .map(|v| {
            (v["activity"].as_str().unwrap_or_default().to_owned(), v["body"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

fn documented_body(activity: &str) -> Value {
    let (_, body) = documented().into_iter().find(|(a, _)| a == activity).expect("activity in data file");
    serde_json::from_str(&body).expect("body is JSON")
}

fn parse(v: &Value) -> Result<V2Request, FieldError> {
    parse_v2_request(v.to_string().as_bytes())
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
fn every_documented_body_parses_as_its_activity() {
    let docs = documented();
    assert_eq!(docs.len(), 8);
    for (i, (activity, body)) in docs.iter().enumerate() {
        let parsed = parse_v2_request(body.as_bytes());
        let parsed = parsed.unwrap_or_else(|e| panic!("vector {i} ({activity}): {e}"));
        assert_eq!(parsed.activity_name(), activity, "vector {i}");
    }
}

#[test]
fn documented_values_are_read() {
    let Ok(V2Request::NewInstance(n)) = parse(&documented_body("newInstance")) else { panic!("newInstance") };
    assert_eq!(n.order_id, "CS2211181819B4LVS");
    assert_eq!(n.order_line_id, "CS2211181819B4LVS-000001");
    assert_eq!(n.business_id, "87b94795-0603-4e24-8ae5-69420d60e3c8");
    assert_eq!(n.test_flag, TestFlag::Debug);
    assert_eq!((n.buyer_info, n.order_info), (None, None));

    let Ok(V2Request::RefreshInstance(r)) = parse(&documented_body("refreshInstance")) else { panic!("refresh") };
    assert_eq!(r.scene, Scene::Renewal);
    assert_eq!(r.expire_time_raw, "20221124023618256");
    assert_eq!(r.expire_time_ms, 1_669_257_378_256);
    assert_eq!(r.product_id.as_deref(), Some("OFFI461867333479178240"));

    let Ok(V2Request::UpdateInstanceStatus(u)) = parse(&documented_body("updateInstanceStatus")) else {
        panic!("update")
    };
    assert_eq!(u.status, InstanceStatusChange::Freeze);

    let Ok(V2Request::QueryInstance(q)) = parse(&documented_body("queryInstance")) else { panic!("query") };
    assert_eq!(q.instance_ids, vec!["10e758d0-31ad-4c4b-8f1b-81d03469a10e".to_owned()]);
    assert_eq!(q.test_flag, TestFlag::Production);

    let Ok(V2Request::OrderNotify(o)) = parse(&documented_body("orderNotify")) else { panic!("orderNotify") };
    assert_eq!(o.test_flag, TestFlag::Debug);
}

#[test]
fn shape_variations_parse() {
    // testFlag as a number, or absent (defaults to production).
    let numeric = with(documented_body("newInstance"), "testFlag", json!(1));
    assert!(matches!(parse(&numeric), Ok(V2Request::NewInstance(n)) if n.test_flag == TestFlag::Debug));
    let absent = without(documented_body("newInstance"), "testFlag");
    assert!(matches!(parse(&absent), Ok(V2Request::NewInstance(n)) if n.test_flag == TestFlag::Production));

    // refreshInstance expireTime with 14 digits; every scene, including an unknown one.
    let fourteen = with(documented_body("refreshInstance"), "expireTime", json!("20221124023618"));
    assert!(matches!(parse(&fourteen), Ok(V2Request::RefreshInstance(r)) if r.expire_time_ms == 1_669_257_378_000));
    for (text, scene) in [
        ("TRIAL_TO_FORMAL", Scene::TrialToFormal),
        ("UNSUBSCRIBE_RENEWAL_PERIOD", Scene::UnsubscribeRenewalPeriod),
        ("RENEWAL_CHANGE", Scene::RenewalChange),
        ("SOMETHING_NEW", Scene::Unknown("SOMETHING_NEW".into())),
    ] {
        let body = with(documented_body("refreshInstance"), "scene", json!(text));
        assert!(matches!(parse(&body), Ok(V2Request::RefreshInstance(r)) if r.scene == scene), "{text}");
    }
    // productId is optional.
    assert!(parse(&without(documented_body("refreshInstance"), "productId")).is_ok());

    // UNFREEZE.
    let unfreeze = with(documented_body("updateInstanceStatus"), "status", json!("UNFREEZE"));
    assert!(
        matches!(parse(&unfreeze), Ok(V2Request::UpdateInstanceStatus(u)) if u.status == InstanceStatusChange::Unfreeze)
    );

    // releaseInstance without the optional order fields.
    let bare = without(without(documented_body("releaseInstance"), "orderId"), "orderLineId");
    assert!(
        matches!(parse(&bare), Ok(V2Request::ReleaseInstance(r)) if r.order_id.is_none() && r.order_line_id.is_none())
    );

    // queryInstance with a comma list (spaces and a trailing comma tolerated) and exactly 100 IDs.
    let list = with(documented_body("queryInstance"), "instanceId", json!("a, b,c,"));
    assert!(matches!(parse(&list), Ok(V2Request::QueryInstance(q)) if q.instance_ids == ["a", "b", "c"]));
    let hundred: Vec<String> = (0..100).map(|i| format!("id-{i}")).collect();
    let full = with(documented_body("queryInstance"), "instanceId", json!(hundred.join(",")));
    assert!(matches!(parse(&full), Ok(V2Request::QueryInstance(q)) if q.instance_ids.len() == 100));
}

#[test]
fn change_instance_check_product_info_as_object_or_string() {
    let base =
        json!({"activity":"changeInstanceCheck","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","testFlag":"1"});
    let object =
        with(base.clone(), "productInfo", json!({"productId":"P1","skuCode":"S1","linearValue":50,"extraField":true}));
    let string = with(
        base.clone(),
        "productInfo",
        json!("{\"productId\":\"P1\",\"skuCode\":\"S1\",\"linearValue\":50,\"extraField\":true}"),
    );
    for (i, body) in [object, string].iter().enumerate() {
        let Ok(V2Request::ChangeInstanceCheck(c)) = parse(body) else { panic!("variant {i}") };
        assert_eq!(c.product_info.product_id.as_deref(), Some("P1"), "variant {i}");
        assert_eq!(c.product_info.sku_code.as_deref(), Some("S1"), "variant {i}");
        assert_eq!(c.product_info.linear_value.as_deref(), Some("50"), "variant {i}");
        assert_eq!(c.product_info.extra.get("extraField"), Some(&json!(true)), "variant {i}");
    }
    assert_eq!(parse(&base), Err(FieldError::missing("productInfo")));
    assert_eq!(
        parse(&with(base.clone(), "productInfo", json!("not json"))),
        Err(FieldError::invalid("productInfo", "must be a JSON object"))
    );
    let long = with(base, "productInfo", json!({"productId": "p".repeat(65)}));
    assert_eq!(parse(&long), Err(FieldError::too_long("productInfo.productId", 64, 65)));
}

#[test]
fn order_details_in_body_variant_is_kept() {
    let body = json!({
        "activity":"newInstance","businessId":"b-1","orderId":"CS1","orderLineId":"CS1-000001","testFlag":"1",
        "buyerInfo":{"customerId":"c","customerName":"n","userId":"u","userName":"un","mobilePhone":"138","email":"e@x"},
        "orderInfo":[{"businessId":"b-1","orderId":"CS1","trialFlag":"0","orderAmount":"10","chargingMode":"PERIOD","periodType":"month",
            "periodNumber":"1","provisionType":"1","productInfo":[{"skuCode":"s","productId":"p","linearValue":"5"}],"createTime":"20221025060628"}]
    });
    let Ok(V2Request::NewInstance(n)) = parse(&body) else { panic!("newInstance") };
    assert_eq!(n.order_info.as_ref().and_then(|o| o[0]["chargingMode"].as_str()), Some("PERIOD"));
    assert_eq!(n.buyer_info.as_ref().and_then(|b| b["customerId"].as_str()), Some("c"));
    let debug = format!("{n:?}");
    assert!(!debug.contains("e@x") && !debug.contains("138"), "contact data must not reach Debug");

    // Sent as strings holding JSON: decoded.
    let stringly = with(
        with(body, "orderInfo", json!("[{\"chargingMode\":\"ON_DEMAND\"}]")),
        "buyerInfo",
        json!("{\"customerId\":\"c\"}"),
    );
    let Ok(V2Request::NewInstance(n)) = parse(&stringly) else { panic!("newInstance") };
    assert_eq!(n.order_info, Some(json!([{"chargingMode":"ON_DEMAND"}])));
    assert_eq!(n.buyer_info, Some(json!({"customerId":"c"})));
}

#[test]
fn kit_activity_at_the_production_url_is_a_kit_request() {
    let body = json!({"activity":"tenantSync","instanceId":"i","orderId":"o","tenantId":"t","tenantCode":"c","name":"n",
        "domainName":"https://d","flag":1,"testFlag":1,"timeStamp":"20220413093539534"});
    let parsed = parse(&body);
    assert!(matches!(&parsed, Ok(V2Request::Kit(_))));
    assert_eq!(parsed.map(|r| r.activity_name()), Ok("tenantSync"));
}

/// (activity, mandatory fields)
const MANDATORY: &[(&str, &[&str])] = &[
    ("newInstance", &["activity", "orderId", "orderLineId", "businessId"]),
    ("queryInstance", &["activity", "instanceId"]),
    ("refreshInstance", &["activity", "scene", "orderId", "orderLineId", "instanceId", "expireTime"]),
    ("updateInstanceStatus", &["activity", "instanceId", "status"]),
    ("releaseInstance", &["activity", "instanceId"]),
    ("upgradeInstance", &["activity", "instanceId", "orderId", "orderLineId"]),
    ("orderNotify", &["activity", "orderId", "orderLineId", "testFlag"]),
];

#[test]
fn every_missing_mandatory_field_is_named() {
    for (activity, fields) in MANDATORY {
        for field in *fields {
            for (how, body) in [
                ("absent", without(documented_body(activity), field)),
                ("null", with(documented_body(activity), field, Value::Null)),
                ("empty", with(documented_body(activity), field, json!(""))),
                ("blank", with(documented_body(activity), field, json!("   "))),
            ] {
                assert_eq!(parse(&body), Err(FieldError::missing(*field)), "{activity}.{field} {how}");
            }
        }
    }
}

/// (activity, field, documented maximum)
const MAX_LENGTHS: &[(&str, &str, usize)] = &[
    ("newInstance", "orderId", 64),
    ("newInstance", "orderLineId", 64),
    ("newInstance", "businessId", 64),
    ("newInstance", "activity", 32),
    ("queryInstance", "instanceId", 64),
    ("refreshInstance", "scene", 64),
    ("refreshInstance", "orderId", 64),
    ("refreshInstance", "orderLineId", 64),
    ("refreshInstance", "instanceId", 64),
    ("refreshInstance", "productId", 64),
    ("refreshInstance", "expireTime", 20),
    ("updateInstanceStatus", "instanceId", 64),
    ("updateInstanceStatus", "status", 32),
    ("releaseInstance", "instanceId", 64),
    ("releaseInstance", "orderId", 64),
    ("releaseInstance", "orderLineId", 64),
    ("upgradeInstance", "instanceId", 64),
    ("upgradeInstance", "orderId", 64),
    ("upgradeInstance", "orderLineId", 64),
    ("orderNotify", "orderId", 64),
    ("orderNotify", "orderLineId", 64),
];

#[test]
fn every_length_overflow_is_named() {
    for (activity, field, max) in MAX_LENGTHS {
        // At the limit: accepted unless the value has a format of its own.
        if !matches!(*field, "activity" | "expireTime" | "status") {
            let at_limit = with(documented_body(activity), field, json!("x".repeat(*max)));
            assert!(parse(&at_limit).is_ok(), "{activity}.{field} at {max}");
        }
        let over = with(documented_body(activity), field, json!("x".repeat(max + 1)));
        let err = parse(&over).expect_err("overflow must fail");
        assert_eq!(err.field, *field, "{activity}.{field}");
        assert_eq!(err.problem, FieldProblem::TooLong { max: *max, actual: max + 1 }, "{activity}.{field}");
        assert_eq!(err.to_string(), format!("{field} exceeds {max} characters"));
    }
    // Length is counted in characters: 64 Chinese characters fit an S64 field.
    let chinese = with(documented_body("newInstance"), "orderId", json!("订".repeat(64)));
    assert!(parse(&chinese).is_ok());
}

#[test]
fn invalid_values_are_named() {
    let cases = [
        (with(documented_body("newInstance"), "testFlag", json!("2")), "testFlag"),
        (with(documented_body("newInstance"), "testFlag", json!("yes")), "testFlag"),
        (with(documented_body("newInstance"), "orderId", json!({"a": 1})), "orderId"),
        (with(documented_body("refreshInstance"), "expireTime", json!("2022112402361")), "expireTime"),
        (with(documented_body("refreshInstance"), "expireTime", json!("20221324023618")), "expireTime"),
        (with(documented_body("refreshInstance"), "expireTime", json!("20230229000000")), "expireTime"),
        (with(documented_body("updateInstanceStatus"), "status", json!("FROZEN")), "status"),
        (with(documented_body("newInstance"), "activity", json!("createInstance")), "activity"),
        (
            with(
                documented_body("queryInstance"),
                "instanceId",
                json!((0..101).map(|i| i.to_string()).collect::<Vec<_>>().join(",")),
            ),
            "instanceId",
        ),
    ];
    for (i, (body, field)) in cases.iter().enumerate() {
        let err = parse(body).expect_err("must fail");
        assert_eq!(err.field, *field, "case {i}");
        assert!(matches!(err.problem, FieldProblem::Invalid(_)), "case {i}: {err}");
    }
    assert_eq!(parse_v2_request(b"[1,2]"), Err(FieldError::invalid("body", "must be a JSON object")));
    assert_eq!(parse_v2_request(b"{"), Err(FieldError::invalid("body", "must be a JSON object")));
    assert_eq!(
        parse(&with(documented_body("newInstance"), "activity", json!("bogus"))).map_err(|e| e.to_string()),
        Err("activity is invalid: unknown activity".to_owned())
    );
}

#[test]
fn responses_serialise_to_exact_bytes() {
    let created = NewInstanceResponse::success("87b94795-0603-4e24-8ae5-69420d60e3c8".into());
    assert_eq!(
        to_ascii_json(&created),
        br#"{"resultCode":"000000","resultMsg":"success","instanceId":"87b94795-0603-4e24-8ae5-69420d60e3c8"}"#
    );
    assert_eq!(
        to_ascii_json(&BasicResponse::new(ResultCode::Processing)),
        br#"{"resultCode":"000004","resultMsg":"request is processing"}"#
    );
    let invalid =
        BasicResponse::with_message(ResultCode::InvalidParameter, FieldError::missing("orderLineId").to_string());
    assert_eq!(to_ascii_json(&invalid), br#"{"resultCode":"000002","resultMsg":"orderLineId is missing"}"#);
    // The documented example's "success." message parses back too.
    let documented: NewInstanceResponse = serde_json::from_str(
        r#"{"resultCode":"000000","resultMsg":"success.","instanceId":"87b94795-0603-4e24-8ae5-69420d60e3c8"}"#,
    )
    .expect("documented response");
    assert_eq!(documented.result_code, ResultCode::Success);
}

fn demo_query_response() -> QueryInstanceResponse {
    QueryInstanceResponse {
        result_code: ResultCode::Success,
        result_msg: "success".into(),
        info: vec![InstanceInfo {
            instance_id: "10e758d0-31ad-4c4b-8f1b-81d03469a10e".into(),
            app_info: Some(AppInfo {
                front_end_url: "http://transwai.com".into(),
                admin_url: Some("https://transwai.com".into()),
                user_name: Some("hwadmin".into()),
                password: Some("Huawei12345".into()),
                memo: Some("创建实例成功".into()),
            }),
            usage_info: None,
        }],
    }
}

#[test]
fn query_instance_demo_response_round_trips_and_is_ascii_escaped() {
    let parsed: QueryInstanceResponse = serde_json::from_str(DEMO_QUERY_RESPONSE).expect("demo response parses");
    assert_eq!(parsed, demo_query_response());
    // Plain serde_json gives back the demo's bytes (same field order, raw UTF-8).
    assert_eq!(serde_json::to_string(&parsed).expect("serialise"), DEMO_QUERY_RESPONSE);
    // What we send: identical except that the memo is \u-escaped.
    let sent = to_ascii_json(&parsed);
    assert_eq!(
        String::from_utf8(sent).expect("ascii"),
        r#"{"resultCode":"000000","resultMsg":"success","info":[{"instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","appInfo":{"frontEndUrl":"http://transwai.com","adminUrl":"https://transwai.com","userName":"hwadmin","password":"Huawei12345","memo":"\u521b\u5efa\u5b9e\u4f8b\u6210\u529f"}}]}"#
    );
}

#[test]
fn optional_response_fields_are_skipped_and_usage_info_is_spelled_once() {
    let bare = QueryInstanceResponse {
        result_code: ResultCode::Success,
        result_msg: "success".into(),
        info: vec![InstanceInfo { instance_id: "i".into(), app_info: None, usage_info: None }],
    };
    assert_eq!(to_ascii_json(&bare), br#"{"resultCode":"000000","resultMsg":"success","info":[{"instanceId":"i"}]}"#);
    let empty = QueryInstanceResponse { info: vec![], ..bare.clone() };
    assert_eq!(to_ascii_json(&empty), br#"{"resultCode":"000000","resultMsg":"success","info":[]}"#);

    let usage = InstanceInfo {
        instance_id: "i".into(),
        app_info: Some(AppInfo {
            front_end_url: "https://x".into(),
            admin_url: None,
            user_name: None,
            password: None,
            memo: None,
        }),
        usage_info: Some(vec![UsageInfo {
            related_instance_id: None,
            usage_value: 12.5,
            statistical_time: "20240306020000000".into(),
            dashboard_url: None,
        }]),
    };
    assert_eq!(
        to_ascii_json(&usage),
        br#"{"instanceId":"i","appInfo":{"frontEndUrl":"https://x"},"usageInfo":[{"usageValue":12.5,"statisticalTime":"20240306020000000"}]}"#
    );
    let other_spelling: InstanceInfo = serde_json::from_str(
        r#"{"instanceId":"i","usageInfos":[{"usageValue":1,"statisticalTime":"20240306020000000"}]}"#,
    )
    .expect("usageInfos accepted");
    assert_eq!(other_spelling.usage_info.map(|u| u.len()), Some(1));
}

#[test]
fn app_info_debug_redacts_the_password() {
    let text = format!("{:?}", demo_query_response());
    assert!(!text.contains("Huawei12345"));
    assert!(text.contains("[REDACTED]"));
}
