//! The conformance rules, in the order they run, and the verdict each produces.
//!
//! Invariant: every run reports every rule of [`RULES`] exactly once, in this order, so reports of different
//! runs and endpoints line up.

use std::io::Write as _;

use crate::report::{RuleResult, Status};
use crate::session::Finding;

/// A rule: a stable id (for scripts and diffs) and what it checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDef {
    /// Stable identifier, e.g. `nonce.replayed`.
    pub id: &'static str,
    /// One line saying what must hold.
    pub title: &'static str,
}

const fn rule(id: &'static str, title: &'static str) -> RuleDef {
    RuleDef { id, title }
}

/// Every rule, in the order it runs.
pub const RULES: &[RuleDef] = &[
    rule("new.period", "newInstance for a period order answers 000000 with an instanceId"),
    rule(
        "new.one_time",
        "newInstance for a one-time order (orderInfo chargingMode ONE_TIME) answers 000000 with an instanceId",
    ),
    rule(
        "new.on_demand",
        "newInstance for an on-demand order (orderInfo chargingMode ON_DEMAND) answers 000000 with an instanceId",
    ),
    rule("new.retry", "newInstance retries with a fresh businessId and nonce return the same instanceId"),
    rule("new.concurrent", "concurrent duplicate newInstance calls converge on one instanceId"),
    rule(
        "query.ready",
        "queryInstance answers 000000 with info[].appInfo.frontEndUrl once ready (000004 while pending)",
    ),
    rule(
        "refresh.scenes",
        "refreshInstance answers 000000 for each scene (TRIAL_TO_FORMAL, RENEWAL, UNSUBSCRIBE_RENEWAL_PERIOD, RENEWAL_CHANGE)",
    ),
    rule("refresh.repeat", "a repeated refreshInstance for the same order answers 000000"),
    rule("status.freeze", "updateInstanceStatus FREEZE answers 000000, and 000000 again when repeated"),
    rule("status.unfreeze", "updateInstanceStatus UNFREEZE answers 000000, and 000000 again when repeated"),
    rule("upgrade", "upgradeInstance answers 000000, and 000000 again when repeated"),
    rule("change_check", "changeInstanceCheck answers 000000 for a live instance"),
    rule("order_notify", "orderNotify answers 000000, and 000000 again when repeated"),
    rule(
        "reorder",
        "out-of-order events (unfreeze while active, renew and upgrade while frozen, an old renewal again) answer 000000",
    ),
    rule("release", "releaseInstance answers 000000"),
    rule("release.repeat", "a repeated releaseInstance answers 000000"),
    rule("release.unknown", "releaseInstance for an instanceId that was never created answers 000000"),
    rule(
        "release.final",
        "a released instance is no longer reported, and a late newInstance retry keeps its instanceId",
    ),
    rule("auth.forged", "a forged signature (random, or made for another body) answers 000001"),
    rule("auth.wrong_key", "a request signed with another key answers 000001"),
    rule("auth.missing_signature", "a request without signature answers 000001"),
    rule("time.stale_past", "a timestamp window+1 s in the past answers 000002"),
    rule("time.stale_future", "a timestamp window+1 s in the future answers 000002"),
    rule("time.missing", "a request without timestamp answers 000002"),
    rule("nonce.missing", "a request without nonce answers 000002"),
    rule("nonce.replayed", "a replayed nonce is refused (not 000000)"),
    rule("body.malformed_json", "a body that is not valid JSON answers 000002"),
    rule("body.not_object", "a JSON body that is not an object answers 000002"),
    rule("body.unknown_activity", "an unknown activity answers 000002 naming activity"),
    rule("body.missing_field", "a missing mandatory field answers 000002 naming the field"),
    rule("body.overlong_field", "an over-long field answers 000002 naming the field"),
    rule("body.oversize", "a 1 MiB body answers 000002 or HTTP 413 within 5 s, never a hang or a 5xx"),
    rule(
        "v1.new",
        "V1 newInstance (authToken) answers 000000 with an instanceId, the same one on retry, and encryptType",
    ),
    rule("v1.query", "V1 queryInstance answers 000000 with appInfo whose credentials decrypt with the key"),
    rule("v1.refresh", "V1 refreshInstance answers 000000, and 000000 again when repeated"),
    rule("v1.expire", "V1 expireInstance answers 000000, and 000000 again when repeated"),
    rule("v1.upgrade", "V1 upgrade answers 000000, and 000000 again when repeated"),
    rule("v1.release", "V1 releaseInstance answers 000000, and 000000 again when repeated"),
    rule("v1.auth", "V1 requests with a wrong or tampered authToken answer 000001"),
    rule("kit.tenantSync", "kit tenantSync (x-sign) answers 000000, and 000000 again when repeated"),
    rule(
        "kit.applicationSync",
        "kit applicationSync (x-sign, RSA clientSecret) answers 000000, and again when repeated",
    ),
    rule("kit.authSync", "kit authSync (x-sign) answers 000000, and 000000 again when repeated"),
    rule("kit.singleOrgSync", "kit singleOrgSync (x-sign) answers 000000, and 000000 again when repeated"),
    rule("kit.allOrgSync", "kit allOrgSync (x-sign) answers 000000, and 000000 again when repeated"),
    rule(
        "kit.v1.tenantSync",
        "kit V1 tenantSync (authToken header) answers 000000 with a Body-Sign under the kit key, also when repeated",
    ),
    rule(
        "kit.v1.applicationSync",
        "kit V1 applicationSync (authToken header) answers 000000 with a Body-Sign under the kit key, also when repeated",
    ),
    rule(
        "kit.v1.authSync",
        "kit V1 authSync (userList as a string, extension object) answers 000000 with a Body-Sign under the kit key",
    ),
    rule(
        "kit.v1.singleOrgSync",
        "kit V1 singleOrgSync (authToken header) answers 000000 with a Body-Sign under the kit key, also when repeated",
    ),
    rule(
        "kit.v1.allOrgSync",
        "kit V1 allOrgSync (orgInfo as a string, name for orgName) answers 000000 with a Body-Sign under the kit key",
    ),
    rule(
        "kit.production_url",
        "a kit tenantSync with x-sign headers posted to the production URL itself answers 000000 (kit Body-Sign)",
    ),
    rule("kit.forged", "a kit sync whose x-sign was made with another key or for another body answers 000001"),
    rule("kit.stale", "a kit sync whose x-timestamp is 10 minutes old or ahead answers 000002"),
    rule(
        "kit.basic_key",
        "a kit sync signed with the basic-interface key (x-sign, or a V2 query signature) answers 000001",
    ),
    rule("kit.missing_headers", "a kit sync without x-nonce, x-timestamp or x-sign answers 000002"),
    rule(
        "kit.events",
        "forward mode: tenant add, add, modify, delete, delete and user add, add, revoke send exactly one event per change",
    ),
    rule("kit.events.replace", "forward mode: the same allOrgSync twice sends exactly one org.tree_replaced"),
    rule("answer.http200", "every answer is HTTP 200 (413 allowed for the oversize body)"),
    rule("answer.json", "every answer is a JSON object with a six-digit resultCode"),
    rule("answer.body_sign", "every answer carries a Body-Sign valid for the key, errors included"),
    rule("answer.latency", "every answer arrives within 5 s"),
];

/// The outcome of checking one rule.
pub(crate) enum Verdict {
    /// Holds; the text says what was seen.
    Pass(String),
    /// Broken; what and where.
    Fail(Finding),
    /// Not checked, and why (not configured).
    Skip(String),
}

impl From<Result<String, Finding>> for Verdict {
    fn from(r: Result<String, Finding>) -> Self {
        match r {
            Ok(detail) => Verdict::Pass(detail),
            Err(f) => Verdict::Fail(f),
        }
    }
}

/// Collects verdicts in rule order and prints a progress line per rule.
pub(crate) struct Recorder {
    results: Vec<RuleResult>,
    progress: bool,
}

impl Recorder {
    pub fn new(progress: bool) -> Self {
        Self { results: Vec::with_capacity(RULES.len()), progress }
    }

    /// Records the verdict for `id`, which must be the next rule of [`RULES`] (a test holds the run to this).
    pub fn record(&mut self, id: &'static str, verdict: Verdict) {
        let title = RULES.iter().find(|r| r.id == id).map_or("", |r| r.title);
        let (status, detail, request) = match verdict {
            Verdict::Pass(d) => (Status::Pass, d, None),
            Verdict::Fail(f) => (Status::Fail, f.detail, f.request),
            Verdict::Skip(d) => (Status::Skip, d, None),
        };
        if self.progress {
            let n = self.results.len() + 1;
            let word = match status {
                Status::Pass => "ok".to_owned(),
                Status::Skip => "skip".to_owned(),
                Status::Fail => format!("FAIL: {detail}"),
            };
            // Progress is best effort: a closed stderr must not abort the run.
            let _ = writeln!(std::io::stderr().lock(), "[{n}/{}] {id} … {word}", RULES.len());
        }
        self.results.push(RuleResult { id: id.to_owned(), title: title.to_owned(), status, detail, request });
    }

    /// The results, in order.
    pub fn finish(self) -> Vec<RuleResult> {
        self.results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
    }
}
