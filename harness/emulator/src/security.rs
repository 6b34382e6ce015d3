//! Requests an attacker or a broken clock would send: forged and missing signatures, another key, stale timestamps
//! both ways, missing timestamp or nonce, a replayed nonce.
//!
//! Each is an `orderNotify` for a fresh order line, a request a conforming endpoint would accept if it were signed
//! correctly; so an endpoint that skips a check answers `000000` and the rule fails.

use koogallery_core::marketplace::Marketplace;
use koogallery_core::marketplace::fresh_nonce;
use koogallery_core::marketplace::samples::{self, Charging, encode};
use koogallery_core::ports::system_now_ms;
use koogallery_core::signing::keys::{KeyRing, SecretKey};

use crate::bodies::run_order;
use crate::rules::Recorder;
use crate::session::{Finding, Session, edit_query, expect};

/// A body the endpoint would accept: `orderNotify` for a fresh order line of this run.
fn notify_body(s: &Session, tag: &str) -> Vec<u8> {
    let order = run_order(&s.run, tag, Charging::Period);
    encode(&samples::order_notify(&order.order_id, &order.line_id))
}

fn set_param(name: &'static str, value: String) -> impl FnOnce(&mut Vec<(String, String)>) {
    move |pairs| {
        for (k, v) in pairs.iter_mut() {
            if k == name {
                v.clone_from(&value);
            }
        }
    }
}

fn drop_param(name: &'static str) -> impl FnOnce(&mut Vec<(String, String)>) {
    move |pairs| pairs.retain(|(k, _)| k != name)
}

/// Runs the `auth.*`, `time.*` and `nonce.*` rules in rule order.
pub(crate) async fn run(s: &Session, rec: &mut Recorder) {
    rec.record("auth.forged", forged(s).await.into());
    rec.record("auth.wrong_key", wrong_key(s).await.into());
    let req = edit_query(s.sign_v2(&notify_body(s, "S3")), drop_param("signature"));
    rec.record("auth.missing_signature", one(s, req, "no signature parameter", "000001").await.into());
    let window = s.window_ms.saturating_add(1000);
    let past = s.sign_v2_at(&notify_body(s, "S4"), system_now_ms().saturating_sub(window), &fresh_nonce());
    rec.record("time.stale_past", one(s, past, "timestamp window+1 s old", "000002").await.into());
    let future = s.sign_v2_at(&notify_body(s, "S5"), system_now_ms().saturating_add(window), &fresh_nonce());
    rec.record("time.stale_future", one(s, future, "timestamp window+1 s ahead", "000002").await.into());
    let req = edit_query(s.sign_v2(&notify_body(s, "S6")), drop_param("timestamp"));
    rec.record("time.missing", one(s, req, "no timestamp parameter", "000002").await.into());
    let req = edit_query(s.sign_v2(&notify_body(s, "S7")), drop_param("nonce"));
    rec.record("nonce.missing", one(s, req, "no nonce parameter", "000002").await.into());
    rec.record("nonce.replayed", replayed(s).await.into());
}

async fn one(s: &Session, req: koogallery_core::http::Inbound, note: &str, code: &str) -> Result<String, Finding> {
    let answer = s.send(req, s.label("POST", "orderNotify", note), false).await;
    expect(&answer, code).map(|()| format!("answered {code}"))
}

async fn forged(s: &Session) -> Result<String, Finding> {
    let random = edit_query(s.sign_v2(&notify_body(s, "S1")), set_param("signature", fresh_nonce()));
    one(s, random, "random signature", "000001").await?;
    // A valid signature for one body, sent with another (the order line changed after signing).
    let signed = s.sign_v2(&notify_body(s, "S1"));
    let tampered = koogallery_core::http::Inbound { body: notify_body(s, "S1X"), ..signed };
    one(s, tampered, "signature made for another body", "000001").await?;
    Ok("random and transplanted signatures answered 000001".to_owned())
}

async fn wrong_key(s: &Session) -> Result<String, Finding> {
    let other = Marketplace::new(KeyRing::single(SecretKey::new(format!("emulator-wrong-key-{}", s.run))));
    let req = other.v2(s.path(), &notify_body(s, "S2"), system_now_ms(), &fresh_nonce());
    one(s, req, "signed with another key", "000001").await
}

async fn replayed(s: &Session) -> Result<String, Finding> {
    let nonce = fresh_nonce();
    let original = s.sign_v2_at(&notify_body(s, "S8"), system_now_ms(), &nonce);
    let first = s.send(original.clone(), s.label("POST", "orderNotify", "original of a replay"), false).await;
    expect(&first, "000000").map_err(|f| Finding { detail: format!("not checked: the original {}", f.detail), ..f })?;
    let replay = s.send(original, s.label("POST", "orderNotify", "byte-for-byte replay"), false).await;
    if replay.is("000000") {
        return Err(Finding::at(&replay, "the replayed request was accepted (000000)"));
    }
    // The same nonce with a fresh timestamp and signature over another body.
    let reused = s.sign_v2_at(&notify_body(s, "S9"), system_now_ms(), &nonce);
    let second = s.send(reused, s.label("POST", "orderNotify", "new body, reused nonce"), false).await;
    if second.is("000000") {
        return Err(Finding::at(&second, "a new request reusing a nonce was accepted (000000)"));
    }
    Ok(format!(
        "replay answered {}, reused nonce answered {}",
        replay.code().unwrap_or("no resultCode"),
        second.code().unwrap_or("no resultCode")
    ))
}
