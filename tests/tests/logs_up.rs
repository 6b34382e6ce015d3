//! All log output of `harness up` serving the produce component through a full marketplace run (every emulator
//! rule, V2 and V1, plus contact data and credentials) contains no key, signature, token, password, phone number or
//! e-mail address.

use koogallery_core::marketplace::v1_time_stamp;
use koogallery_core::ports::system_now_ms;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conformance::{AK, Lifecycle, workspace_root};
use koogallery_core::crypto::aes_cred::{AesBits, CredentialCipher};
use koogallery_core::signing::keys::SecretKey;
use serde_json::{Value, json};

const PHONE: &str = "13912345678";
const EMAIL: &str = "buyer.secret@example.com";

fn harness_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let bin = target.join("release").join("harness");
    assert!(bin.exists(), "{} is missing: build it with `cargo build --release -p harness`", bin.display());
    bin
}

/// One HTTP/1.1 exchange; returns the body.
fn http(port: u16, method: &str, path_and_query: &str, body: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect: {e}"));
    let head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).unwrap_or_else(|e| panic!("send: {e}"));
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap_or_else(|e| panic!("read: {e}"));
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |p| p + 4);
    response.split_off(split)
}

#[test]
fn logs_of_a_full_lifecycle_hold_no_secrets_or_personal_data() {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(3999);
    let dir = std::env::temp_dir().join(format!("koogallery-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let rc = dir.join("runtime-config.toml");
    std::fs::write(&rc, "[key_value_store.default]\ntype = \"memory\"\n").unwrap_or_else(|e| panic!("{e}"));
    let (out_path, err_path) = (dir.join("stdout.log"), dir.join("stderr.log"));
    let file = |p: &PathBuf| std::fs::File::create(p).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(harness_binary())
        .args(["up", "--listen", &format!("127.0.0.1:{port}"), "-f"])
        .arg(workspace_root().join("spin.toml"))
        .arg("--runtime-config-file")
        .arg(&rc)
        .env("SPIN_VARIABLE_ACCESS_KEYS", AK)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(file(&out_path)))
        .stderr(Stdio::from(file(&err_path)))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn harness: {e}"));
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "harness up did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The whole emulator run: V2 and V1 lifecycles, retries, forgeries, malformed bodies.
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let report = rt
        .block_on(emulator::run(emulator::EmulateOptions {
            url: format!("http://127.0.0.1:{port}/produce"),
            key: AK.to_owned(),
            v1: true,
            progress: false,
            ..Default::default()
        }))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(report.passed(), "{}", report.table());

    // V1 contact data, and V2 credentials we then read back.
    let signer = Lifecycle::default();
    let cipher = CredentialCipher::new(&SecretKey::new(AK), AesBits::Aes256);
    let (phone_ct, email_ct) = (cipher.encrypt(PHONE, b"abcdefgh12345678"), cipher.encrypt(EMAIL, b"abcdefgh12345678"));
    let v1 = signer.v1(&[
        ("activity", "newInstance"),
        ("businessId", "log-test"),
        ("customerId", "c1"),
        ("orderId", "CSLOGS"),
        ("productId", "p1"),
        ("mobilePhone", &phone_ct),
        ("email", &email_ct),
        ("timeStamp", &v1_time_stamp(system_now_ms())),
    ]);
    let v1_answer: Value =
        serde_json::from_slice(&http(port, "GET", &format!("/produce?{}", v1.query), b"")).unwrap_or_default();
    assert_eq!(v1_answer["resultCode"], "000000");
    let created = signer.v2(
        &json!({"activity":"newInstance","orderId":"CSLOGS2","orderLineId":"CSLOGS2-000001","businessId":"b"}),
        system_now_ms(),
    );
    let created: Value =
        serde_json::from_slice(&http(port, "POST", &format!("/produce?{}", created.query), &created.body))
            .unwrap_or_default();
    let id = created["instanceId"].as_str().unwrap_or("").to_owned();
    let query = signer.v2(&json!({"activity":"queryInstance","instanceId":id}), system_now_ms());
    let signature = query.query.split('&').next().unwrap_or("").trim_start_matches("signature=").to_owned();
    let queried: Value = serde_json::from_slice(&http(port, "POST", &format!("/produce?{}", query.query), &query.body))
        .unwrap_or_default();
    let password = queried["info"][0]["appInfo"]["password"].as_str().unwrap_or("").to_owned();
    assert!(password.len() >= 8, "{queried}");

    let _ = child.kill();
    let _ = child.wait();
    let logs = std::fs::read_to_string(&out_path).unwrap_or_default()
        + &std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(logs.lines().count() > 100, "the run was logged ({} lines)", logs.lines().count());
    assert!(logs.contains("interface=v2") && logs.contains("interface=v1"), "request summaries are logged");
    for (what, needle) in [
        ("access key", AK),
        ("a request signature", signature.as_str()),
        ("a V1 authToken parameter", "authToken="),
        ("a signature parameter", "signature="),
        ("a Body-Sign value", "sign_type"),
        ("the generated password", password.as_str()),
        ("the phone number", PHONE),
        ("the encrypted phone number", phone_ct.as_str()),
        ("the e-mail address", EMAIL),
        ("an e-mail address at all", "@"),
    ] {
        assert!(!needle.is_empty() && !logs.contains(needle), "the logs contain {what}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
