//! The HTTP plumbing the mock servers ([`crate::oneaccess`], [`crate::upstream`]) share: bind, accept, serve
//! HTTP/1.1 connections, run on the caller's runtime or on a thread of its own, stop on drop.
//!
//! Each mock keeps its own state and request handler and hands the handler to [`MockServer`]; the plumbing lives
//! here once so that a fix to it (shutdown, accept errors, the ready handshake of the background thread) reaches
//! every mock.

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A mock's request handler: called once a request, on the server's runtime. Any
/// `Fn(Request<Incoming>) -> impl Future<Output = Result<Response<B>, io::Error>>` that can move between threads
/// is one; an `Err` closes the connection without an answer (as hyper does).
pub(crate) trait Handler: Send + Sync + 'static {
    /// The answers' body.
    type Body: hyper::body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static;
    /// The answer to come.
    type Answer: Future<Output = Result<http::Response<Self::Body>, std::io::Error>> + Send + 'static;
    /// Answers `request`.
    fn handle(&self, request: http::Request<Incoming>) -> Self::Answer;
}

impl<H, A, B> Handler for H
where
    H: Fn(http::Request<Incoming>) -> A + Send + Sync + 'static,
    A: Future<Output = Result<http::Response<B>, std::io::Error>> + Send + 'static,
    B: hyper::body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static,
{
    type Body = B;
    type Answer = A;

    fn handle(&self, request: http::Request<Incoming>) -> A {
        self(request)
    }
}

/// A running mock server. Dropping it stops the server and closes its connections.
pub(crate) struct MockServer {
    addr: SocketAddr,
    stop: Stop,
}

/// How the server is stopped on drop.
enum Stop {
    /// A task on the caller's runtime: aborted (its connection tasks go with it).
    Task(tokio::task::JoinHandle<()>),
    /// A thread with its own runtime: told to stop, then joined.
    Thread { shutdown: Option<tokio::sync::oneshot::Sender<()>>, thread: Option<std::thread::JoinHandle<()>> },
}

impl MockServer {
    /// Binds `listen` (port 0: any free port) and serves with `handler` on the current tokio runtime. `name` (e.g.
    /// `mock OneAccess`) starts the server's log lines.
    ///
    /// # Errors
    /// The address cannot be bound (the cause is the `std::io::Error`).
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn`).
    pub(crate) async fn start(listen: SocketAddr, name: &'static str, handler: impl Handler) -> anyhow::Result<Self> {
        let (listener, addr) = bind(listen).await?;
        let task = tokio::spawn(serve(listener, name, handler));
        Ok(Self { addr, stop: Stop::Task(task) })
    }

    /// Serves with `handler` on `127.0.0.1` (a free port) from a thread of its own with its own runtime: for
    /// synchronous tests, or to outlive the caller's runtime. The thread is named after `name`, lower-case with
    /// dashes (`mock OneAccess`: `mock-oneaccess`).
    ///
    /// # Errors
    /// The thread, its runtime or the listener cannot be created.
    pub(crate) fn start_in_background(name: &'static str, handler: impl Handler) -> anyhow::Result<Self> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<SocketAddr>>();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_lowercase().replace(' ', "-"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow::Error::new(e).context("cannot start the async runtime")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
                    let listener = match bind(listen).await {
                        Ok((listener, addr)) => {
                            let _ = ready_tx.send(Ok(addr));
                            listener
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    tokio::select! {
                        () = serve(listener, name, handler) => {},
                        _ = shutdown_rx => {},
                    }
                });
            })
            .with_context(|| format!("cannot start the {name} thread"))?;
        let addr = ready_rx.recv().with_context(|| format!("the {name} thread ended before listening"))??;
        Ok(Self { addr, stop: Stop::Thread { shutdown: Some(shutdown_tx), thread: Some(thread) } })
    }

    /// The address the server listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        match &mut self.stop {
            Stop::Task(task) => task.abort(),
            Stop::Thread { shutdown, thread } => {
                if let Some(tx) = shutdown.take() {
                    let _ = tx.send(());
                }
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}

/// Reads a request body of at most `max_bytes`: the bytes (empty if unreadable) and whether it was too large.
pub(crate) async fn read_body(body: Incoming, max_bytes: usize) -> (Bytes, bool) {
    match Limited::new(body, max_bytes).collect().await {
        Ok(collected) => (collected.to_bytes(), false),
        Err(e) => (Bytes::new(), e.downcast_ref::<http_body_util::LengthLimitError>().is_some()),
    }
}

/// Binds `listen`; the address bound (with the port chosen when `listen`'s is 0).
async fn bind(listen: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr().with_context(|| format!("the address of the listener on {listen}"))?;
    Ok((listener, addr))
}

/// Accepts connections until dropped; dropping it aborts every open connection.
async fn serve(listener: TcpListener, name: &'static str, handler: impl Handler) {
    let handler = Arc::new(handler);
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "{name}: accept failed");
                // Do not spin on a persistent error (e.g. out of file descriptors).
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // As real model servers do: a stream's small events leave at once, not behind the client's delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "{name}: TCP_NODELAY not set");
        }
        let handler = Arc::clone(&handler);
        connections.spawn(async move {
            let service = service_fn(move |request| handler.handle(request));
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, %peer, "{name}: connection closed with an error");
            }
        });
        while connections.try_join_next().is_some() {}
    }
}
