//! The joint-operation (联营) kit sync `singleOrgSync` as a Spin component: one department of the tenant (incremental).
//!
//! All logic is in `koogallery_core::kit`; `spin_adapter::serve_kit` connects it to Spin's request, variables,
//! key-value store and outbound HTTP.

spin_adapter::kit_component!(SingleOrgSync);
