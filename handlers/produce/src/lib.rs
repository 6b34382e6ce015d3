//! The basic SaaS production interface as a Spin component: every V2 and V1 activity on one URL.
//!
//! All logic is in `koogallery_core::produce`; `spin_adapter::serve_produce` connects it to Spin's request,
//! variables, key-value store and outbound HTTP.

spin_adapter::http_component!(spin_adapter::serve_produce);
