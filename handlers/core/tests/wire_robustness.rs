//! Property tests over the wire parsers: arbitrary input never panics, length rules hold for any text, and the time
//! formats round-trip.

use koogallery_core::marketplace::samples;
use koogallery_core::wire::agents::top_level_usage;
use koogallery_core::wire::json_out::to_ascii_json;
use koogallery_core::wire::kit::{KitSync, parse_kit_request};
use koogallery_core::wire::license::parse_license_callback;
use koogallery_core::wire::time::{
    Precision, format_compact_utc, format_sdk_date, parse_compact_utc, parse_kit_timestamp, parse_sdk_date,
};
use koogallery_core::wire::v1::parse_v1_request;
use koogallery_core::wire::v2::{V2Request, parse_v2_request};
use koogallery_core::wire::validate::FieldError;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// The keys the parsers read, so that random bodies reach deep into them.
const KEYS: &[&str] = &[
    "activity",
    "orderId",
    "orderLineId",
    "businessId",
    "testFlag",
    "instanceId",
    "scene",
    "expireTime",
    "productId",
    "status",
    "productInfo",
    "buyerInfo",
    "orderInfo",
    "tenantId",
    "tenantCode",
    "name",
    "domainName",
    "flag",
    "timeStamp",
    "appId",
    "clientId",
    "clientSecret",
    "userList",
    "currentSyncTime",
    "orgCode",
    "orgName",
    "parentCode",
    "orgInfoList",
    "orgInfo",
    "license",
    "usage",
];
/// Every activity and kit name the marketplace sends, and one it does not.
fn activities() -> Vec<&'static str> {
    samples::V2_ACTIVITIES.iter().chain(samples::KIT_NAMES).copied().chain(["bogus"]).collect()
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        "\\PC{0,80}".prop_map(Value::String),
        prop::sample::select(activities()).prop_map(|s| json!(s)),
        Just(json!("20221124023618256")),
        Just(json!("[{\"orgCode\":\"1\",\"orgName\":\"a\"}]")),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(KEYS), value()), 0..12)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_structured_input(v in body()) {
        let bytes = v.to_string().into_bytes();
        let _ = parse_v2_request(&bytes);
        for sync in KitSync::ALL {
            let _ = parse_kit_request(sync, &bytes);
        }
        let _ = parse_license_callback(&bytes);
        let _ = top_level_usage(&bytes);
        prop_assert!(to_ascii_json(&v).is_ascii());
    }

    #[test]
    fn parsers_never_panic_on_raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_v2_request(&bytes);
        let _ = parse_kit_request(KitSync::AuthSync, &bytes);
        let _ = parse_license_callback(&bytes);
        let _ = top_level_usage(&bytes);
    }

    #[test]
    fn v1_parser_never_panics(params in prop::collection::vec((prop::sample::select(&[
        "activity", "authToken", "timeStamp", "instanceId", "orderId", "productId", "customerId", "businessId",
        "expireTime", "chargingMode", "saasExtendParams", "orderAmount", "testFlag", "trialToFormal", "amount",
    ][..]), "\\PC{0,40}"), 0..16)) {
        let owned: Vec<(String, String)> = params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let _ = parse_v1_request(&owned);
    }

    #[test]
    fn time_parsers_never_panic(s in "\\PC{0,24}") {
        let _ = parse_compact_utc(&s);
        let _ = parse_kit_timestamp(&s);
        let _ = parse_sdk_date(&s);
    }

    #[test]
    fn time_formats_round_trip(ms in 0u64..253_402_300_800_000) {
        prop_assert_eq!(parse_compact_utc(&format_compact_utc(ms, Precision::Millis17)), Ok(ms));
        prop_assert_eq!(parse_compact_utc(&format_compact_utc(ms, Precision::Seconds14)), Ok(ms - ms % 1000));
        prop_assert_eq!(parse_sdk_date(&format_sdk_date(ms)), Ok(ms - ms % 1000));
    }

    /// For any text in `orderId`, the parse succeeds exactly when it is non-blank and at most 64 characters.
    #[test]
    fn order_id_length_rule_holds_for_any_text(order_id in "\\PC{0,80}") {
        let body = json!({"activity":"newInstance","businessId":"b","orderId":order_id,"orderLineId":"l"});
        let result = parse_v2_request(body.to_string().as_bytes());
        let chars = order_id.chars().count();
        if order_id.trim().is_empty() {
            prop_assert_eq!(result, Err(FieldError::missing("orderId")));
        } else if chars > 64 {
            prop_assert_eq!(result, Err(FieldError::too_long("orderId", 64, chars)));
        } else {
            prop_assert!(matches!(result, Ok(V2Request::NewInstance(n)) if n.order_id == order_id));
        }
    }
}
