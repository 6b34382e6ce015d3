//! Fuzz entry points for the request parsers: parse → serialise → parse, and every signing candidate parsed alike.

use super::input::*;

use serde_json::Value;

use crate::http;
use crate::signing::canonical_json::{self, signing_candidates};
use crate::wire::agents::top_level_usage;
use crate::wire::kit::{KitSync, parse_kit_request};
use crate::wire::license::{ActivateResponse, HeartbeatResponse, parse_license_callback};
use crate::wire::order::QueryOrderResponse;
use crate::wire::usage::{UsagePushRequest, UsagePushResponse};
use crate::wire::v1::parse_v1_request;
use crate::wire::v2::parse_v2_request;

/// Checks that a parser reads every §4.1 signing candidate of `body` as it reads `body` itself: the verifier accepts
/// a signature over any candidate, so the parser must not care which one was signed.
fn candidates_parse_alike<T: PartialEq + std::fmt::Debug>(body: &[u8], parse: impl Fn(&[u8]) -> T, what: &str) {
    let Ok(candidates) = signing_candidates(body) else {
        return;
    };
    let first = parse(body);
    if !json_floats_read_back(body) {
        return;
    }
    for c in candidates.iter().skip(1) {
        let other = parse(c);
        assert!(
            other == first,
            "{what} reads a signing candidate differently from the body:\n  body      = {}\n  candidate = {}\n  \
             body parse      = {first:?}\n  candidate parse = {other:?}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(c),
        );
    }
}

/// The V2 body parser. Input: the body. Returns whether it parsed.
///
/// Oracles: never panics; every signing candidate parses to the same result.
pub fn parse_v2(body: &[u8]) -> bool {
    candidates_parse_alike(body, parse_v2_request, "parse_v2_request");
    parse_v2_request(body).is_ok()
}

/// The V1 parameter parser on a fuzzed raw query string (form-decoded by `http::parse_query`). Returns whether it
/// parsed.
///
/// Oracles: never panics; the parameters' order does not matter (duplicates are refused either way).
pub fn parse_v1(data: &[u8]) -> bool {
    let params = http::parse_query(&text(data));
    let result = parse_v1_request(&params);
    let reversed: Vec<(String, String)> = params.iter().rev().cloned().collect();
    assert_eq!(parse_v1_request(&reversed), result, "parameter order changes the V1 parse");
    result.is_ok()
}

/// Every kit sync parser on one body. Returns whether some sync parsed it.
///
/// Oracles: never panics; every signing candidate parses to the same result; a parsed request reports its sync.
pub fn parse_kit(body: &[u8]) -> bool {
    let mut any = false;
    for sync in KitSync::ALL {
        candidates_parse_alike(body, |b| parse_kit_request(sync, b), sync.as_str());
        if let Ok(request) = parse_kit_request(sync, body) {
            assert_eq!(request.sync(), sync, "parsed as another sync");
            any = true;
        }
    }
    any
}

/// The query-order answer (§9.3). Returns whether it parsed. Oracle: parse → serialise → parse is the identity.
pub fn parse_order(body: &[u8]) -> bool {
    serde_round_trip::<QueryOrderResponse>(body)
}

/// The usage-push body and answer (§9.4). Returns whether the body parsed as a usage push.
///
/// Oracles: parse → serialise → parse is the identity for both types; the sorted form we would sign and send parses
/// to the same batch, and validation gives the same verdict on it.
pub fn parse_usage(body: &[u8]) -> bool {
    let _ = serde_round_trip::<UsagePushResponse>(body);
    if !serde_round_trip::<UsagePushRequest>(body) {
        return false;
    }
    let Ok(batch) = serde_json::from_slice::<UsagePushRequest>(body) else {
        return false;
    };
    let value = serde_json::to_value(&batch).unwrap_or(Value::Null);
    let sent = canonical_json::sorted_compact(&value);
    let reread = serde_json::from_slice::<UsagePushRequest>(&sent);
    assert!(reread.as_ref().is_ok_and(|r| *r == batch), "the sorted body does not parse back: {reread:?}");
    // No float survives into a batch (usage_value is kept as text), so no `floats_read_back` guard is needed here.
    assert_eq!(
        reread.map(|r| r.validate(T_USAGE)).ok(),
        Some(batch.validate(T_USAGE)),
        "validation depends on the serialisation"
    );
    true
}

/// License callbacks (§8.4) and OpenAPI answers (§8.1, §8.2). Returns whether the body parsed as a callback.
///
/// Oracles: callbacks read every signing candidate alike; answers round-trip through serde.
pub fn parse_license(body: &[u8]) -> bool {
    let _ = serde_round_trip::<ActivateResponse>(body);
    let _ = serde_round_trip::<HeartbeatResponse>(body);
    candidates_parse_alike(body, parse_license_callback, "parse_license_callback");
    parse_license_callback(body).is_ok()
}

/// The Agents-gateway `usage` check (§7). Returns whether the body has the mandatory shape.
///
/// Oracle: the counts read back from a body written from them are the same.
pub fn parse_agents_usage(body: &[u8]) -> bool {
    let Ok(usage) = top_level_usage(body) else {
        return false;
    };
    let _ = usage.is_consistent();
    let written = serde_json::to_vec(&serde_json::json!({ "data": null, "usage": usage })).unwrap_or_default();
    assert_eq!(top_level_usage(&written), Ok(usage), "usage does not round-trip");
    true
}

/// The §4.1 signing candidates. Input: the body. Returns whether it is a JSON object.
///
/// Oracles: the first candidate is the body; every other candidate is compact JSON equal to the body without its
/// top-level `null`s; candidates are distinct; the fully sorted candidate is a fixed point (its only candidate is
/// itself); `demo_payload` is among them.
pub fn canonical_json(body: &[u8]) -> bool {
    let Ok(candidates) = signing_candidates(body) else {
        assert!(canonical_json::demo_payload(body).is_err(), "demo_payload accepted what signing_candidates refused");
        return false;
    };
    assert_eq!(candidates.first().map(Vec::as_slice), Some(body), "the first candidate is not the raw body");
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let expected = without_top_level_nulls(&value);
    let exact = floats_read_back(&value);
    for (i, c) in candidates.iter().enumerate().skip(1) {
        let parsed: Result<Value, _> = serde_json::from_slice(c);
        assert!(
            parsed.as_ref().is_ok_and(|p| *p == expected || !exact),
            "candidate {i} is not the same JSON value:\n  body      = {}\n  candidate = {}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(c),
        );
        assert!(candidates[..i].iter().all(|earlier| earlier != c), "duplicate candidate {i}");
    }
    let demo = canonical_json::demo_payload(body);
    assert!(demo.as_ref().is_ok_and(|d| candidates.contains(d)), "demo_payload is not a candidate");
    if let Some(full) = candidates.last() {
        let again = signing_candidates(full);
        assert!(
            again.as_ref().is_ok_and(|a| a.len() == 1) || !exact,
            "the fully sorted candidate is not canonical: {}",
            String::from_utf8_lossy(full)
        );
    }
    true
}

// ---------------------------------------------------------------------------------------------------------------
