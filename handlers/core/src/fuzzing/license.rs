//! The license callbacks over a sequence of signed requests sharing one in-memory store.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::input::*;
use crate::license::{LicenseConfig, callback};
use crate::marketplace::Marketplace;
use crate::ports::{FixedClock, MemoryStore, NoBackend, OsRandom, Store as _};
use crate::produce::Ctx;

/// The license records (`…/license/…`) as they stand, without their write tokens.
fn records(store: &MemoryStore) -> BTreeMap<String, Value> {
    store
        .snapshot()
        .into_iter()
        .filter(|(k, _)| k.contains("/license/"))
        .filter_map(|(k, v)| {
            let mut value: Value = serde_json::from_slice(&v).ok()?;
            value.as_object_mut()?.remove("writes");
            Some((k, value))
        })
        .collect()
}

/// Input: callback bodies separated by a line `%%`, each signed like the marketplace (fresh timestamp, unique
/// nonce), each sent twice (the second time with another nonce, as a marketplace retry). Returns whether some
/// callback was answered `000000`.
///
/// Oracles: every answer is HTTP 200 JSON with a six-digit `resultCode` and a `Body-Sign` that verifies; a signed
/// callback is never `000001`; the retry gets the same code and changes nothing; a released license stays released;
/// only `000000` answers change the store.
pub async fn license(data: &[u8]) -> bool {
    let keys = ring(&[AK]);
    let cfg = LicenseConfig::from_variables(|n| (n == "access_keys").then(|| AK.to_owned())).expect("fuzz config");
    let marketplace = Marketplace::new(keys.clone());
    let store = MemoryStore::new();
    let mut now = T0;
    let mut released = BTreeSet::new();
    let mut any_success = false;
    for (i, body) in requests(data).into_iter().enumerate() {
        now = now.saturating_add(1_000);
        let clock = FixedClock(now);
        let ctx = Ctx { store: &store, backend: &NoBackend, clock: &clock, random: &OsRandom };
        let before = records(&store);
        let first = marketplace.v2("/license", body, now, &format!("{i:064X}"));
        let code = check_signed_answer(&callback::handle(&first, &cfg, &ctx).await, &keys);
        assert_ne!(code, "000001", "a signed callback was refused as unauthenticated");
        let after = records(&store);
        if code != "000000" {
            assert_eq!(after, before, "a callback answered {code} changed the store");
        }
        any_success |= code == "000000";
        let retry = marketplace.v2("/license", body, now, &format!("R{i:063X}"));
        let again = check_signed_answer(&callback::handle(&retry, &cfg, &ctx).await, &keys);
        assert_eq!(again, code, "a retried callback got another answer");
        assert_eq!(records(&store), after, "a retried callback changed the record");
        for key in &released {
            assert_eq!(after.get(key).and_then(|r| r["state"].as_str()), Some("released"), "{key} came back");
        }
        released.extend(after.iter().filter(|(_, r)| r["state"] == "released").map(|(k, _)| k.clone()));
        // The store holds nothing but JSON the component can read back.
        for key in after.keys() {
            assert!(store.get(key).await.is_ok_and(|v| v.is_some()));
        }
    }
    any_success
}
