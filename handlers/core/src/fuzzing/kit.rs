//! Fuzz entry point for the kit syncs over an in-memory store, and the invariants of what they store.

use super::input::*;

use serde_json::Value;

use crate::http::Inbound;
use crate::kit::{KitConfig, TenantRecord, handle};
use crate::marketplace::Marketplace;
use crate::ports::{FixedClock, MemoryStore, NoBackend, OsRandom};
use crate::produce::{Ctx, Handled};
use crate::signing::keys::KeyRing;
use crate::wire::kit::KitSync;

/// The kit key of the fuzz configuration (not the basic-interface key [`AK`], which must never verify a kit sync).
const KIT_KEY: &str = "kit-0123456789abcdef0123456789ab";

/// Checks the answer's form and returns its `resultCode`.
fn check_answer(handled: &Handled, keys: &KeyRing, sync: KitSync) -> String {
    let response = &handled.response;
    let value: Result<Value, _> = serde_json::from_slice(&response.body);
    let code = value.as_ref().ok().and_then(|v| v.get("resultCode")).and_then(Value::as_str).unwrap_or("");
    if response.status == 500 {
        // Only one thing is not a business outcome here: applicationSync without the RSA key (none is configured).
        assert_eq!(sync, KitSync::ApplicationSync, "HTTP 500 for {sync}");
        let msg = value.as_ref().ok().and_then(|v| v.get("resultMsg")).and_then(Value::as_str).unwrap_or("");
        assert_eq!(msg, "not configured: set rsa_private_key");
        return code.to_owned();
    }
    check_signed_answer(handled, keys)
}

/// Every stored department tree is normalised: each effective parent is in the tree, and no walk up loops.
fn check_trees(store: &MemoryStore) {
    for (key, value) in store.snapshot() {
        if !key.contains("/tenant/") || !key.starts_with("kit/") {
            continue;
        }
        let rec: TenantRecord = match serde_json::from_slice(&value) {
            Ok(r) => r,
            Err(e) => panic!("{key} does not read back: {e}"),
        };
        for (code, org) in &rec.orgs {
            if let Some(parent) = &org.parent_code {
                assert!(rec.orgs.contains_key(parent), "{key}: {code} points at missing {parent}");
            }
            let mut seen = std::collections::BTreeSet::new();
            let mut at = Some(code.clone());
            while let Some(c) = at {
                assert!(seen.insert(c.clone()), "{key}: the tree loops through {c}");
                at = rec.orgs.get(&c).and_then(|o| o.parent_code.clone());
            }
        }
    }
}

/// The kit syncs over a sequence of requests sharing one in-memory store, with a clock advancing 1 s per request.
///
/// Input: requests separated by a line `%%`. Each request starts with a line naming its kind and sync:
/// - `v2 <sync>`: the rest is a body, x-signed under the kit key like the marketplace, to `/produceAPI/v2/<sync>`;
/// - `v1 <sync>`: the rest is a body, with a kit V1 `authToken` header, to `/produceAPI/<sync>`;
/// - `basic <sync>`: the rest is a body x-signed under the **basic-interface** key (must be refused);
/// - `replay`: sends the previous request again; `wait`: then a number of ms to advance the clock by;
/// - anything else: the whole request is an unsigned POST body to `/produceAPI/v2/tenantSync`.
///
/// `<sync>` is a sync name (`tenantSync` …); an unknown one means `singleOrgSync`.
///
/// Returns whether some request was answered `000000`.
///
/// Oracles: never panics; every answer is ASCII JSON with a 6-digit `resultCode` equal to the summary's and a
/// `Body-Sign` under the kit key (or the one "not configured" answer); a kit-signed V2 request is never refused as
/// unauthenticated, a replayed one never succeeds, one under the basic key never succeeds; after every
/// request every stored department tree has no dangling or looping parent.
pub async fn kit(data: &[u8]) -> bool {
    let keys = ring(&[KIT_KEY]);
    let mut cfg = KitConfig::new(keys.clone(), None);
    // Seeds carry fixed body timeStamps; without the window V1 requests reach the handlers.
    cfg.v1_window = None;
    let marketplace = Marketplace::new(keys.clone());
    let basic = Marketplace::new(ring(&[AK]));
    let store = MemoryStore::new();
    let mut now = T0;
    let mut previous: Option<(Inbound, KitSync, bool)> = None;
    let mut any_success = false;
    for (i, chunk) in requests(data).into_iter().enumerate() {
        now = now.saturating_add(1_000);
        let [head, body] = split::<2>(chunk);
        let head = text(head);
        let mut words = head.split_whitespace();
        let kind = words.next().unwrap_or("");
        let sync = words.next().and_then(KitSync::from_name).unwrap_or(KitSync::SingleOrgSync);
        let nonce = format!("{i:064X}");
        let (request, sync, expect) = match kind {
            "v2" => (marketplace.kit(&format!("/produceAPI/v2/{sync}"), body, now, &nonce), sync, Expect::Genuine),
            "v1" => (marketplace.kit_v1(&format!("/produceAPI/{sync}"), body), sync, Expect::Other),
            "basic" => (basic.kit(&format!("/produceAPI/v2/{sync}"), body, now, &nonce), sync, Expect::Forged),
            "replay" => match previous.take() {
                Some((request, sync, was_v2)) => (request, sync, if was_v2 { Expect::Replayed } else { Expect::Other }),
                None => continue,
            },
            "wait" => {
                now = now.saturating_add(clock(body, 0));
                continue;
            }
            _ => {
                let request = Inbound {
                    method: "POST".to_owned(),
                    path: "/produceAPI/v2/tenantSync".to_owned(),
                    body: chunk.to_vec(),
                    ..Inbound::default()
                };
                (request, KitSync::TenantSync, Expect::Other)
            }
        };
        let fixed = FixedClock(now);
        let ctx = Ctx { store: &store, backend: &NoBackend, clock: &fixed, random: &OsRandom };
        let handled = handle(&request, sync, Ok(&cfg), &ctx).await;
        let code = check_answer(&handled, &keys, sync);
        match expect {
            Expect::Genuine => assert_ne!(code, "000001", "a correctly signed sync was refused: {}", handled.summary),
            Expect::Replayed => assert_ne!(code, "000000", "a replayed V2 sync succeeded: {}", handled.summary),
            // Refused: 000001, or 000002 for a body that is not even a JSON object (checked first).
            Expect::Forged => assert_ne!(code, "000000", "the basic key verified a kit sync: {}", handled.summary),
            _ => {}
        }
        check_trees(&store);
        any_success |= code == "000000";
        previous = Some((request, sync, expect == Expect::Genuine));
    }
    any_success
}

/// What the oracle expects of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Signed under the kit key: never `000001`.
    Genuine,
    /// A V2 request sent again: never `000000`.
    Replayed,
    /// Signed under the basic-interface key: never `000000`.
    Forged,
    /// Anything goes, but the answer must be well-formed.
    Other,
}
