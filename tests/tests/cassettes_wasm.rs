//! Every cassette under `tests/cassettes/produce/` (documented examples re-signed with the test key, whole V2 and V1
//! lifecycles, every refusal) replayed through the Wasm component, exactly as `harness replay` does.

use conformance::workspace_root;

#[test]
fn produce_cassettes_pass_through_wasm() {
    let root = workspace_root();
    let cassettes = match harness::cassette::load_dir(&root.join("tests/cassettes/produce")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert!(cassettes.len() >= 4, "V2 examples, V2 lifecycle, V2 refusals and V1");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    let mut steps = 0;
    for cassette in &cassettes {
        let results = match rt.block_on(harness::cassette::run(cassette, &root.join("spin.toml"), &[])) {
            Ok(r) => r,
            Err(e) => panic!("{}: {e:#}", cassette.title()),
        };
        steps += results.len();
        failures.extend(
            results.into_iter().filter(|r| !r.passed).map(|r| format!("{} / {}: {}", r.cassette, r.step, r.detail)),
        );
    }
    assert!(failures.is_empty(), "{} of {steps} steps failed:\n{}", failures.len(), failures.join("\n"));
    assert!(steps >= 80, "only {steps} steps ran");
}
