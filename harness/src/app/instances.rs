//! Instance reuse as Spin 4's HTTP trigger does it: one wasmtime-wasi-http [`ProxyHandler`] per component, whose
//! workers each own one `Store` and one instance and feed it requests until a reuse limit, an idle timeout or a
//! trap ends it.
//!
//! Spin's own policy (`crates/trigger-http/src/server.rs`: `HttpHandlerState`, `HttpWorkerState`,
//! `HttpWorkerExpiration`; defaults in `crates/trigger-http/src/lib.rs`): a WASIp3 instance serves up to 128
//! requests, at most 16 at once, and is dropped after 1 s idle. A trap ends the worker, so every request then in
//! flight on that instance fails and the next request gets a fresh instance. The harness keeps those defaults;
//! 1/1 gives one instance per request.

use crate::clock::VirtualClock;
use crate::host::{ComponentContext, HostState};
use crate::outbound::{AllowedHosts, OutboundHandler, OutboundHooks, OutboundRecorder};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wasmtime::component::{GuestTaskId, ResourceTable};
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView as _};

/// How long an instance may be reused: Spin's `--max-instance-reuse-count`, `--max-instance-concurrent-reuse-count`
/// and `--idle-instance-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reuse {
    /// Requests one instance serves in its life (Spin's default for WASIp3: 128).
    pub(crate) max_requests: usize,
    /// Requests one instance serves at the same time (Spin's default: 16).
    pub(crate) max_concurrent: usize,
    /// How long an instance with nothing to do is kept for the next request (Spin's default: 1 s).
    pub(crate) idle_timeout: Duration,
}

impl Default for Reuse {
    /// Spin 4's defaults for WASIp3 components (`DEFAULT_WASIP3_MAX_INSTANCE_REUSE_COUNT` = 128,
    /// `DEFAULT_WASIP3_MAX_INSTANCE_CONCURRENT_REUSE_COUNT` = 16, `DEFAULT_IDLE_INSTANCE_TIMEOUT` = 1 s).
    fn default() -> Self {
        Self { max_requests: 128, max_concurrent: 16, idle_timeout: Duration::from_secs(1) }
    }
}

/// How often an idle instance checks whether another instance is waiting for its pool slot.
const SLOT_PRESSURE_CHECK: Duration = Duration::from_millis(50);

/// The pool slots of one engine, shared by every app on it: one per live instance.
///
/// A request that needs a new instance while every slot is taken waits for one. Idle instances give theirs up
/// early when someone waits (within [`SLOT_PRESSURE_CHECK`]), so an instance of one component kept for reuse never
/// holds up another component, or a burst, for its whole idle timeout.
pub(super) struct InstanceSlots {
    permits: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
}

impl InstanceSlots {
    pub(super) fn new(slots: usize) -> Self {
        Self { permits: Arc::new(tokio::sync::Semaphore::new(slots)), waiting: AtomicUsize::new(0) }
    }

    /// A slot, at once or once one is given back.
    async fn acquire(&self) -> wasmtime::Result<tokio::sync::OwnedSemaphorePermit> {
        use tokio::sync::TryAcquireError;
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => return Ok(permit),
            Err(TryAcquireError::Closed) => return Err(wasmtime::format_err!("the app is shutting down")),
            Err(TryAcquireError::NoPermits) => {}
        }
        /// Counts this waiter for as long as it waits, also if the wait is abandoned.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        Arc::clone(&self.permits).acquire_owned().await.map_err(|_| wasmtime::format_err!("the app is shutting down"))
    }

    fn someone_waits(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }
}

/// What serving one request learns about its instance: set when the instance accepts it.
#[derive(Default)]
pub(super) struct RequestWatch {
    instance_failure: OnceLock<Arc<OnceLock<String>>>,
}

impl RequestWatch {
    /// Why the instance that took the request ended, if it ended with an error (a trap, a timeout) — after which a
    /// response body it was still streaming ends early, which wasmtime reports as a normal end.
    pub(super) fn instance_failure(&self) -> Option<&str> {
        self.instance_failure.get().and_then(|f| f.get()).map(String::as_str)
    }
}

/// Everything a component's instances are made from: the [`HandlerState`] of its [`ProxyHandler`].
///
/// [`ProxyHandler`]: wasmtime_wasi_http::handler::ProxyHandler
pub(super) struct ComponentInstances {
    pub(super) engine: Engine,
    pub(super) pre: ServicePre<HostState>,
    pub(super) ctx: Arc<ComponentContext>,
    pub(super) allowed: Arc<AllowedHosts>,
    pub(super) environment: Vec<(String, String)>,
    pub(super) clock: Option<VirtualClock>,
    pub(super) guest_stdio: bool,
    pub(super) outbound: Option<Arc<dyn OutboundHandler>>,
    pub(super) recorder: OutboundRecorder,
    /// The engine's instance slots (the pooling allocator's limit), shared by every app on the engine: one permit
    /// per live instance, held by its [`Worker`] and so given back only after the store (and the pool slot) is
    /// freed.
    pub(super) slots: Arc<InstanceSlots>,
    pub(super) reuse: Reuse,
    pub(super) request_timeout: Duration,
    /// Instances created so far by every component of the app (see [`crate::App::instantiations`]).
    pub(super) instantiations: Arc<AtomicUsize>,
    /// Instances that ended with an error (a trap, a timeout) so far, by every component of the app.
    pub(super) failed_instances: Arc<AtomicUsize>,
}

fn http_view(state: &mut HostState) -> WasiHttpCtxView<'_> {
    state.http()
}

impl HandlerState for ComponentInstances {
    type StoreData = HostState;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Expiration, Worker>> {
        let slot = self.slots.acquire().await?;
        let mut wasi = WasiCtx::builder();
        if let Some(clock) = &self.clock {
            wasi.wall_clock(clock.clone());
        }
        if self.guest_stdio {
            wasi.inherit_stdout().inherit_stderr();
        }
        wasi.envs(&self.environment);
        let state = HostState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                component: Arc::clone(&self.ctx.id),
                allowed: Arc::clone(&self.allowed),
                handler: self.outbound.clone(),
                recorder: self.recorder.clone(),
            },
            component: Arc::clone(&self.ctx),
        };
        let mut store = Store::new(&self.engine, state);
        // Epoch interruption is on (see `engine.rs`): a guest that computes without awaiting yields to the executor
        // at every tick, so request timeouts fire and other instances keep running while it spins.
        store.epoch_deadline_async_yield_and_update(1);
        let service = self.pre.instantiate_async(&mut store).await?;
        self.instantiations.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(component = %self.ctx.id, "instance created");
        Ok(Instance {
            store,
            proxy: Proxy::P3(service),
            view: http_view,
            expiration: Expiration {
                idle_timeout: self.reuse.idle_timeout,
                request_timeout: self.request_timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::MAX / 4)),
                slots: Arc::clone(&self.slots),
            },
            state: Worker {
                component: Arc::clone(&self.ctx.id),
                reuse: self.reuse,
                request_timeout: self.request_timeout,
                failed_instances: Arc::clone(&self.failed_instances),
                failure: Arc::new(OnceLock::new()),
                _slot: slot,
            },
        })
    }
}

/// One instance's acceptance policy and its end.
pub(super) struct Worker {
    component: Arc<str>,
    reuse: Reuse,
    request_timeout: Duration,
    failed_instances: Arc<AtomicUsize>,
    /// Why this instance ended with an error, set before its store is dropped (see [`RequestWatch`]).
    failure: Arc<OnceLock<String>>,
    /// Dropped after the store: the worker drops its state after [`WorkerState::drop`] has dropped the store.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl WorkerState for Worker {
    type StoreData = HostState;
    type RequestData = Arc<RequestWatch>;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.max_requests {
            ShouldAccept::Never
        } else if concurrent >= self.reuse.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _: StoreContextMut<'_, HostState>,
        watch: Arc<RequestWatch>,
        _: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>> {
        let _ = watch.instance_failure.set(Arc::clone(&self.failure));
        Box::pin(tokio::time::sleep(self.request_timeout))
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        match result {
            Ok(()) => {}
            // wasmtime-wasi-http reports a worker dropped before it finished as "worker panicked"; without a panic in
            // progress that is the runtime shutting down (or a test ending) with the instance idle or in use, not a
            // fault of the guest. Spin prints it anyway (see ../shared/tools/README.md); the harness does not.
            Err(error) if !std::thread::panicking() && error.to_string() == "worker panicked" => {
                tracing::debug!(component = %self.component, "instance dropped at shutdown");
            }
            Err(error) => {
                // Before the store (and with it the channels of any response body still streaming) is dropped.
                let _ = self.failure.set(format!("{error:#}"));
                self.failed_instances.fetch_add(1, Ordering::Relaxed);
                // A trap or a timeout: every request then in flight on this instance has already failed.
                tracing::warn!(component = %self.component, error = %format!("{error:#}"), "instance ended with an error");
            }
        }
        drop(store);
    }
}

/// When an instance is dropped: after `idle_timeout` with nothing to do (at once when another instance waits for a
/// pool slot), or `request_timeout` after the latest request it accepted (the second line of defence the
/// `WorkerState` docs ask for).
pub(super) struct Expiration {
    idle_timeout: Duration,
    request_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    slots: Arc<InstanceSlots>,
}

impl WorkerExpiration for Expiration {
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>, status: WorkerStatus, start: Instant) -> Poll<()> {
        let me = self.get_mut();
        let idle = status == WorkerStatus::Idle;
        let timeout = if idle { me.idle_timeout } else { me.request_timeout };
        let Some(deadline) = start.checked_add(timeout) else { return Poll::Pending };
        loop {
            if idle && me.slots.someone_waits() {
                return Poll::Ready(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Poll::Ready(());
            }
            // Idle: wake at least every SLOT_PRESSURE_CHECK to see whether someone waits for a slot.
            let wake = if idle { deadline.min(now + SLOT_PRESSURE_CHECK) } else { deadline };
            let current = me.sleep.deadline().into_std();
            if current <= now || current > wake {
                me.sleep.as_mut().reset(tokio::time::Instant::from_std(wake));
            }
            if me.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}
