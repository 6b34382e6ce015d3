//! The usage component end to end: intake, numbering, pushing to a scripted marketplace, status.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::Value;

use crate::http::Inbound;
use crate::ports::{Backend, FixedClock, MemoryStore, OsRandom, OutboundError, OutboundReply};
use crate::produce::Ctx;
use crate::usage::{self, UsageConfig, outbox};

/// The fuzz clock: 2024-03-06T02:00:00Z (seeds' records begin within the 21 days before).
const NOW: u64 = 1_709_690_400_000;
const TOKEN: &str = "fuzz-admin-token";

/// A marketplace answering each push from a script: `o` `MKT.0000`, `5` 503, `4` 400 `MKT.0101`, `t` a timeout,
/// `x` 200 with an unreadable body; `MKT.0000` once the script is used up. It keeps the `metering_sn`s it accepted.
struct Scripted {
    script: RefCell<VecDeque<u8>>,
    accepted: RefCell<BTreeMap<String, usize>>,
}

impl Backend for Scripted {
    async fn post(
        &self,
        _url: &str,
        _headers: &[(String, String)],
        body: &[u8],
        _timeout_ms: u64,
    ) -> Result<OutboundReply, OutboundError> {
        let records: Value = serde_json::from_slice(body).expect("a push body is JSON");
        let records = records["usage_records"].as_array().cloned().unwrap_or_default();
        assert!((1..=100).contains(&records.len()), "a batch of {} records", records.len());
        let answer = |status: u16, body: &str| Ok(OutboundReply { status, body: body.as_bytes().to_vec() });
        match self.script.borrow_mut().pop_front().unwrap_or(b'o') {
            b'5' => answer(503, r#"{"error_code":"MKT.0999"}"#),
            b'4' => answer(400, r#"{"error_code":"MKT.0101"}"#),
            b't' => Err(OutboundError::Timeout),
            b'x' => answer(200, "<html>"),
            _ => {
                for r in &records {
                    let sn = r["metering_sn"].as_str().expect("metering_sn").to_owned();
                    *self.accepted.borrow_mut().entry(sn).or_default() += 1;
                }
                answer(200, r#"{"error_code":"MKT.0000","error_msg":"Success"}"#)
            }
        }
    }
}

async fn call(
    path: &str,
    method: &str,
    body: &[u8],
    ctx: &Ctx<'_, MemoryStore, Scripted, FixedClock, OsRandom>,
    cfg: &UsageConfig,
) -> (u16, Value) {
    let req = Inbound {
        method: method.into(),
        path: path.into(),
        headers: vec![("authorization".into(), format!("Bearer {TOKEN}"))],
        body: body.to_vec(),
        ..Inbound::default()
    };
    let answer = usage::handle(&req, Ok(cfg), ctx).await;
    (answer.response.status, serde_json::from_slice(&answer.response.body).unwrap_or(Value::Null))
}

fn sns(answer: &Value) -> BTreeSet<String> {
    answer["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["metering_sn"].as_str().map(str::to_owned))
        .collect()
}

/// Input: a marketplace script (the first line, see [`Scripted`]), then a `POST /usage/records` body, submitted
/// twice. Returns whether it was accepted.
///
/// Oracles: the answer is 200, 400, 409 or 413; a refused submission stores nothing; an accepted one gives each
/// record a `metering_sn`, the same again on resubmission (which queues nothing); after a flush every one of them
/// is either accepted by the marketplace exactly once, or parked, and nothing else reached it; no batch exceeds 100.
pub async fn usage(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let (script, body) = text.split_once('\n').unwrap_or(("", &text));
    let vars = [("access_keys", "fuzz-isv-key"), ("admin_token", TOKEN), ("openapi_ak", "ak"), ("openapi_sk", "sk")];
    let cfg = UsageConfig::from_variables(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()))
        .expect("fuzz configuration");
    let store = MemoryStore::new();
    let market = Scripted { script: RefCell::new(script.bytes().take(64).collect()), accepted: RefCell::default() };
    let ctx = Ctx { store: &store, backend: &market, clock: &FixedClock(NOW), random: &OsRandom };
    let (status, first) = call("/usage/records", "POST", body.as_bytes(), &ctx, &cfg).await;
    assert!(matches!(status, 200 | 400 | 409 | 413), "status {status}");
    if status != 200 {
        assert!(store.snapshot().keys().all(|k| !k.starts_with("usage/")), "a refused submission stored something");
        assert!(market.accepted.borrow().is_empty());
        return false;
    }
    let numbered = sns(&first);
    assert_eq!(first["accepted"].as_u64(), first["records"].as_array().map(|a| a.len() as u64));
    let (status, second) = call("/usage/records", "POST", body.as_bytes(), &ctx, &cfg).await;
    assert_eq!(status, 200, "a resubmission is accepted");
    assert_eq!(sns(&second), numbered, "a resubmission keeps the numbers");
    assert_eq!(second["queued"], 0, "a resubmission queues nothing");
    market.script.borrow_mut().clear();
    let (status, flushed) = call("/usage/flush", "POST", b"", &ctx, &cfg).await;
    assert_eq!(status, 200, "{flushed}");
    let parked = outbox::parked_sns(&store).await.expect("parked");
    let pending = outbox::pending(&store).await.expect("pending");
    assert!(pending.is_empty(), "a flush with the marketplace up leaves nothing pending");
    let accepted = market.accepted.borrow();
    for sn in &numbered {
        assert!(parked.contains(sn) ^ accepted.contains_key(sn), "{sn} neither sent nor parked, or both");
    }
    assert!(accepted.keys().all(|sn| numbered.contains(sn)), "the marketplace got a record nobody submitted");
    assert!(accepted.values().all(|n| *n == 1), "a record was accepted twice");
    true
}
