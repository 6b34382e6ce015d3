//! KooGallery in a box: the emulator acts as the marketplace against any production URL (ours under
//! `harness up`, a deployed one, another implementation) and reports, rule by rule, whether it behaves as
//! KooGallery requires.
//!
//! # Security
//!
//! The key is needed to sign requests and check `Body-Sign`; it never appears in the report, the progress lines
//! or `Debug` output, and neither do signatures or bodies. Point the emulator only at endpoints you own: it sends
//! forged, replayed and 1 MiB requests on purpose. Every request is a debug request (`testFlag` `1`) with order
//! ids unique to the run (`EMU<millis><tag>…`), so production records are never touched and runs never collide.
//!
//! # How to use
//!
//! 1. Fill [`EmulateOptions`] (URL, key; optionally `v1`, the kit URL and key, output files), ending the literal
//!    with `..Default::default()`.
//! 2. Call [`run`] inside a tokio runtime. Progress goes to stderr, one line per rule.
//! 3. Print [`Report::print_table`]; exit non-zero unless [`Report::passed`]. [`Report::to_json`] and
//!    [`render_html`] give the same report for CI artifacts (also written by `run` when `json_out` /
//!    `html_out` are set).
//!
//! What is checked: full lifecycles for period, one-time and on-demand orders (new, retries with fresh
//! `businessId`s, concurrent duplicates, query until ready, renew in every scene, freeze, unfreeze, upgrade,
//! change check, order notification, reordering, release, late retry after release); forged, missing and
//! wrong-key signatures, stale timestamps both ways, missing timestamp or nonce, replayed nonces; malformed,
//! non-object, unknown-activity, missing-field, over-long-field and 1 MiB bodies; V1 and the kit syncs when
//! asked (V2 and V1 forms, kit syncs at the production URL itself, forged, stale, basic-key and header-less kit
//! requests); and, over every answer, HTTP 200, JSON, a valid `Body-Sign` and an answer within 5 s. [`RULES`]
//! lists every rule.
//!
//! With [`EmulateOptions::backend_listen`] the emulator also plays the seller's backend: a webhook receiver that
//! verifies each event's Standard Webhooks signature. Start the endpoint in forward mode against it
//! (`backend_url` and `backend_origin` = `http://<that address>`, the same `backend_secret`) and the `kit.events*`
//! rules check that repeated kit syncs send exactly one event per effective change.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let report = emulator::run(emulator::EmulateOptions {
//!     url: "http://127.0.0.1:3000/produce".into(),
//!     key: "1234567890abcdef1234567890abcdef".into(),
//!     v1: true,
//!     html_out: Some("conformance.html".into()),
//!     ..Default::default()
//! })
//! .await?;
//! report.print_table();
//! if !report.passed() {
//!     std::process::exit(1);
//! }
//! # Ok(())
//! # }
//! ```

mod answers;
mod bodies;
mod client;
mod html;
mod kit;
mod kit_events;
mod kit_security;
mod legacy_v1;
mod lifecycle;
mod malformed;
mod options;
mod receiver;
mod report;
mod rules;
mod run;
mod security;
mod session;

pub use client::TIMEOUT;
pub use html::render as render_html;
pub use options::{DEFAULT_CONCURRENCY, DEFAULT_WINDOW_MS, EmulateOptions, OptionsError};
pub use report::{Report, RuleResult, Status};
pub use rules::{RULES, RuleDef};
pub use run::run;
