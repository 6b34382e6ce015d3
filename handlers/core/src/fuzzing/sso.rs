//! Fuzz entry point for the SSO routes over an in-memory store holding one tenant, with a scripted OneAccess.

use std::cell::RefCell;
use std::collections::VecDeque;

use super::input::*;

use crate::crypto::rsa_secret::ClientSecretKey;
use crate::http::{Inbound, Outbound};
use crate::kit::record::{TenantRecord, tenant_key};
use crate::kit::{KitConfig, handle as kit_handle};
use crate::marketplace::Marketplace;
use crate::ports::{Backend, FixedClock, MemoryStore, OsRandom, OutboundError, OutboundReply};
use crate::produce::Ctx;
use crate::sso::{SsoConfig, handle};
use crate::wire::kit::KitSync;

const PEM: &str = include_str!("../../../../tests/fixtures/kit_rsa3072_private.pem");
const SECRETS: &str = include_str!("../../../../tests/fixtures/kit_client_secret.json");
const DOMAIN: &str = "https://idp.tenantaccount.example.com";
const APP_URL: &str = "https://isv.example.com/app";

/// OneAccess as the fuzzer scripts it: each reply line `STATUS BODY` answers the next call; when the script is
/// used up, good answers (a token for `u`, userinfo of `u`). Records every URL called.
struct ScriptedIdp {
    replies: RefCell<VecDeque<(u16, Vec<u8>)>>,
    called: RefCell<Vec<String>>,
}

impl ScriptedIdp {
    fn reply(&self, url: &str) -> Result<OutboundReply, OutboundError> {
        self.called.borrow_mut().push(url.to_owned());
        if let Some((status, body)) = self.replies.borrow_mut().pop_front() {
            return match status {
                0 => Err(OutboundError::Timeout),
                1 => Err(OutboundError::Denied),
                s => Ok(OutboundReply { status: s, body }),
            };
        }
        let body: &[u8] = if url.ends_with("/userinfo") {
            br#"{"userName":"u","name":"U"}"#
        } else {
            br#"{"access_token":"at","expires_in":7200,"refresh_token":"rt"}"#
        };
        Ok(OutboundReply { status: 200, body: body.to_vec() })
    }
}

impl Backend for ScriptedIdp {
    async fn post(&self, url: &str, _: &[(String, String)], _: &[u8], _: u64) -> Result<OutboundReply, OutboundError> {
        self.reply(url)
    }
    async fn get(&self, url: &str, _: &[(String, String)], _: u64) -> Result<OutboundReply, OutboundError> {
        self.reply(url)
    }
}

/// Tenant `t` (code `c`) of instance `i` with application `a` and user `u` authorised, stored by the kit syncs.
async fn seeded_store(now: u64, kit_key: &str) -> Option<MemoryStore> {
    let secrets: serde_json::Value = serde_json::from_str(SECRETS).ok()?;
    let ct = secrets["ciphertexts"]["sha256"].as_str()?;
    let keys = ring(&[kit_key]);
    let cfg = KitConfig::new(keys.clone(), ClientSecretKey::from_pem(PEM).ok());
    let mp = Marketplace::new(keys);
    let store = MemoryStore::new();
    let common = r#""instanceId":"i","tenantId":"t","testFlag":0,"timeStamp":"20230403154746618""#;
    let bodies = [
        (
            KitSync::TenantSync,
            format!(r#"{{{common},"orderId":"o","tenantCode":"c","name":"T","domainName":"{DOMAIN}","flag":1}}"#),
        ),
        (
            KitSync::ApplicationSync,
            format!(r#"{{{common},"appId":"a","clientId":"cid","clientSecret":"{ct}","flag":1}}"#),
        ),
        (
            KitSync::AuthSync,
            format!(
                r#"{{{common},"appId":"a","currentSyncTime":"x","flag":1,"userList":[{{"userName":"u","name":"U","orgCode":"o","role":"admin","enable":"true"}},{{"userName":"off","name":"O","orgCode":"o","role":"user","enable":"false"}}]}}"#
            ),
        ),
    ];
    for (i, (sync, body)) in bodies.iter().enumerate() {
        let req = mp.kit(&format!("/produceAPI/v2/{sync}"), body.as_bytes(), now, &format!("{i:064X}"));
        let ctx = Ctx { store: &store, backend: &crate::ports::NoBackend, clock: &FixedClock(now), random: &OsRandom };
        let handled = kit_handle(&req, *sync, Ok(&cfg), &ctx).await;
        if !String::from_utf8_lossy(&handled.response.body).contains("\"000000\"") {
            return None;
        }
    }
    Some(store)
}

fn header<'a>(out: &'a Outbound, name: &str) -> impl Iterator<Item = &'a str> {
    out.headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The SSO routes over a sequence of requests sharing one store and a cookie jar, the clock advancing 1 s each.
///
/// Input: a OneAccess script, then requests, separated by lines `%%`. The script's lines are `STATUS BODY`
/// (status `0` times out, `1` is refused by the allow-list). A request is a line `path?query` (a GET; `POST path`
/// for another method) and an optional line of extra `Cookie` text; `$state` in the query is replaced by the
/// `state` of the last authorize redirect. A request `wait` with a second line holding a number advances the clock by that many ms.
/// Cookies set by answers are sent with later requests.
///
/// Returns whether some `/sso/me` answered `200`.
///
/// Oracles: never panics; every answer has a known status and a content type; a redirect has a `Location` on the
/// tenant's OneAccess domain, the application's URL or (logout) the seller's origin; a session cookie is only set
/// by a redirect to the application; `/sso/me` answers `200` only with JSON for a user `authSync` authorises at
/// that moment; the client secret never appears in an answer.
pub async fn sso(data: &[u8]) -> bool {
    let Some(store) = seeded_store(T0, AK2).await else { return false };
    let vars = [
        ("sso_redirect_uri", "https://isv.example.com/sso/callback"),
        ("sso_app_url", APP_URL),
        ("sso_session_secret", "fuzz-session-secret-0123456789abcdef"),
        ("rsa_private_key", PEM),
    ];
    let Ok(cfg) = SsoConfig::from_variables(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()))
    else {
        return false;
    };
    let plain_secret = serde_json::from_str::<serde_json::Value>(SECRETS)
        .ok()
        .and_then(|v| v["plaintext"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let chunks = requests(data);
    let mut chunks = chunks.into_iter();
    let script: VecDeque<(u16, Vec<u8>)> = chunks
        .next()
        .map(|s| {
            text(s)
                .lines()
                .map(|l| {
                    let (status, body) = l.split_once(' ').unwrap_or((l, ""));
                    (status.trim().parse().unwrap_or(200), body.as_bytes().to_vec())
                })
                .collect()
        })
        .unwrap_or_default();
    let idp = ScriptedIdp { replies: RefCell::new(script), called: RefCell::new(Vec::new()) };
    let mut jar: Vec<(String, String)> = Vec::new();
    let mut last_state = String::new();
    let mut now = T0;
    let mut me_ok = false;
    for chunk in chunks {
        now = now.saturating_add(1_000);
        let [line, extra] = split::<2>(chunk);
        let line = text(line).replace("$state", &last_state);
        if line == "wait" {
            now = now.saturating_add(clock(extra, 0) % (40 * 86_400_000));
            continue;
        }
        let (method, target) = match line.strip_prefix("POST ") {
            Some(t) => ("POST", t.to_owned()),
            None => ("GET", line.clone()),
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut cookie: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        cookie.extend(present(&text(extra)).map(str::to_owned));
        let req = Inbound {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: vec![("cookie".into(), cookie.join("; "))],
            body: vec![],
        };
        let clock = FixedClock(now);
        let ctx = Ctx { store: &store, backend: &idp, clock: &clock, random: &OsRandom };
        let out = handle(&req, Ok(&cfg), &ctx).await.response;
        assert!(
            [200, 302, 400, 401, 403, 404, 405, 500, 502, 503, 504].contains(&out.status),
            "unexpected status {}",
            out.status
        );
        assert!(header(&out, "content-type").next().is_some(), "no content type");
        let whole = format!("{:?}{}", out.headers, String::from_utf8_lossy(&out.body));
        assert!(!whole.contains(&plain_secret), "the client secret leaked");
        let location = header(&out, "location").next().map(str::to_owned);
        if out.status == 302 {
            let to = location.clone().unwrap_or_default();
            assert!(
                to.starts_with(&format!("{DOMAIN}/api/v1/"))
                    || to == APP_URL
                    || to.starts_with("https://isv.example.com/"),
                "redirect off the allowed places: {to}"
            );
            if let Some(state) = to.split("state=").nth(1) {
                last_state = crate::http::parse_query(&format!("state={state}"))
                    .first()
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
            }
        } else {
            assert!(location.is_none(), "Location on a {}", out.status);
        }
        for set in header(&out, "set-cookie") {
            let Some((name, rest)) = set.split_once('=') else { continue };
            let value = rest.split(';').next().unwrap_or("").to_owned();
            if name == "koogallery_sso" && !value.is_empty() {
                assert_eq!(location.as_deref(), Some(APP_URL), "a session cookie without landing on the application");
            }
            jar.retain(|(k, _)| k != name);
            if !value.is_empty() {
                jar.push((name.to_owned(), value));
            }
        }
        if path.trim_end_matches('/') == "/sso/me" && out.status == 200 {
            let me: serde_json::Value = serde_json::from_slice(&out.body).unwrap_or_default();
            let user = me["userName"].as_str().unwrap_or_default();
            let rec: Option<TenantRecord> =
                store.snapshot().get(&tenant_key(false, "i", "t")).and_then(|b| serde_json::from_slice(b).ok());
            assert!(rec.is_some_and(|r| r.is_authorised("a", user)), "/sso/me admitted {user:?}");
            me_ok = true;
        }
    }
    assert!(idp.called.borrow().iter().all(|u| u.starts_with(DOMAIN)), "OneAccess called off the tenant's domain");
    me_ok
}
