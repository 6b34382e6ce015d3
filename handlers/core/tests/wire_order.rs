//! Wire form of the query-order answer (§9.3): the recorded `MOCKPERIODYEARNEW` answer, and leniency — `null`
//! anywhere, numbers as strings and strings as numbers, lists as JSON strings, unknown fields and values.

use koogallery_core::identity::instance_id_for_order_line;
use koogallery_core::wire::order::{ChargingMode, NameValue, OrderType, QueryOrderResponse};

const MOCK: &str = include_str!("data/wire/query_order_MOCKPERIODYEARNEW.json");

fn parse(s: &str) -> QueryOrderResponse {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("lenient parse failed: {e}"))
}

#[test]
fn recorded_mock_order_parses_fully() {
    let resp = parse(MOCK);
    assert!(resp.is_success());
    assert_eq!(resp.result_msg.as_deref(), Some("Success"));
    let order = resp.order_info.as_ref().expect("orderInfo");
    assert_eq!(order.order_id.as_deref(), Some("MOCKPERIODYEARNEW"));
    assert_eq!(order.order_type, Some(OrderType::New));
    assert_eq!(order.create_time.as_deref(), Some("20241121090846"));
    assert!(order.extend_params.is_empty());

    let line = order.line("MOCKPERIODYEARNEW-000001").expect("order line");
    assert_eq!(line.charging_mode, Some(ChargingMode::Period));
    assert_eq!(line.period_type.as_deref(), Some("year"));
    assert_eq!(line.period_number, Some(1));
    assert_eq!(line.expire_time.as_deref(), Some("20251121235959"));
    assert_eq!((line.currency.as_deref(), line.currency_after_discount.as_deref()), (Some("100"), Some("100")));
    assert_eq!(line.product_id(), Some("OFFI846204237451911168"));
    let product = &line.product_info[0];
    assert_eq!(product.sku_code.as_deref(), Some("0a4d1578-5295-46a7-92d4-7c803dccc51d"));
    assert_eq!(product.linear_value.as_deref(), Some("50"));
    assert_eq!(product.product_name.as_deref(), Some("MOCK测试商品,测试规格,基础版,包周期"));
    assert_eq!(
        line.extend_params,
        vec![
            NameValue { name: "emailDomainName".into(), value: Some("test.xxxx.com".into()) },
            NameValue { name: "ip".into(), value: Some("127.0.0.1".into()) },
        ]
    );

    let buyer = order.buyer_info.as_ref().expect("buyerInfo");
    assert_eq!(buyer.mobile_phone.as_deref(), Some("18688888888"));
    assert_eq!(buyer.email, None);
    assert_eq!(buyer.customer_id.as_deref(), Some("459bbbec25d24749b2eb83be37b602a8"));
    assert_eq!(buyer.customer_real_name.as_deref(), Some("测试用户1"));
    assert_eq!(buyer.customer_type.as_deref(), Some("0"));
    assert_eq!((buyer.user_id.as_deref(), buyer.user_name.as_deref()), (None, None));
    assert!(!format!("{buyer:?}").contains("18688888888"));

    // The instance this order line gets (pinned so that a change of the derivation is noticed).
    assert_eq!(
        instance_id_for_order_line("MOCKPERIODYEARNEW", "MOCKPERIODYEARNEW-000001"),
        "ab664429-308c-581d-9981-da2d40653fae"
    );
}

#[test]
fn null_anywhere_is_absent() {
    let resp = parse(
        r#"{"resultCode":"MKT.0000","resultMsg":null,"orderInfo":{"orderId":null,"orderType":null,"orderLine":null,"buyerInfo":null,"extendParams":null}}"#,
    );
    let order = resp.order_info.expect("orderInfo");
    assert!(
        order.order_line.is_empty()
            && order.buyer_info.is_none()
            && order.order_id.is_none()
            && order.order_type.is_none()
    );

    let resp = parse(
        r#"{"orderInfo":{"orderLine":[null,{"orderLineId":"L","chargingMode":null,"periodNumber":null,"productInfo":[null,{"productId":null}],"extendParams":[{"name":"a","value":null}]}]}}"#,
    );
    let order = resp.order_info.expect("orderInfo");
    assert_eq!(order.order_line.len(), 1);
    let line = &order.order_line[0];
    assert_eq!((line.charging_mode.as_ref(), line.period_number), (None, None));
    assert_eq!(line.product_info.len(), 1);
    assert_eq!(line.extend_params, vec![NameValue { name: "a".into(), value: None }]);
}

#[test]
fn numbers_and_strings_are_interchangeable() {
    let resp = parse(
        r#"{"resultCode":"MKT.0000","orderInfo":{"orderId":12345,"createTime":20241121090846,"orderLine":[{"orderLineId":"L","periodNumber":"3","chargingMode":1,
            "productInfo":[{"productId":98765,"linearValue":"12.5"}],"currency":100.5}],"buyerInfo":{"customerType":"1","mobilePhone":18688888888}}}"#,
    );
    let order = resp.order_info.expect("orderInfo");
    assert_eq!(order.order_id.as_deref(), Some("12345"));
    assert_eq!(order.create_time.as_deref(), Some("20241121090846"));
    let line = &order.order_line[0];
    assert_eq!(line.period_number, Some(3));
    assert_eq!(line.charging_mode, Some(ChargingMode::Period));
    assert_eq!(line.product_id(), Some("98765"));
    assert_eq!(line.product_info[0].linear_value.as_deref(), Some("12.5"));
    assert_eq!(line.currency.as_deref(), Some("100.5"));
    assert_eq!(order.buyer_info.and_then(|b| b.mobile_phone).as_deref(), Some("18688888888"));
}

#[test]
fn lists_and_objects_as_json_strings_unknown_fields_and_values() {
    let resp = parse(
        r#"{"resultCode":"MKT.0000","newTopLevel":{"x":1},"orderInfo":"{\"orderId\":\"O\",\"orderType\":\"SOMETHING_NEW\",\"orderLine\":\"[{\\\"orderLineId\\\":\\\"O-1\\\",\\\"chargingMode\\\":\\\"METERED\\\",\\\"futureField\\\":[1,2]}]\"}"}"#,
    );
    let order = resp.order_info.expect("orderInfo");
    assert_eq!(order.order_type, Some(OrderType::Unknown("SOMETHING_NEW".into())));
    let line = order.line("O-1").expect("line");
    assert_eq!(line.charging_mode, Some(ChargingMode::Unknown("METERED".into())));

    for (text, mode) in [
        ("ON_DEMAND", ChargingMode::OnDemand),
        ("ON_DEMAND_PKG", ChargingMode::OnDemandPkg),
        ("ONE_TIME", ChargingMode::OneTime),
    ] {
        let body = format!(r#"{{"orderInfo":{{"orderLine":[{{"chargingMode":"{text}"}}]}}}}"#);
        assert_eq!(parse(&body).order_info.map(|o| o.order_line[0].charging_mode.clone()), Some(Some(mode)), "{text}");
    }
}

#[test]
fn failure_answer_has_no_order() {
    let resp = parse(r#"{"resultCode":"MKT.0101","resultMsg":"Invalid parameter"}"#);
    assert!(!resp.is_success());
    assert!(resp.order_info.is_none());
}

#[test]
fn serialises_camel_case_without_absent_fields() {
    let resp = parse(
        r#"{"resultCode":"MKT.0000","orderInfo":{"orderId":"O","orderLine":[{"orderLineId":"O-1","chargingMode":"ON_DEMAND","periodNumber":"2"}]}}"#,
    );
    assert_eq!(
        serde_json::to_string(&resp).expect("serialise"),
        r#"{"resultCode":"MKT.0000","orderInfo":{"orderId":"O","orderLine":[{"orderLineId":"O-1","chargingMode":"ON_DEMAND","periodNumber":2,"productInfo":[],"extendParams":[]}],"extendParams":[]}}"#
    );
}
