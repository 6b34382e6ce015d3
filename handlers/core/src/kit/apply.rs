//! Applying one kit sync to a tenant record: a pure function of the stored record, the sync and the time.
//!
//! Rules (the documentation's idempotency rules, §5; arrival order decides, the last effective operation defines
//! the state):
//! - add and modify are both "this is how it is now" (an upsert): a repeated add changes nothing, a modify of a
//!   missing record creates it;
//! - delete removes (and succeeds when there is nothing to remove); deleting a tenant clears its applications,
//!   users and departments, deleting an application clears its users;
//! - revoke (`authSync` flag 3) keeps the user, not authorised; a revoke of an unknown user records nothing;
//! - a full organisation sync replaces the tree with exactly the listed departments; the tree is then normalised
//!   so that no department points at a missing parent or into a loop (see [`normalise_tree`]).
//!
//! Every effective change bumps the record's `seq` and, in forward mode, queues one event for the seller's backend
//! in the record itself, so the change and its event are one write.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::record::{Application, AuthorisedUser, Org, Tenant, TenantRecord, domain_url};
use crate::lifecycle::PendingDelivery;
use crate::produce::outbox::Outboxed;
use crate::wire::kit::{AllOrgSync, ApplicationSync, AuthSync, KitRequest, SingleOrgSync, SyncFlag, TenantSync, User};

/// Applies `req` to the stored record (`None` when there is none). Returns the record to write, or `None` when the
/// sync changes nothing (a repeat): nothing is written and no event is queued then.
///
/// `secret_digest` is the [`super::record::secret_digest`] of an `applicationSync`'s decrypted secret (a repeat
/// re-encrypts it, so the ciphertext alone cannot tell). `forward` queues events (forward mode); without it only the
/// state changes.
pub fn apply(
    current: Option<TenantRecord>,
    req: &KitRequest,
    secret_digest: Option<&str>,
    forward: bool,
    now_ms: u64,
) -> Option<TenantRecord> {
    let (test, instance_id, tenant_id) = target(req);
    let mut rec = current.unwrap_or_else(|| TenantRecord::new(test, instance_id, tenant_id));
    let mut changes = Changes::default();
    match req {
        KitRequest::TenantSync(r) => tenant_sync(&mut rec, r, &mut changes),
        KitRequest::ApplicationSync(r) => application_sync(&mut rec, r, secret_digest, &mut changes),
        KitRequest::AuthSync(r) => auth_sync(&mut rec, r, &mut changes),
        KitRequest::SingleOrgSync(r) => single_org_sync(&mut rec, r, &mut changes),
        KitRequest::AllOrgSync(r) => all_org_sync(&mut rec, r, &mut changes),
    }
    if changes.0.is_empty() {
        // Nothing to write; a first sync that changes nothing (a delete of something never stored) leaves no record.
        return None;
    }
    for (kind, object, data) in changes.0 {
        rec.seq += 1;
        if forward {
            queue(&mut rec, kind, &object, data, now_ms);
        }
    }
    Some(rec)
}

/// The namespace, instance and tenant a sync is about.
pub(crate) fn target(req: &KitRequest) -> (bool, &str, &str) {
    let test = req.test_flag().is_debug();
    match req {
        KitRequest::TenantSync(r) => (test, &r.instance_id, &r.tenant_id),
        KitRequest::ApplicationSync(r) => (test, &r.instance_id, &r.tenant_id),
        KitRequest::AuthSync(r) => (test, &r.instance_id, &r.tenant_id),
        KitRequest::SingleOrgSync(r) => (test, &r.instance_id, &r.tenant_id),
        KitRequest::AllOrgSync(r) => (test, &r.instance_id, &r.tenant_id),
    }
}

/// The effective changes of one sync: event type, the object's identity (for the event id) and the event data.
#[derive(Default)]
struct Changes(Vec<(&'static str, String, Value)>);

impl Changes {
    fn push(&mut self, kind: &'static str, object: String, data: Value) {
        self.0.push((kind, object, data));
    }
}

fn tenant_sync(rec: &mut TenantRecord, r: &TenantSync, changes: &mut Changes) {
    if r.flag == SyncFlag::Delete {
        let had_anything =
            rec.tenant.is_some() || !rec.apps.is_empty() || !rec.users.is_empty() || !rec.orgs.is_empty();
        if had_anything {
            rec.tenant = None;
            rec.apps.clear();
            rec.users.clear();
            rec.orgs.clear();
            changes.push("tenant.deleted", "tenant".into(), json!({}));
        }
        return;
    }
    let next = Tenant {
        tenant_code: r.tenant_code.clone(),
        name: r.name.clone(),
        domain_name: r.domain_name.clone(),
        domain_url: domain_url(&r.domain_name),
        order_id: r.order_id.clone(),
    };
    let kind = match &rec.tenant {
        Some(t) if *t == next => return,
        Some(_) => "tenant.updated",
        None => "tenant.created",
    };
    let data = json!({
        "tenantCode": next.tenant_code, "name": next.name, "domainName": next.domain_name,
        "domainUrl": next.domain_url, "orderId": next.order_id,
    });
    rec.tenant = Some(next);
    changes.push(kind, "tenant".into(), data);
}

fn application_sync(rec: &mut TenantRecord, r: &ApplicationSync, secret_digest: Option<&str>, changes: &mut Changes) {
    let object = format!("app/{}", r.app_id);
    if r.flag == SyncFlag::Delete {
        let had_app = rec.apps.remove(&r.app_id).is_some();
        let had_users = rec.users.remove(&r.app_id).is_some();
        if had_app || had_users {
            changes.push("application.deleted", object, json!({ "appId": r.app_id }));
        }
        return;
    }
    let next = Application {
        client_id: r.client_id.clone(),
        client_secret: r.client_secret.clone(),
        secret_digest: secret_digest.map(str::to_owned),
    };
    let kind = match rec.apps.get(&r.app_id) {
        // The same client again: the stored ciphertext (which decrypts to the same secret) is kept.
        Some(a) if a.same_client(&next) => return,
        Some(_) => "application.updated",
        None => "application.created",
    };
    let data = json!({ "appId": r.app_id, "clientId": next.client_id, "clientSecret": next.client_secret });
    rec.apps.insert(r.app_id.clone(), next);
    changes.push(kind, object, data);
}

fn stored_user(u: &User) -> AuthorisedUser {
    AuthorisedUser {
        user_name: u.user_name.clone(),
        name: u.name.clone(),
        org_code: u.org_code.clone(),
        role: u.role.clone(),
        enable: u.enable,
        authorised: true,
        position: u.position.clone(),
        employee_code: u.employee_code.clone(),
        employee_type: u.employee_type,
        mobile: u.mobile.clone(),
        email: u.email.clone(),
        work_place: u.work_place.clone(),
        entry_date: u.entry_date.clone(),
    }
}

fn auth_sync(rec: &mut TenantRecord, r: &AuthSync, changes: &mut Changes) {
    for u in &r.user_list {
        let object = format!("user/{}/{}", r.app_id, u.user_name);
        let users = rec.users.entry(r.app_id.clone()).or_default();
        let user_data = |stored: &AuthorisedUser| json!({ "appId": r.app_id, "user": stored });
        match r.flag {
            SyncFlag::Delete => {
                if users.remove(&u.user_name).is_some() {
                    changes.push(
                        "user.deleted",
                        object,
                        json!({ "appId": r.app_id, "user": { "userName": u.user_name } }),
                    );
                }
            }
            SyncFlag::Revoke => {
                if let Some(stored) = users.get_mut(&u.user_name).filter(|s| s.authorised) {
                    stored.authorised = false;
                    let data = user_data(stored);
                    changes.push("user.revoked", object, data);
                }
            }
            SyncFlag::Add | SyncFlag::Modify => {
                let next = stored_user(u);
                let kind = match users.get(&u.user_name) {
                    Some(s) if *s == next => continue,
                    Some(_) => "user.updated",
                    None => "user.created",
                };
                let data = user_data(&next);
                users.insert(u.user_name.clone(), next);
                changes.push(kind, object, data);
            }
        }
        if rec.users.get(&r.app_id).is_some_and(BTreeMap::is_empty) {
            rec.users.remove(&r.app_id);
        }
    }
}

/// A department in an event: `parentCode` is where it sits in the tree now (`null` at the top level, also while its
/// declared parent has not arrived or would close a loop), `declaredParent` what the marketplace sent.
fn org_data(code: &str, org: &Org) -> Value {
    json!({
        "orgCode": code, "orgName": org.org_name, "parentCode": org.parent_code, "declaredParent": org.declared_parent,
    })
}

fn single_org_sync(rec: &mut TenantRecord, r: &SingleOrgSync, changes: &mut Changes) {
    let object = format!("org/{}", r.org_code);
    let placed_before = placements(&rec.orgs);
    if r.flag == SyncFlag::Delete {
        if let Some(old) = rec.orgs.remove(&r.org_code) {
            normalise_tree(&mut rec.orgs);
            changes.push("org.deleted", object, json!({ "org": org_data(&r.org_code, &old) }));
            moved(&placed_before, &rec.orgs, &r.org_code, changes);
        }
        return;
    }
    let declared = r.parent_code.clone().filter(|p| !p.is_empty());
    let kind = match rec.orgs.get(&r.org_code) {
        Some(o) if o.org_name == r.org_name && o.declared_parent == declared => return,
        Some(_) => "org.updated",
        None => "org.created",
    };
    let org = Org { org_name: r.org_name.clone(), parent_code: None, declared_parent: declared };
    rec.orgs.insert(r.org_code.clone(), org);
    normalise_tree(&mut rec.orgs);
    let data = rec.orgs.get(&r.org_code).map(|org| json!({ "org": org_data(&r.org_code, org) }));
    changes.push(kind, object, data.unwrap_or_default());
    moved(&placed_before, &rec.orgs, &r.org_code, changes);
}

/// Every department's effective parent.
fn placements(orgs: &BTreeMap<String, Org>) -> BTreeMap<String, Option<String>> {
    orgs.iter().map(|(code, org)| (code.clone(), org.parent_code.clone())).collect()
}

/// An `org.updated` for every other department whose effective parent moved with a change to `changed` (a parent
/// that arrives adopts its waiting children, one that leaves sends them to the top level, a loop may break
/// elsewhere), so a backend that mirrors `parentCode` stays right.
fn moved(
    before: &BTreeMap<String, Option<String>>,
    orgs: &BTreeMap<String, Org>,
    changed: &str,
    changes: &mut Changes,
) {
    for (code, org) in orgs {
        if code != changed && before.get(code).is_some_and(|was| *was != org.parent_code) {
            changes.push("org.updated", format!("org/{code}"), json!({ "org": org_data(code, org) }));
        }
    }
}

fn all_org_sync(rec: &mut TenantRecord, r: &AllOrgSync, changes: &mut Changes) {
    let mut tree = BTreeMap::new();
    for o in &r.org_info_list {
        let declared = o.parent_code.clone().filter(|p| !p.is_empty());
        tree.insert(
            o.org_code.clone(),
            Org { org_name: o.org_name.clone(), parent_code: None, declared_parent: declared },
        );
    }
    normalise_tree(&mut tree);
    if tree == rec.orgs {
        return;
    }
    let orgs: Vec<Value> = tree.iter().map(|(code, org)| org_data(code, org)).collect();
    rec.orgs = tree;
    changes.push("org.tree_replaced", "orgs".into(), json!({ "orgs": orgs }));
}

/// Sets every department's effective `parent_code` from its declared parent: the declared parent when it is in
/// the tree and does not close a loop, else `None` (top level, until the parent arrives). A loop is broken at its
/// smallest code, so the result depends only on the set of departments, not on the order they arrived in.
pub fn normalise_tree(orgs: &mut BTreeMap<String, Org>) {
    let codes: BTreeSet<String> = orgs.keys().cloned().collect();
    for (code, org) in orgs.iter_mut() {
        org.parent_code = org.declared_parent.clone().filter(|p| p != code && codes.contains(p));
    }
    // Nodes known to reach the top level.
    let mut rooted: BTreeSet<String> = BTreeSet::new();
    for code in &codes {
        let mut path: Vec<String> = Vec::new();
        let mut current = Some(code.clone());
        while let Some(c) = current {
            if rooted.contains(&c) {
                break;
            }
            if let Some(start) = path.iter().position(|p| *p == c) {
                // Each node has one parent, so a walk meets at most one loop: break it at its smallest code.
                if let Some(smallest) = path[start..].iter().min().cloned()
                    && let Some(org) = orgs.get_mut(&smallest)
                {
                    org.parent_code = None;
                }
                break;
            }
            current = orgs.get(&c).and_then(|o| o.parent_code.clone());
            path.push(c);
        }
        rooted.extend(path);
    }
}

/// The stable id of a change's event: the record, its change number and what changed.
fn event_id(rec: &TenantRecord, kind: &str, object: &str) -> String {
    let name = format!(
        "koogallery-edge/kit-event/{}/{}:{}/{}:{}/{}/{kind}/{object}",
        u8::from(rec.test),
        rec.instance_id.len(),
        rec.instance_id,
        rec.tenant_id.len(),
        rec.tenant_id,
        rec.seq
    );
    format!("evt_{}", uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).simple())
}

/// Queues the event of a change (Standard Webhooks payload: `id`, `type`, `timestamp`, `data`).
fn queue(rec: &mut TenantRecord, kind: &'static str, object: &str, data: Value, now_ms: u64) {
    let id = event_id(rec, kind, object);
    let mut body_data = json!({ "instanceId": rec.instance_id, "tenantId": rec.tenant_id, "testFlag": rec.test });
    if let (Some(map), Value::Object(extra)) = (body_data.as_object_mut(), data) {
        map.extend(extra);
    }
    let body = json!({ "id": id, "type": kind, "timestamp": now_ms, "data": body_data }).to_string();
    rec.outbox_mut().push(PendingDelivery {
        id,
        kind: kind.to_owned(),
        body,
        attempts: 0,
        next_try_ms: 0,
        last_error: None,
        dead_at_ms: None,
        leased_until_ms: 0,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::kit::{KitSync, parse_kit_request};

    fn sync(sync: KitSync, body: Value) -> KitRequest {
        let mut body = body;
        if let Some(map) = body.as_object_mut() {
            map.entry("instanceId").or_insert(json!("i"));
            map.entry("tenantId").or_insert(json!("t"));
            map.entry("testFlag").or_insert(json!(0));
            map.entry("timeStamp").or_insert(json!("20220413093539534"));
        }
        parse_kit_request(sync, body.to_string().as_bytes()).expect("valid sync")
    }

    fn tenant(flag: i64, name: &str) -> KitRequest {
        sync(
            KitSync::TenantSync,
            json!({"orderId":"o","tenantCode":"c","name":name,"domainName":"t.example.com","flag":flag}),
        )
    }

    fn kinds(rec: &TenantRecord) -> Vec<&str> {
        rec.outbox.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn repeated_add_changes_nothing_and_delete_of_nothing_stores_nothing() {
        let rec = apply(None, &tenant(1, "A"), None, true, 1).expect("created");
        assert_eq!(rec.tenant.as_ref().map(|t| t.domain_url.as_str()), Some("https://t.example.com"));
        assert!(apply(Some(rec.clone()), &tenant(1, "A"), None, true, 2).is_none());
        let renamed = apply(Some(rec), &tenant(2, "B"), None, true, 3).expect("modified");
        assert_eq!(kinds(&renamed), ["tenant.created", "tenant.updated"]);
        assert!(apply(None, &tenant(0, "A"), None, true, 4).is_none());
        let deleted = apply(Some(renamed), &tenant(0, "A"), None, true, 5).expect("deleted");
        assert!(deleted.tenant.is_none());
        assert!(apply(Some(deleted.clone()), &tenant(0, "A"), None, true, 6).is_none());
        // Each change has its own event id, even when a later change repeats an earlier one's content.
        let again = apply(Some(deleted), &tenant(1, "A"), None, true, 7).expect("re-added");
        let ids: BTreeSet<&str> = again.outbox.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), again.outbox.len());
    }

    #[test]
    fn org_events_say_where_the_department_sits_and_what_was_declared() {
        let org = |code: &str, parent: &str| {
            sync(KitSync::SingleOrgSync, json!({"orgCode":code,"orgName":code,"parentCode":parent,"flag":1}))
        };
        let rec = apply(None, &org("child", "parent"), None, true, 1).expect("child");
        let data =
            |rec: &TenantRecord, i: usize| serde_json::from_str::<Value>(&rec.outbox[i].body).unwrap_or_default();
        let first = data(&rec, 0);
        assert_eq!(first["data"]["org"]["parentCode"], Value::Null, "its parent has not arrived: top level for now");
        assert_eq!(first["data"]["org"]["declaredParent"], "parent");
        let rec = apply(Some(rec), &org("parent", ""), None, true, 2).expect("parent");
        assert_eq!(rec.orgs["child"].parent_code.as_deref(), Some("parent"), "the waiting child is adopted");
        assert_eq!(kinds(&rec), ["org.created", "org.created", "org.updated"]);
        let adopted = data(&rec, 2);
        assert_eq!(adopted["data"]["org"]["orgCode"], "child", "the adoption is told");
        assert_eq!(adopted["data"]["org"]["parentCode"], "parent");
        let again = apply(Some(rec.clone()), &org("child", "parent"), None, true, 3);
        assert!(again.is_none(), "the same declaration again changes nothing");
        let delete_parent = sync(KitSync::SingleOrgSync, json!({"orgCode":"parent","orgName":"parent","flag":0}));
        let deleted = apply(Some(rec), &delete_parent, None, true, 4).expect("parent deleted");
        let last = data(&deleted, deleted.outbox.len() - 1);
        assert_eq!(kinds(&deleted).last(), Some(&"org.updated"));
        assert_eq!(
            (last["data"]["org"]["orgCode"].as_str(), &last["data"]["org"]["parentCode"]),
            (Some("child"), &Value::Null)
        );
    }

    #[test]
    fn an_application_repeated_under_a_fresh_encryption_changes_nothing() {
        let app = |ciphertext: &str| {
            sync(KitSync::ApplicationSync, json!({"appId":"a","clientId":"c","clientSecret":ciphertext,"flag":1}))
        };
        let key = [7u8; 32];
        let same = super::super::record::secret_digest(&key, "the secret");
        let other = super::super::record::secret_digest(&key, "another secret");
        let rotated_key = super::super::record::secret_digest(&[8u8; 32], "the secret");
        assert_ne!(same, rotated_key, "the same secret under another key is another digest");
        let rec = apply(None, &app("ct-1"), Some(&same), true, 1).expect("created");
        assert!(apply(Some(rec.clone()), &app("ct-2"), Some(&same), true, 2).is_none(), "same secret, new ciphertext");
        let rotated = apply(Some(rec.clone()), &app("ct-3"), Some(&other), true, 3).expect("a new secret is a change");
        assert_eq!(kinds(&rotated), ["application.created", "application.updated"]);
        assert_eq!(rotated.apps["a"].client_secret, "ct-3", "the new ciphertext is stored as received");
        // A record written before digests were kept is compared by ciphertext.
        let mut old = rec;
        if let Some(a) = old.apps.get_mut("a") {
            a.secret_digest = None;
        }
        assert!(apply(Some(old.clone()), &app("ct-1"), Some(&same), true, 4).is_none());
        assert!(apply(Some(old), &app("ct-2"), Some(&same), true, 5).is_some());
    }

    #[test]
    fn revoke_keeps_the_user_unauthorised_and_delete_removes_it() {
        let user = |flag: i64| {
            sync(
                KitSync::AuthSync,
                json!({"appId":"a","currentSyncTime":"x","flag":flag,"userList":[{"userName":"u","name":"U","orgCode":"o","role":"user","enable":"true"}]}),
            )
        };
        let app = sync(KitSync::ApplicationSync, json!({"appId":"a","clientId":"c","clientSecret":"ct","flag":1}));
        let rec = apply(None, &tenant(1, "A"), None, false, 1).expect("tenant");
        let rec = apply(Some(rec), &app, None, false, 2).expect("app");
        let rec = apply(Some(rec), &user(1), None, false, 3).expect("user");
        assert!(rec.is_authorised("a", "u"));
        let revoked = apply(Some(rec), &user(3), None, false, 4).expect("revoked");
        assert!(!revoked.is_authorised("a", "u") && revoked.users["a"].contains_key("u"));
        assert!(apply(Some(revoked.clone()), &user(3), None, false, 5).is_none(), "a repeated revoke changes nothing");
        let gone = apply(Some(revoked), &user(0), None, false, 6).expect("deleted");
        assert!(!gone.users.contains_key("a"));
        assert!(gone.outbox.is_empty(), "no events outside forward mode");
    }

    fn tree(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Org> {
        let mut t: BTreeMap<String, Org> = pairs
            .iter()
            .map(|(c, p)| {
                (
                    (*c).to_owned(),
                    Org { org_name: (*c).to_owned(), parent_code: None, declared_parent: p.map(str::to_owned) },
                )
            })
            .collect();
        normalise_tree(&mut t);
        t
    }

    #[test]
    fn the_tree_never_dangles_or_loops() {
        let t = tree(&[("a", None), ("b", Some("a")), ("c", Some("missing")), ("d", Some("d"))]);
        assert_eq!(t["b"].parent_code.as_deref(), Some("a"));
        assert_eq!(t["c"].parent_code, None);
        assert_eq!(t["d"].parent_code, None);
        let looped = tree(&[("x", Some("z")), ("y", Some("x")), ("z", Some("y")), ("w", Some("y"))]);
        assert_eq!(looped["x"].parent_code, None, "the loop is broken at its smallest code");
        assert_eq!(looped["y"].parent_code.as_deref(), Some("x"));
        assert_eq!(looped["z"].parent_code.as_deref(), Some("y"));
        assert_eq!(looped["w"].parent_code.as_deref(), Some("y"));
    }
}
