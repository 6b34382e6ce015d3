//! Rules over every answer of the production URL, errors included: HTTP 200, a JSON object with a six-digit
//! `resultCode`, a valid `Body-Sign`, and an answer within the marketplace's 5 s.
//!
//! A request that got no answer at all (refused, reset, timed out) fails `answer.http200` (and `answer.latency`
//! when it timed out); the JSON and signature rules judge the answers that arrived, so one hang is not counted
//! four times.

use crate::rules::Recorder;
use crate::session::{Finding, Logged, in_time};

/// Judges the whole log and records the four `answer.*` rules.
pub(crate) fn run(log: &[Logged], rec: &mut Recorder) {
    let n = log.len();
    rec.record(
        "answer.http200",
        all(log, |l| match &l.status {
            Ok(200) => Ok(()),
            Ok(413) if l.allow_413 => Ok(()),
            Ok(code) => Err(format!("HTTP {code}")),
            Err(e) => Err(e.clone()),
        })
        .map(|()| format!("{n} answers"))
        .into(),
    );
    // JSON shape and signature are judged on the answers that arrived; missing ones fail `answer.http200`.
    let arrived: Vec<Logged> = log.iter().filter(|l| l.status.is_ok()).cloned().collect();
    let m = arrived.len();
    rec.record(
        "answer.json",
        all(&arrived, |l| if l.allow_413 && l.status == Ok(413) { Ok(()) } else { l.json.clone() })
            .map(|()| format!("{m} answers"))
            .into(),
    );
    rec.record(
        "answer.body_sign",
        all(&arrived, |l| if l.allow_413 && l.status == Ok(413) { Ok(()) } else { l.body_sign.clone() })
            .map(|()| format!("{m} answers signed"))
            .into(),
    );
    let slowest = arrived.iter().map(|l| l.elapsed).max().unwrap_or_default();
    let latency = if arrived.is_empty() {
        Err(Finding::general("no answer arrived to judge"))
    } else {
        // Every request counts here, so a timeout (no answer within 5 s) fails this rule too.
        all(log, |l| match &l.status {
            _ if in_time(l.elapsed) => Ok(()),
            Ok(_) => Err(format!("answered after {} ms", l.elapsed.as_millis())),
            Err(e) => Err(e.clone()),
        })
    };
    rec.record("answer.latency", latency.map(|()| format!("slowest {} ms", slowest.as_millis())).into());
}

/// `Ok` when `check` holds for every answer; otherwise the first offender, with how many others failed too.
fn all(log: &[Logged], check: impl Fn(&Logged) -> Result<(), String>) -> Result<(), Finding> {
    let failures: Vec<(&Logged, String)> = log.iter().filter_map(|l| check(l).err().map(|e| (l, e))).collect();
    match failures.first() {
        None if log.is_empty() => Err(Finding::general("no answer arrived to judge")),
        None => Ok(()),
        Some((first, why)) => {
            let more = match failures.len() {
                1 => String::new(),
                k => format!(" ({} of {} answers fail this rule)", k, log.len()),
            };
            Err(Finding { detail: format!("{why}{more}"), request: Some(first.label.clone()) })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::Status;

    fn logged(label: &str, status: Result<u16, String>, sign: Result<(), String>, ms: u64) -> Logged {
        Logged {
            label: label.into(),
            status,
            elapsed: Duration::from_millis(ms),
            json: Ok(()),
            body_sign: sign,
            allow_413: false,
        }
    }

    #[test]
    fn first_offender_is_named_with_a_count() {
        let log = vec![
            logged("a", Ok(200), Ok(()), 5),
            logged("b", Ok(200), Err("no Body-Sign header".into()), 5),
            logged("c", Ok(500), Err("no Body-Sign header".into()), 6000),
        ];
        let mut rec = Recorder::new(false);
        run(&log, &mut rec);
        let r = rec.finish();
        let by_id = |id: &str| r.iter().find(|x| x.id == id).cloned();
        let http = by_id("answer.http200").map(|x| (x.status, x.request, x.detail));
        assert_eq!(http, Some((Status::Fail, Some("c".into()), "HTTP 500".into())));
        let sign = by_id("answer.body_sign").map(|x| (x.status, x.request, x.detail));
        let sign_detail = "no Body-Sign header (2 of 3 answers fail this rule)".to_owned();
        assert_eq!(sign, Some((Status::Fail, Some("b".into()), sign_detail)));
        assert_eq!(by_id("answer.json").map(|x| x.status), Some(Status::Pass));
        assert_eq!(by_id("answer.latency").map(|x| (x.status, x.request)), Some((Status::Fail, Some("c".into()))));
    }

    #[test]
    fn a_missing_answer_fails_http_and_latency_only() {
        let mut hung = logged("hung", Err("no complete answer within 5 s".into()), Err("no answer".into()), 5001);
        hung.json = Err("no answer".into());
        let log = vec![logged("a", Ok(200), Ok(()), 5), hung];
        let mut rec = Recorder::new(false);
        run(&log, &mut rec);
        let failed: Vec<String> = rec.finish().into_iter().filter(|r| r.status == Status::Fail).map(|r| r.id).collect();
        assert_eq!(failed, ["answer.http200", "answer.latency"]);
        let mut rec = Recorder::new(false);
        run(&log[1..], &mut rec);
        assert!(rec.finish().iter().all(|r| r.status == Status::Fail), "nothing arrived: nothing passes");
    }

    #[test]
    fn a_413_is_accepted_only_where_allowed() {
        let mut big = logged("big", Ok(413), Err("no Body-Sign header".into()), 5);
        big.json = Err("HTTP 413 with an empty body".into());
        big.allow_413 = true;
        let mut rec = Recorder::new(false);
        run(&[big.clone()], &mut rec);
        assert!(rec.finish().iter().all(|r| r.status == Status::Pass));
        big.allow_413 = false;
        let mut rec = Recorder::new(false);
        run(&[big], &mut rec);
        assert_eq!(rec.finish().iter().filter(|r| r.status == Status::Fail).count(), 3);
    }
}
