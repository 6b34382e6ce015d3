//! Cassettes: recorded request sequences replayed against the components, with expectations. The file format is
//! documented in `harness/CASSETTES.md`.
//!
//! 1. [`load_dir`] reads and validates every `*.json` in a directory (all before running any).
//! 2. [`run`] gives each cassette a fresh [`App`](crate::App) (memory stores, a virtual clock), re-signs each step's request
//!    under that clock, sends it and checks the expectations. Steps of one cassette share the app, so state
//!    carries over. [`run_on`] does the same against any [`Target`], such as a `spin up` or `harness up` process
//!    whose clock the caller pins.
//! 3. Each step yields a [`StepResult`] with the response; a failed expectation is a finding, reported, never an
//!    error.

use crate::app::AppBuilder;
use crate::clock::VirtualClock;
use crate::kv::MemoryKv;
use anyhow::Context as _;
use bytes::Bytes;
use koogallery_core::marketplace::{Marketplace, fresh_nonce, v1_time_stamp};
use koogallery_core::ports::system_now_ms;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why a cassette file was rejected (before anything ran).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CassetteError {
    /// The directory or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not a valid cassette.
    #[error("invalid cassette {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (with line and column for JSON errors).
        reason: String,
    },
    /// The directory has no `*.json` files.
    #[error("no cassettes (*.json) in {0}")]
    Empty(PathBuf),
}

/// A signing scheme a cassette step can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Scheme {
    /// Basic interfaces, V2 (query signature).
    V2,
    /// Legacy V1 (`authToken` query parameter).
    V1,
    /// Joint-operation kit syncs (`x-sign` headers).
    Kit,
    /// Joint-operation kit syncs, V1 (`authToken` header over the body's top-level fields, HMAC key = kit key +
    /// the body's `timeStamp`). Written `kit_v1`.
    #[serde(rename = "kit_v1")]
    KitV1,
    /// No signature.
    None,
}

/// How a step's request is signed before it is sent.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// The scheme.
    pub scheme: Scheme,
    /// The key (basic-interface key for v2/v1, kit key for kit/kit_v1). Not needed for `none`.
    #[serde(default)]
    pub key: String,
    /// A fixed nonce (v2/kit); fresh per step if absent.
    #[serde(default)]
    pub nonce: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("scheme", &self.scheme).field("key", &"[REDACTED]").finish_non_exhaustive()
    }
}

/// A step's request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The method (default `GET`).
    #[serde(default = "default_method")]
    pub method: String,
    /// The path, e.g. `/produce`.
    pub path: String,
    /// The raw query string without `?` (signature parameters are replaced when re-signing).
    #[serde(default)]
    pub query: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body as text.
    #[serde(default)]
    pub body: Option<String>,
    /// The body as JSON (sent compact, in the written key order); exclusive with `body`.
    #[serde(default)]
    pub body_json: Option<Value>,
}

fn default_method() -> String {
    "GET".to_owned()
}

/// What a step's response must satisfy. Every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The status code.
    #[serde(default)]
    pub status: Option<u16>,
    /// The exact body text.
    #[serde(default)]
    pub body: Option<String>,
    /// Texts the body must contain.
    #[serde(default)]
    pub body_contains: Vec<String>,
    /// Exact header values (names case-insensitive).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Top-level JSON fields of the body and their values.
    #[serde(default)]
    pub json: BTreeMap<String, Value>,
    /// Top-level JSON fields that must be present (any value).
    #[serde(default)]
    pub json_present: Vec<String>,
    /// `field → step`: the field must equal the same field in that earlier step's response.
    #[serde(default)]
    pub same_as: BTreeMap<String, String>,
    /// The `Body-Sign` header must be valid for the step's auth key (or `body_sign_key`).
    #[serde(default)]
    pub body_sign: bool,
    /// The key to check `Body-Sign` with, if not the auth key.
    #[serde(default)]
    pub body_sign_key: Option<String>,
}

/// One request and its expectations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The step name, unique in the cassette (referred to by `same_as` and `${step.field}`).
    pub name: String,
    /// Set the virtual clock to this time (ms) before the step.
    #[serde(default)]
    pub clock_ms: Option<u64>,
    /// Then move it forward by this much.
    #[serde(default)]
    pub advance_ms: u64,
    /// The request.
    pub request: Request,
    /// Overrides the cassette's `auth` for this step.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// The expectations.
    #[serde(default)]
    pub expect: Expect,
}

/// A cassette file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cassette {
    /// A title (default: the file name).
    #[serde(default)]
    pub name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Application variables (the `--variable` flags of `replay` override them).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// The virtual clock at the start (ms since the epoch; default: the host's time).
    #[serde(default)]
    pub clock_ms: Option<u64>,
    /// Seed data: store label → key → UTF-8 value. Each label is an in-memory store.
    #[serde(default)]
    pub kv: BTreeMap<String, BTreeMap<String, String>>,
    /// Signing for every step (default: none).
    #[serde(default)]
    pub auth: Option<Auth>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The file it was read from.
    #[serde(skip)]
    pub file: PathBuf,
}

impl Cassette {
    /// Reads and validates one cassette file.
    ///
    /// # Errors
    /// [`CassetteError::Read`] or [`CassetteError::Invalid`].
    pub fn from_file(path: &Path) -> Result<Self, CassetteError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| CassetteError::Read { path: path.to_owned(), source })?;
        let invalid = |reason: String| CassetteError::Invalid { path: path.to_owned(), reason };
        let mut c: Cassette = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        c.file = path.to_owned();
        if c.steps.is_empty() {
            return Err(invalid("no steps".to_owned()));
        }
        let mut seen = Vec::new();
        for s in &c.steps {
            if seen.contains(&s.name.as_str()) {
                return Err(invalid(format!("step name {:?} is used twice", s.name)));
            }
            for (field, step) in &s.expect.same_as {
                if !seen.contains(&step.as_str()) {
                    return Err(invalid(format!(
                        "step {:?}: same_as {field} refers to {step:?}, not an earlier step",
                        s.name
                    )));
                }
            }
            if s.request.body.is_some() && s.request.body_json.is_some() {
                return Err(invalid(format!("step {:?}: give body or body_json, not both", s.name)));
            }
            let auth = s.auth.as_ref().or(c.auth.as_ref());
            if let Some(a) = auth
                && a.scheme != Scheme::None
                && a.key.is_empty()
            {
                return Err(invalid(format!("step {:?}: auth scheme needs a key", s.name)));
            }
            if s.expect.body_sign && s.expect.body_sign_key.is_none() && auth.is_none_or(|a| a.key.is_empty()) {
                return Err(invalid(format!("step {:?}: body_sign needs an auth key or body_sign_key", s.name)));
            }
            seen.push(&s.name);
        }
        Ok(c)
    }

    /// The display name.
    pub fn title(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.file.file_name().map_or_else(|| self.file.display().to_string(), |n| n.to_string_lossy().into_owned())
        })
    }
}

/// Reads every `*.json` cassette in `dir`, sorted by file name.
///
/// # Errors
/// The first unreadable or invalid file, or [`CassetteError::Empty`].
pub fn load_dir(dir: &Path) -> Result<Vec<Cassette>, CassetteError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CassetteError::Read { path: dir.to_owned(), source })?;
    let mut files = Vec::new();
    for e in entries {
        let e = e.map_err(|source| CassetteError::Read { path: dir.to_owned(), source })?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(CassetteError::Empty(dir.to_owned()));
    }
    files.iter().map(|p| Cassette::from_file(p)).collect()
}

/// The outcome of one step.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// The cassette title.
    pub cassette: String,
    /// The step name.
    pub step: String,
    /// Whether every expectation held.
    pub passed: bool,
    /// The status and latency, or what failed.
    pub detail: String,
    /// The response, when there was one (for comparing runners).
    pub response: Option<http::Response<Bytes>>,
}

/// Where a cassette's requests go, and how its clock is set.
#[async_trait::async_trait]
pub trait Target: Send {
    /// Makes the application see `ms` (since the epoch) as its wall clock from now until the next call.
    ///
    /// # Errors
    /// The clock could not be set (the step then fails).
    async fn set_clock_ms(&mut self, ms: u64) -> anyhow::Result<()>;

    /// Sends one request (its URI a path and query, no scheme or authority) and returns the complete response.
    ///
    /// # Errors
    /// No answer at all: refused connection, trap, timeout.
    async fn send(&mut self, request: http::Request<Bytes>) -> anyhow::Result<http::Response<Bytes>>;
}

/// The in-process target: an [`App`](crate::App) whose guests see a [`VirtualClock`].
struct InProcess {
    app: crate::App,
    clock: VirtualClock,
}

#[async_trait::async_trait]
impl Target for InProcess {
    async fn set_clock_ms(&mut self, ms: u64) -> anyhow::Result<()> {
        self.clock.set_ms(ms);
        Ok(())
    }

    async fn send(&mut self, request: http::Request<Bytes>) -> anyhow::Result<http::Response<Bytes>> {
        self.app.send(request).await
    }
}

/// Replaces `${step.field}` with that earlier step's top-level JSON response field.
fn substitute(text: &str, responses: &BTreeMap<String, Value>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
        let reference = &after[..end];
        let (step, field) =
            reference.split_once('.').ok_or_else(|| format!("${{{reference}}}: expected step.field"))?;
        let value = responses
            .get(step)
            .and_then(|v| v.get(field))
            .ok_or_else(|| format!("${{{reference}}}: no such field in step {step:?}'s response"))?;
        match value {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Builds the step's signed request at clock time `now_ms`.
fn build_request(
    step: &Step,
    auth: Option<&Auth>,
    now_ms: u64,
    responses: &BTreeMap<String, Value>,
) -> Result<http::Request<Bytes>, String> {
    let r = &step.request;
    let body = match (&r.body, &r.body_json) {
        (Some(b), _) => substitute(b, responses)?,
        (None, Some(v)) => substitute(&v.to_string(), responses)?,
        (None, None) => String::new(),
    };
    let path = substitute(&r.path, responses)?;
    let mut query = substitute(&r.query, responses)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for (k, v) in &r.headers {
        headers.push((k.clone(), substitute(v, responses)?));
    }
    if let Some(a) = auth {
        let mp = || Marketplace::from_key(&a.key).ok_or_else(|| "auth key is empty".to_owned());
        let nonce = || a.nonce.clone().unwrap_or_else(fresh_nonce);
        match a.scheme {
            Scheme::V2 => query = mp()?.v2_query(&query, body.as_bytes(), &now_ms.to_string(), &nonce()),
            Scheme::V1 => {
                let params = koogallery_core::http::parse_query(query.trim_start_matches('?'));
                query = mp()?.v1_query(&params, &v1_time_stamp(now_ms));
            }
            Scheme::Kit => {
                headers
                    .retain(|(k, _)| !matches!(k.to_ascii_lowercase().as_str(), "x-sign" | "x-timestamp" | "x-nonce"));
                let signed = mp()?.kit_headers(body.as_bytes(), &now_ms.to_string(), &nonce());
                headers.extend(signed.into_iter().map(|(k, v)| (k.to_owned(), v)));
            }
            Scheme::KitV1 => {
                headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authToken"));
                let signed = mp()?.kit_v1(&path, body.as_bytes());
                let token = signed.header("authToken").unwrap_or_default().to_owned();
                headers.push(("authToken".to_owned(), token));
            }
            Scheme::None => {}
        }
    }
    let uri = if query.is_empty() { path } else { format!("{path}?{query}") };
    let mut builder = http::Request::builder().method(r.method.as_str()).uri(&uri);
    for (k, v) in &headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(Bytes::from(body)).map_err(|e| format!("invalid request {} {uri}: {e}", r.method))
}

/// Checks the expectations; returns the failures.
fn check(
    step: &Step,
    auth: Option<&Auth>,
    response: &http::Response<Bytes>,
    responses: &BTreeMap<String, Value>,
) -> Vec<String> {
    let e = &step.expect;
    let mut failures = Vec::new();
    let status = response.status().as_u16();
    let text = String::from_utf8_lossy(response.body());
    if let Some(want) = e.status
        && want != status
    {
        failures.push(format!("status {status}, expected {want}"));
    }
    if let Some(want) = &e.body
        && *want != text
    {
        failures.push(format!("body {:?}, expected {want:?}", truncate(&text)));
    }
    for want in &e.body_contains {
        if !text.contains(want.as_str()) {
            failures.push(format!("body does not contain {want:?}"));
        }
    }
    for (name, want) in &e.headers {
        match response.headers().get(name.as_str()).map(|v| v.to_str().unwrap_or("<non-utf8>")) {
            Some(got) if got == want => {}
            Some(got) => failures.push(format!("header {name}: {got:?}, expected {want:?}")),
            None => failures.push(format!("header {name} missing")),
        }
    }
    let json: Option<Value> = serde_json::from_slice(response.body()).ok();
    let needs_json = !e.json.is_empty() || !e.json_present.is_empty() || !e.same_as.is_empty();
    match &json {
        None if needs_json => failures.push("body is not JSON".to_owned()),
        None => {}
        Some(j) => {
            for (field, want) in &e.json {
                match j.get(field) {
                    Some(got) if got == want => {}
                    Some(got) => failures.push(format!("{field} = {got}, expected {want}")),
                    None => failures.push(format!("{field} missing")),
                }
            }
            for field in &e.json_present {
                if j.get(field).is_none() {
                    failures.push(format!("{field} missing"));
                }
            }
            for (field, other) in &e.same_as {
                let theirs = responses.get(other).and_then(|v| v.get(field));
                match (j.get(field), theirs) {
                    (Some(a), Some(b)) if a == b => {}
                    (a, b) => failures.push(format!(
                        "{field} = {}, but step {other:?} had {}",
                        a.map_or_else(|| "missing".to_owned(), Value::to_string),
                        b.map_or_else(|| "missing".to_owned(), Value::to_string)
                    )),
                }
            }
        }
    }
    if e.body_sign {
        let key = e.body_sign_key.as_deref().or(auth.map(|a| a.key.as_str())).unwrap_or("");
        match (
            Marketplace::from_key(key).map(|m| m.keys().clone()),
            response.headers().get(koogallery_core::signing::body_sign::HEADER_NAME),
        ) {
            (None, _) => failures.push("no key to check Body-Sign".to_owned()),
            (Some(_), None) => failures.push("Body-Sign header missing".to_owned()),
            (Some(keys), Some(h)) => {
                let valid = h
                    .to_str()
                    .ok()
                    .is_some_and(|h| koogallery_core::signing::body_sign::verify(h, response.body(), &keys).is_ok());
                if !valid {
                    failures.push("Body-Sign does not verify for the key".to_owned());
                }
            }
        }
    }
    failures
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 80 { format!("{}…", s.chars().take(80).collect::<String>()) } else { s.to_owned() }
}

/// Runs one cassette against the manifest, with `flags` (`name=value`) overriding its variables.
///
/// # Errors
/// The app could not be built (a configuration or load problem, not a finding).
pub async fn run(cassette: &Cassette, manifest: &Path, flags: &[String]) -> anyhow::Result<Vec<StepResult>> {
    let title = cassette.title();
    let clock = VirtualClock::at_ms(cassette.clock_ms.unwrap_or_else(system_now_ms));
    let mut builder = AppBuilder::from_manifest(manifest).clock(clock.clone()).kv_memory();
    for (k, v) in &cassette.variables {
        builder = builder.variable(k, v);
    }
    builder = builder.variable_flags(flags);
    for (label, data) in &cassette.kv {
        let store = MemoryKv::new();
        for (k, v) in data {
            store.seed(k, v);
        }
        builder = builder.kv_label(label, store);
    }
    let app = builder.build().await.with_context(|| format!("cassette {title}: cannot build the app"))?;
    Ok(run_on(cassette, &mut InProcess { app, clock }).await)
}

/// Runs one cassette's steps against `target`, which must already hold the cassette's variables and stores
/// (`kv` seeding is the caller's job). The clock starts at the cassette's `clock_ms` (default: now) and is set
/// before every step, so each request is re-signed at exactly the time the target sees.
pub async fn run_on(cassette: &Cassette, target: &mut dyn Target) -> Vec<StepResult> {
    let title = cassette.title();
    let mut now_ms = cassette.clock_ms.unwrap_or_else(system_now_ms);
    let mut responses: BTreeMap<String, Value> = BTreeMap::new();
    let mut results = Vec::new();
    for step in &cassette.steps {
        if let Some(t) = step.clock_ms {
            now_ms = t;
        }
        now_ms = now_ms.saturating_add(step.advance_ms);
        let auth = step.auth.as_ref().or(cassette.auth.as_ref());
        let result = |passed, detail, response| StepResult {
            cassette: title.clone(),
            step: step.name.clone(),
            passed,
            detail,
            response,
        };
        if let Err(e) = target.set_clock_ms(now_ms).await {
            results.push(result(false, format!("cannot set the clock: {e:#}"), None));
            continue;
        }
        let request = match build_request(step, auth, now_ms, &responses) {
            Ok(r) => r,
            Err(e) => {
                results.push(result(false, e, None));
                continue;
            }
        };
        let started = Instant::now();
        match target.send(request).await {
            Ok(response) => {
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                let failures = check(step, auth, &response, &responses);
                if let Ok(v) = serde_json::from_slice::<Value>(response.body()) {
                    responses.insert(step.name.clone(), v);
                }
                let detail = if failures.is_empty() {
                    format!("{} in {ms:.1} ms", response.status().as_u16())
                } else {
                    failures.join("; ")
                };
                results.push(result(failures.is_empty(), detail, Some(response)));
            }
            Err(e) => results.push(result(false, format!("no answer: {e:#}"), None)),
        }
    }
    results
}

/// The results as an aligned text table with a summary line.
pub fn table(results: &[StepResult]) -> String {
    let w_c = results.iter().map(|r| r.cassette.chars().count()).max().unwrap_or(0).max("CASSETTE".len());
    let w_s = results.iter().map(|r| r.step.chars().count()).max().unwrap_or(0).max("STEP".len());
    let mut out = format!("{:<w_c$}  {:<w_s$}  {:<6}  DETAIL\n", "CASSETTE", "STEP", "RESULT");
    for r in results {
        let verdict = if r.passed { "pass" } else { "FAIL" };
        out.push_str(&format!("{:<w_c$}  {:<w_s$}  {verdict:<6}  {}\n", r.cassette, r.step, r.detail));
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    out.push_str(&format!("{} steps: {} passed, {failed} failed\n", results.len(), results.len() - failed));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_uses_earlier_responses() {
        let responses = BTreeMap::from([("new".to_owned(), serde_json::json!({"instanceId": "i-1", "n": 3}))]);
        assert_eq!(substitute("id=${new.instanceId}&n=${new.n}", &responses), Ok("id=i-1&n=3".to_owned()));
        assert!(substitute("${new.missing}", &responses).is_err());
        assert!(substitute("${nope}", &responses).is_err());
    }

    const KIT_KEY: &str = "1234567890abcdef1234567890abcdef";
    const KIT_V1_BODY: &str = r#"{"instanceId":"i-1","tenantId":"t-1","orgCode":"10000","orgName":"开发部","parentCode":"","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}"#;

    fn kit_v1_step(headers: serde_json::Value) -> (Step, Auth) {
        let step: Step = serde_json::from_value(serde_json::json!({
            "name": "org",
            "request": {"method": "POST", "path": "/produceAPI/singleOrgSync", "headers": headers, "body": KIT_V1_BODY},
            "expect": {"body_sign": true}
        }))
        .expect("step");
        let auth: Auth = serde_json::from_value(serde_json::json!({"scheme": "kit_v1", "key": KIT_KEY})).expect("auth");
        (step, auth)
    }

    fn header_values<'a>(req: &'a http::Request<Bytes>, name: &str) -> Vec<&'a str> {
        req.headers().get_all(name).iter().map(|v| v.to_str().unwrap_or("<non-utf8>")).collect()
    }

    #[test]
    fn kit_v1_is_spelled_with_an_underscore() {
        let parse = |s: &str| serde_json::from_value::<Scheme>(serde_json::json!(s)).ok();
        assert_eq!(parse("kit_v1"), Some(Scheme::KitV1));
        assert_eq!(parse("kitv1"), None);
        assert_eq!(parse("kit"), Some(Scheme::Kit));
    }

    /// The token is the kit V1 `authToken` of protocol §4.3 (kit variant): Base64 HMAC-SHA256 with key = kit key +
    /// body `timeStamp` over the body's top-level fields sorted and joined, numbers as their JSON text, the blank
    /// `parentCode` included. The expected value was computed independently (Python `hmac`), not by core.
    #[test]
    fn kit_v1_sets_one_auth_token_header_over_the_body() {
        let (step, auth) = kit_v1_step(serde_json::json!({"AuthToken": "stale", "content-type": "application/json"}));
        let req = build_request(&step, Some(&auth), 1_700_000_000_000, &BTreeMap::new()).expect("request");
        assert_eq!(header_values(&req, "authtoken"), ["YPv51cY5OQe52dzHD5gnhsyDZb2AVhr34bOKgNbgmtg="]);
        assert_eq!(header_values(&req, "content-type"), ["application/json"]);
        assert_eq!(req.body().as_ref(), KIT_V1_BODY.as_bytes(), "the body is sent as written");
        assert_eq!(req.uri(), "/produceAPI/singleOrgSync");
        assert!(req.headers().get("x-sign").is_none());

        // The token verifies as the component verifies it, and only under the kit key.
        let params = koogallery_core::signing::v1::kit_v1_params(KIT_V1_BODY.as_bytes()).expect("object body");
        let token = header_values(&req, "authtoken")[0];
        let ring = |k: &str| koogallery_core::signing::keys::KeyRing::parse_list(k).expect("key");
        let v1 = |k: &str| koogallery_core::signing::v1::V1AuthToken::new(ring(k));
        assert!(v1(KIT_KEY).verify_params(&params, token).is_ok());
        assert!(v1("another-key").verify_params(&params, token).is_err());

        // The clock does not enter the token (the body's own `timeStamp` does).
        let later = build_request(&step, Some(&auth), 1_800_000_000_000, &BTreeMap::new()).expect("request");
        assert_eq!(header_values(&later, "authtoken"), [token]);
    }

    #[test]
    fn kit_v1_token_follows_the_body_after_substitution() {
        let (mut step, auth) = kit_v1_step(serde_json::json!({}));
        step.request.body = Some(KIT_V1_BODY.replace("i-1", "${new.instanceId}"));
        let responses = BTreeMap::from([("new".to_owned(), serde_json::json!({"instanceId": "i-2"}))]);
        let req = build_request(&step, Some(&auth), 0, &responses).expect("request");
        let sent = String::from_utf8(req.body().to_vec()).expect("utf-8");
        assert!(sent.contains(r#""instanceId":"i-2""#));
        let params = koogallery_core::signing::v1::kit_v1_params(sent.as_bytes()).expect("object body");
        let ring = koogallery_core::signing::keys::KeyRing::parse_list(KIT_KEY).expect("key");
        let token = header_values(&req, "authtoken")[0];
        assert!(koogallery_core::signing::v1::V1AuthToken::new(ring).verify_params(&params, token).is_ok());
        assert_ne!(token, "YPv51cY5OQe52dzHD5gnhsyDZb2AVhr34bOKgNbgmtg=");
    }

    #[test]
    fn kit_v1_body_sign_is_checked_with_the_auth_key() {
        use koogallery_core::signing::body_sign;
        let (step, auth) = kit_v1_step(serde_json::json!({}));
        let body = br#"{"resultCode":"000000","resultMsg":"success"}"#;
        let respond = |key: &str| {
            let key = koogallery_core::signing::keys::SecretKey::new(key);
            http::Response::builder()
                .header(body_sign::HEADER_NAME, body_sign::header_value(&key, body))
                .body(Bytes::from_static(body))
                .expect("response")
        };
        assert_eq!(check(&step, Some(&auth), &respond(KIT_KEY), &BTreeMap::new()), Vec::<String>::new());
        assert_eq!(
            check(&step, Some(&auth), &respond("the-basic-interface-key"), &BTreeMap::new()),
            ["Body-Sign does not verify for the key"]
        );
        let unsigned = http::Response::new(Bytes::from_static(body));
        assert_eq!(check(&step, Some(&auth), &unsigned, &BTreeMap::new()), ["Body-Sign header missing"]);
    }

    #[test]
    fn validation_catches_dangling_references_and_missing_keys() {
        let dir = std::env::temp_dir().join(format!("harness-cassette-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("write");
            p
        };
        let p = write("a.json", r#"{"steps":[{"name":"a","request":{"path":"/"},"expect":{"same_as":{"x":"b"}}}]}"#);
        assert!(Cassette::from_file(&p).is_err());
        let p = write("b.json", r#"{"auth":{"scheme":"v2"},"steps":[{"name":"a","request":{"path":"/"}}]}"#);
        assert!(Cassette::from_file(&p).is_err());
        let p = write("c.json", r#"{"steps":[{"name":"a","request":{"path":"/"},"typo":1}]}"#);
        assert!(Cassette::from_file(&p).is_err());
        let p = write("d.json", r#"{"steps":[{"name":"a","request":{"path":"/"}}]}"#);
        assert!(Cassette::from_file(&p).is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
