//! The five joint-operation (联营) kit syncs, in both generations:
//!
//! * `kit.<sync>`: V2, signed with `x-sign` under the kit key and posted to `{kit_url}/produceAPI/v2/<name>`; each
//!   must answer `000000`, and `000000` again when the marketplace repeats it.
//! * `kit.v1.<sync>`: the V1 body shapes (authSync's `userList` as a JSON string with `entryDate`, `employeeType`,
//!   `workPlace` inside an `extension` object; allOrgSync's `orgInfo` string with `name` for `orgName`), signed
//!   with an `authToken` header and posted to `{kit_url}/produceAPI/<name>`; each must answer `000000` with a
//!   `Body-Sign` valid under the kit key, also when repeated with a fresh `timeStamp`.
//!
//! Then the production-URL dispatch and the refusals (`kit_security`), and idempotency seen through forward-mode
//! events (`kit_events`).
//!
//! The bodies are those of the seller-credential setup (empty `instanceId` and `orderId`), which every kit
//! endpoint must accept whatever instances it knows; each rule uses tenant ids of its own, unique to the run.

use koogallery_core::crypto::rsa_secret::{OaepVariant, SystemRng, encrypt_client_secret};
use koogallery_core::marketplace::fresh_nonce;
use koogallery_core::ports::system_now_ms;
use koogallery_core::signing::canonical_json::sorted_compact;
use koogallery_core::wire::time::{Precision, format_compact_utc};
use serde_json::{Value, json};

use crate::rules::{Recorder, Verdict};
use crate::session::{Answer, Finding, Session, expect, expect_body_sign};
use crate::{kit_events, kit_security};

const SYNCS: [&str; 5] = ["tenantSync", "applicationSync", "authSync", "singleOrgSync", "allOrgSync"];

/// Why the kit rules are skipped.
pub(crate) const NOT_CONFIGURED: &str = "kit syncs not configured (--kit-url and --kit-key)";

/// Which generation's body shape and signature a kit request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// `/produceAPI/<name>`, `authToken` header, lists as JSON strings.
    V1,
    /// `/produceAPI/v2/<name>`, `x-sign` headers, lists as JSON arrays.
    V2,
}

/// The kit body `timeStamp`: `yyyyMMddHHmmssSSS` in UTC+8, as the documentation shows.
pub(crate) fn kit_time_stamp() -> String {
    kit_time_stamp_at(system_now_ms())
}

fn kit_time_stamp_at(ms: u64) -> String {
    format_compact_utc(ms.saturating_add(8 * 3_600_000), Precision::Millis17)
}

/// A tenant id unique to the run: `emu-<tag>-<run>`.
pub(crate) fn tenant_id(s: &Session, tag: &str) -> String {
    format!("emu-{tag}-{}", s.run)
}

/// `POST <path> activity=<sync> (<note>)`: a request's label, without secrets.
pub(crate) fn label(path: &str, sync: &str, note: &str) -> String {
    if note.is_empty() {
        format!("POST {path} activity={sync}")
    } else {
        format!("POST {path} activity={sync} ({note})")
    }
}

/// Runs every `kit.*` rule in rule order, or records them as skipped when no kit URL and key were given.
pub(crate) async fn run(s: &Session, rec: &mut Recorder) {
    for sync in SYNCS {
        let id = match sync {
            "tenantSync" => "kit.tenantSync",
            "applicationSync" => "kit.applicationSync",
            "authSync" => "kit.authSync",
            "singleOrgSync" => "kit.singleOrgSync",
            _ => "kit.allOrgSync",
        };
        if !s.kit_configured() {
            rec.record(id, Verdict::Skip(NOT_CONFIGURED.to_owned()));
            continue;
        }
        rec.record(id, check(s, sync).await.into());
    }
    for sync in SYNCS {
        let id = match sync {
            "tenantSync" => "kit.v1.tenantSync",
            "applicationSync" => "kit.v1.applicationSync",
            "authSync" => "kit.v1.authSync",
            "singleOrgSync" => "kit.v1.singleOrgSync",
            _ => "kit.v1.allOrgSync",
        };
        if !s.kit_configured() {
            rec.record(id, Verdict::Skip(NOT_CONFIGURED.to_owned()));
            continue;
        }
        rec.record(id, check_v1(s, sync).await.into());
    }
    kit_security::run(s, rec).await;
    kit_events::run(s, rec).await;
}

async fn check(s: &Session, sync: &str) -> Result<String, Finding> {
    let (body, also_ok) = body(s, sync, Form::V2, &tenant_id(s, "tenant"))?;
    let mut codes = Vec::new();
    for note in ["first", "repeated"] {
        let Some(answer) = s.kit(sync, note, &sorted_compact(&body)).await else {
            return Err(Finding::general(NOT_CONFIGURED));
        };
        codes.push(accepted(&answer, also_ok)?);
    }
    Ok(detail(&codes, also_ok))
}

async fn check_v1(s: &Session, sync: &str) -> Result<String, Finding> {
    let Some((target, mp)) = s.kit_side() else { return Err(Finding::general(NOT_CONFIGURED)) };
    let (mut body, also_ok) = body(s, sync, Form::V1, &tenant_id(s, "tenant-v1"))?;
    let path = target.kit_v1_path(sync);
    let mut codes = Vec::new();
    for note in ["V1, first", "V1, repeated with a fresh timeStamp"] {
        if !codes.is_empty() {
            restamp(&mut body);
        }
        let req = mp.kit_v1(&path, &sorted_compact(&body));
        let answer = s.send_unlogged(&target.origin, req, label(&path, sync, note)).await;
        codes.push(accepted(&answer, also_ok)?);
        expect_body_sign(&answer, mp.keys(), "kit key")?;
    }
    Ok(format!("{}, Body-Sign valid under the kit key", detail(&codes, also_ok)))
}

/// The code `answer` carries when it is `000000` (or the alternative accepted for this body).
fn accepted(answer: &Answer, also_ok: Option<&'static str>) -> Result<&'static str, Finding> {
    match also_ok {
        Some(alt) if answer.is(alt) => Ok(alt),
        _ => expect(answer, "000000").map(|()| "000000"),
    }
}

fn detail(codes: &[&str], also_ok: Option<&str>) -> String {
    let mut detail = format!("answered {}", codes.join(" then "));
    if also_ok.is_some() {
        detail.push_str(" (no kit_rsa_public_key: 000101 accepted for the undecryptable clientSecret)");
    }
    detail
}

/// Gives `body` a fresh `timeStamp`, as the marketplace's retry of the same sync carries.
pub(crate) fn restamp(body: &mut Value) {
    if let Some(map) = body.as_object_mut() {
        map.insert("timeStamp".into(), Value::String(kit_time_stamp()));
    }
}

/// The body for `sync` about `tenant`, and a second acceptable code when the run cannot produce a decryptable
/// secret.
fn body(s: &Session, sync: &str, form: Form, tenant: &str) -> Result<(Value, Option<&'static str>), Finding> {
    let ts = kit_time_stamp();
    let app = format!("emu-app-{}", s.run);
    Ok(match sync {
        "tenantSync" => (tenant_body(tenant, &format!("emu{}", s.run), "Emulator tenant", 1, &ts), None),
        "applicationSync" => {
            let (secret, also_ok) = client_secret(s)?;
            (application_body(tenant, &app, &format!("emu-client-{}", s.run), &secret, 1, &ts), also_ok)
        }
        "authSync" => {
            let user = User::sample(&format!("emu.user.{}", s.run));
            (auth_body(form, tenant, &app, &user, 1, &ts), None)
        }
        "singleOrgSync" => (single_org_body(tenant, "emu-org-1", "Emulator department", "", 1, &ts), None),
        _ => (all_org_body(form, tenant, &SAMPLE_ORGS, &ts), None),
    })
}

/// A two-level tree: a company and one department under it.
pub(crate) const SAMPLE_ORGS: [Org<'static>; 2] = [
    Org { code: "emu-org-0", name: "Emulator company", parent: "" },
    Org { code: "emu-org-1", name: "Emulator department", parent: "emu-org-0" },
];

/// A tenantSync body (`flag` 1 add, 2 modify, 0 delete).
pub(crate) fn tenant_body(tenant: &str, code: &str, name: &str, flag: i64, ts: &str) -> Value {
    json!({
        "instanceId": "", "orderId": "", "tenantId": tenant, "tenantCode": code, "name": name,
        "domainName": "https://emulator.tenantaccount.example.com", "flag": flag, "testFlag": 1, "timeStamp": ts,
    })
}

/// An applicationSync body with `secret` as the `clientSecret` ciphertext.
pub(crate) fn application_body(tenant: &str, app: &str, client: &str, secret: &str, flag: i64, ts: &str) -> Value {
    json!({
        "instanceId": "", "tenantId": tenant, "appId": app, "clientId": client, "clientSecret": secret,
        "flag": flag, "testFlag": 1, "timeStamp": ts,
    })
}

/// One authorised user, with every optional field, as the marketplace sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub user_name: String,
    pub name: String,
}

impl User {
    /// A user named `user_name` in `emu-org-1`.
    pub(crate) fn sample(user_name: &str) -> Self {
        Self { user_name: user_name.to_owned(), name: "Emulator User".to_owned() }
    }

    /// The user object: V2 flat; V1 with `entryDate`, `employeeType`, `workPlace` inside `extension`.
    fn to_json(&self, form: Form) -> Value {
        let mut user = json!({
            "userName": self.user_name, "name": self.name, "orgCode": "emu-org-1", "role": "admin",
            "enable": "true", "email": "emu.user@example.com", "mobile": "13800000000",
            "position": "Tester", "employeeCode": "E001",
        });
        let extension = json!({ "entryDate": "2024-3-5", "employeeType": 1, "workPlace": "Shenzhen" });
        if let (Some(map), Value::Object(ext)) = (user.as_object_mut(), extension) {
            match form {
                Form::V2 => map.extend(ext),
                Form::V1 => {
                    map.insert("extension".into(), Value::Object(ext));
                }
            }
        }
        user
    }
}

/// An authSync body for one user (`flag` 1 add, 2 modify, 3 revoke, 0 delete); V1 sends `userList` as a string.
pub(crate) fn auth_body(form: Form, tenant: &str, app: &str, user: &User, flag: i64, ts: &str) -> Value {
    let list = Value::Array(vec![user.to_json(form)]);
    let list = match form {
        Form::V2 => list,
        Form::V1 => Value::String(list.to_string()),
    };
    json!({
        "instanceId": "", "tenantId": tenant, "appId": app, "currentSyncTime": ts, "flag": flag, "testFlag": 1,
        "timeStamp": ts, "userList": list,
    })
}

/// A singleOrgSync body (`parent` empty: top level).
pub(crate) fn single_org_body(tenant: &str, code: &str, name: &str, parent: &str, flag: i64, ts: &str) -> Value {
    json!({
        "instanceId": "", "tenantId": tenant, "orgCode": code, "orgName": name, "parentCode": parent,
        "flag": flag, "testFlag": 1, "timeStamp": ts,
    })
}

/// One department of an allOrgSync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Org<'a> {
    pub code: &'a str,
    pub name: &'a str,
    /// Empty: top level.
    pub parent: &'a str,
}

/// An allOrgSync body: V2 `orgInfoList` array with `orgName`; V1 `orgInfo` string with `name`.
pub(crate) fn all_org_body(form: Form, tenant: &str, orgs: &[Org<'_>], ts: &str) -> Value {
    let name_field = match form {
        Form::V2 => "orgName",
        Form::V1 => "name",
    };
    let list: Vec<Value> =
        orgs.iter().map(|o| json!({ "orgCode": o.code, name_field: o.name, "parentCode": o.parent })).collect();
    let mut body = json!({ "instanceId": "", "tenantId": tenant, "testFlag": 1, "timeStamp": ts });
    if let Some(map) = body.as_object_mut() {
        match form {
            Form::V2 => map.insert("orgInfoList".into(), Value::Array(list)),
            Form::V1 => map.insert("orgInfo".into(), Value::String(Value::Array(list).to_string())),
        };
    }
    body
}

/// The `clientSecret`: RSA-OAEP under the merchant's public key when given; otherwise opaque bytes the endpoint
/// cannot decrypt, in which case `000101` (the demo's answer for that) is accepted too.
fn client_secret(s: &Session) -> Result<(String, Option<&'static str>), Finding> {
    let plaintext = format!("emu-secret-{}", s.run);
    match &s.kit_rsa_public_key {
        Some(pem) => {
            let mut rng = SystemRng::new().map_err(|e| Finding::general(format!("no randomness for RSA: {e}")))?;
            encrypt_client_secret(pem, &plaintext, OaepVariant::Sha256Mgf1Sha1, &mut rng)
                .map(|ct| (ct, None))
                .map_err(|e| Finding::general(format!("kit_rsa_public_key is unusable: {e}")))
        }
        None => {
            use base64::Engine as _;
            let filler: Vec<u8> = (0..12).flat_map(|_| fresh_nonce().into_bytes()).take(384).collect();
            Ok((base64::engine::general_purpose::STANDARD.encode(filler), Some("000101")))
        }
    }
}

#[cfg(test)]
mod tests {
    use koogallery_core::marketplace::Marketplace;
    use koogallery_core::signing::keys::{KeyRing, SecretKey};
    use koogallery_core::signing::v1::{V1AuthToken, kit_v1_params};
    use koogallery_core::wire::kit::{KitRequest, KitSync, parse_kit_request};

    use super::*;

    const TS: &str = "20240305120000123";

    fn parsed(sync: KitSync, body: &Value) -> KitRequest {
        parse_kit_request(sync, &sorted_compact(body)).unwrap_or_else(|e| panic!("{sync}: {e}"))
    }

    #[test]
    fn v1_auth_sync_sends_the_user_list_as_a_string_with_an_extension() {
        let user = User::sample("u.1");
        let v1 = auth_body(Form::V1, "t-1", "a-1", &user, 1, TS);
        let list: Value = serde_json::from_str(v1["userList"].as_str().expect("userList is a string")).expect("JSON");
        let first = &list[0];
        assert_eq!(first["extension"], json!({ "entryDate": "2024-3-5", "employeeType": 1, "workPlace": "Shenzhen" }));
        for moved in ["entryDate", "employeeType", "workPlace"] {
            assert!(first.get(moved).is_none(), "{moved} belongs in extension");
        }
        let v2 = auth_body(Form::V2, "t-1", "a-1", &user, 1, TS);
        assert!(v2["userList"].is_array() && v2["userList"][0]["workPlace"] == "Shenzhen");
        // The two forms say the same thing, as core reads them.
        let (KitRequest::AuthSync(a), KitRequest::AuthSync(b)) =
            (parsed(KitSync::AuthSync, &v1), parsed(KitSync::AuthSync, &v2))
        else {
            panic!("authSync")
        };
        assert_eq!(a.user_list, b.user_list);
        assert_eq!(a.user_list[0].employee_type, Some(1));
        assert_eq!(a.user_list[0].entry_date.as_deref(), Some("2024-3-5"));
    }

    #[test]
    fn v1_all_org_sync_sends_org_info_as_a_string_with_name() {
        let v1 = all_org_body(Form::V1, "t-1", &SAMPLE_ORGS, TS);
        assert!(v1.get("orgInfoList").is_none());
        let list: Value = serde_json::from_str(v1["orgInfo"].as_str().expect("orgInfo is a string")).expect("JSON");
        assert_eq!(
            list[1],
            json!({ "orgCode": "emu-org-1", "name": "Emulator department", "parentCode": "emu-org-0" })
        );
        let v2 = all_org_body(Form::V2, "t-1", &SAMPLE_ORGS, TS);
        assert_eq!(v2["orgInfoList"][0]["orgName"], "Emulator company");
        let (KitRequest::AllOrgSync(a), KitRequest::AllOrgSync(b)) =
            (parsed(KitSync::AllOrgSync, &v1), parsed(KitSync::AllOrgSync, &v2))
        else {
            panic!("allOrgSync")
        };
        assert_eq!(a.org_info_list, b.org_info_list);
    }

    #[test]
    fn every_body_is_valid_for_its_sync() {
        let user = User::sample("u.1");
        for form in [Form::V1, Form::V2] {
            parsed(KitSync::TenantSync, &tenant_body("t", "c", "n", 2, TS));
            parsed(KitSync::ApplicationSync, &application_body("t", "a", "c", "secret", 0, TS));
            parsed(KitSync::AuthSync, &auth_body(form, "t", "a", &user, 3, TS));
            parsed(KitSync::SingleOrgSync, &single_org_body("t", "o", "n", "", 1, TS));
            parsed(KitSync::AllOrgSync, &all_org_body(form, "t", &SAMPLE_ORGS, TS));
        }
    }

    #[test]
    fn the_v1_token_covers_the_user_list_string_as_sent() {
        let keys = KeyRing::single(SecretKey::new("kit-key"));
        let body = sorted_compact(&auth_body(Form::V1, "t-1", "a-1", &User::sample("u.1"), 1, TS));
        let req = Marketplace::new(keys.clone()).kit_v1("/produceAPI/authSync", &body);
        let token = req.header("authToken").expect("authToken header");
        let params = kit_v1_params(&body).expect("object");
        let list = params.iter().find(|(k, _)| k == "userList").map(|(_, v)| v.as_str());
        assert!(list.is_some_and(|l| l.starts_with("[{")), "the string itself, not re-encoded: {list:?}");
        assert_eq!(V1AuthToken::new(keys).verify_params_key(&params, token), Ok(0));
    }

    #[test]
    fn the_kit_time_stamp_is_beijing_time() {
        // 2024-03-05T20:00:00.123Z is 2024-03-06 04:00:00.123 in Beijing.
        assert_eq!(kit_time_stamp_at(1_709_668_800_123), "20240306040000123");
        assert_eq!(kit_time_stamp().len(), 17);
    }
}
