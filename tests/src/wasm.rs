//! The `produce` component running in the harness (wasmtime), with a memory store and a virtual clock.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use harness::{App, KvBackend, MemoryKv, OutboundHandler, VirtualClock};
use koogallery_core::http::{Inbound, Outbound};

use crate::{AK, Endpoint};

/// The workspace root (where `spin.toml` and `target/` are).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The production interface through the Wasm component, exactly as `harness up` serves it.
pub struct WasmEndpoint {
    app: Arc<App>,
    kv: MemoryKv,
    store: Arc<dyn KvBackend>,
    clock: VirtualClock,
    rt: tokio::runtime::Runtime,
}

/// How to build a [`WasmEndpoint`].
pub struct WasmOptions {
    /// Application variables (`access_keys` defaults to [`AK`]).
    pub variables: Vec<(String, String)>,
    /// Initial wall clock (ms epoch).
    pub now_ms: u64,
    /// In-process answers to outbound calls (the seller's backend).
    pub outbound: Option<Arc<dyn OutboundHandler>>,
    /// The `default` store; a fresh [`MemoryKv`] when `None`.
    pub store: Option<Arc<dyn KvBackend>>,
    /// Make every compare-and-swap report a conflict after writing, as Spin 4.1's Redis store does.
    pub spin_redis_swap_defect: bool,
    /// Make a compare-and-swap on a missing key an unconditional write, as Spin 4.1's SQLite store does.
    pub spin_sqlite_swap_upsert: bool,
    /// One fresh instance per request (reuse 1/1) instead of Spin 4's reuse (128 requests, 16 at once).
    pub isolated: bool,
}

impl Default for WasmOptions {
    fn default() -> Self {
        Self {
            variables: vec![],
            now_ms: 1_700_000_000_000,
            outbound: None,
            store: None,
            spin_redis_swap_defect: false,
            spin_sqlite_swap_upsert: false,
            isolated: false,
        }
    }
}

impl WasmEndpoint {
    /// Loads `spin.toml` from the workspace root with `opts`.
    ///
    /// # Errors
    /// When the component is not built (`scripts/test` builds it first) or the manifest does not load.
    pub fn new(opts: WasmOptions) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let kv = MemoryKv::new();
        let custom_store = opts.store.is_some();
        let store: Arc<dyn KvBackend> = opts.store.unwrap_or_else(|| Arc::new(kv.clone()));
        let clock = VirtualClock::at_ms(opts.now_ms);
        let manifest = workspace_root().join("spin.toml");
        let mut builder = App::builder(manifest)
            .env_vars(std::iter::empty::<(String, String)>())
            .variable("access_keys", AK)
            .kv(kv.clone())
            .clock(clock.clone())
            .spin_redis_swap_defect(opts.spin_redis_swap_defect)
            .spin_sqlite_swap_upsert(opts.spin_sqlite_swap_upsert);
        if opts.isolated {
            builder = builder.max_instance_reuse_count(1).max_instance_concurrent_reuse_count(1);
        }
        if custom_store {
            builder = builder.kv(Arc::clone(&store));
        }
        for (k, v) in opts.variables {
            builder = builder.variable(k, v);
        }
        if let Some(handler) = opts.outbound {
            builder = builder.outbound(handler);
        }
        let app = rt.block_on(builder.build()).map_err(|e| {
            anyhow::anyhow!(
                "{e} (build the components first: cargo build --profile wasm --target wasm32-wasip2 -p produce)"
            )
        })?;
        Ok(Self { app: Arc::new(app), kv, store, clock, rt })
    }

    /// The shared app, for concurrent sends from the test.
    pub fn app(&self) -> Arc<App> {
        Arc::clone(&self.app)
    }

    /// The memory store behind the component (unused when [`WasmOptions::store`] named another).
    pub fn kv(&self) -> &MemoryKv {
        &self.kv
    }

    /// The store behind the component, whichever backend it is.
    pub fn store(&self) -> &Arc<dyn KvBackend> {
        &self.store
    }

    /// The runtime the app runs on.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }
}

/// Turns an [`Inbound`] into the request the harness serves.
pub fn to_http(req: &Inbound) -> http::Request<Bytes> {
    let uri = if req.query.is_empty() { req.path.clone() } else { format!("{}?{}", req.path, req.query) };
    let mut builder = http::Request::builder().method(req.method.as_str()).uri(uri);
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(Bytes::from(req.body.clone())).unwrap_or_else(|_| http::Request::new(Bytes::new()))
}

/// Turns the harness's response into an [`Outbound`].
pub fn from_http(resp: http::Response<Bytes>) -> Outbound {
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    Outbound { status: resp.status().as_u16(), headers, body: resp.into_body().to_vec() }
}

impl Endpoint for WasmEndpoint {
    fn send(&self, req: &Inbound) -> Outbound {
        match self.rt.block_on(self.app.send(to_http(req))) {
            Ok(resp) => from_http(resp),
            // A trap or host error is a finding: surface it as a non-conforming answer.
            Err(e) => Outbound { status: 599, headers: vec![], body: format!("harness error: {e:#}").into_bytes() },
        }
    }
    fn set_now(&self, ms: u64) {
        self.clock.set_ms(ms);
    }
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }
    fn keys(&self) -> Vec<String> {
        self.kv.keys()
    }
    fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.kv.value(key)
    }
}

impl WasmEndpoint {
    /// Sends every request at once (one task each) and returns the answers in order, with the most requests that
    /// were in the component at the same time (a concurrency test asserts it is above 1: the requests overlapped).
    ///
    /// # Panics
    /// When a request fails in the host (a trap, a harness error): a finding, never an answer.
    pub fn send_concurrently(&self, requests: Vec<http::Request<Bytes>>) -> (Vec<Outbound>, usize) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let in_flight = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let app = self.app();
        let counters = Arc::clone(&in_flight);
        let answers = self.rt.block_on(async move {
            let tasks: Vec<_> = requests
                .into_iter()
                .map(|req| {
                    let (app, counters) = (app.clone(), Arc::clone(&counters));
                    tokio::spawn(async move {
                        let now_in = counters.0.fetch_add(1, Ordering::SeqCst) + 1;
                        counters.1.fetch_max(now_in, Ordering::SeqCst);
                        let answer = app.send(req).await;
                        counters.0.fetch_sub(1, Ordering::SeqCst);
                        answer
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await);
            }
            out
        });
        let answers = answers
            .into_iter()
            .map(|a| match a {
                Ok(Ok(resp)) => from_http(resp),
                other => panic!("request failed: {other:?}"),
            })
            .collect();
        (answers, in_flight.1.load(Ordering::SeqCst))
    }
}
