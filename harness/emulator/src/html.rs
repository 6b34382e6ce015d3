//! The report as a single HTML page: inline CSS, no scripts, no external assets, so it can be mailed or archived
//! as one file. Every report string is escaped.

use std::fmt::Write as _;

use crate::report::{Report, Status};

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1f2328}\
h1{font-size:1.4rem;margin-bottom:.2rem}.meta{color:#59636e;margin:.2rem 0 1rem}\
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:4px;font-weight:600;color:#fff}\
.verdict.ok{background:#1a7f37}.verdict.bad{background:#cf222e}\
table{border-collapse:collapse;width:100%;margin-top:1rem}th,td{border-bottom:1px solid #d1d9e0;\
padding:.35rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}th{background:#f6f8fa}\
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}\
.s{font-weight:600;text-transform:uppercase;font-size:.8rem}.pass .s{color:#1a7f37}.fail .s{color:#cf222e}\
.skip .s{color:#9a6700}tr.fail{background:#fff5f5}.req{color:#59636e}";

/// Renders `report` as a complete HTML document.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(4096 + report.rules.len() * 256);
    let verdict = if report.passed() { ("ok", "PASSED") } else { ("bad", "FAILED") };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>KooGallery conformance: {url}</title><style>{STYLE}</style></head><body>\n\
         <h1>KooGallery conformance report</h1>\n\
         <p class=\"meta\"><code>{url}</code> &middot; run <code>{run}</code> &middot; {secs:.1} s &middot; \
         {requests} requests</p>\n<p><span class=\"verdict {class}\">{word}</span> {summary}</p>\n\
         <table><thead><tr><th>Status</th><th>Rule</th><th>Requirement</th><th>Detail</th></tr></thead><tbody>\n",
        url = escape(&report.url),
        run = escape(&report.run_id),
        secs = report.duration_ms as f64 / 1000.0,
        requests = report.requests,
        class = verdict.0,
        word = verdict.1,
        summary = escape(&report.summary()),
    );
    for r in &report.rules {
        let class = match r.status {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        };
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td class=\"s\">{status}</td><td><code>{id}</code></td><td>{title}</td><td>{detail}",
            status = r.status.as_str(),
            id = escape(&r.id),
            title = escape(&r.title),
            detail = escape(&r.detail),
        );
        if let Some(req) = &r.request {
            let _ = write!(out, "<br><span class=\"req\">request: <code>{}</code></span>", escape(req));
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody></table>\n</body></html>\n");
    out
}

/// Escapes text for HTML element content and double-quoted attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RuleResult;

    #[test]
    fn page_is_self_contained_and_escapes_report_text() {
        let report = Report {
            url: "http://h/p".into(),
            run_id: "r".into(),
            started_ms: 0,
            duration_ms: 0,
            requests: 1,
            rules: vec![RuleResult {
                id: "body.not_object".into(),
                title: "t".into(),
                status: Status::Fail,
                detail: "resultMsg \"<script>alert(1)</script>\"".into(),
                request: Some("POST /p activity=<x>".into()),
            }],
        };
        let html = render(&report);
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<style>"));
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
        assert!(!html.contains("src=") && !html.contains("href=") && !html.contains("@import"));
        assert!(html.contains("FAILED") && html.contains("activity=&lt;x&gt;"));
    }
}
