//! The basic SaaS production interface: one URL answering every V2 (POST) and legacy V1 (GET) activity.
//!
//! 1. Build a [`ProduceConfig`] (from Spin variables with [`ProduceConfig::from_variables`]).
//! 2. Wrap the store, backend, clock and randomness in a [`Ctx`].
//! 3. Call [`handle`] with the [`Inbound`] request; send the returned [`Outbound`](crate::http::Outbound) exactly as it is (its `Body-Sign`
//!    covers those bytes) and log the [`Summary`], which is free of secrets and personal data.
//!
//! With `openapi_ak` set, `newInstance` and `upgradeInstance` read their order with query order first (on-demand
//! lines keyed on `orderId` + `productId`; see `order_query`).
//!
//! Rules: verify before parsing; a bad or missing signature answers `000001`, a missing or stale timestamp or nonce or
//! an invalid field `000002` naming the field, an unknown instance `000003`, a pending one `000004`, a store failure
//! `000005`; every answer is JSON with `Body-Sign`, errors included.
//!
//! ```
//! use koogallery_core::ports::{FixedClock, NoBackend, OsRandom};
//! use koogallery_core::http::Inbound;
//! use koogallery_core::signing::keys::KeyRing;
//! use koogallery_core::produce::{handle, Ctx, ProduceConfig};
//! use koogallery_core::signing::v2::V2Verifier;
//! use koogallery_core::ports::MemoryStore;
//! use koogallery_core::signing::window::TimestampWindow;
//!
//! let keys = KeyRing::parse_list("1234567890abcdef1234567890abcdef").expect("key");
//! let cfg = ProduceConfig::new(keys.clone());
//! let body = br#"{"activity":"newInstance","businessId":"b1","orderId":"CS1","orderLineId":"CS1-000001","testFlag":"1"}"#;
//! let (ts, nonce) = ("1680508066618", "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA");
//! let signature = V2Verifier::new(keys, TimestampWindow::default()).sign(body, ts, nonce);
//! let req = Inbound {
//!     method: "POST".into(),
//!     path: "/produce".into(),
//!     query: format!("signature={signature}&timestamp={ts}&nonce={nonce}"),
//!     headers: vec![],
//!     body: body.to_vec(),
//! };
//! let store = MemoryStore::new();
//! let ctx = Ctx { store: &store, backend: &NoBackend, clock: &FixedClock(1680508066618), random: &OsRandom };
//! let handled = pollster::block_on(handle(&req, &cfg, &ctx));
//! assert!(String::from_utf8_lossy(&handled.response.body).contains(r#""resultCode":"000000""#));
//! assert!(handled.response.header("Body-Sign").is_some());
//! ```

mod admin;
mod config;
mod ctx;
mod events;
mod order_query;
pub(crate) mod outbox;
pub(crate) mod replay;
pub(crate) mod reply;
mod state;
mod v1;
pub(crate) mod v2;

pub(crate) use config::Shared;
pub use config::{
    BackendTarget, ConfigError, DEFAULT_FRONT_END_URL, DEFAULT_V1_WINDOW_MS, ProduceConfig, VARIABLES, fill_template,
};
pub use ctx::{Ctx, Deadline};
pub use outbox::{BACKGROUND_INSTANCES, DEAD_KEY, DUE_KEY, DeliveryReport, backoff_ms};
pub use replay::{SWEEP_BATCH, nonce_key, v1_request_key};
pub use reply::{Handled, Summary};
pub use state::{instance_key, load as load_instance, namespace};

use reply::{Reply, Run};

use crate::http::{Inbound, MAX_BODY_BYTES};
use crate::ports::{Backend, Clock, Random, StoreError};
use crate::wire::result_code::ResultCode;

/// Answers one request to the production URL (or one of its operator routes, see `admin`). Never panics on
/// input; every marketplace outcome is a signed JSON answer.
///
/// The whole request, backend calls included, fits in `request_deadline_ms`. In forward mode a verified request
/// also delivers, after its own answer is decided, events of up to [`BACKGROUND_INSTANCES`] other instances whose
/// next try is due (see `outbox`).
///
/// Kit syncs that reach the production URL ([`crate::kit::is_kit_request`]) have their own keys and configuration:
/// the caller sends them to [`crate::kit::handle_at_production_url`] instead (here they fail the basic signature).
pub async fn handle<S, B, C, R>(req: &Inbound, cfg: &ProduceConfig, ctx: &Ctx<'_, S, B, C, R>) -> Handled
where
    S: crate::ports::Store,
    B: Backend,
    C: Clock,
    R: Random,
{
    let deadline = Deadline::after(ctx.clock, cfg.request_deadline_ms);
    if let Some(route) = admin::route(req) {
        return admin::handle(route, req, cfg, ctx, &deadline).await;
    }
    let mut run = Run { deadline, report: outbox::DeliveryReport::default(), key_index: 0 };
    let reply = if req.body.len() > MAX_BODY_BYTES {
        Reply::error("-", None, ResultCode::InvalidParameter, format!("request body exceeds {MAX_BODY_BYTES} bytes"))
    } else {
        match req.method.as_str() {
            "POST" => v2::handle(req, cfg, ctx, &mut run).await,
            "GET" => v1::handle(req, cfg, ctx, &mut run).await,
            _ => Reply::error("-", None, ResultCode::InvalidParameter, "method must be POST (V2) or GET (V1)".into()),
        }
    };
    let handled =
        matches!(reply.result_code(), ResultCode::Success | ResultCode::Processing | ResultCode::InstanceNotFound);
    let mut background = None;
    if handled && cfg.backend.is_some() {
        let reads = BACKGROUND_INSTANCES * 2;
        if let Err(e) =
            outbox::drain(ctx, cfg, Some(cfg), &run.deadline, &mut run.report, BACKGROUND_INSTANCES, reads).await
        {
            background = Some(format!("background delivery: {e}"));
        }
    }
    let mut log = (!run.report.is_empty()).then(|| run.report.to_string());
    if let Some(b) = background {
        log = Some(log.map_or(b.clone(), |l| format!("{l} {b}")));
    }
    reply.finish_with(run.answer_key(cfg), log)
}

/// Runs the replay cache's sweep when it is due (see [`replay`]): every verified request may, so expired entries
/// go without a scheduler.
async fn sweep_replay_cache<S, B, C, R>(cfg: &ProduceConfig, ctx: &Ctx<'_, S, B, C, R>) -> Result<(), StoreError>
where
    S: crate::ports::Store,
    C: Clock,
    R: Random,
{
    let v1 = cfg.v1_window.map_or(0, |w| w.window_ms);
    let horizon = cfg.window.window_ms.max(v1).saturating_add(60_000);
    replay::sweep_if_due(ctx.store, ctx.random, ctx.clock.now_ms(), cfg.window.window_ms, horizon).await.map(|_| ())
}
