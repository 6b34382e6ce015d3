//! Idempotency as the seller's backend sees it: in forward mode every effective change is one event, and a repeat
//! that changes nothing sends none.
//!
//! The emulator's webhook receiver (`--backend-listen`) stands in for the backend. With a tenant id fresh to the
//! run, `kit.events` sends tenantSync add, the same add again, modify (new name), delete, delete again, then
//! authSync add twice for one user and revoke; the receiver must get exactly one `tenant.created`,
//! `tenant.updated`, `tenant.deleted`, `user.created` and `user.revoked` for that tenant (matched on
//! `data.tenantId`). `kit.events.replace` sends one allOrgSync twice: exactly one `org.tree_replaced`.
//!
//! Events are normally delivered during the sync request; the rules wait up to 5 s for them, then a moment more
//! for any extra. A redelivery (same `webhook-id`, same bytes) counts once. Every webhook the receiver got in the
//! run must carry a valid signature, and no `webhook-id` or event `id` may stand for two different events.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use koogallery_core::signing::canonical_json::sorted_compact;
use serde_json::Value;

use crate::kit::{Form, NOT_CONFIGURED, SAMPLE_ORGS, User, all_org_body, auth_body, kit_time_stamp, tenant_body};
use crate::receiver::{Delivery, Receiver};
use crate::rules::{Recorder, Verdict};
use crate::session::{Finding, Session, expect};

/// How long events may take to arrive after the last sync was answered.
const DELIVERY_WAIT: Duration = Duration::from_secs(5);
/// How long to keep listening for extra events once the expected ones are in.
const GRACE: Duration = Duration::from_millis(400);
const POLL: Duration = Duration::from_millis(50);

const TENANT_NAME: &str = "Emulator events tenant";
const NEW_NAME: &str = "Emulator events tenant, renamed";

/// Runs `kit.events` and `kit.events.replace`, or records them as skipped.
pub(crate) async fn run(s: &Session, rec: &mut Recorder) {
    let ids = ["kit.events", "kit.events.replace"];
    let skip = if !s.kit_configured() {
        Some(NOT_CONFIGURED)
    } else if s.receiver().is_none() {
        Some("no webhook receiver (--backend-listen, with the endpoint's backend_url pointing at it)")
    } else {
        None
    };
    let (Some(rx), None) = (s.receiver(), skip) else {
        for id in ids {
            rec.record(id, Verdict::Skip(skip.unwrap_or(NOT_CONFIGURED).to_owned()));
        }
        return;
    };
    rec.record("kit.events", events(s, rx).await.into());
    rec.record("kit.events.replace", replace(s, rx).await.into());
}

/// Posts the V2 sync and requires `000000`.
async fn step(s: &Session, sync: &str, note: &str, body: &Value) -> Result<(), Finding> {
    let Some(answer) = s.kit(sync, note, &sorted_compact(body)).await else {
        return Err(Finding::general(NOT_CONFIGURED));
    };
    expect(&answer, "000000").map_err(|f| Finding { detail: format!("not checked: {note}: {}", f.detail), ..f })
}

async fn events(s: &Session, rx: &Receiver) -> Result<String, Finding> {
    let tenant = crate::kit::tenant_id(s, "events");
    let code = format!("emu{}", s.run);
    let app = format!("emu-app-{}", s.run);
    let user = User::sample(&format!("emu.events.{}", s.run));
    let tenant_steps: [(&str, &str, i64); 5] = [
        ("tenantSync add", TENANT_NAME, 1),
        ("the same tenantSync add again", TENANT_NAME, 1),
        ("tenantSync modify: new name", NEW_NAME, 2),
        ("tenantSync delete", NEW_NAME, 0),
        ("tenantSync delete again", NEW_NAME, 0),
    ];
    for (note, name, flag) in tenant_steps {
        step(s, "tenantSync", note, &tenant_body(&tenant, &code, name, flag, &kit_time_stamp())).await?;
    }
    let user_steps = [("authSync add", 1), ("the same authSync add again", 1), ("authSync revoke", 3)];
    for (note, flag) in user_steps {
        step(s, "authSync", note, &auth_body(Form::V2, &tenant, &app, &user, flag, &kit_time_stamp())).await?;
    }
    let expected = ["tenant.created", "tenant.updated", "tenant.deleted", "user.created", "user.revoked"];
    let all = collect(rx, &tenant, &expected).await;
    let got = judge(&all, &tenant, &expected).map_err(|e| Finding::general(with_hint(e, &all, rx)))?;
    let by_kind = |kind: &str| got.iter().find(|d| d.kind() == kind).map(|d| d.data().clone()).unwrap_or_default();
    check_data(&by_kind("tenant.created"), "tenant.created", &[("name", TENANT_NAME), ("tenantCode", &code)])?;
    check_data(&by_kind("tenant.updated"), "tenant.updated", &[("name", NEW_NAME)])?;
    for kind in ["user.created", "user.revoked"] {
        let data = by_kind(kind);
        check_data(&data, kind, &[("appId", &app)])?;
        let name = data.get("user").and_then(|u| u.get("userName")).and_then(Value::as_str);
        if name != Some(user.user_name.as_str()) {
            return Err(Finding::general(format!("{kind} has data.user.userName {name:?}, not {:?}", user.user_name)));
        }
    }
    Ok(format!(
        "exactly one each of {} for tenant {tenant}; ids distinct; all {} webhooks of the run correctly signed",
        expected.join(", "),
        all.len()
    ))
}

async fn replace(s: &Session, rx: &Receiver) -> Result<String, Finding> {
    let tenant = crate::kit::tenant_id(s, "tree");
    for note in ["allOrgSync", "the same allOrgSync again"] {
        step(s, "allOrgSync", note, &all_org_body(Form::V2, &tenant, &SAMPLE_ORGS, &kit_time_stamp())).await?;
    }
    let expected = ["org.tree_replaced"];
    let all = collect(rx, &tenant, &expected).await;
    let got = judge(&all, &tenant, &expected).map_err(|e| Finding::general(with_hint(e, &all, rx)))?;
    let data = got.first().map(|d| d.data().clone()).unwrap_or_default();
    check_data(&data, "org.tree_replaced", &[])?;
    let orgs: Vec<(&str, Option<&str>)> = data
        .get("orgs")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|o| {
                    let code = o.get("orgCode").and_then(Value::as_str).unwrap_or("");
                    (code, o.get("parentCode").and_then(Value::as_str))
                })
                .collect()
        })
        .unwrap_or_default();
    let want = [("emu-org-0", None), ("emu-org-1", Some("emu-org-0"))];
    if orgs != want {
        return Err(Finding::general(format!(
            "org.tree_replaced lists (orgCode, parentCode) {orgs:?}, expected {want:?} (sorted by orgCode)"
        )));
    }
    Ok(format!("exactly one org.tree_replaced for tenant {tenant}, with both departments"))
}

/// Waits until the events of `expected` have arrived for `tenant` (at most [`DELIVERY_WAIT`]), then [`GRACE`]
/// more for extras; returns everything the receiver holds.
async fn collect(rx: &Receiver, tenant: &str, expected: &[&str]) -> Vec<Delivery> {
    let deadline = Instant::now() + DELIVERY_WAIT;
    loop {
        let all = rx.deliveries();
        let kinds: Vec<&str> = all.iter().filter(|d| d.tenant_id() == Some(tenant)).map(Delivery::kind).collect();
        if expected.iter().all(|e| kinds.contains(e)) {
            break;
        }
        if Instant::now() >= deadline {
            return all;
        }
        tokio::time::sleep(POLL).await;
    }
    tokio::time::sleep(GRACE).await;
    rx.deliveries()
}

/// The distinct events about `tenant`, when they are exactly one of each type in `expected`, every webhook in
/// `all` is correctly signed, and no `webhook-id` or event `id` stands for two different events. Redeliveries
/// (same `webhook-id`, same bytes) count once.
///
/// # Errors
/// What is wrong, for the report.
pub(crate) fn judge<'a>(all: &'a [Delivery], tenant: &str, expected: &[&str]) -> Result<Vec<&'a Delivery>, String> {
    let unsigned: Vec<&Delivery> = all.iter().filter(|d| d.signature.is_err()).collect();
    if let Some(bad) = unsigned.first() {
        let why = bad.signature.as_ref().err().cloned().unwrap_or_default();
        return Err(format!(
            "{} failed its webhook-signature check: {why} ({} of {} webhooks received)",
            bad.describe(),
            unsigned.len(),
            all.len()
        ));
    }
    let mut unique: Vec<&Delivery> = Vec::new();
    for d in all.iter().filter(|d| d.tenant_id() == Some(tenant)) {
        if d.webhook_id.is_empty() {
            return Err(format!("{} has no webhook-id", d.describe()));
        }
        match unique.iter().find(|u| u.webhook_id == d.webhook_id) {
            Some(u) if u.body != d.body => {
                return Err(format!(
                    "webhook-id {:?} carried two different events ({} and {})",
                    d.webhook_id,
                    u.kind(),
                    d.kind()
                ));
            }
            Some(_) => {}
            None => unique.push(d),
        }
    }
    let mut ids = HashSet::new();
    for d in &unique {
        let id = d.event.as_ref().and_then(|e| e.get("id")).and_then(Value::as_str).unwrap_or("");
        if id.is_empty() {
            return Err(format!("{} has no id in its body", d.describe()));
        }
        if !ids.insert(id) {
            return Err(format!("two different events share the id {id:?}"));
        }
    }
    let mut got: Vec<&str> = unique.iter().map(|d| d.kind()).collect();
    let mut want = expected.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    if got != want {
        let arrived: Vec<&str> = unique.iter().map(|d| d.kind()).collect();
        let arrived = if arrived.is_empty() { "none".to_owned() } else { arrived.join(", ") };
        return Err(format!(
            "expected exactly one each of {} for tenant {tenant}; received (in order): {arrived}",
            expected.join(", ")
        ));
    }
    Ok(unique)
}

/// Requires `data.testFlag` `true` (the emulator's syncs are debug ones) and each `(field, value)`.
fn check_data(data: &Value, kind: &str, fields: &[(&str, &str)]) -> Result<(), Finding> {
    if data.get("testFlag") != Some(&Value::Bool(true)) {
        return Err(Finding::general(format!("{kind} has data.testFlag {:?}, expected true", data.get("testFlag"))));
    }
    for (field, want) in fields {
        let got = data.get(*field).and_then(Value::as_str);
        if got != Some(*want) {
            return Err(Finding::general(format!("{kind} has data.{field} {got:?}, expected {want:?}")));
        }
    }
    Ok(())
}

/// Adds what to check when nothing at all arrived for the tenant.
fn with_hint(detail: String, all: &[Delivery], rx: &Receiver) -> String {
    if all.is_empty() {
        format!(
            "{detail}; no webhook reached the receiver at all: is the endpoint's backend_url http://{} (and its \
             backend_secret the one given here)?",
            rx.addr()
        )
    } else {
        detail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn delivery(webhook_id: &str, id: &str, kind: &str, tenant: &str, signed: bool) -> Delivery {
        let body = json!({ "id": id, "type": kind, "timestamp": 1, "data": { "tenantId": tenant, "n": webhook_id } });
        Delivery {
            webhook_id: webhook_id.into(),
            event: body.as_object().cloned(),
            body: body.to_string().into_bytes(),
            signature: if signed { Ok(()) } else { Err("signature invalid".into()) },
        }
    }

    const WANT: [&str; 2] = ["tenant.created", "tenant.deleted"];

    #[test]
    fn exactly_the_expected_events_pass_and_other_tenants_do_not_count() {
        let all = [
            delivery("w1", "evt_1", "tenant.created", "t", true),
            delivery("w9", "evt_9", "tenant.created", "other", true),
            delivery("w1", "evt_1", "tenant.created", "t", true), // a redelivery
            delivery("w2", "evt_2", "tenant.deleted", "t", true),
        ];
        let got = judge(&all, "t", &WANT).map(|v| v.iter().map(|d| d.kind()).collect::<Vec<_>>());
        assert_eq!(got, Ok(vec!["tenant.created", "tenant.deleted"]));
    }

    #[test]
    fn a_wrongly_signed_webhook_is_a_finding_even_for_another_tenant() {
        let all = [
            delivery("w1", "evt_1", "tenant.created", "t", true),
            delivery("w2", "evt_2", "tenant.deleted", "t", true),
            delivery("w3", "evt_3", "instance.created", "", false),
        ];
        let e = judge(&all, "t", &WANT).err().unwrap_or_default();
        assert!(e.starts_with("instance.created webhook-id \"w3\" failed its webhook-signature check"), "{e}");
        assert!(e.ends_with("(1 of 3 webhooks received)"), "{e}");
    }

    #[test]
    fn a_repeat_that_sends_another_event_is_a_finding() {
        let all = [
            delivery("w1", "evt_1", "tenant.created", "t", true),
            delivery("w2", "evt_2", "tenant.created", "t", true),
            delivery("w3", "evt_3", "tenant.deleted", "t", true),
        ];
        let e = judge(&all, "t", &WANT).err().unwrap_or_default();
        assert!(e.ends_with("received (in order): tenant.created, tenant.created, tenant.deleted"), "{e}");
        let missing = judge(&all[..1], "t", &WANT).err().unwrap_or_default();
        assert!(missing.ends_with("received (in order): tenant.created"), "{missing}");
        assert!(judge(&[], "t", &WANT).err().unwrap_or_default().ends_with("received (in order): none"));
    }

    #[test]
    fn one_id_for_two_events_is_a_finding() {
        let reused_webhook_id = [
            delivery("w1", "evt_1", "tenant.created", "t", true),
            delivery("w1", "evt_2", "tenant.deleted", "t", true),
        ];
        let e = judge(&reused_webhook_id, "t", &WANT).err().unwrap_or_default();
        assert_eq!(e, "webhook-id \"w1\" carried two different events (tenant.created and tenant.deleted)");
        let reused_id = [
            delivery("w1", "evt_1", "tenant.created", "t", true),
            delivery("w2", "evt_1", "tenant.deleted", "t", true),
        ];
        let e = judge(&reused_id, "t", &WANT).err().unwrap_or_default();
        assert_eq!(e, "two different events share the id \"evt_1\"");
    }
}
