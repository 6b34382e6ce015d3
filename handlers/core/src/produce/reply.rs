//! Answers: a [`Reply`] before serialisation, the signed [`Handled`] response and its log-safe [`Summary`].

use super::config::ProduceConfig;
use super::ctx::{Ctx, Deadline};
use super::events;
use super::outbox::DeliveryReport;
use crate::http::Outbound;
use crate::ports::{Backend, Clock, Random};
use crate::signing::body_sign;
use crate::wire::result_code::ResultCode;

/// A handled request: the response to send and a log-safe summary.
#[derive(Debug, Clone)]
pub struct Handled {
    /// The exact response to send.
    pub response: Outbound,
    /// What happened, without secrets or personal data.
    pub summary: Summary,
}

/// A log line's worth of facts about a handled request. Contains no keys, signatures, credentials or contact data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `v2`, `v1` or `-` when the version could not be told.
    pub interface: &'static str,
    /// The activity, when it could be read (truncated, printable ASCII only).
    pub activity: Option<String>,
    /// The answer's result code.
    pub result_code: ResultCode,
    /// The instance concerned, when one was.
    pub instance_id: Option<String>,
    /// Why the request was refused, or an internal fault's kind, or how a success was reached when an operator
    /// should know (an order query refused); never a secret.
    pub reason: Option<String>,
    /// What forward mode's outbox did during the request (counts, dead-lettered kinds, last failure), if anything.
    pub outbox: Option<String>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interface={} activity={} result={}",
            self.interface,
            self.activity.as_deref().unwrap_or("-"),
            self.result_code.as_str()
        )?;
        if let Some(id) = &self.instance_id {
            write!(f, " instance={id}")?;
        }
        if let Some(r) = &self.reason {
            write!(f, " reason={r:?}")?;
        }
        if let Some(o) = &self.outbox {
            write!(f, " outbox=[{o}]")?;
        }
        Ok(())
    }
}

/// A dispatched answer, or the activity whose store access failed (answered `000005`).
pub(crate) type DispatchResult = Result<Reply, (&'static str, crate::ports::StoreError)>;

/// Applies a lifecycle event to an instance and answers `000000`, or `000003` when the event needs an instance
/// that does not exist. Shared by V2 and V1, which differ only in how they name the activities.
#[allow(clippy::too_many_arguments)] // the request's whole context, spelled out
pub(crate) async fn lifecycle_reply<S, B, C, R>(
    interface: &'static str,
    activity: &'static str,
    test: bool,
    instance_id: &str,
    event: &crate::lifecycle::Event,
    cfg: &ProduceConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    run: &mut Run,
) -> DispatchResult
where
    S: crate::ports::Store,
    B: Backend,
    C: Clock,
    R: Random,
{
    let (outcome, _) = events::apply_event(ctx, cfg, &run.deadline, &mut run.report, test, instance_id, event)
        .await
        .map_err(|e| (activity, e))?;
    let code = match outcome {
        crate::lifecycle::Outcome::Done => ResultCode::Success,
        crate::lifecycle::Outcome::NotFound => ResultCode::InstanceNotFound,
    };
    Ok(Reply::code(interface, activity, code).with_instance(instance_id))
}

/// What one request carries besides its ports: its deadline and what its deliveries did.
pub(crate) struct Run {
    pub(crate) deadline: Deadline,
    pub(crate) report: DeliveryReport,
    /// The position in `access_keys` of the key that verified the request (0 until one did): answers are signed,
    /// and credentials encrypted, with the key the marketplace used.
    pub(crate) key_index: usize,
}

impl Run {
    /// The key answers are signed and credentials encrypted with.
    pub(crate) fn answer_key<'c>(&self, cfg: &'c ProduceConfig) -> &'c crate::signing::keys::SecretKey {
        cfg.keys.iter().nth(self.key_index).unwrap_or_else(|| cfg.keys.signing_key())
    }
}

/// An answer before serialisation and signing.
pub(crate) struct Reply {
    interface: &'static str,
    activity: Option<String>,
    result_code: ResultCode,
    instance_id: Option<String>,
    reason: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    /// An answer with a body already serialised (ASCII-only JSON).
    pub(crate) fn new(interface: &'static str, activity: &str, result_code: ResultCode, body: Vec<u8>) -> Self {
        Self { interface, activity: Some(log_safe(activity)), result_code, instance_id: None, reason: None, body }
    }

    /// A `{resultCode, resultMsg}` answer with a specific message (for `000002`, naming the field).
    pub(crate) fn error(interface: &'static str, activity: Option<&str>, code: ResultCode, message: String) -> Self {
        let body = crate::wire::json_out::to_ascii_json(&serde_json::json!({
            "resultCode": code.as_str(),
            "resultMsg": message,
        }));
        Self {
            interface,
            activity: activity.map(log_safe),
            result_code: code,
            instance_id: None,
            reason: Some(message),
            body,
        }
    }

    /// A `{resultCode, resultMsg}` answer with the code's default message.
    pub(crate) fn code(interface: &'static str, activity: &str, code: ResultCode) -> Self {
        let mut r = Self::error(interface, Some(activity), code, code.default_message().to_owned());
        r.reason = None;
        r
    }

    pub(crate) fn result_code(&self) -> ResultCode {
        self.result_code
    }

    pub(crate) fn with_instance(mut self, id: &str) -> Self {
        self.instance_id = Some(log_safe(id));
        self
    }

    pub(crate) fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub(crate) fn finish_with(self, key: &crate::signing::keys::SecretKey, outbox: Option<String>) -> Handled {
        let sign = body_sign::header_value(key, &self.body);
        Handled {
            response: Outbound {
                status: 200,
                headers: vec![
                    ("content-type".to_owned(), "application/json;charset=UTF-8".to_owned()),
                    ("body-sign".to_owned(), sign),
                ],
                body: self.body,
            },
            summary: Summary {
                interface: self.interface,
                activity: self.activity,
                result_code: self.result_code,
                instance_id: self.instance_id,
                reason: self.reason,
                outbox,
            },
        }
    }
}

/// Keeps a value safe to log: printable ASCII, at most 64 characters.
fn log_safe(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_graphic()).take(64).collect()
}
