//! The per-request host state and the Spin interfaces (`spin:key-value@3.0.0`, `spin:variables@3.0.0`, and in
//! `wasi_keyvalue.rs` `wasi:keyvalue/store` and `wasi:keyvalue/atomics` `@0.2.0-draft2`).
//!
//! Invariant: a `HostState` lives as long as one instance (one `Store`), which may serve many requests, some at the
//! same time (see `app/instances.rs`), so it holds nothing that belongs to one request; everything shared between
//! instances (store backends, variable values, allow-lists) sits behind `Arc`s in [`ComponentContext`].
//!
//! Invariant: a label means one store whichever interface opens it: `spin:key-value` `open` and `wasi:keyvalue`
//! `open` check the same allow-list and reach the same [`KvBackend`], as in Spin.

use crate::kv::KvBackend;
use crate::outbound::OutboundHooks;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use wasmtime::component::{Accessor, HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

mod wasi_keyvalue;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "spin-host",
        imports: {
            "spin:key-value/key-value.[method]store.get-keys": trappable,
            // Synchronous WIT functions whose host side awaits a backend (Redis, SQLite off the executor): async on
            // the host, blocking for the guest.
            "wasi:keyvalue/store": async,
            "wasi:keyvalue/atomics": async,
        },
        with: {
            "spin:key-value/key-value.store": super::OpenStore,
            "wasi:keyvalue/store.bucket": super::OpenBucket,
            "wasi:keyvalue/atomics.cas": super::PendingCas,
        },
    });
}

use bindings::spin::key_value::key_value::{self as skv, Error as KvWitError};
use bindings::spin::variables::variables::{self as svar, Error as VarWitError};

/// What a component may do, shared by all its requests.
pub(crate) struct ComponentContext {
    /// The component id.
    pub(crate) id: Arc<str>,
    /// `key_value_stores` from the manifest.
    pub(crate) kv_labels: BTreeSet<String>,
    /// Every configured store, by label (shared by all components, as in Spin).
    pub(crate) stores: Arc<BTreeMap<String, Arc<dyn KvBackend>>>,
    /// The component's variables, resolved through the app's providers on every guest `get` (as Spin does).
    pub(crate) variables: crate::variables::ComponentVariables,
    /// Answer every `wasi:keyvalue/atomics` `swap` with `cas-failed` after doing it, as Spin 4.1.0-pre0 does on
    /// Redis (see [`crate::AppBuilder::spin_redis_swap_defect`]).
    pub(crate) spin_redis_swap_defect: bool,
    /// Write a `swap` whose `cas` saw no value unconditionally and answer success, as Spin 4.1.0-pre0's SQLite store
    /// does (an upsert; see [`crate::AppBuilder::spin_sqlite_swap_upsert`]).
    pub(crate) spin_sqlite_swap_upsert: bool,
    /// `cas-failed` answers given so far, by every component of the app (see [`crate::App::cas_conflicts`]).
    pub(crate) cas_conflicts: Arc<std::sync::atomic::AtomicUsize>,
}

/// Why a component may not open a store label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LabelDenied {
    /// Not in the component's `key_value_stores`.
    AccessDenied,
    /// Listed, but no backend is configured for it.
    NoSuchStore,
}

impl ComponentContext {
    /// The backend behind `label`, if this component may open it: the one check behind both key-value interfaces.
    pub(crate) fn open_label(&self, label: &str) -> Result<Arc<dyn KvBackend>, LabelDenied> {
        if !self.kv_labels.contains(label) {
            tracing::debug!(component = %self.id, label = %label, "key-value store access denied");
            return Err(LabelDenied::AccessDenied);
        }
        self.stores.get(label).map(Arc::clone).ok_or(LabelDenied::NoSuchStore)
    }
}

/// The data of one instance's `Store`.
pub(crate) struct HostState {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: OutboundHooks,
    pub(crate) component: Arc<ComponentContext>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// What a guest `store` handle points at.
pub struct OpenStore {
    backend: Arc<dyn KvBackend>,
}

/// What a guest `wasi:keyvalue/store` `bucket` handle points at.
pub struct OpenBucket {
    backend: Arc<dyn KvBackend>,
}

/// What a guest `wasi:keyvalue/atomics` `cas` handle points at: the key and its value when the handle was made,
/// which `swap` compares against.
pub struct PendingCas {
    backend: Arc<dyn KvBackend>,
    key: String,
    /// The value read (`None`: the key was absent).
    current: Option<Vec<u8>>,
}

/// `HasData` marker for the Spin interfaces.
struct Spin;

impl HasData for Spin {
    type Data<'a> = &'a mut HostState;
}

/// Adds WASI (p2 for Rust std, p3), `wasi:http@0.3.0` and the Spin interfaces to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi::p3::add_to_linker(linker)?;
    wasmtime_wasi_http::p3::add_to_linker(linker)?;
    skv::add_to_linker::<HostState, Spin>(linker, |s| s)?;
    svar::add_to_linker::<HostState, Spin>(linker, |s| s)?;
    bindings::wasi::keyvalue::store::add_to_linker::<HostState, Spin>(linker, |s| s)?;
    bindings::wasi::keyvalue::atomics::add_to_linker::<HostState, Spin>(linker, |s| s)?;
    Ok(())
}

fn other(e: impl std::fmt::Display) -> KvWitError {
    KvWitError::Other(e.to_string())
}

/// The backend behind a guest handle.
fn backend<T>(acc: &Accessor<T, Spin>, h: &Resource<OpenStore>) -> Result<Arc<dyn KvBackend>, KvWitError> {
    acc.with(|mut view| {
        let host = view.get();
        host.table.get(h).map(|s| Arc::clone(&s.backend)).map_err(other)
    })
}

impl skv::Host for &mut HostState {}

impl skv::HostStore for &mut HostState {
    fn drop(&mut self, h: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

impl<T> skv::HostStoreWithStore<T> for Spin {
    async fn open(acc: &Accessor<T, Self>, label: String) -> Result<Resource<OpenStore>, KvWitError> {
        acc.with(|mut view| {
            let host = view.get();
            let backend = host.component.open_label(&label).map_err(|denied| match denied {
                LabelDenied::AccessDenied => KvWitError::AccessDenied,
                LabelDenied::NoSuchStore => KvWitError::NoSuchStore,
            })?;
            host.table.push(OpenStore { backend }).map_err(|_| KvWitError::StoreTableFull)
        })
    }

    async fn get(acc: &Accessor<T, Self>, h: Resource<OpenStore>, key: String) -> Result<Option<Vec<u8>>, KvWitError> {
        backend(acc, &h)?.get(&key).await.map_err(other)
    }

    async fn set(
        acc: &Accessor<T, Self>,
        h: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), KvWitError> {
        backend(acc, &h)?.set(&key, &value).await.map_err(other)
    }

    async fn delete(acc: &Accessor<T, Self>, h: Resource<OpenStore>, key: String) -> Result<(), KvWitError> {
        backend(acc, &h)?.delete(&key).await.map_err(other)
    }

    async fn exists(acc: &Accessor<T, Self>, h: Resource<OpenStore>, key: String) -> Result<bool, KvWitError> {
        backend(acc, &h)?.exists(&key).await.map_err(other)
    }

    async fn get_keys(
        acc: &Accessor<T, Self>,
        h: Resource<OpenStore>,
    ) -> wasmtime::Result<(
        wasmtime::component::StreamReader<String>,
        wasmtime::component::FutureReader<Result<(), KvWitError>>,
    )> {
        let (keys, result) = match backend(acc, &h) {
            Ok(b) => match b.get_keys().await {
                Ok(keys) => (keys, Ok(())),
                Err(e) => (Vec::new(), Err(other(e))),
            },
            Err(e) => (Vec::new(), Err(e)),
        };
        acc.with(|mut view| {
            let stream = wasmtime::component::StreamReader::new(&mut view, keys)?;
            let future =
                wasmtime::component::FutureReader::new(&mut view, async move { Ok::<_, wasmtime::Error>(result) })?;
            Ok((stream, future))
        })
    }
}

impl svar::Host for &mut HostState {}

impl<T> svar::HostWithStore<T> for Spin {
    async fn get(acc: &Accessor<T, Self>, name: String) -> Result<String, VarWitError> {
        if !crate::template::is_valid_variable_name(&name) {
            return Err(VarWitError::InvalidName(format!("{name:?} is not a valid variable name")));
        }
        // Resolved now, through the providers (flags, environment, `.env`, default), outside the store borrow.
        let component = acc.with(|mut view| Arc::clone(&view.get().component));
        match component.variables.get(&name) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e @ crate::variables::VariableError::Provider { .. })) => {
                Err(VarWitError::Provider(e.to_string()))
            }
            Some(Err(e)) => Err(VarWitError::Undefined(e.to_string())),
            None => Err(VarWitError::Undefined(format!(
                "variable `{name}` is not in [component.{}.variables]",
                component.id
            ))),
        }
    }
}
