//! OneAccess single sign-on for joint-operation (联营) buyers as a Spin component: `/sso/login`, `/sso/callback`,
//! `/sso/me`, `/sso/logout`.
//!
//! All logic is in `koogallery_core::sso`; `spin_adapter::serve_sso` connects it to Spin's request, variables,
//! key-value store (the kit syncs' tenants, applications and users; the sessions) and outbound HTTP (OneAccess).

spin_adapter::http_component!(spin_adapter::serve_sso);
