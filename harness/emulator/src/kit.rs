//! The five joint-operation (联营) kit syncs, signed with `x-sign` under the kit key and posted to
//! `{kit_url}/produceAPI/v2/<name>`; each must answer `000000`, and `000000` again when the marketplace repeats it.
//!
//! The bodies are those of the seller-credential setup (empty `instanceId` and `orderId`), which every kit
//! endpoint must accept whatever instances it knows.

use koogallery_core::crypto::rsa_secret::{OaepVariant, SystemRng, encrypt_client_secret};
use koogallery_core::marketplace::fresh_nonce;
use koogallery_core::ports::system_now_ms;
use koogallery_core::signing::canonical_json::sorted_compact;
use koogallery_core::wire::time::{Precision, format_compact_utc};
use serde_json::{Value, json};

use crate::rules::{Recorder, Verdict};
use crate::session::{Finding, Session, expect};

const SYNCS: [&str; 5] = ["tenantSync", "applicationSync", "authSync", "singleOrgSync", "allOrgSync"];

/// The kit body `timeStamp`: `yyyyMMddHHmmssSSS` in UTC+8, as the documentation shows.
fn kit_time_stamp() -> String {
    format_compact_utc(system_now_ms().saturating_add(8 * 3_600_000), Precision::Millis17)
}

/// Runs the `kit.*` rules, or records them as skipped when no kit URL and key were given.
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
            rec.record(id, Verdict::Skip("kit syncs not configured (--kit-url and --kit-key)".to_owned()));
            continue;
        }
        rec.record(id, check(s, sync).await.into());
    }
}

async fn check(s: &Session, sync: &str) -> Result<String, Finding> {
    let (body, also_ok) = body(s, sync)?;
    let mut codes = Vec::new();
    for note in ["first", "repeated"] {
        let Some(answer) = s.kit(sync, note, &sorted_compact(&body)).await else {
            return Err(Finding::general("kit syncs not configured"));
        };
        match also_ok {
            Some(alt) if answer.is(alt) => codes.push(alt),
            _ => {
                expect(&answer, "000000")?;
                codes.push("000000");
            }
        }
    }
    let mut detail = format!("answered {}", codes.join(" then "));
    if also_ok.is_some() {
        detail.push_str(" (no kit_rsa_public_key: 000101 accepted for the undecryptable clientSecret)");
    }
    Ok(detail)
}

/// The body for `sync`, and a second acceptable code when the run cannot produce a decryptable secret.
fn body(s: &Session, sync: &str) -> Result<(Value, Option<&'static str>), Finding> {
    let tenant = format!("emu-tenant-{}", s.run);
    let common = |extra: Value| -> Value {
        let mut v = json!({ "instanceId": "", "tenantId": tenant, "testFlag": 1, "timeStamp": kit_time_stamp() });
        if let (Some(map), Value::Object(extra)) = (v.as_object_mut(), extra) {
            map.extend(extra);
        }
        v
    };
    Ok(match sync {
        "tenantSync" => (
            common(json!({
                "orderId": "", "tenantCode": format!("emu{}", s.run), "name": "Emulator tenant",
                "domainName": "https://emulator.tenantaccount.example.com", "flag": 1,
            })),
            None,
        ),
        "applicationSync" => {
            let (secret, also_ok) = client_secret(s)?;
            (
                common(json!({
                    "appId": format!("emu-app-{}", s.run), "clientId": format!("emu-client-{}", s.run),
                    "clientSecret": secret, "flag": 1,
                })),
                also_ok,
            )
        }
        "authSync" => (
            common(json!({
                "appId": format!("emu-app-{}", s.run),
                "currentSyncTime": kit_time_stamp(),
                "flag": 1,
                "userList": [{
                    "userName": format!("emu.user.{}", s.run), "name": "Emulator User", "orgCode": "emu-org-1",
                    "role": "admin", "enable": "true", "email": "emu.user@example.com",
                }],
            })),
            None,
        ),
        "singleOrgSync" => (
            common(json!({ "orgCode": "emu-org-1", "orgName": "Emulator department", "parentCode": "", "flag": 1 })),
            None,
        ),
        _ => (
            common(json!({
                "orgInfoList": [
                    { "orgCode": "emu-org-0", "orgName": "Emulator company", "parentCode": "" },
                    { "orgCode": "emu-org-1", "orgName": "Emulator department", "parentCode": "emu-org-0" },
                ],
            })),
            None,
        ),
    })
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
