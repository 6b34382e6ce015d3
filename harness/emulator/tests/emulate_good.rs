//! `emulate` against a conforming endpoint (core's produce handler behind hyper) passes every rule.

mod support;

use std::time::Instant;

use emulator::{RULES, Report, Status};
use support::{Defect, options, start};

fn ids(report: &Report) -> Vec<&str> {
    report.rules.iter().map(|r| r.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conforming_endpoint_passes_every_rule_and_reports_are_written() {
    let server = start(Defect::None).await;
    let dir = std::env::temp_dir().join(format!("emulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (json_path, html_path) = (dir.join("report.json"), dir.join("report.html"));
    let opts = emulator::EmulateOptions {
        json_out: Some(json_path.clone()),
        html_out: Some(html_path.clone()),
        ..options(&server)
    };
    let started = Instant::now();
    let report = emulator::run(opts).await.expect("run");
    let took = started.elapsed();
    eprintln!("{}", report.table());
    eprintln!("full run (V2 + V1 + kit, concurrency 20): {} ms, {} requests", took.as_millis(), report.requests);

    let not_passed: Vec<String> = report.not_passed();
    assert!(not_passed.is_empty(), "{}", not_passed.join("\n"));
    assert!(report.passed());
    assert_eq!(ids(&report), RULES.iter().map(|r| r.id).collect::<Vec<_>>(), "every rule once, in order");
    assert!(report.requests > 80, "{} requests", report.requests);

    let json = std::fs::read_to_string(&json_path).expect("JSON report written");
    assert_eq!(serde_json::from_str::<Report>(&json).ok().as_ref(), Some(&report));
    let html = std::fs::read_to_string(&html_path).expect("HTML report written");
    assert!(html.contains("PASSED") && html.contains("nonce.replayed"));
    for text in [json.as_str(), html.as_str(), report.table().as_str()] {
        assert!(!text.contains(support::KEY) && !text.contains(support::KIT_KEY), "a key leaked into a report");
        assert!(!text.contains("signature="), "a signature leaked into a report");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfigured_v1_and_kit_are_skipped_not_passed() {
    let server = start(Defect::None).await;
    let opts = emulator::EmulateOptions {
        v1: false,
        kit_url: None,
        kit_key: None,
        kit_rsa_public_key: None,
        backend_listen: None,
        concurrency: 4,
        ..options(&server)
    };
    let report = emulator::run(opts).await.expect("run");
    let skipped: Vec<&str> = report.rules.iter().filter(|r| r.status == Status::Skip).map(|r| r.id.as_str()).collect();
    let expected: Vec<&str> =
        RULES.iter().map(|r| r.id).filter(|id| id.starts_with("v1.") || id.starts_with("kit.")).collect();
    assert_eq!(skipped, expected);
    assert!(report.passed(), "{}", report.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_events_are_skipped_without_a_receiver_and_fail_without_events() {
    let server = start(Defect::None).await;
    let opts = emulator::EmulateOptions { v1: false, backend_listen: None, concurrency: 2, ..options(&server) };
    let report = emulator::run(opts).await.expect("run");
    let skipped: Vec<&str> = report.rules.iter().filter(|r| r.status == Status::Skip).map(|r| r.id.as_str()).collect();
    assert!(skipped.ends_with(&["kit.events", "kit.events.replace"]), "{skipped:?}");
    let events = report.rule("kit.events").expect("rule");
    assert!(events.detail.contains("--backend-listen"), "{}", events.detail);

    // A receiver the endpoint does not send to: nothing arrives, and the report says where to look.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let opts = emulator::EmulateOptions {
        v1: false,
        backend_listen: Some(format!("127.0.0.1:{port}")),
        concurrency: 2,
        ..options(&server)
    };
    let report = emulator::run(opts).await.expect("run");
    assert_eq!(report.failed_ids(), ["kit.events", "kit.events.replace"], "{}", report.table());
    let events = report.rule("kit.events").expect("rule");
    assert!(events.detail.contains("received (in order): none"), "{}", events.detail);
    assert!(events.detail.contains(&format!("backend_url http://127.0.0.1:{port}")), "{}", events.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_without_the_public_key_accepts_only_the_documented_000101() {
    let server = start(Defect::None).await;
    let opts = emulator::EmulateOptions { v1: false, kit_rsa_public_key: None, concurrency: 2, ..options(&server) };
    let report = emulator::run(opts).await.expect("run");
    let app = report.rule("kit.applicationSync").expect("rule");
    assert_eq!(app.status, Status::Pass, "{}", app.detail);
    assert!(app.detail.contains("000101"), "{}", app.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_are_an_error_not_a_report() {
    let bad =
        emulator::EmulateOptions { url: "https://example.com/produce".into(), key: "k".into(), ..Default::default() };
    let e = emulator::run(bad).await.expect_err("https refused");
    assert!(format!("{e:#}").contains("http://"), "{e:#}");
    let no_key = emulator::EmulateOptions { url: "http://127.0.0.1:9/p".into(), ..Default::default() };
    assert!(emulator::run(no_key).await.is_err());
    let no_secret = emulator::EmulateOptions {
        url: "http://127.0.0.1:9/p".into(),
        key: "k".into(),
        backend_listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let e = emulator::run(no_secret).await.expect_err("a receiver needs the secret");
    assert!(format!("{e:#}").contains("backend_secret"), "{e:#}");
    // An address already in use is an error naming it, before any request is sent.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let busy = emulator::EmulateOptions {
        url: "http://127.0.0.1:9/p".into(),
        key: "k".into(),
        backend_listen: Some(addr.to_string()),
        backend_secret: Some("s".into()),
        ..Default::default()
    };
    let e = emulator::run(busy).await.expect_err("address in use");
    assert!(format!("{e:#}").contains(&addr.to_string()), "{e:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_passes_nothing_and_fails_quickly() {
    // Bind and drop a listener to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let opts = emulator::EmulateOptions {
        url: format!("http://127.0.0.1:{port}/produce"),
        key: support::KEY.into(),
        progress: false,
        concurrency: 2,
        ..Default::default()
    };
    let started = Instant::now();
    let report = emulator::run(opts).await.expect("run");
    assert!(started.elapsed().as_secs() < 20, "took {:?}", started.elapsed());
    let not_failed: Vec<&str> =
        report.rules.iter().filter(|r| r.status == Status::Pass).map(|r| r.id.as_str()).collect();
    assert!(not_failed.is_empty(), "nothing can pass without an endpoint: {not_failed:?}");
    assert!(!report.passed());
    let new = report.rule("new.period").expect("rule");
    assert!(new.detail.contains("no answer"), "{}", new.detail);
    assert_eq!(new.request.as_deref(), Some("POST /produce activity=newInstance (period order, first call)"));
}
