//! License products (授权码 2.0) as a Spin component: the marketplace's license callbacks at `/license`, and
//! `/license/activate` and `/license/heartbeat` for the seller's installed software.
//!
//! All logic is in `koogallery_core::license`; `spin_adapter::serve_license` connects it to Spin's request,
//! variables, key-value store (license records, the replay cache) and outbound HTTP (the marketplace OpenAPI).

spin_adapter::http_component!(spin_adapter::serve_license);
