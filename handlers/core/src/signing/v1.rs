//! The legacy V1 `authToken` (protocol §4.3), in the query string (basic V1 GET) or a header (kit V1 POST).
//!
//! ```text
//! authToken = Base64(HMAC-SHA256(key = accessKey + timeStamp, data = "k1=v1&k2=v2&…"))
//! ```
//! over every parameter except `authToken`, URL-decoded, sorted by name (Java `TreeMap` order).
//!
//! Sample implementations disagree on blank values and some senders sign still-encoded values, so
//! [`V1AuthToken::verify`] accepts a token over: decoded values with blanks included or skipped, and the raw
//! (still-encoded) values likewise. A token whose `+` became a space through form decoding is also accepted.
//! No freshness window is documented; check `timeStamp` separately where one is configured.
//!
//! # How to use
//!
//! 1. Build a [`V1AuthToken`] from the key ring.
//! 2. Call [`V1AuthToken::verify`] with the raw query string (everything after `?`).
//!
//! ```
//! use koogallery_core::signing::v1::V1AuthToken;
//! use koogallery_core::signing::keys::KeyRing;
//!
//! let v1 = V1AuthToken::new(KeyRing::parse_list("1234567890abcdef1234567890abcdef").expect("key"));
//! let params = [("activity", "queryInstance"), ("instanceId", "a,b"), ("timeStamp", "20230327065233980")];
//! let token = v1.sign(&params, "20230327065233980");
//! let query = v1.signed_query(&params, "20230327065233980");
//! assert!(query.starts_with("activity=queryInstance&instanceId=a%2Cb&timeStamp=20230327065233980&authToken="));
//! assert!(token.ends_with('='));
//! assert!(v1.verify(&query).is_ok());
//! ```

use std::borrow::Cow;
use std::cmp::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::signing::error::{AuthError, ct_eq, hmac_sha256};
use crate::signing::keys::{KeyRing, SecretKey};

/// Characters kept as they are when building a query (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Signs and verifies V1 `authToken`s under a key ring.
#[derive(Debug, Clone)]
pub struct V1AuthToken {
    keys: KeyRing,
}

/// One query parameter, raw (as received), form-decoded, and percent-decoded with `+` kept.
struct Param<'a> {
    raw_key: &'a str,
    raw_value: &'a str,
    key: Cow<'a, str>,
    value: Cow<'a, str>,
    pct_key: Cow<'a, str>,
    pct_value: Cow<'a, str>,
}

fn form_decode(text: &str) -> Cow<'_, str> {
    if !text.contains(['+', '%']) {
        return Cow::Borrowed(text);
    }
    let spaced = text.replace('+', " ");
    Cow::Owned(percent_decode_str(&spaced).decode_utf8_lossy().into_owned())
}

fn parse_query(raw_query: &str) -> Vec<Param<'_>> {
    let query = raw_query.strip_prefix('?').unwrap_or(raw_query);
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (raw_key, raw_value) = part.split_once('=').unwrap_or((part, ""));
            Param {
                raw_key,
                raw_value,
                key: form_decode(raw_key),
                value: form_decode(raw_value),
                pct_key: percent_decode_str(raw_key).decode_utf8_lossy(),
                pct_value: percent_decode_str(raw_value).decode_utf8_lossy(),
            }
        })
        .collect()
}

/// Java `String.compareTo` (UTF-16 code units), the `TreeMap` order.
fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// `k=v&…` of `pairs` sorted by name; the first value of a repeated name wins (servlet `getParameter`).
fn joined<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>, skip_blank: bool) -> String {
    let mut sorted: Vec<(&str, &str)> = Vec::new();
    for (k, v) in pairs {
        if k == "authToken" || (skip_blank && v.is_empty()) || sorted.iter().any(|(seen, _)| *seen == k) {
            continue;
        }
        sorted.push((k, v));
    }
    sorted.sort_by(|a, b| java_cmp(a.0, b.0));
    let mut out = String::new();
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn token_for(key: &SecretKey, time_stamp: &str, data: &str) -> String {
    let mac_key = [key.as_bytes(), time_stamp.as_bytes()].concat();
    STANDARD.encode(hmac_sha256(&mac_key, &[data.as_bytes()]))
}

impl V1AuthToken {
    /// A V1 signer/verifier over `keys` (the first signs, all verify).
    pub fn new(keys: KeyRing) -> Self {
        Self { keys }
    }

    /// The Base64 token over `params` (decoded values; `timeStamp` should be among them, `authToken` is ignored),
    /// sorted, blanks included, with HMAC key = signing key + `time_stamp`.
    pub fn sign(&self, params: &[(&str, &str)], time_stamp: &str) -> String {
        let data = joined(params.iter().copied(), false);
        token_for(self.keys.signing_key(), time_stamp, &data)
    }

    /// A complete query string: `params` percent-encoded in the given order, then `authToken`. For emulators.
    pub fn signed_query(&self, params: &[(&str, &str)], time_stamp: &str) -> String {
        let token = self.sign(params, time_stamp);
        let mut out = String::new();
        for (k, v) in params.iter().filter(|(k, _)| *k != "authToken").chain([("authToken", token.as_str())].iter()) {
            if !out.is_empty() {
                out.push('&');
            }
            out.extend(utf8_percent_encode(k, QUERY_VALUE));
            out.push('=');
            out.extend(utf8_percent_encode(v, QUERY_VALUE));
        }
        out
    }

    /// Verifies the `authToken` of a raw query string (form-decoded here: `%XX`, `+` → space).
    ///
    /// # Errors
    /// [`AuthError::MissingSignature`] without `authToken`, [`AuthError::MissingTimestamp`] without `timeStamp`,
    /// [`AuthError::BadSignature`] when no accepted convention matches under any key.
    pub fn verify(&self, raw_query: &str) -> Result<(), AuthError> {
        self.verify_key(raw_query).map(|_| ())
    }

    /// As [`Self::verify`], and tells which key of the ring matched (its position), so that the answer's
    /// `Body-Sign` and encrypted credentials use the key the marketplace used.
    ///
    /// # Errors
    /// As [`Self::verify`].
    pub fn verify_key(&self, raw_query: &str) -> Result<usize, AuthError> {
        let params = parse_query(raw_query);
        let find =
            |name: &str| params.iter().find(|p| p.key == name).map(|p| p.value.as_ref()).filter(|v| !v.is_empty());
        let token = find("authToken").ok_or(AuthError::MissingSignature)?;
        let time_stamp = find("timeStamp").ok_or(AuthError::MissingTimestamp)?;
        let decoded = || params.iter().map(|p| (p.key.as_ref(), p.value.as_ref()));
        let raw = || params.iter().filter(|p| p.key != "authToken").map(|p| (p.raw_key, p.raw_value));
        // A sender that percent-decodes but keeps `+` (not form decoding) signs a third form.
        let pct = || params.iter().map(|p| (p.pct_key.as_ref(), p.pct_value.as_ref()));
        let data = [
            joined(decoded(), false),
            joined(decoded(), true),
            joined(raw(), false),
            joined(raw(), true),
            joined(pct(), false),
            joined(pct(), true),
        ];
        self.check(&data, time_stamp, token)
    }

    /// Verifies the kit V1 header variant: `authToken` from a header, `decoded` = the body parameters (with
    /// `timeStamp`). Blanks skipped (the demo) or included are both accepted.
    ///
    /// # Errors
    /// As [`Self::verify`].
    pub fn verify_params(&self, decoded: &[(String, String)], token: &str) -> Result<(), AuthError> {
        self.verify_params_key(decoded, token).map(|_| ())
    }

    /// As [`Self::verify_params`], and tells which key of the ring matched (its position), for the answer's
    /// `Body-Sign`.
    ///
    /// # Errors
    /// As [`Self::verify`].
    pub fn verify_params_key(&self, decoded: &[(String, String)], token: &str) -> Result<usize, AuthError> {
        if token.is_empty() {
            return Err(AuthError::MissingSignature);
        }
        let time_stamp = decoded
            .iter()
            .find(|(k, _)| k == "timeStamp")
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
            .ok_or(AuthError::MissingTimestamp)?;
        let pairs = || decoded.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let data = [joined(pairs(), false), joined(pairs(), true)];
        self.check(&data, time_stamp, token)
    }

    fn check(&self, data: &[String], time_stamp: &str, token: &str) -> Result<usize, AuthError> {
        let plus = token.replace(' ', "+");
        let mut matched = None;
        for (index, key) in self.keys.iter().enumerate() {
            for (i, d) in data.iter().enumerate() {
                if data[..i].contains(d) {
                    continue;
                }
                let expected = token_for(key, time_stamp, d);
                let hit = ct_eq(expected.as_bytes(), token.as_bytes()) | ct_eq(expected.as_bytes(), plus.as_bytes());
                if hit && matched.is_none() {
                    matched = Some(index);
                }
            }
        }
        matched.ok_or(AuthError::BadSignature)
    }
}

/// The parameters a kit V1 `authToken` covers: the top-level fields of a JSON object body, each value as text
/// (strings as they are, numbers and booleans as JSON text, objects and arrays as compact JSON; `null` as blank).
/// `None` when the body is not a JSON object.
pub fn kit_v1_params(body: &[u8]) -> Option<Vec<(String, String)>> {
    let serde_json::Value::Object(map) = serde_json::from_slice::<serde_json::Value>(body).ok()? else {
        return None;
    };
    Some(
        map.into_iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a%2Cb+c"), "a,b c");
        assert_eq!(form_decode("plain"), "plain");
        assert_eq!(form_decode("%E5%BC%80"), "开");
    }

    #[test]
    fn repeated_names_keep_the_first_value_and_sort_in_java_order() {
        let pairs = [("b", "2"), ("a", "1"), ("b", "3"), ("authToken", "x"), ("e", "")];
        assert_eq!(joined(pairs.into_iter(), false), "a=1&b=2&e=");
        assert_eq!(joined(pairs.into_iter(), true), "a=1&b=2");
    }
}
