//! Full lifecycles as the marketplace drives them: buy (with retries and concurrent duplicates), poll until ready,
//! renew, freeze, unfreeze, upgrade, check a change, notify, reorder, release, and a late retry after release.
//!
//! Rules that need an instance from an earlier rule fail with "not checked" when that rule failed: a conformance
//! run never reports a pass for something it could not check.

use koogallery_core::marketplace::fresh_uuid;
use koogallery_core::marketplace::samples::{self, Charging, OrderLine, encode};
use koogallery_core::ports::system_now_ms;
use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};

use crate::bodies::{expire_time, follow_up, run_order};
use crate::rules::{Recorder, Verdict};
use crate::session::{Answer, Finding, Session, expect, expect_instance};

/// Most `queryInstance` polls before giving up on an instance that stays `000004`.
pub(crate) const QUERY_POLLS: usize = 10;
/// Pause between polls.
const POLL_INTERVAL: Duration = Duration::from_millis(300);
/// One day in milliseconds (renewal expiry dates).
const DAY_MS: u64 = 86_400_000;

/// An instance bought during the run.
#[derive(Debug, Clone)]
pub(crate) struct Bought {
    pub order: OrderLine,
    pub instance_id: String,
}

/// What the lifecycle rules share.
#[derive(Debug, Default)]
pub(crate) struct Instances {
    pub period: Option<Bought>,
    pub one_time: Option<Bought>,
    pub on_demand: Option<Bought>,
    pub concurrent: Option<Bought>,
    pub reorder: Option<Bought>,
}

impl Instances {
    /// Every instance bought, with its name for report lines.
    fn all(&self) -> Vec<(&'static str, &Bought)> {
        [
            ("period", &self.period),
            ("one-time", &self.one_time),
            ("on-demand", &self.on_demand),
            ("concurrent", &self.concurrent),
            ("reorder", &self.reorder),
        ]
        .into_iter()
        .filter_map(|(n, b)| b.as_ref().map(|b| (n, b)))
        .collect()
    }
}

fn needs<'a>(b: &'a Option<Bought>, rule: &str) -> Result<&'a Bought, Finding> {
    b.as_ref().ok_or_else(|| Finding::general(format!("not checked: needs the instance from {rule}, which failed")))
}

/// Runs the lifecycle rules, `new.period` to `release.final`, in rule order.
pub(crate) async fn run(s: &Session, rec: &mut Recorder) {
    let mut b = Instances::default();
    for (id, tag, style) in [
        ("new.period", "P", Charging::Period),
        ("new.one_time", "O", Charging::OneTime),
        ("new.on_demand", "D", Charging::OnDemand),
    ] {
        let order = run_order(&s.run, tag, style);
        let result = buy(s, &order, "first call").await.map(|instance_id| Bought { order, instance_id });
        let verdict = match &result {
            Ok(bought) => Verdict::Pass(format!("instanceId {}", bought.instance_id)),
            Err(f) => Verdict::Fail(f.clone()),
        };
        let slot = match style {
            Charging::Period => &mut b.period,
            Charging::OneTime => &mut b.one_time,
            Charging::OnDemand => &mut b.on_demand,
        };
        *slot = result.ok();
        rec.record(id, verdict);
    }
    rec.record("new.retry", retries(s, &b).await.into());
    let concurrent = concurrent(s).await;
    b.concurrent = concurrent.as_ref().ok().cloned();
    rec.record(
        "new.concurrent",
        concurrent.map(|c| format!("{} calls, one instanceId {}", s.concurrency, c.instance_id)).into(),
    );
    rec.record("query.ready", query_all(s, &b).await.into());
    let renewals = refresh_scenes(s, &b).await;
    let repeat = match &renewals {
        Ok(bodies) => refresh_repeat(s, bodies).await,
        Err(_) => Err(Finding::general("not checked: refresh.scenes failed")),
    };
    rec.record("refresh.scenes", renewals.map(|b| format!("{} scenes answered 000000", b.len())).into());
    rec.record("refresh.repeat", repeat.into());
    rec.record(
        "status.freeze",
        twice(s, &b.period, "updateInstanceStatus", "FREEZE", |id| encode(&samples::status(id, "FREEZE"))).await.into(),
    );
    rec.record(
        "status.unfreeze",
        twice(s, &b.period, "updateInstanceStatus", "UNFREEZE", |id| encode(&samples::status(id, "UNFREEZE")))
            .await
            .into(),
    );
    let upgrade_order = b.period.as_ref().map(|p| follow_up(&p.order, "U1"));
    rec.record(
        "upgrade",
        twice(s, &b.period, "upgradeInstance", "", |id| {
            let (o, l) = upgrade_order.clone().unwrap_or_default();
            encode(&samples::upgrade(id, (&o, &l)))
        })
        .await
        .into(),
    );
    rec.record("change_check", change_check(s, &b).await.into());
    rec.record("order_notify", order_notify(s, &b).await.into());
    let reorder = reorder(s).await;
    b.reorder = reorder.as_ref().ok().cloned();
    rec.record(
        "reorder",
        reorder.map(|r| format!("6 out-of-order events on {} answered 000000", r.instance_id)).into(),
    );
    let released = release_all(s, &b).await;
    rec.record("release", released.clone().map(|n| format!("{n} instances released")).into());
    let repeat = match released {
        Ok(_) => release_all_again(s, &b).await,
        Err(_) => Err(Finding::general("not checked: release failed")),
    };
    rec.record("release.repeat", repeat.into());
    rec.record("release.unknown", release_unknown(s).await.into());
    rec.record("release.final", late_retry(s, &b).await.into());
}

/// Sends `newInstance` for `order` with a fresh `businessId` and returns the instance id.
async fn buy(s: &Session, order: &OrderLine, note: &str) -> Result<String, Finding> {
    let body = encode(&samples::new_instance(order, &fresh_uuid()));
    let answer = s.v2("newInstance", &format!("{} order, {note}", order.charging.name()), &body).await;
    expect_instance(&answer)
}

async fn retries(s: &Session, b: &Instances) -> Result<String, Finding> {
    let mut checked = 0;
    for (slot, rule) in [(&b.period, "new.period"), (&b.one_time, "new.one_time"), (&b.on_demand, "new.on_demand")] {
        let bought = needs(slot, rule)?;
        for n in 1..=2 {
            let body = encode(&samples::new_instance(&bought.order, &fresh_uuid()));
            let note = format!("{} order, retry {n} with a fresh businessId", bought.order.charging.name());
            let answer = s.v2("newInstance", &note, &body).await;
            let id = expect_instance(&answer)?;
            if id != bought.instance_id {
                return Err(Finding::at(
                    &answer,
                    format!("retry got instanceId {id}, first call got {}", bought.instance_id),
                ));
            }
            checked += 1;
        }
    }
    Ok(format!("{checked} retries returned the first instanceId"))
}

async fn concurrent(s: &Session) -> Result<Bought, Finding> {
    let order = run_order(&s.run, "C", Charging::Period);
    let n = s.concurrency;
    let bodies: Vec<Vec<u8>> = (0..n).map(|_| encode(&samples::new_instance(&order, &fresh_uuid()))).collect();
    let notes: Vec<String> = (1..=n).map(|i| format!("concurrent duplicate {i}/{n}")).collect();
    let answers: Vec<Answer> =
        join_all(bodies.iter().zip(&notes).map(|(body, note)| s.v2("newInstance", note, body))).await;
    let mut ids = BTreeSet::new();
    let mut first: Option<(String, &Answer)> = None;
    for answer in &answers {
        let id = expect_instance(answer)?;
        ids.insert(id.clone());
        match &first {
            None => first = Some((id, answer)),
            Some((f, _)) if *f != id => {
                return Err(Finding::at(
                    answer,
                    format!(
                        "{} distinct instanceIds among {n} concurrent duplicates (e.g. {f} and {id})",
                        count_distinct(&answers)
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let instance_id = first.map(|(id, _)| id).unwrap_or_default();
    // A sequential retry afterwards must agree too (the record the duplicates wrote is the one that stays).
    let after = buy(s, &order, "retry after the concurrent burst").await?;
    if after != instance_id {
        return Err(Finding::general(format!("retry after the burst got {after}, the burst agreed on {instance_id}")));
    }
    Ok(Bought { order, instance_id })
}

fn count_distinct(answers: &[Answer]) -> usize {
    answers.iter().filter_map(|a| a.field("instanceId")).collect::<BTreeSet<_>>().len()
}

/// Polls `queryInstance` for `id` until `000000` (allowing `000004` while pending) and checks the login URL.
pub(crate) async fn query_until_ready(s: &Session, id: &str, what: &str) -> Result<usize, Finding> {
    let mut last = None;
    for poll in 1..=QUERY_POLLS {
        let answer =
            s.v2("queryInstance", &format!("{what} instance, poll {poll}"), &encode(&samples::query(id))).await;
        if answer.is("000004") {
            last = Some(answer.label);
            tokio::time::sleep(POLL_INTERVAL).await;
            continue;
        }
        expect(&answer, "000000")?;
        return match app_info(&answer, id) {
            Some(info) if non_empty(info.get("frontEndUrl")) => Ok(poll),
            Some(_) => Err(Finding::at(&answer, format!("info entry for {id} has no appInfo.frontEndUrl"))),
            None => Err(Finding::at(&answer, format!("000000 without an info[] entry with appInfo for {id}"))),
        };
    }
    Err(Finding { detail: format!("{what} instance still 000004 after {QUERY_POLLS} polls"), request: last })
}

/// The `appInfo` of the `info[]` entry for `id`.
fn app_info<'a>(answer: &'a Answer, id: &str) -> Option<&'a serde_json::Map<String, Value>> {
    let info = answer.json.as_ref()?.get("info")?.as_array()?;
    let entry = info.iter().find(|e| e.get("instanceId").and_then(Value::as_str) == Some(id))?;
    entry.get("appInfo")?.as_object()
}

fn non_empty(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty())
}

async fn query_all(s: &Session, b: &Instances) -> Result<String, Finding> {
    needs(&b.period, "new.period")?;
    let mut seen = Vec::new();
    for (name, bought) in b.all() {
        let polls = query_until_ready(s, &bought.instance_id, name).await?;
        seen.push(format!("{name} after {polls} poll{}", if polls == 1 { "" } else { "s" }));
    }
    Ok(format!("ready: {}", seen.join(", ")))
}

const SCENES: [&str; 4] = ["TRIAL_TO_FORMAL", "RENEWAL", "UNSUBSCRIBE_RENEWAL_PERIOD", "RENEWAL_CHANGE"];

async fn refresh_scenes(s: &Session, b: &Instances) -> Result<Vec<(String, Vec<u8>)>, Finding> {
    let p = needs(&b.period, "new.period")?;
    let mut sent = Vec::new();
    for (i, scene) in SCENES.iter().enumerate() {
        let (order, line) = follow_up(&p.order, &format!("R{}", i + 1));
        let expire = system_now_ms().saturating_add(DAY_MS * 30 * (i as u64 + 1));
        // Alternate the two documented expireTime lengths (14 and 17 digits).
        let body =
            encode(&samples::refresh(&p.instance_id, (&order, &line), None, scene, &expire_time(expire, i % 2 == 1)));
        let note = format!("scene {scene}");
        expect(&s.v2("refreshInstance", &note, &body).await, "000000")?;
        sent.push((note, body));
    }
    Ok(sent)
}

async fn refresh_repeat(s: &Session, sent: &[(String, Vec<u8>)]) -> Result<String, Finding> {
    for (note, body) in sent {
        expect(&s.v2("refreshInstance", &format!("{note}, repeated"), body).await, "000000")?;
    }
    Ok(format!("{} repeated renewals answered 000000", sent.len()))
}

/// Sends the same event twice (fresh nonce each time); both must answer `000000`.
async fn twice(
    s: &Session,
    slot: &Option<Bought>,
    activity: &str,
    what: &str,
    body: impl Fn(&str) -> Vec<u8>,
) -> Result<String, Finding> {
    let p = needs(slot, "new.period")?;
    let body = body(&p.instance_id);
    for note in ["first", "repeated"] {
        let note = if what.is_empty() { note.to_owned() } else { format!("{what}, {note}") };
        expect(&s.v2(activity, &note, &body).await, "000000")?;
    }
    Ok("000000 twice".to_owned())
}

async fn change_check(s: &Session, b: &Instances) -> Result<String, Finding> {
    let p = needs(&b.period, "new.period")?;
    let answer = s
        .v2(
            "changeInstanceCheck",
            "",
            &encode(&samples::change_check(
                &p.instance_id,
                json!({"linearValue": "2", "productId": &p.order.product_id, "skuCode": "emu-sku-2"}),
            )),
        )
        .await;
    expect(&answer, "000000").map(|()| "change allowed".to_owned())
}

async fn order_notify(s: &Session, b: &Instances) -> Result<String, Finding> {
    let p = needs(&b.period, "new.period")?;
    let body = encode(&samples::order_notify(&p.order.order_id, &p.order.line_id));
    for note in ["first", "repeated"] {
        expect(&s.v2("orderNotify", note, &body).await, "000000")?;
    }
    Ok("000000 twice".to_owned())
}

/// A second period instance driven out of order: unfreeze while active, freeze, renew and upgrade while frozen,
/// unfreeze, then the first renewal again after the upgrade.
async fn reorder(s: &Session) -> Result<Bought, Finding> {
    let order = run_order(&s.run, "R", Charging::Period);
    let id = buy(s, &order, "for reordering").await?;
    let (renew_order, renew_line) = follow_up(&order, "R1");
    let (up_order, up_line) = follow_up(&order, "U1");
    let renewal = encode(&samples::refresh(
        &id,
        (&renew_order, &renew_line),
        None,
        "RENEWAL",
        &expire_time(system_now_ms().saturating_add(DAY_MS * 365), false),
    ));
    let steps: [(&str, &str, Vec<u8>); 6] = [
        ("updateInstanceStatus", "UNFREEZE while active", encode(&samples::status(&id, "UNFREEZE"))),
        ("updateInstanceStatus", "FREEZE", encode(&samples::status(&id, "FREEZE"))),
        ("refreshInstance", "RENEWAL while frozen", renewal.clone()),
        ("upgradeInstance", "upgrade while frozen", encode(&samples::upgrade(&id, (&up_order, &up_line)))),
        ("updateInstanceStatus", "UNFREEZE after renewal", encode(&samples::status(&id, "UNFREEZE"))),
        ("refreshInstance", "the first RENEWAL again, after the upgrade", renewal),
    ];
    for (activity, note, body) in &steps {
        expect(&s.v2(activity, note, body).await, "000000")?;
    }
    Ok(Bought { order, instance_id: id })
}

async fn release_each(s: &Session, b: &Instances, note: &str) -> Result<usize, Finding> {
    needs(&b.period, "new.period")?;
    let all = b.all();
    for (name, bought) in &all {
        // The period instance is released by an unsubscription order; the others without one.
        let unsubscribe = (*name == "period").then(|| follow_up(&bought.order, "X1"));
        let body =
            encode(&samples::release(&bought.instance_id, unsubscribe.as_ref().map(|(o, l)| (o.as_str(), l.as_str()))));
        expect(&s.v2("releaseInstance", &format!("{name} instance{note}"), &body).await, "000000")?;
    }
    Ok(all.len())
}

async fn release_all(s: &Session, b: &Instances) -> Result<usize, Finding> {
    release_each(s, b, "").await
}

async fn release_all_again(s: &Session, b: &Instances) -> Result<String, Finding> {
    release_each(s, b, ", repeated").await.map(|n| format!("{n} repeated releases answered 000000"))
}

async fn release_unknown(s: &Session) -> Result<String, Finding> {
    let id = fresh_uuid();
    let answer = s.v2("releaseInstance", "instanceId never created", &encode(&samples::release(&id, None))).await;
    expect(&answer, "000000").map(|()| format!("unknown {id} released"))
}

async fn late_retry(s: &Session, b: &Instances) -> Result<String, Finding> {
    let p = needs(&b.period, "new.period")?;
    // Released: no longer reported. (Asked before the late retry: the emulator sends debug traffic, and a debug
    // instance comes back on its `newInstance`, as the daily dial test needs — its saved cases include a release.)
    let query = s.v2("queryInstance", "released instance", &encode(&samples::query(&p.instance_id))).await;
    if query.is("000000") && app_info(&query, &p.instance_id).is_some() {
        return Err(Finding::at(&query, "the released instance is still reported active (000000 with appInfo)"));
    }
    let answer = s
        .v2(
            "newInstance",
            "period order, late retry after release",
            &encode(&samples::new_instance(&p.order, &fresh_uuid())),
        )
        .await;
    let id = expect_instance(&answer)?;
    if id != p.instance_id {
        return Err(Finding::at(
            &answer,
            format!("late retry got a new instanceId {id} (released: {})", p.instance_id),
        ));
    }
    Ok(format!(
        "query after release answers {}; the late retry keeps the instanceId",
        query.code().unwrap_or("no resultCode")
    ))
}
