//! `wasi:keyvalue/store` and `wasi:keyvalue/atomics` `@0.2.0-draft2`: what spin-sdk 7's `experimental` module
//! imports, on the same stores as `spin:key-value` (Spin backs both with one store per label).
//!
//! The WIT functions are synchronous for the guest; here they are async, awaiting the backend.
//!
//! - `list-keys` returns every key at once and no cursor, as Spin does.
//! - A `cas` handle holds the value read when it was made; `swap` is [`KvBackend::swap_if`] against that value, and
//!   a lost race answers `cas-failed` with a fresh handle (re-read now).
//! - With `ComponentContext::spin_redis_swap_defect` on, every `swap` answers
//!   `cas-failed` after doing its compare-and-set, whatever the outcome (Spin 4.1.0-pre0 on Redis).

use super::bindings::wasi::keyvalue::atomics::{self, CasError};
use super::bindings::wasi::keyvalue::store::{self, Error, KeyResponse};
use super::{HostState, LabelDenied, OpenBucket, PendingCas};
use crate::kv::KvBackend;
use std::sync::Arc;
use wasmtime::component::Resource;

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

fn store_error(e: impl std::fmt::Display) -> CasError {
    CasError::StoreError(other(e))
}

impl HostState {
    /// The backend behind a guest `bucket` handle.
    fn bucket_backend(&self, bucket: &Resource<OpenBucket>) -> Result<Arc<dyn KvBackend>, Error> {
        self.table.get(bucket).map(|b| Arc::clone(&b.backend)).map_err(other)
    }

    /// A new `cas` handle on `key`, holding its value as of now.
    async fn new_cas(&mut self, backend: Arc<dyn KvBackend>, key: String) -> Result<Resource<PendingCas>, Error> {
        let current = backend.get(&key).await.map_err(other)?;
        self.table.push(PendingCas { backend, key, current }).map_err(other)
    }
}

impl store::Host for &mut HostState {
    async fn open(&mut self, identifier: String) -> Result<Resource<OpenBucket>, Error> {
        let backend = self.component.open_label(&identifier).map_err(|denied| match denied {
            LabelDenied::AccessDenied => Error::AccessDenied,
            LabelDenied::NoSuchStore => Error::NoSuchStore,
        })?;
        self.table.push(OpenBucket { backend }).map_err(other)
    }
}

impl store::HostBucket for &mut HostState {
    async fn get(&mut self, bucket: Resource<OpenBucket>, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.bucket_backend(&bucket)?.get(&key).await.map_err(other)
    }

    async fn set(&mut self, bucket: Resource<OpenBucket>, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.bucket_backend(&bucket)?.set(&key, &value).await.map_err(other)
    }

    async fn delete(&mut self, bucket: Resource<OpenBucket>, key: String) -> Result<(), Error> {
        self.bucket_backend(&bucket)?.delete(&key).await.map_err(other)
    }

    async fn exists(&mut self, bucket: Resource<OpenBucket>, key: String) -> Result<bool, Error> {
        self.bucket_backend(&bucket)?.exists(&key).await.map_err(other)
    }

    async fn list_keys(&mut self, bucket: Resource<OpenBucket>, _cursor: Option<String>) -> Result<KeyResponse, Error> {
        let keys = self.bucket_backend(&bucket)?.get_keys().await.map_err(other)?;
        Ok(KeyResponse { keys, cursor: None })
    }

    async fn drop(&mut self, bucket: Resource<OpenBucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for &mut HostState {
    async fn increment(&mut self, bucket: Resource<OpenBucket>, key: String, delta: i64) -> Result<i64, Error> {
        self.bucket_backend(&bucket)?.increment(&key, delta).await.map_err(other)
    }

    async fn swap(&mut self, cas: Resource<PendingCas>, value: Vec<u8>) -> Result<(), CasError> {
        let cas = self.table.delete(cas).map_err(store_error)?;
        if self.component.spin_sqlite_swap_upsert && cas.current.is_none() {
            cas.backend.set(&cas.key, &value).await.map_err(store_error)?;
            return Ok(());
        }
        let swapped = cas.backend.swap_if(&cas.key, cas.current.as_deref(), &value).await.map_err(store_error)?;
        if swapped && !self.component.spin_redis_swap_defect {
            return Ok(());
        }
        if swapped {
            tracing::debug!(component = %self.component.id, "swap written, answered cas-failed (Spin Redis defect emulation)");
        }
        self.component.cas_conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fresh = self.new_cas(cas.backend, cas.key).await.map_err(CasError::StoreError)?;
        Err(CasError::CasFailed(fresh))
    }
}

impl atomics::HostCas for &mut HostState {
    async fn new(&mut self, bucket: Resource<OpenBucket>, key: String) -> Result<Resource<PendingCas>, Error> {
        let backend = self.bucket_backend(&bucket)?;
        self.new_cas(backend, key).await
    }

    async fn current(&mut self, cas: Resource<PendingCas>) -> Result<Option<Vec<u8>>, Error> {
        self.table.get(&cas).map(|c| c.current.clone()).map_err(other)
    }

    async fn drop(&mut self, cas: Resource<PendingCas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}
