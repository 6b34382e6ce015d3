//! Plain HTTP values that cross the boundary between a host (Spin, the harness, a test) and `core`.
//!
//! The Spin adapter turns a spin-sdk request into an [`Inbound`] and an [`Outbound`] back into a response; nothing in
//! `core` knows which host it runs in.

use percent_encoding::percent_decode;

/// The largest request body a handler reads; larger bodies are answered `000002` without being parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An HTTP request as a handler sees it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Inbound {
    /// Method in upper case (`GET`, `POST`).
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string without the leading `?` (still percent-encoded).
    pub query: String,
    /// Header names and values as received.
    pub headers: Vec<(String, String)>,
    /// Body bytes exactly as received (signatures are checked over these).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Inbound {
    // Bodies and query strings carry signatures and personal data: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Inbound {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The decoded query parameters in received order (`application/x-www-form-urlencoded`: `+` is a space).
    pub fn query_params(&self) -> Vec<(String, String)> {
        parse_query(&self.query)
    }
}

/// Decodes an `application/x-www-form-urlencoded` query string, keeping order and duplicates.
///
/// Invalid UTF-8 after percent-decoding is replaced rather than rejected; the signature check then fails cleanly.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    let plus_as_space = s.replace('+', " ");
    percent_decode(plus_as_space.as_bytes()).decode_utf8_lossy().into_owned()
}

/// The value of a query parameter that must appear at most once.
///
/// # Errors
/// [`DuplicateParam`] when the parameter appears more than once: an attacker could otherwise make the verifier and
/// the handler read different values.
pub fn single_param<'a>(params: &'a [(String, String)], name: &'static str) -> Result<Option<&'a str>, DuplicateParam> {
    let mut found = None;
    for (k, v) in params {
        if k == name {
            if found.is_some() {
                return Err(DuplicateParam(name));
            }
            found = Some(v.as_str());
        }
    }
    Ok(found)
}

/// A query parameter appeared more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("query parameter {0} appears more than once")]
pub struct DuplicateParam(pub &'static str);

/// An HTTP response produced by a handler: the body is final and any signature header covers exactly these bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Outbound {
    /// HTTP status code (KooGallery answers business outcomes with `200`).
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body bytes.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Outbound {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Whether `req` carries `Authorization: Bearer <token>` (surrounding spaces ignored), compared in constant time:
/// every operator route and token-guarded proxy checks its bearer this one way.
pub fn bearer_matches(req: &Inbound, token: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    let presented = req.header("authorization").and_then(|v| v.trim().strip_prefix("Bearer ")).unwrap_or("").trim();
    bool::from(presented.as_bytes().ct_eq(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_matches_only_its_own_token() {
        let with = |value: Option<&str>| Inbound {
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            headers: value.map(|v| ("Authorization".to_owned(), v.to_owned())).into_iter().collect(),
            body: vec![],
        };
        let token = b"s3cret-token";
        assert!(bearer_matches(&with(Some("Bearer s3cret-token")), token));
        assert!(bearer_matches(&with(Some("  Bearer s3cret-token ")), token));
        for refused in
            [None, Some("s3cret-token"), Some("Bearer s3cret-toke"), Some("Bearer "), Some("Basic s3cret-token")]
        {
            assert!(!bearer_matches(&with(refused), token), "{refused:?}");
        }
    }

    #[test]
    fn query_decoding_follows_form_rules() {
        let p = parse_query("a=1&instanceId=x%2Cy&authToken=ab+c%3D&flag&empty=");
        assert_eq!(
            p,
            vec![
                ("a".into(), "1".into()),
                ("instanceId".into(), "x,y".into()),
                ("authToken".into(), "ab c=".into()),
                ("flag".into(), String::new()),
                ("empty".into(), String::new()),
            ]
        );
    }

    #[test]
    fn duplicate_parameter_is_an_error() {
        let p = parse_query("signature=a&signature=b");
        assert_eq!(single_param(&p, "signature"), Err(DuplicateParam("signature")));
        assert_eq!(single_param(&p, "nonce"), Ok(None));
    }

    #[test]
    fn debug_never_prints_body_or_query() {
        let i =
            Inbound { query: "signature=SECRET".into(), body: b"{\"password\":\"p\"}".to_vec(), ..Default::default() };
        let s = format!("{i:?}");
        assert!(!s.contains("SECRET") && !s.contains("password"));
    }
}
