//! Fuzz entry point for the whole production interface over an in-memory store.

use super::input::*;

use crate::http::Inbound;
use crate::marketplace::Marketplace;
use crate::ports::MemoryStore;
use crate::ports::{FixedClock, NoBackend, OsRandom};
use crate::produce::{Ctx, ProduceConfig, handle};
use crate::wire::kit::KitSync;

/// How a request of a `produce` input was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    /// Signed like the marketplace (V2 or V1): must never be answered `000001`.
    Signed,
    /// A signed V2 request sent a second time: must never be answered `000000` (nonce cache).
    ReplayedV2,
    /// Unsigned or resent otherwise: anything goes, but the answer must be well-formed.
    Other,
}

/// The production handler over a sequence of requests sharing one in-memory store, with a clock advancing 1 s per
/// request from test-vectors §6.1's timestamp.
///
/// Input: requests separated by a line `%%`. Each request starts with a line naming its kind:
/// - `v2`: the rest is a body, signed like the marketplace (`Marketplace::v2`, fresh timestamp, unique nonce);
/// - `v1`: the rest is one `name=value` per line, signed like the marketplace (`Marketplace::v1`);
/// - `raw`: then `METHOD`, then the raw query string, then the body, sent unsigned;
/// - `replay`: sends the previous request again, unchanged;
/// - `wait`: then a number of ms to advance the clock by;
/// - anything else: the whole request is an unsigned POST body.
///
/// Returns whether some request was answered `000000`.
///
/// Oracles: never panics; every answer is HTTP 200, ASCII JSON with a 6-digit `resultCode` equal to the summary's,
/// and a `Body-Sign` that verifies; a request signed like the marketplace is never refused as unauthenticated
/// (`000001`); a V2 request sent twice never succeeds the second time.
pub async fn produce(data: &[u8]) -> bool {
    let keys = ring(&[AK]);
    let mut cfg = ProduceConfig::new(keys.clone());
    // V1 seeds carry the documented examples' timeStamps (2017–2020); without the window they reach the handlers.
    cfg.v1_window = None;
    let marketplace = Marketplace::new(keys.clone());
    let store = MemoryStore::new();
    let mut now = T0;
    let mut previous: Option<(Inbound, bool)> = None;
    let mut any_success = false;
    for (i, chunk) in requests(data).into_iter().enumerate() {
        now = now.saturating_add(1_000);
        let [kind, rest] = split::<2>(chunk);
        let (request, made, is_v2) = match text(kind).trim() {
            "v2" => (marketplace.v2(PRODUCE_PATH, rest, now, &format!("{i:064X}")), Made::Signed, true),
            "v1" => {
                let lines = text(rest);
                let params: Vec<(&str, &str)> =
                    lines.split('\n').filter(|l| !l.is_empty()).map(|l| l.split_once('=').unwrap_or((l, ""))).collect();
                (marketplace.v1(PRODUCE_PATH, &params), Made::Signed, false)
            }
            "raw" => {
                let [method, query, body] = split::<3>(rest);
                let request = Inbound {
                    method: text(method).trim().to_owned(),
                    path: PRODUCE_PATH.to_owned(),
                    query: text(query).into_owned(),
                    headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                    body: body.to_vec(),
                };
                (request, Made::Other, false)
            }
            "replay" => match previous.take() {
                Some((request, was_v2)) => (request, if was_v2 { Made::ReplayedV2 } else { Made::Other }, was_v2),
                None => continue,
            },
            "wait" => {
                now = now.saturating_add(clock(rest, 0));
                continue;
            }
            _ => {
                let request = Inbound {
                    method: "POST".to_owned(),
                    path: PRODUCE_PATH.to_owned(),
                    body: chunk.to_vec(),
                    ..Inbound::default()
                };
                (request, Made::Other, false)
            }
        };
        let fixed = FixedClock(now);
        let ctx = Ctx { store: &store, backend: &NoBackend, clock: &fixed, random: &OsRandom };
        let handled = handle(&request, &cfg, &ctx).await;
        let code = check_signed_answer(&handled, &keys);
        match made {
            // A kit sync under the basic-interface signature is refused: only the kit key verifies a kit sync.
            Made::Signed if handled.summary.activity.as_deref().and_then(KitSync::from_name).is_some() => {
                // 000001, or 000002 when its fields are invalid (they are read before the dispatch refuses it).
                assert_ne!(code, "000000", "a kit sync passed under the basic key: {}", handled.summary);
            }
            Made::Signed => assert_ne!(code, "000001", "a correctly signed request was refused: {}", handled.summary),
            Made::ReplayedV2 => assert_ne!(code, "000000", "a replayed V2 request succeeded: {}", handled.summary),
            Made::Other => {}
        }
        any_success |= code == "000000";
        previous = Some((request, is_v2));
    }
    any_success
}
