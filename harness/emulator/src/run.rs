//! One emulator run, start to finish: validate the options, drive every rule in order, write the report files.

use koogallery_core::ports::system_now_ms;
use std::time::Instant;

use anyhow::Context as _;

use crate::options::EmulateOptions;
use crate::receiver::Receiver;
use crate::report::Report;
use crate::rules::Recorder;
use crate::session::Session;
use crate::{answers, kit, legacy_v1, lifecycle, malformed, security};

/// Acts as KooGallery against `opts.url` and returns the conformance report (one entry per rule of
/// [`crate::RULES`]). Also writes the JSON and HTML files when asked. Must be called inside a tokio runtime.
///
/// An endpoint's wrong answers are findings in the report, never errors: check [`Report::passed`] for the verdict.
///
/// # Errors
/// Invalid options (the URL, a key list, `concurrency` below 2, half a kit configuration, `backend_listen`
/// without a secret), a webhook receiver address that cannot be bound, or a report file that cannot be written
/// (the error names the address or file).
pub async fn run(opts: EmulateOptions) -> anyhow::Result<Report> {
    let checked = opts.check().context("invalid emulate options")?;
    let receiver = match &checked.backend {
        Some((addr, secret)) => Some(
            Receiver::start(*addr, secret)
                .await
                .with_context(|| format!("cannot start the webhook receiver on {addr} (backend_listen)"))?,
        ),
        None => None,
    };
    let started_ms = system_now_ms();
    let clock = Instant::now();
    let session = Session::new(&opts, checked, receiver);
    let mut rec = Recorder::new(opts.progress);
    lifecycle::run(&session, &mut rec).await;
    security::run(&session, &mut rec).await;
    malformed::run(&session, &mut rec).await;
    legacy_v1::run(&session, &mut rec, opts.v1).await;
    kit::run(&session, &mut rec).await;
    let log = session.log();
    answers::run(&log, &mut rec);
    let report = Report {
        url: opts.url.trim().to_owned(),
        run_id: session.run.clone(),
        started_ms,
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        requests: log.len(),
        rules: rec.finish(),
    };
    session.close().await;
    if let Some(path) = &opts.json_out {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("cannot write the JSON report to {}", path.display()))?;
    }
    if let Some(path) = &opts.html_out {
        std::fs::write(path, crate::html::render(&report))
            .with_context(|| format!("cannot write the HTML report to {}", path.display()))?;
    }
    Ok(report)
}
