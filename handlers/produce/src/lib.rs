//! The basic SaaS production interface as a Spin component: every V2 and V1 activity on one URL.
//! All logic is in `koogallery_core::produce`; this shell only connects it to Spin.

use spin_adapter::{IntoResponse, Request};

/// Spin's HTTP entry point for the production URL.
#[spin_adapter::http_service]
async fn produce(req: Request) -> impl IntoResponse {
    spin_adapter::serve_produce(req).await
}
