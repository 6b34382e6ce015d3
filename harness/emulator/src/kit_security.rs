//! Kit syncs at the production URL itself, and the kit requests an attacker or a broken clock would send: `x-sign`
//! under another key or for another body, a stale `x-timestamp` either way, the basic-interface key instead of the
//! kit key, a missing `x-nonce`, `x-timestamp` or `x-sign`.
//!
//! Each refused request is a tenantSync add for a tenant of its own that a conforming endpoint would accept if it
//! were signed correctly, so an endpoint that skips a check answers `000000` and the rule fails. Every kit answer,
//! refusals included, must carry a `Body-Sign` under the kit key (the first kit key when none verified).

use koogallery_core::http::Inbound;
use koogallery_core::marketplace::{Marketplace, fresh_nonce};
use koogallery_core::ports::system_now_ms;
use koogallery_core::signing::canonical_json::sorted_compact;
use koogallery_core::signing::keys::{KeyRing, SecretKey};
use serde_json::Value;

use crate::kit::{NOT_CONFIGURED, kit_time_stamp, label, tenant_body, tenant_id};
use crate::rules::{Recorder, Verdict};
use crate::session::{Answer, Finding, Session, expect, expect_body_sign};

const IDS: [&str; 5] = ["kit.production_url", "kit.forged", "kit.stale", "kit.basic_key", "kit.missing_headers"];

/// How far outside the window the stale requests are: 10 minutes, far beyond any configured window.
const STALE_MS: u64 = 10 * 60_000;

/// Runs the production-URL and refusal rules in rule order, or records them as skipped.
pub(crate) async fn run(s: &Session, rec: &mut Recorder) {
    let Some((kit, mp)) = s.kit_side() else {
        for id in IDS {
            rec.record(id, Verdict::Skip(NOT_CONFIGURED.to_owned()));
        }
        return;
    };
    let k = Kit { s, origin: &kit.origin, path: kit.kit_path("tenantSync"), mp };
    rec.record("kit.production_url", production_url(&k).await.into());
    rec.record("kit.forged", forged(&k).await.into());
    rec.record("kit.stale", stale(&k).await.into());
    rec.record("kit.basic_key", basic_key(&k).await.into());
    rec.record("kit.missing_headers", missing_headers(&k).await.into());
}

/// Where kit tenantSyncs go and who signs them.
struct Kit<'a> {
    s: &'a Session,
    origin: &'a str,
    /// `{kit_url}/produceAPI/v2/tenantSync`.
    path: String,
    /// Signs with the kit key.
    mp: &'a Marketplace,
}

impl Kit<'_> {
    /// A tenantSync add for this rule's own tenant `emu-<tag>-<run>`.
    fn body(&self, tag: &str) -> Value {
        tenant_body(&tenant_id(self.s, tag), &format!("emu{}", self.s.run), "Emulator tenant", 1, &kit_time_stamp())
    }

    /// Sends `req` to `origin` and checks the code and the kit `Body-Sign`.
    async fn expect(&self, origin: &str, req: Inbound, note: &str, code: &str) -> Result<Answer, Finding> {
        let answer = self.s.send_unlogged(origin, req.clone(), label(&req.path, "tenantSync", note)).await;
        expect(&answer, code)?;
        expect_body_sign(&answer, self.mp.keys(), "kit key")?;
        Ok(answer)
    }
}

fn without_header(mut req: Inbound, name: &str) -> Inbound {
    req.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    req
}

async fn production_url(k: &Kit<'_>) -> Result<String, Finding> {
    let (origin, path) = (&k.s.target().origin, &k.s.target().path);
    let body = k.body("produce");
    let req = k.mp.kit(path, &sorted_compact(&body), system_now_ms(), &fresh_nonce());
    k.expect(origin, req, "kit x-sign at the production URL, sync inferred from the body", "000000").await?;
    let mut named = body;
    if let Some(map) = named.as_object_mut() {
        map.insert("activity".into(), Value::String("tenantSync".into()));
    }
    let req = k.mp.kit(path, &sorted_compact(&named), system_now_ms(), &fresh_nonce());
    k.expect(origin, req, "kit x-sign at the production URL, activity tenantSync", "000000").await?;
    Ok("inferred and named tenantSync answered 000000 with a kit Body-Sign".to_owned())
}

async fn forged(k: &Kit<'_>) -> Result<String, Finding> {
    let other = Marketplace::new(KeyRing::single(SecretKey::new(format!("emulator-wrong-kit-key-{}", k.s.run))));
    let body = sorted_compact(&k.body("forged"));
    let req = other.kit(&k.path, &body, system_now_ms(), &fresh_nonce());
    k.expect(k.origin, req, "x-sign under another key", "000001").await?;
    // A valid x-sign for one body, sent with another (the tenant name changed after signing).
    let signed = k.mp.kit(&k.path, &body, system_now_ms(), &fresh_nonce());
    let mut changed = k.body("forged");
    if let Some(map) = changed.as_object_mut() {
        map.insert("name".into(), Value::String("Emulator tenant (changed after signing)".into()));
    }
    let tampered = Inbound { body: sorted_compact(&changed), ..signed };
    k.expect(k.origin, tampered, "x-sign made for another body", "000001").await?;
    Ok("another key and a transplanted x-sign answered 000001".to_owned())
}

async fn stale(k: &Kit<'_>) -> Result<String, Finding> {
    let body = sorted_compact(&k.body("stale"));
    let past = k.mp.kit(&k.path, &body, system_now_ms().saturating_sub(STALE_MS), &fresh_nonce());
    k.expect(k.origin, past, "x-timestamp 10 minutes old", "000002").await?;
    let future = k.mp.kit(&k.path, &body, system_now_ms().saturating_add(STALE_MS), &fresh_nonce());
    k.expect(k.origin, future, "x-timestamp 10 minutes ahead", "000002").await?;
    Ok("x-timestamp 10 minutes old and ahead answered 000002".to_owned())
}

async fn basic_key(k: &Kit<'_>) -> Result<String, Finding> {
    let basic = k.s.marketplace();
    let body = k.body("basic-key");
    let bytes = sorted_compact(&body);
    let req = basic.kit(&k.path, &bytes, system_now_ms(), &fresh_nonce());
    k.expect(k.origin, req, "x-sign under the basic-interface key", "000001").await?;
    let (origin, path) = (&k.s.target().origin, &k.s.target().path);
    let req = basic.kit(path, &bytes, system_now_ms(), &fresh_nonce());
    k.expect(origin, req, "x-sign under the basic-interface key, at the production URL", "000001").await?;
    // A V2 query signature under the basic key on a body naming a kit sync: the basic key never verifies a kit call.
    // (Which key signs this answer is not settled, so only the code is checked.)
    let mut named = body;
    if let Some(map) = named.as_object_mut() {
        map.insert("activity".into(), Value::String("tenantSync".into()));
    }
    let req = basic.v2(path, &sorted_compact(&named), system_now_ms(), &fresh_nonce());
    let note = "V2 query signature under the basic-interface key, activity tenantSync";
    let answer = k.s.send_unlogged(origin, req, label(path, "tenantSync", note)).await;
    expect(&answer, "000001")?;
    Ok("x-sign at the kit and production URLs and a V2 query signature answered 000001".to_owned())
}

async fn missing_headers(k: &Kit<'_>) -> Result<String, Finding> {
    let body = sorted_compact(&k.body("missing-header"));
    for header in ["x-nonce", "x-timestamp", "x-sign"] {
        let req = without_header(k.mp.kit(&k.path, &body, system_now_ms(), &fresh_nonce()), header);
        k.expect(k.origin, req, &format!("no {header}"), "000002").await?;
    }
    Ok("no x-nonce, no x-timestamp and no x-sign each answered 000002".to_owned())
}
