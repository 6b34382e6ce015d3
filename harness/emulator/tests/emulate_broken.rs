//! `emulate` against deliberately broken endpoints reports exactly the rules each defect breaks.

mod support;

use emulator::Status;
use support::{Defect, options, start};

async fn failures(defect: Defect) -> (Vec<String>, emulator::Report) {
    let server = start(defect).await;
    let report = emulator::run(emulator::EmulateOptions { concurrency: 8, ..options(&server) }).await.expect("run");
    let failed = report.failed_ids().into_iter().map(str::to_owned).collect();
    (failed, report)
}

fn assert_fails(failed: &[String], report: &emulator::Report, expected: &[&str]) {
    assert_eq!(failed, expected, "\n{}", report.table());
    assert!(!report.passed());
    assert_eq!(report.count(Status::Skip), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_forged_signatures_is_reported() {
    let (failed, report) = failures(Defect::AcceptsForgedSignatures).await;
    assert_fails(&failed, &report, &["auth.forged", "auth.wrong_key", "auth.missing_signature"]);
    let forged = report.rule("auth.forged").expect("rule");
    assert_eq!(forged.detail, "expected 000001, got HTTP 200 resultCode 000000 (\"success\")");
    assert_eq!(forged.request.as_deref(), Some("POST /produce activity=orderNotify (random signature)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_per_call_is_reported() {
    let (failed, report) = failures(Defect::NewIdEveryCall).await;
    assert_fails(&failed, &report, &["new.retry", "new.concurrent", "release.final"]);
    let retry = report.rule("new.retry").expect("rule");
    assert!(retry.detail.starts_with("retry got instanceId "), "{}", retry.detail);
    let burst = report.rule("new.concurrent").expect("rule");
    assert!(burst.detail.contains("distinct instanceIds among 8 concurrent duplicates"), "{}", burst.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_body_sign_on_errors_is_reported() {
    let (failed, report) = failures(Defect::OmitsBodySignOnErrors).await;
    assert_fails(&failed, &report, &["answer.body_sign"]);
    let sign = report.rule("answer.body_sign").expect("rule");
    assert!(sign.detail.starts_with("no Body-Sign header ("), "{}", sign.detail);
    // The first error answer of a run is the query of the released instance (000003).
    assert_eq!(sign.request.as_deref(), Some("POST /produce activity=queryInstance (released instance)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_body_sign_is_reported() {
    let (failed, report) = failures(Defect::GarblesBodySign).await;
    assert_fails(&failed, &report, &["answer.body_sign"]);
    let sign = report.rule("answer.body_sign").expect("rule");
    assert!(sign.detail.starts_with("Body-Sign does not verify under the key"), "{}", sign.detail);
    assert_eq!(sign.request.as_deref(), Some("POST /produce activity=newInstance (period order, first call)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_500_for_malformed_json_is_reported() {
    let (failed, report) = failures(Defect::MalformedJson500).await;
    assert_fails(&failed, &report, &["body.malformed_json", "answer.http200", "answer.json", "answer.body_sign"]);
    let rule = report.rule("body.malformed_json").expect("rule");
    assert_eq!(rule.detail, "expected 000002, got HTTP 500 with an empty body");
    assert_eq!(rule.request.as_deref(), Some("POST /produce activity=orderNotify (truncated JSON)"));
    let http = report.rule("answer.http200").expect("rule");
    assert_eq!((http.detail.as_str(), http.request.as_deref()), ("HTTP 500", rule.request.as_deref()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_on_the_oversize_body_is_reported_after_the_5_s_timeout() {
    let started = std::time::Instant::now();
    let (failed, report) = failures(Defect::HangsOnOversize).await;
    assert_fails(&failed, &report, &["body.oversize", "answer.http200", "answer.latency"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "took {:?}", started.elapsed());
    let rule = report.rule("body.oversize").expect("rule");
    assert!(rule.detail.starts_with("no answer within 5 s: no complete answer within 5 s"), "{}", rule.detail);
    assert_eq!(rule.request.as_deref(), Some("POST /produce activity=newInstance (1 MiB body)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_instances_are_polled_until_ready() {
    let (failed, report) = failures(Defect::SlowProvisioning).await;
    assert_fails_none(&failed, &report);
    let query = report.rule("query.ready").expect("rule");
    assert_eq!(
        query.detail,
        "ready: period after 3 polls, one-time after 3 polls, on-demand after 3 polls, concurrent after 3 polls"
    );
}

fn assert_fails_none(failed: &[String], report: &emulator::Report) {
    assert!(failed.is_empty(), "{}", report.table());
    assert!(report.passed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kit_endpoint_that_skips_verification_is_reported() {
    let (failed, report) = failures(Defect::KitSkipsVerification).await;
    assert_fails(&failed, &report, &["kit.forged", "kit.stale", "kit.basic_key", "kit.missing_headers"]);
    let forged = report.rule("kit.forged").expect("rule");
    assert_eq!(forged.detail, "expected 000001, got HTTP 200 resultCode 000000 (\"success\")");
    let path = "/produce/produceAPI/v2/tenantSync";
    assert_eq!(forged.request, Some(format!("POST {path} activity=tenantSync (x-sign under another key)")));
    let missing = report.rule("kit.missing_headers").expect("rule");
    assert_eq!(missing.request, Some(format!("POST {path} activity=tenantSync (no x-nonce)")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_for_a_change_that_changed_nothing_is_reported() {
    let (failed, report) = failures(Defect::KitEventOnEveryCall).await;
    assert_fails(&failed, &report, &["kit.events", "kit.events.replace"]);
    let events = report.rule("kit.events").expect("rule");
    assert!(
        events.detail.ends_with(
            "received (in order): tenant.created, tenant.updated, tenant.updated, tenant.deleted, tenant.deleted, \
             user.created, user.updated, user.revoked"
        ),
        "{}",
        events.detail
    );
    let replace = report.rule("kit.events.replace").expect("rule");
    assert!(
        replace.detail.ends_with("received (in order): org.tree_replaced, org.tree_replaced"),
        "{}",
        replace.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrongly_signed_events_are_reported() {
    let (failed, report) = failures(Defect::KitBadWebhookSignature).await;
    assert_fails(&failed, &report, &["kit.events", "kit.events.replace"]);
    let events = report.rule("kit.events").expect("rule");
    assert!(events.detail.contains("failed its webhook-signature check: signature invalid"), "{}", events.detail);
}
