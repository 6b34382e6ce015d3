//! Replaying a folder of cassettes through the Wasm components, as `harness replay <dir>` does.

use crate::workspace_root;

/// Replays every cassette in `dir` (workspace-relative) against the app of `spin.toml` and panics listing every
/// failed step; returns how many cassettes and steps ran, for the caller's floor.
pub fn replay_cassette_dir(dir: &str) -> (usize, usize) {
    let root = workspace_root();
    let cassettes = match harness::cassette::load_dir(&root.join(dir)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
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
    (cassettes.len(), steps)
}
