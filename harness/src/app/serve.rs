//! Request execution: Spin's routing and `spin-*` headers, then one fresh instance per request.

use super::application::{App, Served};
use super::engine::LoadedComponent;
use crate::host::HostState;
use crate::outbound::OutboundHooks;
use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

impl App {
    /// Serves `request` in-process, as from client `127.0.0.1:0`.
    ///
    /// The URI may be a bare path (`/produce?x=1`); the `Host` header (default `localhost`) completes it.
    /// A route miss is a `404`; a guest that returns a WASI HTTP error code is a `500` (both are answers).
    ///
    /// # Errors
    /// The harness could not get an answer: the guest trapped, timed out, or could not be instantiated.
    pub async fn send(&self, request: http::Request<Bytes>) -> anyhow::Result<http::Response<Bytes>> {
        Ok(self.serve(request, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?.response)
    }

    /// Serves `request` from `client`, reporting the route and component (what `up` logs).
    ///
    /// # Errors
    /// As [`App::send`].
    pub async fn serve(&self, mut request: http::Request<Bytes>, client: SocketAddr) -> anyhow::Result<Served> {
        let path = request.uri().path().to_owned();
        if let Some(response) = self.well_known(&path) {
            return Ok(Served { response: response?, component: None, route: None });
        }
        let Some(matched) = self.inner.router.route(&path) else {
            let response = http::Response::builder().status(http::StatusCode::NOT_FOUND).body(Bytes::new())?;
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
        for (name, value) in matched.spin_headers(&scheme, &host, &path_and_query, client) {
            let value = http::HeaderValue::from_str(&value).with_context(|| format!("header {name}"))?;
            request.headers_mut().insert(name, value);
        }
        let absolute: http::Uri = format!("{scheme}://{host}{path_and_query}")
            .parse()
            .or_else(|_| format!("{scheme}://localhost{path_and_query}").parse())
            .context("request URI")?;
        *request.uri_mut() = absolute;

        let _slot = self.inner.slots.acquire().await.context("app is shutting down")?;
        let run = self.run_component(component, request);
        let response = tokio::time::timeout(self.inner.request_timeout, run)
            .await
            .map_err(|_| {
                anyhow::anyhow!("component `{component_id}` timed out after {:?}", self.inner.request_timeout)
            })?
            .with_context(|| format!("component `{component_id}`"))?;
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

    /// One fresh `Store` and instance: run the handler and collect the whole response body.
    async fn run_component(
        &self,
        component: &LoadedComponent,
        request: http::Request<Bytes>,
    ) -> anyhow::Result<http::Response<Bytes>> {
        let mut wasi = WasiCtx::builder();
        if let Some(clock) = &self.inner.clock {
            wasi.wall_clock(clock.clone());
        }
        if self.inner.guest_stdio {
            wasi.inherit_stdout().inherit_stderr();
        }
        wasi.envs(&component.environment);
        let state = HostState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                component: Arc::clone(&component.ctx.id),
                allowed: Arc::clone(&component.allowed),
                handler: self.inner.outbound.clone(),
                recorder: self.inner.recorder.clone(),
            },
            component: Arc::clone(&component.ctx),
        };
        let mut store = Store::new(&self.inner.engine, state);
        let service = component.pre.instantiate_async(&mut store).await.map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let (guest_request, request_io) =
            wasmtime_wasi_http::p3::Request::from_http(&mut store.data_mut().hooks, request.map(Full::new));
        store
            .run_concurrent(async |accessor| -> anyhow::Result<http::Response<Bytes>> {
                let answer = service.handle(accessor, guest_request).await.map_err(|e| anyhow::anyhow!("{e:#}"))?;
                let response = match answer {
                    Ok(r) => r,
                    Err(code) => {
                        let body = Bytes::from(format!("component returned an error: {code:?}"));
                        return Ok(http::Response::builder().status(500).body(body)?);
                    }
                };
                let response = accessor
                    .with(|mut access| response.into_http(&mut access, request_io))
                    .map_err(|e| anyhow::anyhow!("{e:#}"))?;
                let (parts, body) = response.into_parts();
                let body = body.collect().await.map_err(|e| anyhow::anyhow!("response body: {e}"))?.to_bytes();
                Ok(http::Response::from_parts(parts, body))
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}"))?
    }
}
