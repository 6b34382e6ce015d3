//! The HTTP/1.1 front end of `harness up`: hyper 1 over a bound listener, one task per connection, graceful stop.
//!
//! Request and response bodies stream through [`App::serve_streaming`] as in Spin (for the request size limit see
//! [`MAX_BODY_BYTES`]). Each request is logged with `tracing` when its response head is ready: method, path (never
//! the query string), route, component, status, latency. Bodies are never logged.

use crate::app::App;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use wasmtime_wasi_http::WasiBody;

/// Largest request body accepted: a request declaring a larger `content-length` gets `413`; a chunked body reaches
/// the guest as a body error once it passes this size.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// How long in-flight requests may take to finish after a stop signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

fn plain(status: http::StatusCode, text: &'static str) -> http::Response<WasiBody> {
    let mut r = http::Response::new(crate::app::full_body(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r
}

/// `content-length` as a number, if the client sent a valid one.
fn declared_length(request: &http::Request<Incoming>) -> Option<u64> {
    request.headers().get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

async fn handle(app: App, request: http::Request<Incoming>, peer: SocketAddr) -> http::Response<WasiBody> {
    let start = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if declared_length(&request).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        tracing::warn!(%method, %path, status = 413, "request body too large");
        return plain(http::StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large");
    }
    // A chunked body larger than the limit reaches the guest as a body error once the limit is passed.
    let request = request.map(|body| {
        Limited::new(body, MAX_BODY_BYTES)
            .map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(format!("request body: {e}"))))
            .boxed_unsync()
    });
    match app.serve_streaming(request, peer).await {
        Ok(served) => {
            let status = served.response.status().as_u16();
            tracing::info!(
                %method,
                %path,
                route = served.route.as_deref().unwrap_or("-"),
                component = served.component.as_deref().unwrap_or("-"),
                status,
                latency_ms = format!("{:.3}", start.elapsed().as_secs_f64() * 1000.0),
                "request"
            );
            served.response
        }
        Err(e) => {
            tracing::error!(
                %method,
                %path,
                status = 500,
                latency_ms = format!("{:.3}", start.elapsed().as_secs_f64() * 1000.0),
                error = %format!("{e:#}"),
                "request failed"
            );
            // As Spin: a trap or a timeout is a 500 with an empty body (`internal_error(None, ..)` in
            // `crates/trigger-http/src/server.rs`).
            let mut r = http::Response::new(crate::app::full_body(Bytes::new()));
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections finish their current request
/// (up to [`DRAIN_TIMEOUT`]).
pub async fn serve(app: App, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                // Streamed answers (server-sent events) must leave chunk by chunk: no Nagle delay behind the
                // client's delayed ACK.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, %peer, "TCP_NODELAY not set");
                }
                let app = app.clone();
                let mut stop = stop_rx.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(handle(app, req, peer).await) }
                    });
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    let mut conn = std::pin::pin!(conn);
                    let result = tokio::select! {
                        r = conn.as_mut() => r,
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            conn.await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection closed with an error");
                    }
                });
            }
        }
        while connections.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    let open = connections.len();
    if open > 0 {
        tracing::info!(connections = open, "draining open connections");
    }
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("some connections did not finish within {DRAIN_TIMEOUT:?}; closing them");
        connections.abort_all();
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
