//! Building marketplace requests for lifecycle scenarios and reading the answers.

use std::cell::Cell;

use koogallery_core::http::{Inbound, Outbound};
use koogallery_core::marketplace::Marketplace;
use koogallery_core::signing::keys::KeyRing;
use serde_json::Value;

use crate::{AK, Endpoint};

/// The answer's JSON body (`Value::Null` when it is not JSON, which no conforming answer is).
pub fn json(out: &Outbound) -> Value {
    serde_json::from_slice(&out.body).unwrap_or(Value::Null)
}

/// The answer's `resultCode`.
pub fn code(out: &Outbound) -> String {
    json(out)["resultCode"].as_str().unwrap_or("").to_owned()
}

/// Signs V2/V1 requests as the marketplace would, with fresh nonces and the endpoint's current time.
pub struct Lifecycle {
    mp: Marketplace,
    nonce: Cell<u64>,
    /// URL path of the production interface.
    pub path: String,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new("/produce")
    }
}

impl Lifecycle {
    /// A signer for the production URL `path`, using [`AK`].
    pub fn new(path: &str) -> Self {
        let keys = KeyRing::parse_list(AK).unwrap_or_else(|_| unreachable!("AK is a non-empty key"));
        Self { mp: Marketplace::new(keys), nonce: Cell::new(0), path: path.to_owned() }
    }

    /// A fresh nonce (64 upper-case hex characters, never repeated by this signer).
    pub fn nonce(&self) -> String {
        self.nonce.set(self.nonce.get() + 1);
        format!("{:064X}", self.nonce.get())
    }

    /// A V2 request for `body`, signed at `now_ms`.
    pub fn v2(&self, body: &Value, now_ms: u64) -> Inbound {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.mp.v2(&self.path, &bytes, now_ms, &self.nonce())
    }

    /// A V1 request with `params` (must include `timeStamp`).
    pub fn v1(&self, params: &[(&str, &str)]) -> Inbound {
        self.mp.v1(&self.path, params)
    }

    /// Sends a V2 `body` to `ep` at its current time.
    pub fn send(&self, ep: &dyn Endpoint, body: &Value) -> Outbound {
        ep.send(&self.v2(body, ep.now()))
    }
}
