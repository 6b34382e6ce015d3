//! On-demand usage for the marketplace as a Spin component: `/usage/records`, `/usage/flush`, `/usage/requeue`,
//! `/usage/status`.
//!
//! All logic is in `koogallery_core::usage`; `spin_adapter::serve_usage` connects it to Spin's request, variables,
//! key-value store (the outbox) and outbound HTTP (the marketplace OpenAPI).

spin_adapter::http_component!(spin_adapter::serve_usage);
