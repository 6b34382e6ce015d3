//! The mock's state and its four endpoints, as a synchronous function of the state, the request and the time.

use super::apig_check::{ApigVerifier, SignedRequest, parse_authorization};
use super::usage_check::{self, BodyProblem};
use super::{
    Endpoint, Failure, License, LicenseSpec, MarketplaceConfig, Received, SEED_LICENSE, SEED_LICENSE_NOT_RECEIVED,
    UsageBatch, control, orders, time,
};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};

/// The longest license code (S64, §8.1).
const MAX_LICENSE: usize = 64;

/// What a request gets.
pub(super) enum Outcome {
    /// An answer with a JSON body.
    Answer {
        /// The HTTP status.
        status: StatusCode,
        /// The JSON bytes.
        body: Vec<u8>,
    },
    /// No answer until the mock is dropped ([`Failure::Hang`]).
    Hang,
    /// The connection closed without an answer ([`Failure::Close`]).
    Close,
}

impl Outcome {
    /// `status` with `body` serialised.
    pub(super) fn json(status: StatusCode, body: &Value) -> Self {
        Outcome::Answer { status, body: serde_json::to_vec(body).unwrap_or_default() }
    }
}

/// One endpoint's answer: status, code and message (for [`Received`]), and the body.
struct Answer {
    status: StatusCode,
    code: String,
    message: String,
    body: Value,
}

impl Answer {
    /// An answer in `endpoint`'s error shape: `resultCode`/`resultMsg` for orders, `error_code`/`error_msg` else.
    fn error(endpoint: Endpoint, status: StatusCode, code: &str, message: &str) -> Self {
        let body = match endpoint {
            Endpoint::QueryOrder => json!({ "resultCode": code, "resultMsg": message }),
            _ => json!({ "error_code": code, "error_msg": message }),
        };
        Self { status, code: code.to_owned(), message: message.to_owned(), body }
    }

    /// A `200` license answer with `code`.
    fn license(code: &str, message: &str) -> Self {
        Self::error(Endpoint::LicenseActivate, StatusCode::OK, code, message)
    }
}

/// The failures injected for one endpoint: the queue's `None`s let a call through.
#[derive(Default)]
struct Failures {
    queue: VecDeque<Option<Failure>>,
    always: Option<Failure>,
}

/// Everything the mock knows and has seen.
pub(super) struct State {
    pub(super) orders: BTreeMap<String, Value>,
    pub(super) licenses: BTreeMap<String, License>,
    failures: BTreeMap<Endpoint, Failures>,
    pub(super) received: Vec<Received>,
    pub(super) batches: Vec<UsageBatch>,
    pub(super) sn_counts: BTreeMap<String, usize>,
}

impl State {
    /// The canned orders and the two seed licenses, no failures, nothing received.
    pub(super) fn new() -> Self {
        let mut state = Self {
            orders: orders::canned().into_iter().collect(),
            licenses: BTreeMap::new(),
            failures: BTreeMap::new(),
            received: Vec::new(),
            batches: Vec::new(),
            sn_counts: BTreeMap::new(),
        };
        let seed = |order_id: &str, amount, received| LicenseSpec {
            product_id: "OFFI-LICENSE".to_owned(),
            order_id: order_id.to_owned(),
            amount,
            expire_time: "20301231235959".to_owned(),
            received,
        };
        state.add_license(SEED_LICENSE.to_owned(), seed("CS123", 2, true));
        state.add_license(SEED_LICENSE_NOT_RECEIVED.to_owned(), seed("CS124", 1, false));
        state
    }

    pub(super) fn add_license(&mut self, code: String, spec: LicenseSpec) {
        let license = License {
            code: code.clone(),
            spec,
            activated: false,
            activate_time: None,
            real_effect_time: None,
            status: "ALIVE".to_owned(),
            heartbeats: 0,
        };
        self.licenses.insert(code, license);
    }

    pub(super) fn fail_next(&mut self, endpoint: Endpoint, times: usize, failure: Failure) {
        let queue = &mut self.failures.entry(endpoint).or_default().queue;
        queue.extend(std::iter::repeat_n(Some(failure), times));
    }

    pub(super) fn pass_next(&mut self, endpoint: Endpoint, times: usize) {
        let queue = &mut self.failures.entry(endpoint).or_default().queue;
        queue.extend(std::iter::repeat_n(None, times));
    }

    pub(super) fn fail_always(&mut self, endpoint: Endpoint, failure: Failure) {
        self.failures.entry(endpoint).or_default().always = Some(failure);
    }

    pub(super) fn clear_failures(&mut self) {
        self.failures.clear();
    }

    /// The failure the next call to `endpoint` meets, if any (a queued one is used up).
    fn next_failure(&mut self, endpoint: Endpoint) -> Option<Failure> {
        let failures = self.failures.get_mut(&endpoint)?;
        match failures.queue.pop_front() {
            Some(queued) => queued,
            None => failures.always.clone(),
        }
    }

    /// Answers one request (the control routes included) and records it.
    pub(super) fn respond(
        &mut self,
        config: &MarketplaceConfig,
        parts: &http::request::Parts,
        body: Bytes,
        too_large: bool,
        now_ms: u64,
    ) -> Outcome {
        let path = parts.uri.path();
        if let Some(route) = path.strip_prefix("/_mock/") {
            return control::respond(self, &parts.method, route, &body);
        }
        let Some(endpoint) = Endpoint::from_path(path) else {
            return Outcome::json(
                StatusCode::NOT_FOUND,
                &json!({ "error_code": "404", "error_msg": "no such endpoint" }),
            );
        };
        let query = parts.uri.query().unwrap_or_default();
        let signed = SignedRequest { method: parts.method.as_str(), path, query, headers: &parts.headers, body: &body };
        let ak = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_authorization(v).ok())
            .map(|a| a.access);
        let auth = ApigVerifier::new(config.ak.as_str(), config.sk.as_bytes())
            .verify(&signed, now_ms, config.max_clock_skew)
            .map_err(|e| e.to_string());
        let usage = endpoint == Endpoint::UsagePush;
        let body_signature =
            usage.then(|| usage_check::verify_body_signature(config.isv_key.as_bytes(), &parts.headers, &body));
        let record_count = if usage { usage_check::record_count(&body) } else { None };
        let mut received = Received {
            endpoint,
            method: parts.method.as_str().to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: parts.headers.clone(),
            body,
            ak,
            auth,
            body_signature,
            record_count,
            status: None,
            code: None,
            message: None,
            injected: false,
        };
        if let Some(failure) = self.next_failure(endpoint) {
            received.injected = true;
            let outcome = match failure {
                Failure::Status { status, code } => {
                    // Only final statuses: an informational one would not end the exchange.
                    let status = StatusCode::from_u16(status)
                        .ok()
                        .filter(|s| (200..600).contains(&s.as_u16()))
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let answer = Answer::error(endpoint, status, &code, "injected failure");
                    finish(&mut received, answer)
                }
                Failure::Hang => Outcome::Hang,
                Failure::Close => Outcome::Close,
            };
            self.received.push(received);
            return outcome;
        }
        let answer = self.answer(endpoint, &parts.method, &received, too_large, now_ms);
        let outcome = finish(&mut received, answer);
        self.received.push(received);
        outcome
    }

    /// The answer to a call that no failure was injected into.
    fn answer(
        &mut self,
        endpoint: Endpoint,
        method: &Method,
        received: &Received,
        too_large: bool,
        now_ms: u64,
    ) -> Answer {
        let expected = if endpoint == Endpoint::QueryOrder { Method::GET } else { Method::POST };
        if *method != expected {
            return if endpoint.is_license() {
                Answer::error(endpoint, StatusCode::METHOD_NOT_ALLOWED, "95000002", "Request method not supported")
            } else {
                Answer::error(
                    endpoint,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MKT.0150",
                    "Illegal operation: method not allowed",
                )
            };
        }
        if received.auth.is_err() {
            return if endpoint.is_license() {
                Answer::error(endpoint, StatusCode::FORBIDDEN, "92020001", "Unauthorized")
            } else {
                Answer::error(endpoint, StatusCode::UNAUTHORIZED, "MKT.0154", "Illegal token")
            };
        }
        if too_large {
            let code = if endpoint.is_license() { "95000004" } else { "MKT.0101" };
            return Answer::error(endpoint, StatusCode::PAYLOAD_TOO_LARGE, code, "request body too large");
        }
        match endpoint {
            Endpoint::QueryOrder => self.query_order(&received.query),
            Endpoint::UsagePush => self.usage_push(received),
            Endpoint::LicenseActivate => match license_request(received) {
                Ok((code, fields)) => self.activate(&code, &fields, now_ms),
                Err(answer) => *answer,
            },
            Endpoint::LicenseHeartbeat => match license_request(received) {
                Ok((code, _)) => self.heartbeat(&code, now_ms),
                Err(answer) => *answer,
            },
        }
    }

    /// `GET …/order/query`: the order, with only the line asked for.
    fn query_order(&self, query: &str) -> Answer {
        let endpoint = Endpoint::QueryOrder;
        let param = |name: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.into_owned())
        };
        let Some(order_id) = param("orderId") else {
            return Answer::error(
                endpoint,
                StatusCode::BAD_REQUEST,
                "MKT.0101",
                "Invalid parameter: orderId is missing",
            );
        };
        let not_found = Answer::error(endpoint, StatusCode::OK, "MKT.0101", "order not found");
        let Some(order) = self.orders.get(&order_id) else { return not_found };
        let mut order = order.clone();
        if let Some(line_id) = param("orderLineId")
            && let Some(lines) = order.get_mut("orderLine").and_then(Value::as_array_mut)
        {
            lines.retain(|line| line.get("orderLineId").and_then(Value::as_str) == Some(line_id.as_str()));
            if lines.is_empty() {
                return not_found;
            }
        }
        Answer {
            status: StatusCode::OK,
            code: "MKT.0000".to_owned(),
            message: "Success".to_owned(),
            body: json!({ "resultCode": "MKT.0000", "resultMsg": "Success", "orderInfo": order }),
        }
    }

    /// `POST …/isv/usage-data`: the body signature, the body, the records; an accepted batch is recorded.
    fn usage_push(&mut self, received: &Received) -> Answer {
        let endpoint = Endpoint::UsagePush;
        if let Some(Err(why)) = &received.body_signature {
            let message = format!("Invalid body sign: {why}");
            return Answer::error(endpoint, StatusCode::BAD_REQUEST, "MKT.0102", &message);
        }
        let records = match usage_check::check_body(&received.body) {
            Ok(records) => records,
            Err(BodyProblem::Invalid(why)) => {
                let message = format!("Invalid parameter: {why}");
                return Answer::error(endpoint, StatusCode::BAD_REQUEST, "MKT.0101", &message);
            }
            Err(BodyProblem::TooManyRecords(n)) => {
                let message = format!("records > limit ({n} > {})", usage_check::MAX_RECORDS);
                return Answer::error(endpoint, StatusCode::INTERNAL_SERVER_ERROR, "MKT.9003", &message);
            }
        };
        let metering_sns: Vec<String> = records
            .iter()
            .map(|r| r.get("metering_sn").and_then(Value::as_str).unwrap_or_default().to_owned())
            .collect();
        for sn in &metering_sns {
            *self.sn_counts.entry(sn.clone()).or_default() += 1;
        }
        self.batches.push(UsageBatch { records, metering_sns });
        Answer::error(endpoint, StatusCode::OK, "MKT.0000", "Success")
    }

    /// `POST …/license/activate`.
    fn activate(&mut self, code: &str, fields: &Map<String, Value>, now_ms: u64) -> Answer {
        let real_effect_time = match fields.get("real_effect_time") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) if time::parse_compact(t).is_some() => Some(t.clone()),
            Some(_) => return Answer::license("92020002", "invalid param"),
        };
        let Some(license) = self.licenses.get_mut(code) else {
            return Answer::license("92020005", "license code notexist");
        };
        if !license.spec.received {
            return Answer::license("92020004", "can not active before user received.");
        }
        if license.activated || license.status == "RELEASED" {
            return Answer::license("92020003", "illegal state");
        }
        license.activated = true;
        license.activate_time = Some(time::format_compact(now_ms));
        license.real_effect_time = real_effect_time;
        // A string holding JSON, fields in the order of the documented example (§8.1).
        let info = json!({
            "status": reported_status(license, now_ms),
            "expire_time": license.spec.expire_time,
            "product_id": license.spec.product_id,
            "amount": license.spec.amount,
            "order_id": license.spec.order_id,
        });
        Answer {
            status: StatusCode::OK,
            code: "92020000".to_owned(),
            message: "success".to_owned(),
            body: json!({
                "error_code": "92020000",
                "error_msg": "success",
                "data": { "license_code_info": info.to_string() },
            }),
        }
    }

    /// `POST …/license/heartbeat`.
    fn heartbeat(&mut self, code: &str, now_ms: u64) -> Answer {
        let Some(license) = self.licenses.get_mut(code) else {
            return Answer::license("92020005", "license code notexist");
        };
        if !license.activated {
            return Answer::license("92020011", "license code has been not activated.");
        }
        license.heartbeats += 1;
        Answer {
            status: StatusCode::OK,
            code: "92020000".to_owned(),
            message: "success".to_owned(),
            body: json!({
                "error_code": "92020000",
                "error_msg": "success",
                "data": {
                    "license_code": license.code,
                    "status": reported_status(license, now_ms),
                    "activate_time": license.activate_time,
                    "expire_time": license.spec.expire_time,
                },
            }),
        }
    }
}

/// `status`, but `EXPIRED` for an `ALIVE` license past its expiry.
fn reported_status(license: &License, now_ms: u64) -> String {
    let expired = time::parse_compact(&license.spec.expire_time).is_some_and(|expiry| expiry <= now_ms);
    if license.status == "ALIVE" && expired { "EXPIRED".to_owned() } else { license.status.clone() }
}

/// A license call's body: the content type, the JSON, the `license` code; the code and the whole object.
fn license_request(received: &Received) -> Result<(String, Map<String, Value>), Box<Answer>> {
    let endpoint = received.endpoint;
    let json_type = received
        .header("content-type")
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(Box::new(Answer::error(
            endpoint,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "95000003",
            "Content type not supported",
        )));
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&received.body) else {
        return Err(Box::new(Answer::error(
            endpoint,
            StatusCode::BAD_REQUEST,
            "95000004",
            "req message is not readable",
        )));
    };
    match fields.get("license") {
        Some(Value::String(code)) if !code.trim().is_empty() && code.chars().count() <= MAX_LICENSE => {
            Ok((code.clone(), fields.clone()))
        }
        _ => Err(Box::new(Answer::license("92020002", "invalid param"))),
    }
}

/// Notes `answer` in `received`; the outcome that sends it.
fn finish(received: &mut Received, answer: Answer) -> Outcome {
    received.status = Some(answer.status.as_u16());
    received.code = Some(answer.code);
    received.message = Some(answer.message);
    Outcome::json(answer.status, &answer.body)
}
