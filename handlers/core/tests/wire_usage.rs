//! Wire form of the usage push (§9.4): snake_case body bytes, lenient `usage_value`, batch validation, answer codes.

use koogallery_core::wire::time::{format_sdk_date, parse_sdk_date};
use koogallery_core::wire::usage::{
    MAX_BEGIN_AGE_MS, MarketplaceCode, UsageError, UsagePushRequest, UsagePushResponse, UsageRecord, batches,
};
use koogallery_core::wire::validate::FieldError;

const DOCUMENTED: &str = r#"{"usage_records":[{"instance_id":"...","record_time":"20240306T020000Z","begin_time":"20240306T010000Z","end_time":"20240306T015959Z","usage_value":"12.5","metering_sn":"..."}]}"#;
/// 2024-03-06T02:07:45.879Z, the documented `ts` header.
const NOW: u64 = 1_709_690_865_879;

fn record(sn: &str) -> UsageRecord {
    UsageRecord {
        instance_id: "7f141bf1-aec8-4859-8323-fb3a8ad50721".into(),
        record_time: "20240306T020000Z".into(),
        begin_time: "20240306T010000Z".into(),
        end_time: "20240306T015959Z".into(),
        usage_value: "12.5".into(),
        metering_sn: sn.into(),
        relate_pkg_instance: None,
    }
}

fn batch(records: Vec<UsageRecord>) -> UsagePushRequest {
    UsagePushRequest { usage_records: records }
}

#[test]
fn documented_body_round_trips_byte_for_byte() {
    let parsed: UsagePushRequest = serde_json::from_str(DOCUMENTED).expect("documented body");
    assert_eq!(parsed.usage_records.len(), 1);
    assert_eq!(parsed.usage_records[0].usage_value, "12.5");
    assert_eq!(serde_json::to_string(&parsed).expect("serialise"), DOCUMENTED);
}

#[test]
fn usage_value_may_arrive_as_a_number_and_is_sent_as_a_string() {
    let parsed: UsagePushRequest = serde_json::from_str(
        r#"{"usage_records":[{"instance_id":"i","record_time":"20220809T091000Z","begin_time":"20220809T080000Z","end_time":"20220809T090000Z","usage_value":99,"metering_sn":"s","relate_pkg_instance":"pkg"}]}"#,
    )
    .expect("numeric usage_value");
    let r = &parsed.usage_records[0];
    assert_eq!(r.usage_value, "99");
    assert_eq!(r.relate_pkg_instance.as_deref(), Some("pkg"));
    assert_eq!(
        serde_json::to_string(r).expect("serialise"),
        r#"{"instance_id":"i","record_time":"20220809T091000Z","begin_time":"20220809T080000Z","end_time":"20220809T090000Z","usage_value":"99","metering_sn":"s","relate_pkg_instance":"pkg"}"#
    );
    assert!(
        serde_json::from_str::<UsageRecord>(
            r#"{"instance_id":"i","record_time":"","begin_time":"","end_time":"","metering_sn":"s"}"#
        )
        .is_err()
    );
}

#[test]
fn a_valid_batch_passes() {
    assert_eq!(batch(vec![record("a"), record("b")]).validate(NOW), Ok(()));
}

#[test]
fn batch_rules() {
    assert_eq!(batch(vec![]).validate(NOW), Err(UsageError::Empty));
    let hundred: Vec<UsageRecord> = (0..100).map(|i| record(&format!("sn-{i}"))).collect();
    assert_eq!(batch(hundred.clone()).validate(NOW), Ok(()));
    let mut over = hundred;
    over.push(record("sn-100"));
    assert_eq!(batch(over).validate(NOW), Err(UsageError::TooManyRecords { max: 100, actual: 101 }));
    assert_eq!(
        batch(vec![record("a"), record("b"), record("a")]).validate(NOW),
        Err(UsageError::DuplicateMeteringSn { index: 2 })
    );
}

#[test]
fn begin_time_older_than_21_days_is_refused() {
    let begin = parse_sdk_date("20240306T010000Z").expect("date");
    assert_eq!(batch(vec![record("a")]).validate(begin + MAX_BEGIN_AGE_MS), Ok(()));
    assert_eq!(
        batch(vec![record("a")]).validate(begin + MAX_BEGIN_AGE_MS + 1),
        Err(UsageError::BeginTooOld { index: 0 })
    );
    assert_eq!(
        UsageError::BeginTooOld { index: 3 }.to_string(),
        "usage_records[3].begin_time is more than 21 days old"
    );
}

/// A change that breaks one field of a record.
type Mutation = Box<dyn Fn(&mut UsageRecord)>;

#[test]
fn record_fields_are_named() {
    let cases: Vec<(Mutation, FieldError)> = vec![
        (Box::new(|r| r.instance_id.clear()), FieldError::missing("usage_records[1].instance_id")),
        (Box::new(|r| r.instance_id = "i".repeat(65)), FieldError::too_long("usage_records[1].instance_id", 64, 65)),
        (Box::new(|r| r.metering_sn.clear()), FieldError::missing("usage_records[1].metering_sn")),
        (Box::new(|r| r.metering_sn = "s".repeat(65)), FieldError::too_long("usage_records[1].metering_sn", 64, 65)),
        (
            Box::new(|r| r.relate_pkg_instance = Some("p".repeat(65))),
            FieldError::too_long("usage_records[1].relate_pkg_instance", 64, 65),
        ),
        (
            Box::new(|r| r.record_time = "2024-03-06T02:00:00Z".into()),
            FieldError::invalid("usage_records[1].record_time", "must be yyyyMMdd'T'HHmmss'Z'"),
        ),
        (
            Box::new(|r| r.begin_time = "20240306010000".into()),
            FieldError::invalid("usage_records[1].begin_time", "must be yyyyMMdd'T'HHmmss'Z'"),
        ),
        (
            Box::new(|r| r.end_time = "20240230T015959Z".into()),
            FieldError::invalid("usage_records[1].end_time", "must be yyyyMMdd'T'HHmmss'Z'"),
        ),
        (
            Box::new(|r| r.usage_value = "0".into()),
            FieldError::invalid("usage_records[1].usage_value", "must be greater than 0"),
        ),
        (
            Box::new(|r| r.usage_value = "1.23456".into()),
            FieldError::invalid("usage_records[1].usage_value", "must have at most 4 decimal places"),
        ),
        (
            Box::new(|r| r.usage_value = "-5".into()),
            FieldError::invalid("usage_records[1].usage_value", "must be a positive decimal number"),
        ),
        (Box::new(|r| r.usage_value = "1".repeat(21)), FieldError::too_long("usage_records[1].usage_value", 20, 21)),
    ];
    for (i, (mutate, expected)) in cases.iter().enumerate() {
        let mut bad = record("b");
        mutate(&mut bad);
        assert_eq!(batch(vec![record("a"), bad]).validate(NOW), Err(UsageError::Field(expected.clone())), "case {i}");
    }
    let mut reversed = record("b");
    reversed.end_time = "20240306T005959Z".into();
    assert_eq!(batch(vec![reversed]).validate(NOW), Err(UsageError::EndBeforeBegin { index: 0 }));
}

#[test]
fn batches_split_at_100() {
    let records: Vec<UsageRecord> = (0..250).map(|i| record(&i.to_string())).collect();
    let sizes: Vec<usize> = batches(&records).map(<[UsageRecord]>::len).collect();
    assert_eq!(sizes, [100, 100, 50]);
}

#[test]
fn sdk_dates_for_records() {
    assert_eq!(format_sdk_date(NOW), "20240306T020745Z");
}

#[test]
fn answers_and_codes() {
    for body in
        [r#"{"error_code":"MKT.0000","error_msg":"Success"}"#, r#"{"resultCode":"MKT.0000","resultMsg":"Success"}"#]
    {
        let resp: UsagePushResponse = serde_json::from_str(body).expect("answer parses");
        assert!(resp.is_success(), "{body}");
    }
    let failed: UsagePushResponse =
        serde_json::from_str(r#"{"error_code":"MKT.9004","error_msg":"beginTime beyond 21 days"}"#).expect("parses");
    assert_eq!(failed.code(), Some(MarketplaceCode::BeginTimeTooOld));
    assert_eq!(
        serde_json::to_string(&failed).expect("serialise"),
        r#"{"error_code":"MKT.9004","error_msg":"beginTime beyond 21 days"}"#
    );

    let table = [
        ("MKT.0000", MarketplaceCode::Success),
        ("MKT.0999", MarketplaceCode::SystemError),
        ("MKT.0100", MarketplaceCode::InputFailure),
        ("MKT.0101", MarketplaceCode::InvalidParameter),
        ("MKT.0102", MarketplaceCode::InvalidBodySign),
        ("MKT.0199", MarketplaceCode::ParameterError),
        ("MKT.0150", MarketplaceCode::IllegalOperation),
        ("MKT.0151", MarketplaceCode::NoAuthority),
        ("MKT.0154", MarketplaceCode::IllegalToken),
        ("MKT.9001", MarketplaceCode::InstanceNotFound),
        ("MKT.9002", MarketplaceCode::InvalidUsageEntries),
        ("MKT.9003", MarketplaceCode::RecordsOverLimit),
        ("MKT.9004", MarketplaceCode::BeginTimeTooOld),
        ("94060999", MarketplaceCode::RecordFailed),
    ];
    for (text, code) in table {
        assert_eq!(MarketplaceCode::parse(text), code, "{text}");
        assert_eq!(code.as_str(), text);
    }
    assert_eq!(MarketplaceCode::parse("MKT.1234"), MarketplaceCode::Unknown("MKT.1234".into()));
}
