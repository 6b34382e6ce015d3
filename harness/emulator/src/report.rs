//! The conformance report: one line per rule, printable as a table, JSON, or a self-contained HTML page.
//!
//! A rule's `request` names the failing request by method, path and activity only; reports never contain a key,
//! a signature or a request body, so they can be attached to tickets as they are.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

/// Whether a rule holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The endpoint behaved as the marketplace requires.
    Pass,
    /// It did not; `detail` and `request` say where.
    Fail,
    /// Not checked because it was not asked for (V1 without `--v1`, kit syncs without a kit URL and key).
    Skip,
}

impl Status {
    /// `pass`, `fail` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// The verdict on one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleResult {
    /// Stable rule id (see [`crate::RULES`]).
    pub id: String,
    /// What the rule requires.
    pub title: String,
    /// Pass, fail or skip.
    pub status: Status,
    /// What was seen: the evidence for a pass, the reason for a failure or a skip.
    pub detail: String,
    /// The failing request (`METHOD path activity=… (note)`), when one request shows the failure.
    pub request: Option<String>,
}

/// The outcome of one emulator run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The production URL tested.
    pub url: String,
    /// The run's unique tag (part of every order id it used), to find its traffic in the endpoint's logs.
    pub run_id: String,
    /// Start of the run, ms since the Unix epoch.
    pub started_ms: u64,
    /// Wall-clock duration of the run.
    pub duration_ms: u64,
    /// Requests sent to the production URL.
    pub requests: usize,
    /// One entry per rule, in rule order.
    pub rules: Vec<RuleResult>,
}

impl Report {
    /// True when no rule failed (skipped rules do not count as failures). The CLI exits non-zero otherwise.
    pub fn passed(&self) -> bool {
        self.rules.iter().all(|r| r.status != Status::Fail)
    }

    /// How many rules have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.rules.iter().filter(|r| r.status == status).count()
    }

    /// The rules that failed, by id.
    pub fn failed_ids(&self) -> Vec<&str> {
        self.rules.iter().filter(|r| r.status == Status::Fail).map(|r| r.id.as_str()).collect()
    }

    /// Every rule that did not pass (failed or skipped), one line each with its detail and request: what a test
    /// that expects a clean run prints when it is not.
    pub fn not_passed(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| r.status != Status::Pass)
            .map(|r| format!("{} {:?}: {} [{:?}]", r.id, r.status, r.detail, r.request))
            .collect()
    }

    /// The verdict for rule `id`.
    pub fn rule(&self, id: &str) -> Option<&RuleResult> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The plain-text table [`Self::print_table`] prints.
    pub fn table(&self) -> String {
        self.to_string()
    }

    /// Prints the table to stdout.
    pub fn print_table(&self) {
        print!("{self}");
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and numbers cannot fail; an empty object is a safe fallback all the same.
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// `N passed, N failed, N skipped`.
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Skip)
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.rules.iter().map(|r| r.id.len()).max().unwrap_or(4).max(4);
        writeln!(f, "KooGallery conformance: {} (run {})", self.url, self.run_id)?;
        writeln!(f, "{:<6} {:<width$} DETAIL", "STATUS", "RULE")?;
        for r in &self.rules {
            let mut line = String::new();
            let _ = write!(line, "{:<6} {:<width$} {}", r.status.as_str().to_uppercase(), r.id, r.detail);
            if let Some(req) = &r.request {
                let _ = write!(line, " [{req}]");
            }
            writeln!(f, "{line}")?;
        }
        writeln!(f, "{} in {:.1} s, {} requests", self.summary(), self.duration_ms as f64 / 1000.0, self.requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            url: "http://127.0.0.1:3000/produce".into(),
            run_id: "1700000000000ABCD".into(),
            started_ms: 1_700_000_000_000,
            duration_ms: 1234,
            requests: 3,
            rules: vec![
                RuleResult {
                    id: "new.period".into(),
                    title: "t1".into(),
                    status: Status::Pass,
                    detail: "instanceId x".into(),
                    request: None,
                },
                RuleResult {
                    id: "auth.forged".into(),
                    title: "t2".into(),
                    status: Status::Fail,
                    detail: "expected 000001, got HTTP 200 resultCode 000000".into(),
                    request: Some("POST /produce activity=orderNotify (random signature)".into()),
                },
                RuleResult {
                    id: "kit.authSync".into(),
                    title: "t3".into(),
                    status: Status::Skip,
                    detail: "not configured".into(),
                    request: None,
                },
            ],
        }
    }

    #[test]
    fn passed_is_false_on_any_failure_and_skips_do_not_count() {
        let mut r = sample();
        assert!(!r.passed());
        assert_eq!(r.failed_ids(), ["auth.forged"]);
        r.rules.retain(|x| x.status != Status::Fail);
        assert!(r.passed());
        assert_eq!(r.summary(), "1 passed, 0 failed, 1 skipped");
    }

    #[test]
    fn table_has_one_line_per_rule_with_the_failing_request() {
        let t = sample().table();
        let fail = t.lines().find(|l| l.starts_with("FAIL")).unwrap_or_default();
        assert!(fail.contains("auth.forged") && fail.contains("[POST /produce activity=orderNotify"));
        assert_eq!(t.lines().filter(|l| l.starts_with("PASS") || l.starts_with("SKIP")).count(), 2);
        assert!(t.ends_with("1 passed, 1 failed, 1 skipped in 1.2 s, 3 requests\n"));
    }

    #[test]
    fn json_round_trips_with_lowercase_status() {
        let r = sample();
        let json = r.to_json();
        assert!(json.contains(r#""status": "skip""#));
        assert_eq!(serde_json::from_str::<Report>(&json).ok(), Some(r));
    }
}
