//! Every cassette under `tests/cassettes/produce/` (documented examples re-signed with the test key, whole V2 and V1
//! lifecycles, every refusal) replayed through the Wasm component, exactly as `harness replay` does.

use conformance::replay_cassette_dir;

#[test]
fn produce_cassettes_pass_through_wasm() {
    let (cassettes, steps) = replay_cassette_dir("tests/cassettes/produce");
    assert!(cassettes >= 4, "V2 examples, V2 lifecycle, V2 refusals and V1");
    assert!(steps >= 80, "only {steps} steps ran");
}
