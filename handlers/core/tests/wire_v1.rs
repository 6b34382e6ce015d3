//! Wire form of the legacy V1 interfaces (§3): the documented URLs parse, shape variations parse, every mandatory
//! parameter's absence and every overflow is a `FieldError` naming it, and V1 answers serialise to exact bytes.

use koogallery_core::wire::json_out::to_ascii_json;
use koogallery_core::wire::order::{ChargingMode, NameValue};
use koogallery_core::wire::result_code::ResultCode;
use koogallery_core::wire::v1::{
    PeriodType, V1AppInfo, V1BasicResponse, V1InstanceInfo, V1NewInstanceResponse, V1QueryInstanceResponse, V1Request,
    parse_v1_request,
};
use koogallery_core::wire::v2::TestFlag;
use koogallery_core::wire::validate::{FieldError, FieldProblem};
use percent_encoding::percent_decode_str;

const DOCUMENTED_URLS: &str = include_str!("data/wire/v1_documented_urls.txt");

type Params = Vec<(String, String)>;

/// Decodes a query string as a servlet's `getParameterMap()` would (`application/x-www-form-urlencoded`).
fn form_decode(query: &str) -> Params {
    let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn documented(index: usize) -> Params {
    let url = DOCUMENTED_URLS.lines().nth(index).expect("documented URL");
    let (_, query) = url.split_once('?').expect("query string");
    form_decode(query)
}

fn set(mut p: Params, name: &str, value: &str) -> Params {
    match p.iter_mut().find(|(k, _)| k == name) {
        Some(kv) => kv.1 = value.to_owned(),
        None => p.push((name.to_owned(), value.to_owned())),
    }
    p
}

fn without(p: Params, name: &str) -> Params {
    p.into_iter().filter(|(k, _)| k != name).collect()
}

/// The documented upgrade URL elides `timeStamp` and `authToken` as `...`; a real call carries values.
fn documented_upgrade() -> Params {
    set(
        set(documented(3), "timeStamp", "20230327065233980"),
        "authToken",
        "Eh/3Ud+R1j3d/wOui5CAcvRipM8IuribvgkXfJAsTfE=",
    )
}

fn documented_new_instance() -> Params {
    documented(0)
}

#[test]
fn every_documented_url_parses() {
    let expected = ["newInstance", "refreshInstance", "releaseInstance", "upgrade", "queryInstance"];
    for (i, activity) in expected.iter().enumerate() {
        let params = if i == 3 { documented_upgrade() } else { documented(i) };
        let parsed = parse_v1_request(&params).unwrap_or_else(|e| panic!("vector {i} ({activity}): {e}"));
        assert_eq!(parsed.activity_name(), *activity, "vector {i}");
    }
}

#[test]
fn documented_values_are_read() {
    let Ok(V1Request::NewInstance(n)) = parse_v1_request(&documented(0)) else { panic!("newInstance") };
    assert_eq!(n.customer_id, "68cbc86abc2018ab880d92f36422fa0e");
    assert_eq!(n.business_id, "61e834ba-7b97-4418-b8f7-e5345137278c");
    assert_eq!(n.expire_time.as_deref(), Some("20200727153156"));
    assert_eq!(n.expire_time_ms, Some(1_595_863_916_000));
    assert_eq!(n.test_flag, TestFlag::Debug);
    assert_eq!(n.time_stamp_ms, 1_595_835_431_903); // 2020-07-27T07:37:11.903Z
    assert_eq!((n.sku_code, n.customer_name, n.charging_mode), (None, None, None));

    let Ok(V1Request::RefreshInstance(r)) = parse_v1_request(&documented(1)) else { panic!("refresh") };
    assert_eq!(
        (r.order_id.as_str(), r.instance_id.as_str()),
        ("HWS001014ED483AA1E8", "03pf80c2bae96vc49b80b917bea776d7")
    );
    assert!(!r.trial_to_formal);

    let Ok(V1Request::ReleaseInstance(rel)) = parse_v1_request(&documented(2)) else { panic!("release") };
    assert_eq!(rel.order_id, None, "the documented release carries no orderId");

    let Ok(V1Request::Upgrade(u)) = parse_v1_request(&documented_upgrade()) else { panic!("upgrade") };
    assert_eq!(u.amount, Some(6456));
    assert_eq!(
        u.saas_extend_params,
        vec![
            NameValue { name: "idNum".into(), value: Some("352255555555656".into()) },
            NameValue { name: "userName".into(), value: Some("huawei123".into()) },
            NameValue { name: "custEmail".into(), value: Some("123@huawei.com".into()) },
        ]
    );

    let Ok(V1Request::QueryInstance(q)) = parse_v1_request(&documented(4)) else { panic!("query") };
    assert_eq!(
        q.instance_ids,
        [
            "ebc28eb6-4606-4098-b4bd-c201c99a0654",
            "fe28e27e-1157-4105-8592-24cc9488db10",
            "92df74e4-163e-4e0b-a206-d9800d33881b"
        ]
    );
}

#[test]
fn shape_variations_parse() {
    let base = documented_new_instance();
    for (mode, expected) in [
        ("1", ChargingMode::Period),
        ("3", ChargingMode::OneTime),
        ("ON_DEMAND", ChargingMode::OnDemand),
        ("PERIOD", ChargingMode::Period),
        ("2", ChargingMode::Unknown("2".into())),
    ] {
        let p = set(base.clone(), "chargingMode", mode);
        assert!(
            matches!(parse_v1_request(&p), Ok(V1Request::NewInstance(n)) if n.charging_mode == Some(expected.clone())),
            "{mode}"
        );
    }
    for (text, expected) in
        [("year", PeriodType::Year), ("hour", PeriodType::Hour), ("week", PeriodType::Unknown("week".into()))]
    {
        let p = set(base.clone(), "periodType", text);
        assert!(
            matches!(parse_v1_request(&p), Ok(V1Request::NewInstance(n)) if n.period_type == Some(expected.clone())),
            "{text}"
        );
    }
    let rich = [
        ("orderAmount", "-12.345"),
        ("provisionType", "2"),
        ("trialFlag", "1"),
        ("customerName", "华为"),
        ("mobilePhone", "abcdefghijklmnopQ2lwaGVydGV4dA=="),
        ("periodNumber", "12"),
        ("diskSize", "40"),
        ("expireTime", "20200727153156123"),
    ];
    let p = rich.iter().fold(base.clone(), |p, (k, v)| set(p, k, v));
    let Ok(V1Request::NewInstance(n)) = parse_v1_request(&p) else { panic!("rich newInstance") };
    assert_eq!(n.order_amount.as_deref(), Some("-12.345"));
    assert_eq!(n.provision_type.as_deref(), Some("2"));
    assert_eq!(n.trial_flag, Some(true));
    assert_eq!(n.mobile_phone.as_deref(), Some("abcdefghijklmnopQ2lwaGVydGV4dA=="), "kept encrypted");
    assert_eq!((n.period_number, n.disk_size), (Some(12), Some(40)));
    assert_eq!(n.expire_time_ms, Some(1_595_863_916_123));
    assert!(!format!("{n:?}").contains("Q2lwaGVydGV4dA"), "ciphertext stays out of Debug");

    // Refresh: trial → formal and a negative (refund) amount.
    let r = set(set(documented(1), "trialToFormal", "1"), "orderAmount", "-30");
    assert!(
        matches!(parse_v1_request(&r), Ok(V1Request::RefreshInstance(x)) if x.trial_to_formal && x.order_amount.as_deref() == Some("-30"))
    );

    // Unknown activity (e.g. the resource-status change): routed, not refused.
    let unknown = set(documented(2), "activity", "resourceStatusChange");
    assert_eq!(
        parse_v1_request(&unknown),
        Ok(V1Request::Unknown { activity: "resourceStatusChange".into(), test_flag: TestFlag::Debug })
    );

    // saasExtendParams URL-safe and unpadded.
    let url_safe = "W3sibmFtZSI6ImlkTnVtIiwidmFsdWUiOiIzNTIyNTU1NTU1NTU2NTYifV0";
    let Ok(V1Request::Upgrade(u)) = parse_v1_request(&set(documented_upgrade(), "saasExtendParams", url_safe)) else {
        panic!("upgrade")
    };
    assert_eq!(u.saas_extend_params.first().map(|p| p.name.as_str()), Some("idNum"));
}

/// (URL index, mandatory parameters)
const MANDATORY: &[(usize, &[&str])] = &[
    (0, &["activity", "authToken", "timeStamp", "customerId", "businessId", "orderId", "productId"]),
    (1, &["orderId", "instanceId", "expireTime"]),
    (2, &["instanceId"]),
    (3, &["instanceId", "orderId"]),
    (4, &["instanceId"]),
];

#[test]
fn every_missing_mandatory_parameter_is_named() {
    for (index, names) in MANDATORY {
        let base = if *index == 3 { documented_upgrade() } else { documented(*index) };
        for name in *names {
            assert_eq!(
                parse_v1_request(&without(base.clone(), name)),
                Err(FieldError::missing(*name)),
                "url {index} {name} absent"
            );
            assert_eq!(
                parse_v1_request(&set(base.clone(), name, "")),
                Err(FieldError::missing(*name)),
                "url {index} {name} empty"
            );
        }
    }
    // expireInstance has no documented URL; its table makes orderId mandatory.
    let expire = set(without(documented(1), "expireTime"), "activity", "expireInstance");
    assert!(matches!(parse_v1_request(&expire), Ok(V1Request::ExpireInstance(_))));
    assert_eq!(parse_v1_request(&without(expire, "orderId")), Err(FieldError::missing("orderId")));
}

/// (URL index, parameter, documented maximum)
const MAX_LENGTHS: &[(usize, &str, usize)] = &[
    (0, "authToken", 50),
    (0, "timeStamp", 20),
    (0, "customerId", 100),
    (0, "userId", 64),
    (0, "userName", 64),
    (0, "businessId", 64),
    (0, "orderId", 64),
    (0, "skuCode", 64),
    (0, "productId", 64),
    (0, "testFlag", 2),
    (0, "trialFlag", 2),
    (0, "expireTime", 20),
    (1, "orderId", 64),
    (1, "instanceId", 64),
    (1, "productId", 64),
    (2, "instanceId", 64),
    (4, "instanceId", 64),
];

#[test]
fn every_length_overflow_is_named() {
    for (index, name, max) in MAX_LENGTHS {
        let p = set(documented(*index), name, &"1".repeat(max + 1));
        let err = parse_v1_request(&p).expect_err("overflow must fail");
        assert_eq!(
            (err.field.as_str(), &err.problem),
            (*name, &FieldProblem::TooLong { max: *max, actual: max + 1 }),
            "url {index}"
        );
    }
}

#[test]
fn invalid_values_are_named() {
    let base = documented_new_instance();
    let cases = [
        (set(base.clone(), "timeStamp", "2020072707371190"), "timeStamp"),
        (set(base.clone(), "timeStamp", "20201327073711903"), "timeStamp"),
        (set(base.clone(), "expireTime", "20200230153156"), "expireTime"),
        (set(base.clone(), "testFlag", "2"), "testFlag"),
        (set(base.clone(), "trialFlag", "x"), "trialFlag"),
        (set(base.clone(), "amount", "12.5"), "amount"),
        (set(base.clone(), "orderAmount", "1e3"), "orderAmount"),
        (set(base.clone(), "saasExtendParams", "not base64!"), "saasExtendParams"),
        (set(documented(1), "trialToFormal", "2"), "trialToFormal"),
        (
            set(documented(4), "instanceId", &(0..101).map(|i| i.to_string()).collect::<Vec<_>>().join(",")),
            "instanceId",
        ),
    ];
    for (i, (params, field)) in cases.iter().enumerate() {
        let err = parse_v1_request(params).expect_err("must fail");
        assert_eq!(err.field, *field, "case {i}");
        assert!(matches!(err.problem, FieldProblem::Invalid(_)), "case {i}: {err}");
    }
    // A repeated parameter is ambiguous under the authToken and refused.
    let mut doubled = base;
    doubled.push(("orderId".into(), "OTHER".into()));
    assert_eq!(parse_v1_request(&doubled), Err(FieldError::invalid("orderId", "appears more than once")));
}

fn cipher(c: char) -> String {
    format!("abcdefghijklmnop{}", c.to_string().repeat(24))
}

#[test]
fn responses_serialise_to_exact_bytes() {
    let created = V1NewInstanceResponse {
        result_code: ResultCode::Success,
        result_msg: "success".into(),
        encrypt_type: "1".into(),
        instance_id: "c4a9d74c-227e-523b-8800-1fd78729c0f0".into(),
        app_info: Some(V1AppInfo {
            front_end_url: "https://isv.example.com/login".into(),
            admin_url: None,
            user_name: Some(cipher('U')),
            password: Some(cipher('P')),
            memo: Some("说明".into()),
        }),
    };
    let expected = format!(
        r#"{{"resultCode":"000000","resultMsg":"success","encryptType":"1","instanceId":"c4a9d74c-227e-523b-8800-1fd78729c0f0","appInfo":{{"frontEndUrl":"https://isv.example.com/login","userName":"{}","password":"{}","memo":"\u8bf4\u660e"}}}}"#,
        cipher('U'),
        cipher('P')
    );
    assert_eq!(String::from_utf8(to_ascii_json(&created)).expect("ascii"), expected);
    assert_eq!(created.app_info.as_ref().map(V1AppInfo::check_lengths), Some(Ok(())));
    let debug = format!("{created:?}");
    assert!(!debug.contains(&cipher('P')) && !debug.contains(&cipher('U')));

    let query = V1QueryInstanceResponse {
        result_code: ResultCode::Success,
        result_msg: "success".into(),
        encrypt_type: "2".into(),
        info: vec![V1InstanceInfo { instance_id: "i-1".into(), app_info: None, usage_info: None }],
    };
    assert_eq!(
        to_ascii_json(&query),
        br#"{"resultCode":"000000","resultMsg":"success","encryptType":"2","info":[{"instanceId":"i-1"}]}"#
    );
    assert_eq!(
        to_ascii_json(&V1BasicResponse::new(ResultCode::AuthFailed)),
        br#"{"resultCode":"000001","resultMsg":"token is invalid"}"#
    );

    // The documented V1 answer shape parses.
    let documented: V1NewInstanceResponse = serde_json::from_str(
        r#"{"resultCode":"000000","resultMsg":"success.","encryptType":"1","instanceId":"...","appInfo":{"frontEndUrl":"...","adminUrl":"...","userName":"<iv+base64>","password":"<iv+base64>","memo":"..."}}"#,
    )
    .expect("documented V1 answer");
    assert_eq!(documented.encrypt_type, "1");
}

#[test]
fn ciphertext_limit_includes_the_iv() {
    let mut app = V1AppInfo {
        front_end_url: "https://x".into(),
        admin_url: None,
        user_name: None,
        password: Some("A".repeat(128)),
        memo: None,
    };
    assert_eq!(app.check_lengths(), Ok(()));
    app.password = Some("A".repeat(129));
    assert_eq!(app.check_lengths(), Err(FieldError::too_long("appInfo.password", 128, 129)));
    app.password = None;
    app.user_name = Some("U".repeat(129));
    assert_eq!(app.check_lengths(), Err(FieldError::too_long("appInfo.userName", 128, 129)));
}
