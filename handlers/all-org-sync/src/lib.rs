//! The joint-operation (联营) kit sync `allOrgSync` as a Spin component: the tenant's whole department tree (full sync).
//!
//! All logic is in `koogallery_core::kit`; `spin_adapter::serve_kit` connects it to Spin's request, variables,
//! key-value store and outbound HTTP.

spin_adapter::kit_component!(AllOrgSync);
