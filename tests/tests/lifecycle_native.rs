//! Lifecycle properties against core directly (fast; the Wasm run of the same model is in `lifecycle_wasm.rs`).

use conformance::model::{Step, arbitrary_step, check};
use conformance::{AK, NativeEndpoint};
use koogallery_core::produce::ProduceConfig;
use koogallery_core::signing::keys::KeyRing;
use proptest::prelude::*;

const LINES: u8 = 3;

fn endpoint() -> NativeEndpoint {
    let keys = KeyRing::parse_list(AK).unwrap_or_else(|_| unreachable!());
    NativeEndpoint::new(ProduceConfig::new(keys), 1_700_000_000_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_lifecycles_match_the_model(steps in proptest::collection::vec(arbitrary_step(LINES), 1..40)) {
        let ep = endpoint();
        if let Err(e) = check(&ep, LINES, &steps) {
            prop_assert!(false, "{}", e);
        }
    }
}

#[test]
fn a_hand_written_sequence_matches_the_model() {
    let steps = vec![
        Step::New(0),
        Step::New(0),
        Step::Replay,
        Step::Renew(0, 1),
        Step::Renew(0, 1),
        Step::Freeze(0),
        Step::Forged(Box::new(Step::Release(0))),
        Step::Unfreeze(0),
        Step::Stale(Box::new(Step::Release(0))),
        Step::Replay,
        Step::Release(0),
        Step::New(0),
        Step::Unfreeze(0),
        Step::Query(0),
        Step::Query(1),
        Step::Release(2),
    ];
    assert_eq!(check(&endpoint(), LINES, &steps), Ok(()));
}
