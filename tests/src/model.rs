//! Model-based lifecycle checking: random sequences of marketplace requests (with retries, duplicates, replays,
//! forgeries and reordering) are run against an [`Endpoint`] and a reference model; after every step the answer and
//! the stored state must match the model.

use std::collections::{BTreeMap, BTreeSet};

use koogallery_core::http::Inbound;
use koogallery_core::identity;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{Endpoint, Lifecycle, code};

/// The order every generated line belongs to.
pub const ORDER: &str = "CSPROP";

/// One marketplace request, or an attack on one.
#[derive(Debug, Clone)]
pub enum Step {
    /// `newInstance` for line `n` (a retry when it exists: new businessId, new nonce).
    New(u8),
    /// `queryInstance` for line `n`.
    Query(u8),
    /// `refreshInstance` of line `n` by renewal order `o`.
    Renew(u8, u8),
    /// `updateInstanceStatus FREEZE`.
    Freeze(u8),
    /// `updateInstanceStatus UNFREEZE`.
    Unfreeze(u8),
    /// `upgradeInstance` of line `n` by order `o`.
    Upgrade(u8, u8),
    /// `releaseInstance`.
    Release(u8),
    /// The previous request sent again byte for byte (same nonce): a replay.
    Replay,
    /// The request of the inner step with one body byte changed after signing.
    Forged(Box<Step>),
    /// The request of the inner step signed 61 s in the past.
    Stale(Box<Step>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Active,
    Frozen,
    Released,
}

#[derive(Debug, Clone)]
struct Inst {
    state: State,
    renewals: BTreeSet<u8>,
    expire: Option<u64>,
}

/// The instance id the handler must use for line `n`.
pub fn instance_id(n: u8) -> String {
    identity::instance_id_for_order_line(ORDER, &line(n))
}

fn line(n: u8) -> String {
    format!("{ORDER}-{:06}", u32::from(n) + 1)
}

fn expire_text(o: u8) -> String {
    format!("20{:02}0101000000", 30 + u32::from(o))
}

fn body(step: &Step, business: u64) -> Value {
    match step {
        Step::New(n) => {
            json!({"activity":"newInstance","orderId":ORDER,"orderLineId":line(*n),"businessId":format!("b-{business}"),"testFlag":"0"})
        }
        Step::Query(n) => json!({"activity":"queryInstance","instanceId":instance_id(*n),"testFlag":"0"}),
        Step::Renew(n, o) => {
            json!({"activity":"refreshInstance","scene":"RENEWAL","orderId":format!("RN{o}"),"orderLineId":format!("RN{o}-000001"),"instanceId":instance_id(*n),"expireTime":expire_text(*o),"testFlag":"0"})
        }
        Step::Freeze(n) => {
            json!({"activity":"updateInstanceStatus","instanceId":instance_id(*n),"status":"FREEZE","testFlag":"0"})
        }
        Step::Unfreeze(n) => {
            json!({"activity":"updateInstanceStatus","instanceId":instance_id(*n),"status":"UNFREEZE","testFlag":"0"})
        }
        Step::Upgrade(n, o) => {
            json!({"activity":"upgradeInstance","instanceId":instance_id(*n),"orderId":format!("UP{o}"),"orderLineId":format!("UP{o}-000001"),"testFlag":"0"})
        }
        Step::Release(n) => json!({"activity":"releaseInstance","instanceId":instance_id(*n),"testFlag":"0"}),
        Step::Replay | Step::Forged(_) | Step::Stale(_) => json!({}),
    }
}

/// Runs `steps` against `ep` and the model, failing with the step index on the first disagreement.
///
/// # Errors
/// A description of the first step whose answer or resulting state differs from the model.
pub fn check(ep: &dyn Endpoint, lines: u8, steps: &[Step]) -> Result<(), String> {
    let signer = Lifecycle::default();
    let mut model: BTreeMap<u8, Inst> = BTreeMap::new();
    // The previous request and what sending it again must answer.
    let mut last: Option<(Inbound, &'static str)> = None;
    for (i, step) in steps.iter().enumerate() {
        let fail = |what: String| format!("step {i} {step:?}: {what}");
        let before = snapshot(ep);
        let (req, expect, honest) = match step {
            Step::Replay => match &last {
                Some((req, again)) => (req.clone(), (*again).to_owned(), false),
                None => continue,
            },
            Step::Forged(inner) => {
                let mut req = signer.v2(&body(inner, i as u64), ep.now());
                let at = req.body.len() / 2;
                req.body[at] = req.body[at].wrapping_add(1);
                (req, "000001".to_owned(), false)
            }
            Step::Stale(inner) => (signer.v2(&body(inner, i as u64), ep.now() - 61_000), "000002".to_owned(), false),
            honest => {
                let expect = expected(&model, honest);
                (signer.v2(&body(honest, i as u64), ep.now()), expect.to_owned(), true)
            }
        };
        let out = ep.send(&req);
        let got = code(&out);
        if got != expect {
            return Err(fail(format!("answered {got}, model expects {expect}")));
        }
        if honest {
            apply(&mut model, step);
            if let Step::New(n) = step {
                let id = crate::json(&out)["instanceId"].as_str().unwrap_or("").to_owned();
                if id != instance_id(*n) {
                    return Err(fail(format!("instanceId {id} is not the deterministic id")));
                }
            }
        } else {
            let after = snapshot(ep);
            if after != before {
                return Err(fail("a rejected request changed the store".into()));
            }
        }
        compare(ep, lines, &model).map_err(fail)?;
        // A stale request stays stale; anything else sent twice is a replay (nonce seen, or still forged).
        let again = if matches!(step, Step::Stale(_)) || (matches!(step, Step::Replay) && expect == "000002") {
            "000002"
        } else {
            "000001"
        };
        last = Some((req, again));
    }
    Ok(())
}

fn expected(model: &BTreeMap<u8, Inst>, step: &Step) -> &'static str {
    let inst = |n: &u8| model.get(n);
    match step {
        Step::New(_) | Step::Release(_) => "000000",
        Step::Query(n) => match inst(n) {
            Some(i) if i.state != State::Released => "000000",
            _ => "000003",
        },
        Step::Renew(n, _) | Step::Freeze(n) | Step::Unfreeze(n) | Step::Upgrade(n, _) => {
            if inst(n).is_some() {
                "000000"
            } else {
                "000003"
            }
        }
        Step::Replay | Step::Forged(_) | Step::Stale(_) => "000001",
    }
}

fn apply(model: &mut BTreeMap<u8, Inst>, step: &Step) {
    match step {
        Step::New(n) => {
            model.entry(*n).or_insert(Inst { state: State::Active, renewals: BTreeSet::new(), expire: None });
        }
        Step::Renew(n, o) => {
            if let Some(i) = model.get_mut(n).filter(|i| i.state != State::Released)
                && i.renewals.insert(*o)
            {
                // A renewal never moves the expiry back (a late retry of an older renewal order).
                let new = koogallery_core::wire::time::parse_compact_utc(&expire_text(*o)).ok();
                i.expire = i.expire.max(new);
            }
        }
        Step::Freeze(n) => {
            if let Some(i) = model.get_mut(n).filter(|i| i.state == State::Active) {
                i.state = State::Frozen;
            }
        }
        Step::Unfreeze(n) => {
            if let Some(i) = model.get_mut(n).filter(|i| i.state == State::Frozen) {
                i.state = State::Active;
            }
        }
        Step::Release(n) => {
            if let Some(i) = model.get_mut(n) {
                i.state = State::Released;
            }
        }
        _ => {}
    }
}

/// Every stored record agrees with the model: one per created line, same state and expiry, nothing else.
fn compare(ep: &dyn Endpoint, lines: u8, model: &BTreeMap<u8, Inst>) -> Result<(), String> {
    let instances: Vec<String> = ep.keys().into_iter().filter(|k| k.contains("/instance/")).collect();
    if instances.len() != model.len() {
        return Err(format!("{} stored instances, model has {}", instances.len(), model.len()));
    }
    for n in 0..lines {
        let key = format!("live/instance/{}", instance_id(n));
        let stored = ep.value(&key).and_then(|v| serde_json::from_slice::<Value>(&v).ok());
        match (model.get(&n), stored) {
            (None, None) => {}
            (Some(inst), Some(rec)) => {
                let state = rec["status"]["state"].as_str().unwrap_or("");
                let want = match inst.state {
                    State::Active => "active",
                    State::Frozen => "frozen",
                    State::Released => "released",
                };
                if state != want {
                    return Err(format!("line {n} stored {state}, model {want}"));
                }
                if rec["expireMs"].as_u64() != inst.expire {
                    return Err(format!("line {n} stored expiry {:?}, model {:?}", rec["expireMs"], inst.expire));
                }
            }
            (m, s) => return Err(format!("line {n}: model {m:?}, stored {s:?}")),
        }
    }
    Ok(())
}

fn snapshot(ep: &dyn Endpoint) -> Vec<(String, Option<Vec<u8>>)> {
    let mut keys = ep.keys();
    keys.sort();
    keys.into_iter().map(|k| (k.clone(), ep.value(&k))).collect()
}

/// Random steps over `lines` order lines: mostly honest requests (creations and retries, queries, renewals,
/// freezes, upgrades, releases), with replays, forgeries and stale requests mixed in.
pub fn arbitrary_step(lines: u8) -> impl Strategy<Value = Step> {
    let honest = prop_oneof![
        3 => (0..lines).prop_map(Step::New),
        2 => (0..lines).prop_map(Step::Query),
        2 => (0..lines, 0..3u8).prop_map(|(n, o)| Step::Renew(n, o)),
        2 => (0..lines).prop_map(Step::Freeze),
        2 => (0..lines).prop_map(Step::Unfreeze),
        1 => (0..lines, 0..3u8).prop_map(|(n, o)| Step::Upgrade(n, o)),
        1 => (0..lines).prop_map(Step::Release),
    ];
    prop_oneof![
        12 => honest.clone(),
        1 => Just(Step::Replay),
        1 => honest.clone().prop_map(|s| Step::Forged(Box::new(s))),
        1 => honest.prop_map(|s| Step::Stale(Box::new(s))),
    ]
}
