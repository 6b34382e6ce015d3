//! Runs every seed of `fuzz/corpus/<target>/` through `koogallery_core::fuzzing::<target>`, so `cargo test` checks
//! the fuzz oracles on the known-answer vectors without a fuzzer.
//!
//! A seed named `accept*` must get past validation (the function returns `true`), one named `reject*` must not;
//! others only have to keep the oracles. Every target must have at least one `accept` seed, so the deep path behind
//! its validation is exercised, and the corpus, this list and `fuzz/Cargo.toml` must name the same targets.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use koogallery_core::fuzzing;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Feeds the seeds of `target` to `run`; returns how many there were.
fn check_seeds(target: &str, run: impl Fn(&[u8]) -> bool) -> usize {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "{target}: no seeds in {}", dir.display());
    let mut accepted = 0;
    for path in &paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let outcome = catch_unwind(AssertUnwindSafe(|| run(&data)))
            .unwrap_or_else(|_| panic!("{target}: seed {name} breaks an oracle (see the panic above)"));
        if name.starts_with("accept") {
            assert!(outcome, "{target}: seed {name} should get past validation but did not");
            accepted += 1;
        } else if name.starts_with("reject") {
            assert!(!outcome, "{target}: seed {name} should be refused but got past validation");
        }
    }
    assert!(accepted > 0, "{target}: no `accept` seed reaches the code behind validation");
    paths.len()
}

macro_rules! seed_tests {
    ($($target:ident),+ $(,)?) => {
        /// Every target this file knows, to compare with the corpus and `fuzz/Cargo.toml`.
        const TARGETS: &[&str] = &[$(stringify!($target)),+];
        $(
            #[test]
            fn $target() {
                check_seeds(stringify!($target), fuzzing::$target);
            }
        )+
    };
}

seed_tests!(
    v2_verify,
    v2_signed,
    kit_verify,
    kit_signed,
    v1_verify,
    v1_signed,
    body_sign,
    usage_sign,
    jwt,
    apig,
    parse_v2,
    parse_v1,
    parse_kit,
    parse_order,
    parse_usage,
    parse_license,
    parse_agents_usage,
    agents_stream,
    canonical_json,
    aes_decrypt,
    aes_round_trip,
);

#[test]
fn produce() {
    check_seeds("produce", |data| pollster::block_on(fuzzing::produce(data)));
}

#[test]
fn kit() {
    check_seeds("kit", |data| pollster::block_on(fuzzing::kit(data)));
}

#[test]
fn license() {
    check_seeds("license", |data| pollster::block_on(fuzzing::license(data)));
}

#[test]
fn usage() {
    check_seeds("usage", |data| pollster::block_on(fuzzing::usage(data)));
}

#[test]
fn sso() {
    check_seeds("sso", |data| pollster::block_on(fuzzing::sso(data)));
}

/// The names of `fuzz/Cargo.toml`'s `[[bin]]` targets.
fn cargo_fuzz_targets() -> BTreeSet<String> {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut names = BTreeSet::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(value) = line.strip_prefix("name = ").filter(|_| in_bin) {
            names.insert(value.trim_matches('"').to_owned());
        }
    }
    names
}

#[test]
fn corpus_tests_and_fuzz_targets_name_the_same_entry_points() {
    let mut here: BTreeSet<String> = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    here.insert("produce".to_owned());
    here.insert("kit".to_owned());
    here.insert("sso".to_owned());
    here.insert("usage".to_owned());
    here.insert("license".to_owned());
    let corpus: BTreeSet<String> = std::fs::read_dir(fuzz_dir().join("corpus"))
        .expect("fuzz/corpus")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(corpus, here, "fuzz/corpus/ and this file disagree");
    assert_eq!(cargo_fuzz_targets(), here, "fuzz/Cargo.toml and this file disagree");
    for target in &here {
        let path = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            source.contains(&format!("koogallery_core::fuzzing::{target}(data)")),
            "{} does not call fuzzing::{target}",
            path.display()
        );
    }
}
