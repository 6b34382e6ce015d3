//! The Agents-gateway backend front as a Spin component: `/agents/...`.
//!
//! All logic is in `koogallery_core::agents`; `spin_adapter::serve_agents` connects it to Spin's request, variables,
//! key-value store (the usage ledger) and outbound HTTP (the seller's model server, streamed).

spin_adapter::http_component!(spin_adapter::serve_agents);
