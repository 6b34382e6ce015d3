//! The `harness` binary: `up` answers HTTP, fails fast on bad configuration, `sign` prints known-answer
//! signatures, `replay` passes good cassettes and fails bad ones.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_harness");

/// A child `harness up`, killed on drop.
struct Up {
    child: Child,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `harness up` and waits for its "Serving http://…" line; returns the child, the address and the lines
/// printed up to then.
fn start_up(args: &[&str], envs: &[(&str, &str)]) -> (Up, SocketAddr, Vec<String>, Duration) {
    common::probe_wasm();
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("up")
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn harness up");
    let stdout = child.stdout.take().expect("stdout");
    let up = Up { child };
    let mut lines = Vec::new();
    let mut reader = BufReader::new(stdout).lines();
    while let Some(line) = reader.next() {
        let line = line.expect("stdout line");
        let serving = line.strip_prefix("Serving http://").map(str::to_owned);
        lines.push(line);
        if let Some(addr) = serving {
            let addr: SocketAddr = addr.parse().expect("address");
            // The socket is already bound. Keep draining stdout (the route list follows) in the background.
            let elapsed = started.elapsed();
            std::thread::spawn(move || for _ in reader.by_ref() {});
            return (up, addr, lines, elapsed);
        }
        assert!(started.elapsed() < Duration::from_secs(60), "up did not start: {lines:?}");
    }
    panic!("harness up exited before serving: {lines:?}");
}

fn memory_runtime_config() -> std::path::PathBuf {
    let dir = common::temp_dir("up-rc");
    let rc = dir.join("runtime-config.toml");
    std::fs::write(&rc, "[key_value_store.default]\ntype = \"memory\"\n[key_value_store.extra]\ntype = \"memory\"\n")
        .expect("rc");
    rc
}

#[tokio::test(flavor = "multi_thread")]
async fn up_serves_http_with_flags_env_and_runtime_config() {
    let port = common::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let manifest = common::manifest();
    let rc = memory_runtime_config();
    let (mut up, addr, lines, startup) = start_up(
        &[
            "--listen",
            &listen,
            "-f",
            manifest.to_str().expect("utf8 path"),
            "--runtime-config-file",
            rc.to_str().expect("utf8 path"),
            "--variable",
            "api_key=from-flag",
        ],
        &[("SPIN_VARIABLE_REGION", "from-env")],
    );
    let started = Instant::now();
    let (status, _, body) = common::http_get(addr, "/probe/var?name=greeting").await.expect("http");
    let first_response = startup + started.elapsed();
    eprintln!("cold start (process start → first response): {first_response:?}");
    assert_eq!((status, body.as_str()), (200, "hello, from-env!"));
    assert_eq!(common::http_get(addr, "/probe/var?name=api_key").await.expect("http").2, "from-flag");
    assert_eq!(common::http_get(addr, "/probe/kv/incr?key=n").await.expect("http").2, "1");
    assert_eq!(common::http_get(addr, "/probe/kv/incr?key=n").await.expect("http").2, "2");
    assert_eq!(common::http_get(addr, "/nowhere").await.expect("http").0, 404);
    let (_, _, headers) = common::http_get(addr, "/probe/headers").await.expect("http");
    assert!(headers.contains(&format!("spin-full-url: http://{addr}/probe/headers")), "{headers}");
    assert!(headers.contains("spin-client-addr: 127.0.0.1:"), "{headers}");

    // Routes are printed like `spin up` prints them.
    assert!(lines.iter().any(|l| l == "Logging component stdio to the console"), "{lines:?}");

    // Graceful stop on SIGINT (Ctrl-C): exits 0.
    let pid = up.child.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let code = loop {
        if let Some(status) = up.child.try_wait().expect("wait") {
            break status.code();
        }
        assert!(Instant::now() < deadline, "up did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
}

#[test]
fn up_prints_its_routes() {
    let port = common::free_port().to_string();
    let manifest = common::manifest();
    let rc = memory_runtime_config();
    let mut child = Command::new(BIN)
        .args(["up", "--listen", &format!("127.0.0.1:{port}"), "-f"])
        .arg(&manifest)
        .arg("--runtime-config-file")
        .arg(&rc)
        .args(["--variable", "api_key=k"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let up = Up { child };
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        lines.push(line);
        if lines.iter().filter(|l| l.starts_with("  ")).count() == 4 {
            break;
        }
    }
    drop(up);
    let all = lines.join("\n");
    let base = format!("http://127.0.0.1:{port}");
    for want in [
        format!("  probe: {base}/probe (wildcard)"),
        format!("  deep: {base}/probe/deep (wildcard)"),
        format!("  exact: {base}/probe/exact"),
        format!("  exact: {base}/exact"),
    ] {
        assert!(all.contains(&want), "missing {want:?} in\n{all}");
    }
}

#[test]
fn up_fails_before_binding_when_a_required_variable_is_missing() {
    let port = common::free_port();
    let out = Command::new(BIN)
        .args(["up", "--listen", &format!("127.0.0.1:{port}"), "-f"])
        .arg(common::manifest())
        .env_remove("SPIN_VARIABLE_API_KEY")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(harness::exit_codes::CONFIG));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("api_key") && stderr.contains("SPIN_VARIABLE_<NAME>"), "{stderr}");
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "the port was never bound");
}

#[test]
fn up_says_to_build_components_when_the_wasm_is_missing() {
    let dir = common::temp_dir("up-missing");
    std::fs::copy(common::manifest(), dir.join("spin.toml")).expect("copy");
    let out = Command::new(BIN).args(["up", "-f"]).arg(&dir).args(["--variable", "api_key=k"]).output().expect("run");
    assert_eq!(out.status.code(), Some(harness::exit_codes::LOAD));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("build the components first"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn up_rejects_a_bad_listen_address_as_usage() {
    let out = Command::new(BIN).args(["up", "--listen", "not-an-address"]).output().expect("run");
    assert_eq!(out.status.code(), Some(harness::exit_codes::USAGE));
}

const AK: &str = "1234567890abcdef1234567890abcdef";
const BODY_6_1: &str = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;
const NONCE_6_1: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";

#[test]
fn sign_v2_prints_the_known_answer_signature_of_test_vectors_6_1() {
    let out = Command::new(BIN)
        .args(["sign", "v2", "--key", AK, "--url", "http://127.0.0.1:3000/produce", "--body", BODY_6_1])
        .args(["--timestamp", "1680508066618", "--nonce", NONCE_6_1])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains("signature=A3086BF160E99C0F507576161BBE4911A01C1179403F02133EB263559D4530E8"), "{line}");
    assert!(
        line.starts_with(&format!(
            "curl -sS -X POST 'http://127.0.0.1:3000/produce?signature=A3086BF160E99C0F507576161BBE4911A01C1179403F02133EB263559D4530E8&timestamp=1680508066618&nonce={NONCE_6_1}'"
        )),
        "{line}"
    );
    assert!(line.contains(&format!("--data-raw '{BODY_6_1}'")), "{line}");
    assert!(!line.contains(AK), "the key is never printed");
}

#[test]
fn sign_rejects_an_empty_key_and_a_malformed_field() {
    let out = Command::new(BIN)
        .args(["sign", "v2", "--key", "", "--url", "http://h/p", "--activity", "newInstance"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(harness::exit_codes::USAGE));
    let out = Command::new(BIN)
        .args(["sign", "v2", "--key", AK, "--url", "http://h/p", "--activity", "newInstance", "--field", "oops"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(harness::exit_codes::USAGE));
}

#[test]
fn replay_passes_the_probe_cassettes() {
    common::probe_wasm();
    let dir = common::crate_dir().join("tests/cassettes");
    let out = Command::new(BIN).arg("replay").arg(&dir).arg("-f").arg(common::manifest()).output().expect("run");
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.starts_with("CASSETTE"), "{table}");
    assert!(table.contains("resign-and-body-sign") && table.contains("v1-query"), "{table}");
    assert!(table.contains("14 steps: 14 passed, 0 failed"), "{table}");
}

#[test]
fn replay_reports_failures_and_exits_non_zero() {
    common::probe_wasm();
    let dir = common::crate_dir().join("tests/cassettes-failing");
    let out = Command::new(BIN).arg("replay").arg(&dir).arg("-f").arg(common::manifest()).output().expect("run");
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(harness::exit_codes::TEST_FAILURES), "{table}");
    assert!(table.contains("3 steps: 1 passed, 2 failed"), "{table}");
    assert!(table.contains("status 404, expected 200"), "{table}");
    assert!(table.contains("resultCode = \"000000\", expected \"000001\""), "{table}");
    assert!(table.contains("Body-Sign does not verify for the key"), "{table}");
}

#[test]
fn replay_rejects_an_invalid_cassette_before_running() {
    let dir = common::temp_dir("bad-cassette");
    std::fs::write(dir.join("a.json"), r#"{"steps":[{"name":"x","request":{"path":"/"},"expect":{"stauts":200}}]}"#)
        .expect("write");
    let out = Command::new(BIN).arg("replay").arg(&dir).arg("-f").arg(common::manifest()).output().expect("run");
    assert_eq!(out.status.code(), Some(harness::exit_codes::CONFIG));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stauts"));
    let _ = std::fs::remove_dir_all(dir);
}

/// `emulate` against `up` serving the real produce component passes every rule (V2 and V1; kit rules skip).
#[test]
fn emulate_against_up_with_the_produce_component_passes_every_rule() {
    let root = common::crate_dir().join("..");
    let wasm = root.join("target/wasm32-wasip2/wasm/produce.wasm");
    assert!(wasm.exists(), "build it first: cargo build --profile wasm --target wasm32-wasip2 -p produce");
    let rc = memory_runtime_config();
    let manifest = root.join("spin.toml");
    let listen = format!("127.0.0.1:{}", common::free_port());
    let (_up, addr, _, _) = start_up(
        &["--listen", &listen, "-f", &manifest.to_string_lossy(), "--runtime-config-file", &rc.to_string_lossy()],
        &[("SPIN_VARIABLE_ACCESS_KEYS", "1234567890abcdef1234567890abcdef")],
    );
    let dir = common::temp_dir("emulate");
    let (json, html) = (dir.join("report.json"), dir.join("report.html"));
    let out = Command::new(BIN)
        .args(["emulate", &format!("http://{addr}/produce"), "--v1", "--quiet", "--json"])
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .env("KOOGALLERY_KEY", "1234567890abcdef1234567890abcdef")
        .output()
        .expect("run emulate");
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert!(!table.contains("FAIL"), "{table}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json report")).expect("json");
    let rules = report["rules"].as_array().map_or(0, Vec::len);
    assert!(rules >= 40, "{rules} rules");
    assert!(std::fs::read_to_string(&html).expect("html report").contains("<html"));

    // With the wrong key every lifecycle rule fails and the exit code says so.
    let wrong = Command::new(BIN)
        .args(["emulate", &format!("http://{addr}/produce"), "--quiet"])
        .env("KOOGALLERY_KEY", "not-the-key")
        .output()
        .expect("run emulate");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("FAIL"));
}
