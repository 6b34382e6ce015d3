//! The benchmarks' native baseline: the production interface served by a plain hyper server that calls the same
//! core functions as the Wasm component (`koogallery_core::produce::handle`), on an in-memory store, with no Wasm
//! and no Spin in the way. `scripts/bench` loads it with the same wrk runs as `harness up` and `spin up`.
//!
//! `native-produce --listen 127.0.0.1:3977`; variables from `SPIN_VARIABLE_<NAME>` as under Spin. Answers
//! `/.well-known/spin/health` like the runners, so the same start-up check works. Not a product: no forward mode
//! (outbound calls are refused), no persistence.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use koogallery_core::http::{Inbound, MAX_BODY_BYTES};
use koogallery_core::ports::{MemoryStore, NoBackend, OsRandom, SystemClock};
use koogallery_core::produce::{Ctx, ProduceConfig, handle};
use std::net::SocketAddr;

fn main() -> anyhow::Result<()> {
    let listen: SocketAddr = match std::env::args().skip_while(|a| a != "--listen").nth(1) {
        Some(a) => a.parse()?,
        None => "127.0.0.1:3000".parse()?,
    };
    let cfg =
        ProduceConfig::from_variables(|name| std::env::var(format!("SPIN_VARIABLE_{}", name.to_uppercase())).ok())
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let shared: &'static (ProduceConfig, MemoryStore) = Box::leak(Box::new((cfg, MemoryStore::new())));
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    println!("Serving http://{}", listener.local_addr()?);
    // One single-threaded runtime per core, all accepting on the one socket: the same thread count as the
    // harness's multi-threaded runtime, without requiring the core's futures to be `Send`.
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let listener = listener.try_clone()?;
            Ok(std::thread::spawn(move || serve(listener, shared)))
        })
        .collect::<std::io::Result<_>>()?;
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    Ok(())
}

fn serve(listener: std::net::TcpListener, shared: &'static (ProduceConfig, MemoryStore)) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::task::spawn_local(async move {
                let service = hyper::service::service_fn(move |req| answer(req, shared));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn answer(
    req: http::Request<hyper::body::Incoming>,
    (cfg, store): &'static (ProduceConfig, MemoryStore),
) -> Result<http::Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/.well-known/spin/health" {
        return Ok(http::Response::new(Full::new(Bytes::from_static(b"OK"))));
    }
    let body = match Limited::new(body, MAX_BODY_BYTES + 1).collect().await {
        Ok(c) => c.to_bytes().to_vec(),
        Err(_) => vec![0; MAX_BODY_BYTES + 1],
    };
    let inbound = Inbound {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
            .collect(),
        body,
    };
    let ctx = Ctx { store, backend: &NoBackend, clock: &SystemClock, random: &OsRandom };
    let out = handle(&inbound, cfg, &ctx).await.response;
    let mut response = http::Response::new(Full::new(Bytes::from(out.body)));
    *response.status_mut() = http::StatusCode::from_u16(out.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in &out.headers {
        if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_str(v)) {
            response.headers_mut().append(k, v);
        }
    }
    Ok(response)
}
