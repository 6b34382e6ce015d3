//! One run against one endpoint: signs requests as KooGallery does, sends them, and remembers every answer.
//!
//! Every answer from the production URL is kept in a log (status, timing, JSON shape, `Body-Sign` check) so the
//! `answer.*` rules can judge all of them at the end, errors included. The log holds labels, never keys,
//! signatures or bodies.

use std::sync::Mutex;
use std::time::Duration;

use koogallery_core::http::Inbound;
use koogallery_core::marketplace::{Marketplace, fresh_nonce};
use koogallery_core::ports::system_now_ms;
use koogallery_core::signing::body_sign;
use koogallery_core::signing::keys::KeyRing;
use serde_json::Value;

use crate::client::{HttpClient, Raw, TIMEOUT};
use crate::options::{Checked, EmulateOptions, Target};
use crate::receiver::Receiver;

/// An answer, parsed as far as it parses.
pub(crate) struct Answer {
    /// `METHOD path activity=… (note)`: what was asked, without secrets.
    pub label: String,
    /// The raw exchange.
    pub raw: Raw,
    /// The body, when it is a JSON object.
    pub json: Option<serde_json::Map<String, Value>>,
}

impl Answer {
    fn new(label: String, raw: Raw) -> Self {
        let json = match &raw.reply {
            Ok(r) => match serde_json::from_slice::<Value>(&r.body) {
                Ok(Value::Object(m)) => Some(m),
                _ => None,
            },
            Err(_) => None,
        };
        Self { label, raw, json }
    }

    /// The HTTP status, when an answer arrived.
    pub fn status(&self) -> Option<u16> {
        self.raw.reply.as_ref().ok().map(|r| r.status)
    }

    /// A string field of the JSON body.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.json.as_ref()?.get(name)?.as_str()
    }

    /// `resultCode`, when the body has one.
    pub fn code(&self) -> Option<&str> {
        self.field("resultCode")
    }

    /// `resultMsg`, or `""`.
    pub fn message(&self) -> &str {
        self.field("resultMsg").unwrap_or("")
    }

    /// True for an HTTP 200 JSON answer with this `resultCode`.
    pub fn is(&self, code: &str) -> bool {
        self.status() == Some(200) && self.code() == Some(code)
    }

    /// A short description of what came back, for a report line.
    pub fn describe(&self) -> String {
        match &self.raw.reply {
            Err(e) => format!("{e} (after {} ms)", self.raw.elapsed.as_millis()),
            Ok(r) => match (self.code(), &self.json) {
                (Some(code), _) => {
                    let msg: String = self.message().chars().take(120).collect();
                    if msg.is_empty() {
                        format!("HTTP {} resultCode {code}", r.status)
                    } else {
                        format!("HTTP {} resultCode {code} ({msg:?})", r.status)
                    }
                }
                (None, Some(_)) => format!("HTTP {} JSON without a resultCode", r.status),
                (None, None) if r.body.is_empty() => format!("HTTP {} with an empty body", r.status),
                (None, None) => format!("HTTP {} with a body that is not a JSON object", r.status),
            },
        }
    }
}

/// Why a rule failed: what was wrong and which request showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub detail: String,
    pub request: Option<String>,
}

impl Finding {
    /// A failure shown by `answer`.
    pub fn at(answer: &Answer, detail: impl Into<String>) -> Self {
        Self { detail: detail.into(), request: Some(answer.label.clone()) }
    }

    /// A failure not tied to one request (a prerequisite missing).
    pub fn general(detail: impl Into<String>) -> Self {
        Self { detail: detail.into(), request: None }
    }
}

/// Checks that `answer` is HTTP 200 with `resultCode` `code`.
pub(crate) fn expect(answer: &Answer, code: &str) -> Result<(), Finding> {
    if answer.is(code) {
        Ok(())
    } else {
        Err(Finding::at(answer, format!("expected {code}, got {}", answer.describe())))
    }
}

/// Checks that `answer` carries a `Body-Sign` valid under one of `keys` (the kit key for kit answers).
pub(crate) fn expect_body_sign(answer: &Answer, keys: &KeyRing, which: &str) -> Result<(), Finding> {
    let Ok(reply) = &answer.raw.reply else {
        return Err(Finding::at(answer, format!("no answer to check Body-Sign on: {}", answer.describe())));
    };
    match reply.header(body_sign::HEADER_NAME) {
        None => Err(Finding::at(answer, format!("{} without a Body-Sign header", answer.describe()))),
        Some(h) => body_sign::verify(h, &reply.body, keys)
            .map_err(|e| Finding::at(answer, format!("Body-Sign does not verify under the {which}: {e}"))),
    }
}

/// Checks `000002` and that `resultMsg` names `field`.
pub(crate) fn expect_invalid_naming(answer: &Answer, field: &str) -> Result<(), Finding> {
    expect(answer, "000002")?;
    if answer.message().contains(field) {
        Ok(())
    } else {
        Err(Finding::at(answer, format!("000002 but resultMsg {:?} does not name {field}", answer.message())))
    }
}

/// Checks `000000` with a usable `instanceId` and returns it.
pub(crate) fn expect_instance(answer: &Answer) -> Result<String, Finding> {
    expect(answer, "000000")?;
    match answer.field("instanceId") {
        Some(id) if !id.trim().is_empty() && id.chars().count() <= 64 => Ok(id.to_owned()),
        Some(id) if !id.trim().is_empty() => {
            Err(Finding::at(answer, format!("instanceId is {} characters (max 64)", id.chars().count())))
        }
        _ => Err(Finding::at(answer, "000000 without an instanceId")),
    }
}

/// One production-URL answer as the `answer.*` rules see it.
#[derive(Debug, Clone)]
pub(crate) struct Logged {
    pub label: String,
    /// HTTP status, or why there was none.
    pub status: Result<u16, String>,
    pub elapsed: Duration,
    /// The body is a JSON object with a six-digit string `resultCode`.
    pub json: Result<(), String>,
    /// `Body-Sign` is present and valid under one of the keys.
    pub body_sign: Result<(), String>,
    /// HTTP 413 without a JSON body is acceptable for this request (the oversize body).
    pub allow_413: bool,
}

/// The state of one run.
pub(crate) struct Session {
    client: HttpClient,
    target: Target,
    keys: KeyRing,
    marketplace: Marketplace,
    kit: Option<(Target, Marketplace)>,
    /// Unique per run: order ids are built from it, because the endpoint's state outlives the run.
    pub run: String,
    pub window_ms: u64,
    pub concurrency: usize,
    pub kit_rsa_public_key: Option<String>,
    receiver: Option<Receiver>,
    log: Mutex<Vec<Logged>>,
}

impl Session {
    /// A session for validated options, with the webhook receiver when one runs.
    pub fn new(opts: &EmulateOptions, checked: Checked, receiver: Option<Receiver>) -> Self {
        let tag: String = fresh_nonce().chars().take(4).collect();
        Self {
            client: HttpClient::new(),
            marketplace: Marketplace::new(checked.keys.clone()),
            target: checked.target,
            keys: checked.keys,
            kit: checked.kit.map(|(t, k)| (t, Marketplace::new(k))),
            run: format!("{}{tag}", system_now_ms()),
            window_ms: opts.timestamp_window_ms,
            concurrency: opts.concurrency,
            kit_rsa_public_key: opts.kit_rsa_public_key.clone(),
            receiver,
            log: Mutex::new(Vec::new()),
        }
    }

    /// The production URL's path (`/produce`).
    pub fn path(&self) -> &str {
        &self.target.path
    }

    /// The keys answers must be signed with.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Whether kit syncs are configured.
    pub fn kit_configured(&self) -> bool {
        self.kit.is_some()
    }

    /// The production URL.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The marketplace signing with the basic-interface key.
    pub fn marketplace(&self) -> &Marketplace {
        &self.marketplace
    }

    /// The kit production address and the marketplace signing with the kit key, when kit syncs are configured.
    pub fn kit_side(&self) -> Option<(&Target, &Marketplace)> {
        self.kit.as_ref().map(|(t, m)| (t, m))
    }

    /// The webhook receiver, when one runs.
    pub fn receiver(&self) -> Option<&Receiver> {
        self.receiver.as_ref()
    }

    /// Ends the session: stops the webhook receiver and waits until its address is free again.
    pub async fn close(self) {
        if let Some(receiver) = self.receiver {
            receiver.stop().await;
        }
    }

    /// A V2 request for `body`, signed now with a fresh nonce.
    pub fn sign_v2(&self, body: &[u8]) -> Inbound {
        self.marketplace.v2(&self.target.path, body, system_now_ms(), &fresh_nonce())
    }

    /// A V2 request signed at `timestamp_ms` with `nonce`.
    pub fn sign_v2_at(&self, body: &[u8], timestamp_ms: u64, nonce: &str) -> Inbound {
        self.marketplace.v2(&self.target.path, body, timestamp_ms, nonce)
    }

    /// A V1 request (GET with `authToken`) for `params`.
    pub fn sign_v1(&self, params: &[(&str, &str)]) -> Inbound {
        self.marketplace.v1(&self.target.path, params)
    }

    /// The label of a request: method, path, activity and a note; never a key or signature.
    pub fn label(&self, method: &str, activity: &str, note: &str) -> String {
        let mut label = format!("{method} {} activity={activity}", self.target.path);
        if !note.is_empty() {
            label.push_str(" (");
            label.push_str(note);
            label.push(')');
        }
        label
    }

    /// Signs `body` now and sends it to the production URL.
    pub async fn v2(&self, activity: &str, note: &str, body: &[u8]) -> Answer {
        self.send(self.sign_v2(body), self.label("POST", activity, note), false).await
    }

    /// Sends a prepared request to the production URL and logs the answer for the `answer.*` rules.
    pub async fn send(&self, req: Inbound, label: String, allow_413: bool) -> Answer {
        let raw = self.client.send(&self.target.origin, &req).await;
        let answer = Answer::new(label, raw);
        let logged = self.judge(&answer, allow_413);
        if let Ok(mut log) = self.log.lock() {
            log.push(logged);
        }
        answer
    }

    /// Signs `body` as a kit sync and sends it to `{kit_url}/produceAPI/v2/<sync>`; `None` when kit syncs are not
    /// configured. Kit answers are not part of the production-URL log.
    pub async fn kit(&self, sync: &str, note: &str, body: &[u8]) -> Option<Answer> {
        let (target, mp) = self.kit.as_ref()?;
        let path = target.kit_path(sync);
        let req = mp.kit(&path, body, system_now_ms(), &fresh_nonce());
        let mut label = format!("POST {path} activity={sync}");
        if !note.is_empty() {
            label.push_str(&format!(" ({note})"));
        }
        let raw = self.client.send(&target.origin, &req).await;
        Some(Answer::new(label, raw))
    }

    /// Sends a prepared request to `origin` without logging it for the `answer.*` rules (kit answers are signed
    /// with the kit key and judged by the kit rules).
    pub async fn send_unlogged(&self, origin: &str, req: Inbound, label: String) -> Answer {
        let raw = self.client.send(origin, &req).await;
        Answer::new(label, raw)
    }

    /// Every production-URL answer so far.
    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn judge(&self, answer: &Answer, allow_413: bool) -> Logged {
        let (status, json, body_sign) = match &answer.raw.reply {
            Err(e) => (Err(e.clone()), Err("no answer".to_owned()), Err("no answer".to_owned())),
            Ok(r) => {
                let json = match answer.code() {
                    Some(c) if c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
                    Some(c) => Err(format!("resultCode {c:?} is not six digits")),
                    None => Err(answer.describe()),
                };
                let sign = match r.header(body_sign::HEADER_NAME) {
                    None => Err("no Body-Sign header".to_owned()),
                    Some(h) => body_sign::verify(h, &r.body, &self.keys)
                        .map_err(|e| format!("Body-Sign does not verify under the key: {e}")),
                };
                (Ok(r.status), json, sign)
            }
        };
        Logged { label: answer.label.clone(), status, elapsed: answer.raw.elapsed, json, body_sign, allow_413 }
    }
}

/// Whether `elapsed` is within the marketplace's timeout.
pub(crate) fn in_time(elapsed: Duration) -> bool {
    elapsed < TIMEOUT
}

/// Rewrites the query string of `req`: `edit` gets the raw (still encoded) `name=value` pairs.
pub(crate) fn edit_query(mut req: Inbound, edit: impl FnOnce(&mut Vec<(String, String)>)) -> Inbound {
    let mut pairs: Vec<(String, String)> = req
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    edit(&mut pairs);
    req.query = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_query_keeps_other_parameters_and_order() {
        let req = Inbound { query: "signature=AB&timestamp=1&nonce=N".into(), ..Default::default() };
        let req = edit_query(req, |p| p.retain(|(k, _)| k != "timestamp"));
        assert_eq!(req.query, "signature=AB&nonce=N");
        let req = edit_query(req, |p| {
            if let Some(sig) = p.iter_mut().find(|(k, _)| k == "signature") {
                sig.1 = "CD".into();
            }
        });
        assert_eq!(req.query, "signature=CD&nonce=N");
    }
}
