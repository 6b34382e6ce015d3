//! The joint-operation (联营) kit sync `applicationSync` as a Spin component: the tenant's OneAccess application (client id and RSA-encrypted secret).
//!
//! All logic is in `koogallery_core::kit`; `spin_adapter::serve_kit` connects it to Spin's request, variables,
//! key-value store and outbound HTTP.

spin_adapter::kit_component!(ApplicationSync);
