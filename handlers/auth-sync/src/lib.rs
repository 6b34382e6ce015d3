//! The joint-operation (联营) kit sync `authSync` as a Spin component: the users authorised for an application (add, modify, delete, revoke).
//!
//! All logic is in `koogallery_core::kit`; `spin_adapter::serve_kit` connects it to Spin's request, variables,
//! key-value store and outbound HTTP.

spin_adapter::kit_component!(AuthSync);
