//! Request execution: Spin's routing and `spin-*` headers, then the component's [`ProxyHandler`], which hands the
//! request to a reused instance (see `instances.rs`). Bodies stream both ways, as in Spin.
//!
//! [`ProxyHandler`]: wasmtime_wasi_http::handler::ProxyHandler

use super::application::{App, Served};
use super::instances::RequestWatch;
use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, SizeHint};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;

/// A complete body as a [`WasiBody`].
pub(crate) fn full_body(bytes: Bytes) -> WasiBody {
    Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

/// A component's response body that fails, instead of ending normally, when the instance writing it ended with an
/// error part-way (a trap in another request on it, a timeout): wasmtime reports the closed stream as a normal end,
/// which would pass a truncated body off as complete.
struct WatchedBody {
    inner: WasiBody,
    watch: std::sync::Arc<RequestWatch>,
    ended: bool,
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let me = self.get_mut();
        if me.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut me.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                me.ended = true;
                if let Some(why) = me.watch.instance_failure() {
                    let message = format!("the instance writing this response ended: {why}");
                    return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::InternalError(Some(message)))));
                }
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl App {
    /// Serves `request` in-process, as from client `127.0.0.1:0`.
    ///
    /// The URI may be a bare path (`/produce?x=1`); the `Host` header (default `localhost`) completes it.
    /// A route miss is a `404`; a guest that returns a WASI HTTP error code is a `500` with an empty body (both are
    /// answers, as in Spin).
    ///
    /// # Errors
    /// The harness could not get an answer: the guest trapped, timed out, or could not be instantiated, or the
    /// response body failed part-way.
    pub async fn send(&self, request: http::Request<Bytes>) -> anyhow::Result<http::Response<Bytes>> {
        Ok(self.serve(request, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?.response)
    }

    /// Serves `request` from `client` and collects the whole response, reporting the route and component (what
    /// `up` logs).
    ///
    /// # Errors
    /// As [`App::send`].
    pub async fn serve(&self, request: http::Request<Bytes>, client: SocketAddr) -> anyhow::Result<Served> {
        let served = self.serve_streaming(request.map(full_body), client).await?;
        let (parts, body) = served.response.into_parts();
        let body = body.collect().await.map_err(|e| anyhow::anyhow!("response body: {e:?}"))?.to_bytes();
        Ok(Served {
            response: http::Response::from_parts(parts, body),
            component: served.component,
            route: served.route,
        })
    }

    /// Serves `request` from `client` with both bodies streaming: the guest reads the request body as it arrives,
    /// and the response body is handed back as the guest writes it (what `up` does).
    ///
    /// # Errors
    /// As [`App::send`], except that a response body failing part-way shows as an error of the body stream.
    pub async fn serve_streaming(
        &self,
        mut request: http::Request<WasiBody>,
        client: SocketAddr,
    ) -> anyhow::Result<Served<WasiBody>> {
        let path = request.uri().path().to_owned();
        if let Some(response) = self.well_known(&path) {
            return Ok(Served { response: response?.map(full_body), component: None, route: None });
        }
        let Some(matched) = self.inner.router.route(&path) else {
            let response =
                http::Response::builder().status(http::StatusCode::NOT_FOUND).body(full_body(Bytes::new()))?;
            return Ok(Served { response, component: None, route: None });
        };
        let component_id = matched.component().to_owned();
        let route = matched.route().raw_route().to_owned();
        let component = self
            .inner
            .components
            .get(&component_id)
            .with_context(|| format!("component `{component_id}` is routed but not loaded"))?;

        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| request.uri().authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".to_owned());
        let scheme = request.uri().scheme_str().unwrap_or("http").to_owned();
        let path_and_query = request.uri().path_and_query().map_or_else(|| path.clone(), |p| p.as_str().to_owned());
        // Spin appends its `spin-*` headers after any the client sent (`crates/trigger-http/src/headers.rs`).
        matched.append_spin_headers(request.headers_mut(), &scheme, &host, &path_and_query, client);
        let absolute: http::Uri = format!("{scheme}://{host}{path_and_query}")
            .parse()
            .or_else(|_| format!("{scheme}://localhost{path_and_query}").parse())
            .context("request URI")?;
        *request.uri_mut() = absolute;

        // The handler enforces the request timeout itself (`instances.rs`: the request fails, and the instance ends
        // if it does not finish); this outer bound, a little later, also covers waiting for an instance slot.
        let watch = std::sync::Arc::new(RequestWatch::default());
        let bound = self.inner.request_timeout.saturating_add(std::time::Duration::from_secs(1));
        let handled = tokio::time::timeout(bound, component.handler.handle(std::sync::Arc::clone(&watch), request))
            .await
            .map_err(|_| {
                anyhow::anyhow!("component `{component_id}` timed out after {:?}", self.inner.request_timeout)
            })?;
        let response = match handled {
            Ok(response) => response.map(|body| WatchedBody { inner: body, watch, ended: false }.boxed_unsync()),
            Err(e) if e.downcast_ref::<ErrorCode>().is_some() => {
                // The guest answered with an error code instead of a response: Spin answers 500 with an empty body
                // (`internal_error(None, ..)` in `crates/trigger-http/src/server.rs`).
                tracing::warn!(component = %component_id, error = %format!("{e:#}"), "component returned an error code");
                http::Response::builder()
                    .status(http::StatusCode::INTERNAL_SERVER_ERROR)
                    .body(full_body(Bytes::new()))?
            }
            Err(e) if e.is::<wasmtime_wasi_http::handler::TrapOrPanicError>() && watch.instance_failure().is_some() => {
                // The instance ended while the request was in flight: a trap (maybe of another request on it) or
                // the instance's own timeout.
                let why = watch.instance_failure().unwrap_or_default();
                anyhow::bail!("component `{component_id}`: its instance ended: {why}")
            }
            Err(e) if e.is::<wasmtime_wasi_http::handler::ExpirationError>() => {
                anyhow::bail!("component `{component_id}` timed out after {:?}", self.inner.request_timeout)
            }
            Err(e) => return Err(anyhow::anyhow!("{e:?}")).with_context(|| format!("component `{component_id}`")),
        };
        Ok(Served { response, component: Some(component_id), route: Some(route) })
    }

    /// Spin's own endpoints, answered before routing for any method: `/.well-known/spin/health` (`OK`) and
    /// `/.well-known/spin/info` (the application's name and version, pretty JSON), with an explicit length.
    fn well_known(&self, path: &str) -> Option<anyhow::Result<http::Response<Bytes>>> {
        let (content_type, body) = match path {
            "/.well-known/spin/health" => (None, Bytes::from_static(b"OK")),
            "/.well-known/spin/info" => {
                let m = &self.inner.manifest;
                let info = serde_json::json!({ "name": m.name, "version": m.version.as_deref().unwrap_or_default() });
                (Some("application/json"), Bytes::from(serde_json::to_string_pretty(&info).unwrap_or_default()))
            }
            _ => return None,
        };
        let mut response = http::Response::builder().header(http::header::CONTENT_LENGTH, body.len());
        if let Some(t) = content_type {
            response = response.header(http::header::CONTENT_TYPE, t);
        }
        Some(response.body(body).map_err(anyhow::Error::from))
    }
}
