//! Spin's HTTP routing and the `spin-*` request headers.
//!
//! Rules (the same as Spin's HTTP trigger):
//!
//! 1. A route is exact (`/produce`) or a wildcard (`/api/...`: the prefix itself and anything under it).
//! 2. An exact match beats any wildcard; among wildcards the longest prefix (most path segments) wins.
//! 3. A trailing `/` on the request path is ignored for matching; if two triggers use the same route, the later
//!    one wins (Spin warns about it; [`Router::duplicates`] lists them).
//! 4. No match: the host answers `404` without calling a component.
//!
//! Each request routed to a component gets the `spin-*` headers [`RouteMatch::spin_headers`] computes:
//! `spin-full-url`, `spin-path-info` (the part after a wildcard prefix, empty for an exact route),
//! `spin-matched-route` (the route with the base), `spin-component-route` (the route without `/...`),
//! `spin-raw-component-route` (the route as written), `spin-base-path`, `spin-client-addr`.
//! [`RouteMatch::append_spin_headers`] adds them to the request as Spin does: *after* the client's headers, which
//! are kept, so a client-sent `spin-path-info` comes first and the guest's `get` sees the client's value.
//!
//! ```
//! use harness::manifest::HttpTrigger;
//! use harness::routing::Router;
//! let t = |route: &str, c: &str| HttpTrigger { route: route.into(), component: c.into() };
//! let router = Router::build("/", &[t("/api/...", "api"), t("/api/v2/...", "v2"), t("/api/health", "health")]);
//! let component = |path: &str| router.route(path).map(|m| m.component().to_owned());
//! assert_eq!(component("/api/v2/users").as_deref(), Some("v2"));
//! assert_eq!(component("/api/health").as_deref(), Some("health"));
//! assert_eq!(router.route("/api/v1/x").map(|m| m.path_info().to_owned()), Some("/v1/x".to_owned()));
//! assert!(router.route("/other").is_none());
//! ```

use crate::manifest::HttpTrigger;
use std::net::SocketAddr;

/// How a route matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// The path must equal the route.
    Exact,
    /// The path must be the prefix or start with `prefix/`.
    Wildcard,
}

/// One routable entry.
#[derive(Debug, Clone)]
pub struct Route {
    component: String,
    raw_route: String,
    based_route: String,
    /// The based route without `/...` and without a trailing `/`; `""` for the root.
    prefix: String,
    pattern: Pattern,
}

impl Route {
    /// The component id this route maps to.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The route as written in the manifest.
    pub fn raw_route(&self) -> &str {
        &self.raw_route
    }

    /// Whether this is a `/...` wildcard route.
    pub fn is_wildcard(&self) -> bool {
        self.pattern == Pattern::Wildcard
    }

    /// The route as Spin prints it at start-up: the path, with ` (wildcard)` for wildcard routes.
    pub fn display_route(&self) -> String {
        let path = if self.prefix.is_empty() { "/" } else { self.prefix.as_str() };
        match self.pattern {
            Pattern::Exact => path.to_owned(),
            Pattern::Wildcard => format!("{path} (wildcard)"),
        }
    }

    /// Number of path segments in the prefix: the specificity of a wildcard.
    fn depth(&self) -> usize {
        self.prefix.split('/').filter(|s| !s.is_empty()).count()
    }
}

/// The routing table of an application.
#[derive(Debug, Clone)]
pub struct Router {
    base: String,
    routes: Vec<Route>,
    duplicates: Vec<(String, String)>,
}

/// The result of routing one path.
#[derive(Debug, Clone)]
pub struct RouteMatch<'a> {
    route: &'a Route,
    path_info: String,
    base: &'a str,
}

/// Strips one trailing `/` (Spin's rule for routes and bases).
fn strip_trailing_slash(s: &str) -> &str {
    s.strip_suffix('/').unwrap_or(s)
}

impl Router {
    /// Builds the table from the manifest's `[[trigger.http]]` entries and the application `base` (default `/`).
    pub fn build(base: &str, triggers: &[HttpTrigger]) -> Self {
        let base_clean = strip_trailing_slash(base);
        let base_clean = if base_clean.is_empty() || base_clean.starts_with('/') {
            base_clean.to_owned()
        } else {
            format!("/{base_clean}")
        };
        let mut routes: Vec<Route> = Vec::new();
        let mut duplicates = Vec::new();
        for t in triggers {
            let based_route = format!("{base_clean}{}", strip_trailing_slash(&t.route));
            let (prefix, pattern) = match based_route.strip_suffix("/...") {
                Some(p) => (p.to_owned(), Pattern::Wildcard),
                None => (based_route.clone(), Pattern::Exact),
            };
            let route = Route {
                component: t.component.clone(),
                raw_route: t.route.clone(),
                based_route,
                prefix: strip_trailing_slash(&prefix).to_owned(),
                pattern,
            };
            if let Some(existing) = routes.iter_mut().find(|r| r.raw_route == route.raw_route) {
                duplicates.push((route.raw_route.clone(), existing.component.clone()));
                *existing = route;
            } else {
                routes.push(route);
            }
        }
        Self { base: if base.is_empty() { "/".to_owned() } else { base.to_owned() }, routes, duplicates }
    }

    /// The routes, in manifest order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Routes that appeared more than once: `(route, component whose entry was replaced)`.
    pub fn duplicates(&self) -> &[(String, String)] {
        &self.duplicates
    }

    /// Finds the most specific route for `path` (the request path, without the query).
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        let trimmed = strip_trailing_slash(path);
        let exact = self.routes.iter().find(|r| r.pattern == Pattern::Exact && r.prefix == trimmed);
        let chosen = exact.or_else(|| {
            self.routes
                .iter()
                .filter(|r| {
                    r.pattern == Pattern::Wildcard
                        && (r.prefix.is_empty()
                            || trimmed == r.prefix
                            || path.strip_prefix(r.prefix.as_str()).is_some_and(|rest| rest.starts_with('/')))
                })
                .max_by_key(|r| r.depth())
        })?;
        let path_info = match chosen.pattern {
            Pattern::Exact => String::new(),
            Pattern::Wildcard => path.strip_prefix(chosen.prefix.as_str()).unwrap_or("").to_owned(),
        };
        Some(RouteMatch { route: chosen, path_info, base: &self.base })
    }
}

impl RouteMatch<'_> {
    /// The component that handles the request.
    pub fn component(&self) -> &str {
        &self.route.component
    }

    /// The matched route entry.
    pub fn route(&self) -> &Route {
        self.route
    }

    /// The part of the path after a wildcard prefix (`""` for an exact route).
    pub fn path_info(&self) -> &str {
        &self.path_info
    }

    /// The `spin-*` headers for this request, as Spin computes them, in Spin's order.
    ///
    /// `scheme` and `host` are the request's (the `Host` header, or `localhost`); `path_and_query` is the request
    /// target; `client` the peer address. The order is that of `compute_default_headers` in Spin's
    /// crates/trigger-http/src/headers.rs (it decides the order the guest iterates them in).
    pub fn spin_headers(
        &self,
        scheme: &str,
        host: &str,
        path_and_query: &str,
        client: SocketAddr,
    ) -> [(&'static str, String); 7] {
        [
            ("spin-path-info", self.path_info.clone()),
            ("spin-full-url", format!("{scheme}://{host}{path_and_query}")),
            ("spin-matched-route", self.route.based_route.clone()),
            ("spin-base-path", self.base.to_owned()),
            ("spin-raw-component-route", self.route.raw_route.clone()),
            (
                "spin-component-route",
                self.route.raw_route.strip_suffix("/...").unwrap_or(&self.route.raw_route).to_owned(),
            ),
            ("spin-client-addr", client.to_string()),
        ]
    }

    /// Adds [`RouteMatch::spin_headers`] to a request's `headers` by Spin's rule: *appended*. Headers the client
    /// sent, `spin-*` ones included, are kept and come first; a name the client also sent ends up with two values,
    /// the client's first.
    ///
    /// Spin 4.1 builds the guest's header list as the client's headers followed by its own and then
    /// `HeaderMap::extend`s an empty map with it, which appends (`prepare_request_headers` in
    /// crates/trigger-http/src/headers.rs, `prepare_request` in crates/trigger-http/src/wasi.rs, used for WASIp3 by
    /// crates/trigger-http/src/wasip3.rs). Checked with the real `spin up`: a client `spin-path-info: /zzz` is what
    /// the guest's `headers.get("spin-path-info")` returns. A value that is not a valid header value is left out,
    /// as Spin's `filter_map` leaves it out.
    pub fn append_spin_headers(
        &self,
        headers: &mut http::HeaderMap,
        scheme: &str,
        host: &str,
        path_and_query: &str,
        client: SocketAddr,
    ) {
        for (name, value) in self.spin_headers(scheme, host, path_and_query, client) {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.append(name, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let triggers: Vec<HttpTrigger> =
            routes.iter().map(|(r, c)| HttpTrigger { route: (*r).into(), component: (*c).into() }).collect();
        Router::build("/", &triggers)
    }

    fn component<'a>(r: &'a Router, path: &str) -> Option<&'a str> {
        r.route(path).map(|m| m.route.component.as_str())
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = router(&[("/...", "all"), ("/one", "one"), ("/one/...", "one-w"), ("/one/two/...", "two-w")]);
        assert_eq!(component(&r, "/one"), Some("one"));
        assert_eq!(component(&r, "/one/"), Some("one"));
        assert_eq!(component(&r, "/one/x"), Some("one-w"));
        assert_eq!(component(&r, "/one/two"), Some("two-w"));
        assert_eq!(component(&r, "/one/two/three"), Some("two-w"));
        assert_eq!(component(&r, "/onex"), Some("all"));
        assert_eq!(component(&r, "/"), Some("all"));
    }

    #[test]
    fn no_match_and_prefix_boundaries() {
        let r = router(&[("/api/...", "api"), ("/exact", "exact")]);
        assert_eq!(component(&r, "/apix"), None);
        assert_eq!(component(&r, "/exact/more"), None);
        assert_eq!(component(&r, "/"), None);
        assert_eq!(component(&r, "/api"), Some("api"));
    }

    #[test]
    fn path_info_follows_spin() {
        let r = router(&[("/foo/...", "foo"), ("/...", "root")]);
        let info = |p: &str| r.route(p).map(|m| m.path_info().to_owned());
        assert_eq!(info("/foo").as_deref(), Some(""));
        assert_eq!(info("/foo/").as_deref(), Some("/"));
        assert_eq!(info("/foo/bar").as_deref(), Some("/bar"));
        assert_eq!(info("/foo/bar/").as_deref(), Some("/bar/"));
        assert_eq!(info("/x/y").as_deref(), Some("/x/y"));
    }

    #[test]
    fn later_duplicate_wins() {
        let r = router(&[("/a", "first"), ("/a", "second")]);
        assert_eq!(component(&r, "/a"), Some("second"));
        assert_eq!(r.duplicates(), [("/a".to_owned(), "first".to_owned())]);
    }

    #[test]
    fn spin_headers_match_spins_values() {
        let r = router(&[("/foo/...", "foo")]);
        let m = r.route("/foo/bar").expect("routed");
        let client: SocketAddr = "127.0.0.1:8777".parse().expect("addr");
        let h = m.spin_headers("https", "fermyon.dev", "/foo/bar?key1=value1", client);
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("spin-full-url"), Some("https://fermyon.dev/foo/bar?key1=value1"));
        assert_eq!(get("spin-path-info"), Some("/bar"));
        assert_eq!(get("spin-matched-route"), Some("/foo/..."));
        assert_eq!(get("spin-base-path"), Some("/"));
        assert_eq!(get("spin-raw-component-route"), Some("/foo/..."));
        assert_eq!(get("spin-component-route"), Some("/foo"));
        assert_eq!(get("spin-client-addr"), Some("127.0.0.1:8777"));
    }

    #[test]
    fn spin_headers_are_appended_after_the_clients_own() {
        let r = router(&[("/foo/...", "foo")]);
        let m = r.route("/foo/bar").expect("routed");
        let client: SocketAddr = "127.0.0.1:8777".parse().expect("addr");
        let mut headers = http::HeaderMap::new();
        headers.insert("spin-path-info", http::HeaderValue::from_static("/spoofed"));
        headers.insert("accept", http::HeaderValue::from_static("text/plain"));
        m.append_spin_headers(&mut headers, "http", "h.test", "/foo/bar", client);
        let values = |n: &str| headers.get_all(n).iter().map(|v| v.to_str().expect("ascii")).collect::<Vec<_>>();
        // The client's value is kept and comes first (what the guest's `get` returns); Spin's follows.
        assert_eq!(values("spin-path-info"), ["/spoofed", "/bar"]);
        assert_eq!(values("accept"), ["text/plain"]);
        assert_eq!(values("spin-full-url"), ["http://h.test/foo/bar"]);
        assert_eq!(headers.len(), 9, "2 client values + 7 spin-* headers");
        // In Spin's order.
        let names: Vec<&str> =
            headers.keys().map(http::HeaderName::as_str).filter(|n| n.starts_with("spin-")).collect();
        let spin_order = [
            "spin-path-info",
            "spin-full-url",
            "spin-matched-route",
            "spin-base-path",
            "spin-raw-component-route",
            "spin-component-route",
            "spin-client-addr",
        ];
        assert_eq!(names, spin_order);
        // A value that cannot be a header value is left out, not an error.
        let mut headers = http::HeaderMap::new();
        m.append_spin_headers(&mut headers, "http", "bad\nhost", "/foo/bar", client);
        assert!(headers.get("spin-full-url").is_none());
        assert_eq!(headers.len(), 6);
    }

    #[test]
    fn base_is_prefixed() {
        let t = [HttpTrigger { route: "/foo".into(), component: "foo".into() }];
        let r = Router::build("/base/", &t);
        assert_eq!(r.route("/base/foo").map(|m| m.component().to_owned()).as_deref(), Some("foo"));
        assert!(r.route("/foo").is_none());
    }
}
