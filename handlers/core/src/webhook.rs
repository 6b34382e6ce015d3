//! Signing events for the seller's backend with Standard Webhooks headers.
//!
//! The backend receives `webhook-id` (stable per event, so it can deduplicate), `webhook-timestamp` (seconds) and
//! `webhook-signature` (`v1,<base64 HMAC-SHA256>` over `id.timestamp.body`), as specified by
//! <https://www.standardwebhooks.com>, and can verify them with any Standard Webhooks library.

use crate::signing::keys::SecretKey;
use standardwebhooks::Webhook;

/// Signs backend events with `backend_secret`.
pub struct WebhookSigner {
    // `None` only if the crate rejected the key, which `from_bytes` never does in standardwebhooks 1.x.
    inner: Option<Webhook>,
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSigner([REDACTED])")
    }
}

impl WebhookSigner {
    /// A signer for `secret`: a Standard Webhooks secret (`whsec_` + Base64) is decoded; any other string is used
    /// as raw key bytes.
    pub fn new(secret: &SecretKey) -> Self {
        let text = secret.expose();
        let decoded = text.strip_prefix("whsec_").and_then(|_| Webhook::new(text).ok());
        let inner = decoded.or_else(|| Webhook::from_bytes(text.as_bytes().to_vec()).ok());
        Self { inner }
    }

    /// The headers for one delivery of event `id` with `body` at `now_ms`: content type, `webhook-id`,
    /// `webhook-timestamp` and `webhook-signature`.
    pub fn headers(&self, id: &str, body: &[u8], now_ms: u64) -> Vec<(String, String)> {
        let ts = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("webhook-id".to_owned(), id.to_owned()),
            ("webhook-timestamp".to_owned(), ts.to_string()),
        ];
        // Bodies are JSON we serialised ourselves, so they are UTF-8; sign() only fails on non-UTF-8.
        if let Some(sig) = self.inner.as_ref().and_then(|w| w.sign(id, ts, body).ok()) {
            headers.push(("webhook-signature".to_owned(), sig));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_can_verify_with_a_standard_webhooks_library() {
        let secret = SecretKey::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let signer = WebhookSigner::new(&secret);
        let now_ms = crate::ports::system_now_ms();
        let body = br#"{"type":"instance.created"}"#;
        let headers = signer.headers("evt_1", body, now_ms);
        let mut map = http::HeaderMap::new();
        for (k, v) in &headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                http::HeaderValue::from_str(v).expect("value"),
            );
        }
        let verifier = Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        assert!(verifier.verify(body, &map).is_ok());
        assert!(verifier.verify(br#"{"type":"instance.released"}"#, &map).is_err());
    }

    #[test]
    fn raw_secret_is_used_as_bytes() {
        let a = WebhookSigner::new(&SecretKey::new("plain-secret")).headers("evt", b"{}", 1_700_000_000_000);
        let b = WebhookSigner::new(&SecretKey::new("other-secret")).headers("evt", b"{}", 1_700_000_000_000);
        assert_ne!(a[3], b[3]);
        assert_eq!(a[1], ("webhook-id".to_owned(), "evt".to_owned()));
    }
}
