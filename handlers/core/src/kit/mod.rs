//! The joint-operation (联营) kit syncs (protocol §5): `tenantSync`, `applicationSync`, `authSync`,
//! `singleOrgSync` and `allOrgSync`, each answered by its own component, plus kit bodies that reach the production
//! URL.
//!
//! 1. Build a [`KitConfig`] (from Spin variables with [`KitConfig::from_variables`]).
//! 2. Call [`handle`] with the request and the component's sync; send the returned response exactly as it is (its
//!    `Body-Sign` covers those bytes) and log the summary.
//! 3. Read what the syncs stored with [`lookup`] (the SSO component does).
//!
//! Rules: verify before parsing, under the **kit** key only (V2: `x-sign`/`x-timestamp`/`x-nonce`, §4.2; V1:
//! `authToken` header over the body's fields, §4.3); a bad signature or a replayed nonce answers `000001`, a missing
//! header, a stale timestamp or an invalid field `000002` naming it, an undecryptable `clientSecret` `000101`
//! (nothing stored), a store failure `000005`. Each sync is one compare-and-swap write of the tenant's record
//! ([`record`]), by the rules of [`apply`]; in forward mode the change's event is queued in that same write and
//! delivered through the production interface's durable outbox.
//!
//! ```
//! use koogallery_core::http::Inbound;
//! use koogallery_core::kit::{KitConfig, handle};
//! use koogallery_core::marketplace::Marketplace;
//! use koogallery_core::ports::{FixedClock, MemoryStore, NoBackend, OsRandom};
//! use koogallery_core::produce::Ctx;
//! use koogallery_core::signing::keys::KeyRing;
//! use koogallery_core::wire::kit::KitSync;
//!
//! let cfg = KitConfig::new(KeyRing::parse_list("kit-key").expect("key"), None);
//! let body = br#"{"instanceId":"i-1","orderId":"o-1","tenantId":"t-1","tenantCode":"acme","name":"ACME","domainName":"acme.tenantaccount.com","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}"#;
//! let mp = Marketplace::from_key("kit-key").expect("key");
//! let req = mp.kit("/produceAPI/v2/tenantSync", body, 1_680_508_066_618, "n-1");
//! let store = MemoryStore::new();
//! let ctx = Ctx { store: &store, backend: &NoBackend, clock: &FixedClock(1_680_508_066_618), random: &OsRandom };
//! let handled = pollster::block_on(handle(&req, KitSync::TenantSync, Ok(&cfg), &ctx));
//! assert!(String::from_utf8_lossy(&handled.response.body).contains(r#""resultCode":"000000""#));
//! let found = pollster::block_on(koogallery_core::kit::lookup::tenant(&store, false, "acme")).expect("store");
//! assert_eq!(found.first().and_then(|r| r.tenant.as_ref()).map(|t| t.domain_url.as_str()), Some("https://acme.tenantaccount.com"));
//! ```

pub mod admission;
pub mod apply;
mod config;
pub mod lookup;
pub mod record;

pub use config::{KitConfig, VARIABLES};
pub use record::TenantRecord;

use crate::http::{Inbound, MAX_BODY_BYTES};
use crate::ports::atomic::{self, Change};
use crate::ports::{Backend, Clock, Random, Store, StoreError};
use crate::produce::outbox::{self, DeliveryReport};
use crate::produce::reply::Reply;
use crate::produce::{ConfigError, Ctx, Deadline, Handled, replay};
use crate::signing::error::AuthError;
use crate::signing::kit::{KitAuth, KitVerifier};
use crate::signing::v1::{V1AuthToken, kit_v1_params};
use crate::wire::kit::{KitGeneration, KitRequest, KitSync, SyncFlag, parse_kit_request};
use crate::wire::result_code::ResultCode;
use crate::wire::time::parse_kit_timestamp;

/// Records of other tenants with due events one kit request delivers for, besides its own.
const BACKGROUND_RECORDS: usize = 4;

/// Answers one kit sync for the component that serves `sync`. `cfg` is the configuration, or why there is none
/// (answered `500` with "not configured: set <variable>", as for any component whose own secrets are unset).
///
/// The generation comes from the path (`…/produceAPI/v2/<name>` is V2, `…/produceAPI/<name>` V1), else from the
/// headers (`x-sign` V2, `authToken` V1). Never panics on input.
pub async fn handle<S: Store, B: Backend, C: Clock, R: Random>(
    req: &Inbound,
    sync: KitSync,
    cfg: Result<&KitConfig, &ConfigError>,
    ctx: &Ctx<'_, S, B, C, R>,
) -> Handled {
    let generation = match KitSync::from_path(&req.path) {
        Some((_, generation)) => generation,
        None if req.header("x-sign").is_some() => KitGeneration::V2,
        None if req.header("authToken").is_some() => KitGeneration::V1,
        None => KitGeneration::V2,
    };
    serve(req, Some(sync), generation, cfg, ctx).await
}

/// Whether a request to the production URL is a kit sync: a POST that carries the kit's `x-sign` header (V2) or an
/// `authToken` header (kit V1), and no basic V2 `signature` query parameter.
pub fn is_kit_request(req: &Inbound) -> bool {
    let basic_signature = req.query_params().iter().any(|(k, _)| k == "signature");
    req.method == "POST" && !basic_signature && (req.header("x-sign").is_some() || req.header("authToken").is_some())
}

/// Answers a kit sync that reached the production URL itself (§2.2, §5): the sync is named by the body's
/// `activity` or recognised by its shape (see [`sync_of_body`]).
pub async fn handle_at_production_url<S: Store, B: Backend, C: Clock, R: Random>(
    req: &Inbound,
    cfg: Result<&KitConfig, &ConfigError>,
    ctx: &Ctx<'_, S, B, C, R>,
) -> Handled {
    let generation = if req.header("x-sign").is_some() { KitGeneration::V2 } else { KitGeneration::V1 };
    serve(req, None, generation, cfg, ctx).await
}

/// The kit sync a body is: its `activity` when that names one, else recognised by the fields only one sync has.
pub fn sync_of_body(body: &[u8]) -> Option<KitSync> {
    let serde_json::Value::Object(map) = serde_json::from_slice(body).ok()? else { return None };
    if let Some(sync) = map.get("activity").and_then(|a| a.as_str()).and_then(KitSync::from_name) {
        return Some(sync);
    }
    let has = |name: &str| map.contains_key(name);
    if has("userList") {
        Some(KitSync::AuthSync)
    } else if has("orgInfoList") || has("orgInfo") {
        Some(KitSync::AllOrgSync)
    } else if has("clientSecret") || has("clientId") {
        Some(KitSync::ApplicationSync)
    } else if has("domainName") || has("tenantCode") {
        Some(KitSync::TenantSync)
    } else if has("orgCode") {
        Some(KitSync::SingleOrgSync)
    } else {
        None
    }
}

fn interface(generation: KitGeneration) -> &'static str {
    match generation {
        KitGeneration::V2 => "kit-v2",
        KitGeneration::V1 => "kit-v1",
    }
}

/// The answer to a request that arrived before any key could be used: `500`, naming the variable to set.
fn not_configured(iface: &'static str, sync: Option<KitSync>, e: &ConfigError) -> Handled {
    let message = match e {
        ConfigError::Missing(name) => format!("not configured: set {name}"),
        other => format!("not configured: {other}"),
    };
    let mut handled = Reply::error(iface, sync.map(KitSync::as_str), ResultCode::InternalError, message)
        .finish_with(&crate::signing::keys::SecretKey::new("not-configured"), None);
    handled.response.status = 500;
    handled.response.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("body-sign"));
    handled
}

async fn serve<S: Store, B: Backend, C: Clock, R: Random>(
    req: &Inbound,
    component_sync: Option<KitSync>,
    generation: KitGeneration,
    cfg: Result<&KitConfig, &ConfigError>,
    ctx: &Ctx<'_, S, B, C, R>,
) -> Handled {
    let iface = interface(generation);
    let cfg = match cfg {
        Ok(cfg) => cfg,
        Err(e) => return not_configured(iface, component_sync, e),
    };
    let sync = component_sync.or_else(|| sync_of_body(&req.body));
    let deadline = Deadline::after(ctx.clock, cfg.request_deadline_ms);
    let mut run = KitRun { iface, deadline, report: DeliveryReport::default(), key_index: 0 };
    let reply = match serve_verified(req, sync, generation, cfg, ctx, &mut run).await {
        Ok(reply) => reply,
        Err(rsa_error) => return not_configured(iface, sync, rsa_error),
    };
    let handled_ok = matches!(reply.result_code(), ResultCode::Success);
    let mut log = None;
    if handled_ok
        && cfg.backend.is_some()
        && let Err(e) =
            outbox::drain(ctx, cfg, None, &run.deadline, &mut run.report, BACKGROUND_RECORDS, BACKGROUND_RECORDS * 2)
                .await
    {
        log = Some(format!("background delivery: {e}"));
    }
    if !run.report.is_empty() {
        log = Some(match log {
            Some(l) => format!("{} {l}", run.report),
            None => run.report.to_string(),
        });
    }
    let key = cfg.keys.iter().nth(run.key_index).unwrap_or_else(|| cfg.keys.signing_key());
    reply.finish_with(key, log)
}

/// What one kit request carries besides its ports.
struct KitRun {
    iface: &'static str,
    deadline: Deadline,
    report: DeliveryReport,
    /// The kit key that verified the request: the answer is signed with it.
    key_index: usize,
}

#[allow(clippy::too_many_arguments)] // the request's whole context, spelled out
async fn serve_verified<'a, S: Store, B: Backend, C: Clock, R: Random>(
    req: &Inbound,
    sync: Option<KitSync>,
    generation: KitGeneration,
    cfg: &'a KitConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    run: &mut KitRun,
) -> Result<Reply, &'a ConfigError> {
    let iface = run.iface;
    let name = sync.map(KitSync::as_str);
    if req.body.len() > MAX_BODY_BYTES {
        return Ok(Reply::error(
            iface,
            name,
            ResultCode::InvalidParameter,
            format!("request body exceeds {MAX_BODY_BYTES} bytes"),
        ));
    }
    if req.method != "POST" {
        return Ok(Reply::error(iface, name, ResultCode::InvalidParameter, "method must be POST".into()));
    }
    let now = ctx.clock.now_ms();
    let replay_key = match generation {
        KitGeneration::V2 => match verify_v2(req, cfg, now) {
            Ok((key_index, replay_key)) => {
                run.key_index = key_index;
                cfg.nonce_cache.then_some(replay_key)
            }
            Err(reply) => return Ok(reply.named(iface, name)),
        },
        KitGeneration::V1 => match verify_v1(req, cfg, now) {
            Ok((key_index, replay_key)) => {
                run.key_index = key_index;
                cfg.nonce_cache.then_some(replay_key)
            }
            Err(reply) => return Ok(reply.named(iface, name)),
        },
    };
    let Some(sync) = sync else {
        return Ok(Reply::error(
            iface,
            None,
            ResultCode::InvalidParameter,
            "body is not a recognisable kit sync".into(),
        ));
    };
    let request = match parse_kit_request(sync, &req.body) {
        Ok(r) => r,
        Err(e) => return Ok(Reply::error(iface, name, ResultCode::InvalidParameter, e.to_string())),
    };
    // Only a genuine applicationSync learns that the RSA key is missing ("not configured", as for any unset secret).
    let rsa = match (sync, &cfg.rsa_private_key) {
        (KitSync::ApplicationSync, Err(e)) => return Err(e),
        (_, rsa) => rsa.as_ref().ok(),
    };
    let instance = request.instance_id().to_owned();
    let v1 = generation == KitGeneration::V1;
    if let Some(key) = &replay_key {
        // V2: a replayed nonce is refused, remembered atomically now. V1 has no nonce: the marketplace may repeat a
        // call with the same token; one that was applied already is acknowledged without being applied again, and
        // the token is remembered only once the sync is stored (below), so a call that failed can be retried.
        let fresh = if v1 {
            replay::seen(ctx.store, key).await.map(|seen| !seen)
        } else {
            replay::remember(ctx.store, key).await
        };
        match fresh {
            Ok(true) => {}
            Ok(false) if !v1 => {
                return Ok(Reply::error(iface, name, ResultCode::AuthFailed, "nonce has been used before".into())
                    .with_reason("replayed nonce"));
            }
            Ok(false) => return Ok(Reply::code(iface, sync.as_str(), ResultCode::Success).with_instance(&instance)),
            Err(e) => return Ok(internal(iface, sync, &e)),
        }
        let horizon = cfg.window.window_ms.max(cfg.v1_window.map_or(0, |w| w.window_ms)).saturating_add(60_000);
        if let Err(e) = replay::sweep_if_due(ctx.store, ctx.random, now, cfg.window.window_ms, horizon).await {
            return Ok(internal(iface, sync, &e));
        }
    }
    let mut secret_digest = None;
    if let KitRequest::ApplicationSync(app) = &request
        && app.flag != SyncFlag::Delete
    {
        // Checked now so that a secret SSO could never use is refused while the marketplace can still fix it; stored
        // encrypted, as received, with a digest that recognises a repeat under a fresh encryption.
        match rsa.map(|key| (key.fingerprint(), key.decrypt(&app.client_secret))) {
            Some((fingerprint, Ok((plain, _)))) => secret_digest = Some(record::secret_digest(&fingerprint, &plain)),
            _ => {
                return Ok(Reply::error(
                    iface,
                    name,
                    ResultCode::AppSecretInvalid,
                    "clientSecret could not be decrypted with rsa_private_key".into(),
                )
                .with_instance(&instance));
            }
        }
    }
    if let Err(e) = store_sync(&request, secret_digest.as_deref(), cfg, ctx, run).await {
        return Ok(internal(iface, sync, &e));
    }
    if v1
        && let Some(key) = &replay_key
        && let Err(e) = replay::remember(ctx.store, key).await
    {
        return Ok(internal(iface, sync, &e));
    }
    Ok(Reply::code(iface, sync.as_str(), ResultCode::Success).with_instance(&instance))
}

/// A refusal before the sync was known to be genuine.
struct Refusal {
    code: ResultCode,
    message: String,
    reason: Option<String>,
}

impl Refusal {
    fn named(self, iface: &'static str, name: Option<&str>) -> Reply {
        let reply = Reply::error(iface, name, self.code, self.message);
        match self.reason {
            Some(r) => reply.with_reason(r),
            None => reply,
        }
    }
}

fn auth_refusal(e: AuthError) -> Refusal {
    if e.is_authentication_failure() {
        Refusal {
            code: ResultCode::AuthFailed,
            message: ResultCode::AuthFailed.default_message().to_owned(),
            reason: Some(e.to_string()),
        }
    } else {
        let field = e.field().unwrap_or("request");
        Refusal { code: ResultCode::InvalidParameter, message: format!("{field} is invalid: {e}"), reason: None }
    }
}

/// Verifies `x-sign`; returns the matching key's position and the replay-cache key of the nonce.
fn verify_v2(req: &Inbound, cfg: &KitConfig, now: u64) -> Result<(usize, String), Refusal> {
    let auth =
        KitAuth { sign: req.header("x-sign"), timestamp: req.header("x-timestamp"), nonce: req.header("x-nonce") };
    let verified = KitVerifier::new(cfg.keys.clone(), cfg.window).verify(auth, &req.body, now).map_err(auth_refusal)?;
    Ok((verified.key_index, replay::nonce_key(&verified.nonce, verified.timestamp_ms)))
}

/// Verifies a V1 `authToken` header over the body's fields, then the body `timeStamp` (UTC+8) against the V1
/// window; returns the matching key's position and the replay-cache key of the token.
fn verify_v1(req: &Inbound, cfg: &KitConfig, now: u64) -> Result<(usize, String), Refusal> {
    let token = req.header("authToken").unwrap_or("");
    if token.is_empty() {
        return Err(auth_refusal(AuthError::MissingSignature));
    }
    let Some(params) = kit_v1_params(&req.body) else {
        return Err(Refusal {
            code: ResultCode::InvalidParameter,
            message: "body must be a JSON object".into(),
            reason: None,
        });
    };
    let key_index = V1AuthToken::new(cfg.keys.clone()).verify_params_key(&params, token).map_err(auth_refusal)?;
    let time_stamp = params.iter().find(|(k, _)| k == "timeStamp").map_or("", |(_, v)| v.as_str());
    let stale = |why: &str| Refusal {
        code: ResultCode::InvalidParameter,
        message: format!("timeStamp is invalid: {why}"),
        reason: None,
    };
    let ts = parse_kit_timestamp(time_stamp.trim()).map_err(|_| stale("expected yyyyMMddHHmmssSSS (UTC+8)"))?;
    if let Some(w) = cfg.v1_window
        && now.abs_diff(ts) > w.window_ms
    {
        return Err(stale("outside the accepted window"));
    }
    // A token whose `+` became a space still verifies (form decoding), so both spellings share one replay key.
    Ok((key_index, replay::v1_request_key(&token.replace(' ', "+"), ts)))
}

fn internal(iface: &'static str, sync: KitSync, e: &StoreError) -> Reply {
    Reply::error(
        iface,
        Some(sync.as_str()),
        ResultCode::InternalError,
        ResultCode::InternalError.default_message().to_owned(),
    )
    .with_reason(e.to_string())
}

/// Applies the sync to its tenant's record in one compare-and-swap write, indexes the tenant, and delivers what
/// the record owes the backend.
async fn store_sync<S: Store, B: Backend, C: Clock, R: Random>(
    request: &KitRequest,
    secret_digest: Option<&str>,
    cfg: &KitConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    run: &mut KitRun,
) -> Result<(), StoreError> {
    let now = ctx.clock.now_ms();
    let forward = cfg.backend.is_some();
    let (test, instance_id, tenant_id) = apply::target(request);
    let key = record::tenant_key(test, instance_id, tenant_id);
    let written =
        atomic::update(ctx.store, ctx.random, now, &key, |current: Option<TenantRecord>| {
            match apply::apply(current.clone(), request, secret_digest, forward, now) {
                Some(next) => Change::Write(next.clone(), Some(next)),
                None => Change::Keep(current),
            }
        })
        .await?;
    let Some(rec) = written else { return Ok(()) };
    // Listed before anything else can fail, so a stored event is always either delivered or in `outbox/due`.
    outbox::ensure_listed(ctx, &rec).await?;
    lookup::index(ctx.store, ctx.random, now, &rec).await?;
    admission::record_ended(ctx.store, ctx.random, now, &rec, request).await?;
    if forward && !rec.outbox.is_empty() {
        outbox::deliver_kit_now(ctx, cfg, &run.deadline, &mut run.report, rec).await?;
    }
    Ok(())
}
