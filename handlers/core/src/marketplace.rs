//! Requests as KooGallery sends them: signed V2 POSTs, V1 GETs with `authToken`, kit POSTs with `x-sign`.
//!
//! The harness (`sign`, `replay`, the emulator) and the tests use this to talk to a handler exactly as the
//! marketplace would, so every test request goes through the real verifier.
//!
//! ```
//! use koogallery_core::signing::keys::KeyRing;
//! use koogallery_core::marketplace::Marketplace;
//! let mp = Marketplace::new(KeyRing::parse_list("1234567890abcdef1234567890abcdef").expect("key"));
//! let body = br#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;
//! let req = mp.v2("/saasproduce", body, 1680508066618, "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA");
//! assert!(req.query.starts_with("signature=A3086BF160E99C0F507576161BBE4911A01C1179403F02133EB263559D4530E8&"));
//! ```

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::http::Inbound;
use crate::signing::keys::KeyRing;
use crate::signing::kit::KitVerifier;
use crate::signing::v1::V1AuthToken;
use crate::signing::v2::V2Verifier;
use crate::signing::window::TimestampWindow;

/// Signs requests with the marketplace's side of the shared keys (the first key of the ring).
#[derive(Debug, Clone)]
pub struct Marketplace {
    keys: KeyRing,
}

impl Marketplace {
    /// A marketplace that signs with the first key of `keys`.
    pub fn new(keys: KeyRing) -> Self {
        Self { keys }
    }

    /// A V2 basic-interface request: `POST path?signature=…&timestamp=…&nonce=…` with `body` as the exact bytes.
    pub fn v2(&self, path: &str, body: &[u8], timestamp_ms: u64, nonce: &str) -> Inbound {
        let ts = timestamp_ms.to_string();
        let signature = V2Verifier::new(self.keys.clone(), TimestampWindow::default()).sign(body, &ts, nonce);
        Inbound {
            method: "POST".into(),
            path: path.into(),
            query: format!("signature={signature}&timestamp={ts}&nonce={}", encode(nonce)),
            headers: vec![
                ("content-type".into(), "application/json;charset=utf8".into()),
                ("accept".into(), "application/json".into()),
            ],
            body: body.to_vec(),
        }
    }

    /// A V1 request: `GET path?<params>&authToken=…`; `params` must include `timeStamp`.
    pub fn v1(&self, path: &str, params: &[(&str, &str)]) -> Inbound {
        let time_stamp = params.iter().find(|(k, _)| *k == "timeStamp").map_or("", |(_, v)| *v);
        let token = V1AuthToken::new(self.keys.clone()).sign(params, time_stamp);
        let mut query: Vec<String> = params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        query.push(format!("authToken={}", encode(&token)));
        Inbound { method: "GET".into(), path: path.into(), query: query.join("&"), headers: vec![], body: vec![] }
    }

    /// A kit sync request: `POST path` with `x-sign`, `x-timestamp`, `x-nonce` headers.
    pub fn kit(&self, path: &str, body: &[u8], timestamp_ms: u64, nonce: &str) -> Inbound {
        let ts = timestamp_ms.to_string();
        let sign = KitVerifier::new(self.keys.clone(), TimestampWindow::default()).sign(body, &ts, nonce);
        Inbound {
            method: "POST".into(),
            path: path.into(),
            query: String::new(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-sign".into(), sign),
                ("x-timestamp".into(), ts),
                ("x-nonce".into(), nonce.into()),
            ],
            body: body.to_vec(),
        }
    }
}

/// Percent-encodes a query component (everything but ASCII letters and digits).
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// A fresh 64-character upper-case hex nonce, as the marketplace sends.
pub fn nonce_from(bytes: [u8; 32]) -> String {
    hex::encode_upper(bytes)
}
