//! The joint-operation (联营) kit sync `tenantSync` as a Spin component: the tenant (organisation) bound to an instance, with its OneAccess domain.
//!
//! All logic is in `koogallery_core::kit`; `spin_adapter::serve_kit` connects it to Spin's request, variables,
//! key-value store and outbound HTTP.

spin_adapter::kit_component!(TenantSync);
