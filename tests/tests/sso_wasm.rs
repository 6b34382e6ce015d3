//! The `sso` component through the harness (wasmtime, virtual clock) against the harness's mock OneAccess over
//! real HTTP: the login through the callback and through the unified portal's code, and every failure path of
//! issue 13 — unknown tenant or application, bad/expired/reused state, invalid or reused code, userinfo 401,
//! users not authorised, revoked or disabled, OneAccess down or slow, forged cookies — plus refresh, logout, the
//! session lifetime and a revoked user's existing session ending for good.
//!
//! The mock checks what it receives with its own form parser (`form_urlencoded`), independent of the component.

use std::sync::Arc;

use conformance::{Endpoint, WasmEndpoint, WasmOptions};
use harness::oneaccess::{Availability, MockConfig, MockOneAccess, MockUser};
use koogallery_core::http::{Inbound, Outbound};
use koogallery_core::marketplace::{Marketplace, fresh_nonce, v1_time_stamp};
use serde_json::{Value, json};

const KIT_KEY: &str = "kit-key-for-the-sso-tests";
const SESSION_SECRET: &str = "sso-session-secret-for-the-tests-0123456789";
const ORIGIN: &str = "http://127.0.0.1:3000";
const CLIENT_ID: &str = "oa-client-1";
const HOUR_MS: u64 = 3_600_000;

fn fixture() -> (String, String) {
    let v: Value = serde_json::from_str(include_str!("../fixtures/kit_client_secret.json")).unwrap_or_default();
    let plain = v["plaintext"].as_str().unwrap_or_default().to_owned();
    let ct = v["ciphertexts"]["sha256"].as_str().unwrap_or_default().to_owned();
    (plain, ct)
}

/// A component, a mock OneAccess, and a tenant `t-sso` (code `sso-co`) with application `app-sso`.
struct World {
    ep: WasmEndpoint,
    idp: Arc<MockOneAccess>,
}

fn variables(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = [
        ("kit_access_keys", KIT_KEY),
        ("rsa_private_key", include_str!("../fixtures/kit_rsa3072_private.pem")),
        ("sso_redirect_uri", &format!("{ORIGIN}/sso/callback")),
        ("sso_app_url", "/app/home"),
        ("sso_session_secret", SESSION_SECRET),
        ("oneaccess_hosts", "http://127.0.0.1:*"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push(((*k).to_owned(), (*v).to_owned()));
    }
    vars
}

impl World {
    fn new() -> Self {
        Self::with(&[])
    }

    fn with(extra: &[(&str, &str)]) -> Self {
        let (plain, _) = fixture();
        let mut config = MockConfig::with_client(CLIENT_ID, plain);
        config.users.push(MockUser::new("lisi", "李四"));
        config.users.push(MockUser::new("wangwu", "王五"));
        let idp = Arc::new(MockOneAccess::start_in_background(config).unwrap_or_else(|e| panic!("mock: {e:#}")));
        let ep = WasmEndpoint::new(WasmOptions { variables: variables(extra), ..Default::default() })
            .unwrap_or_else(|e| panic!("{e:#}"));
        let world = Self { ep, idp };
        world.kit(
            "tenantSync",
            json!({"orderId":"o-sso","tenantCode":"sso-co","name":"SSO Co",
            "domainName": world.idp.base_url(), "flag":1}),
        );
        let (_, ct) = fixture();
        world.kit("applicationSync", json!({"appId":"app-sso","clientId":CLIENT_ID,"clientSecret":ct,"flag":1}));
        world.auth(1, "zhangsan", true);
        world.auth(1, "wangwu", false);
        world
    }

    /// A signed kit sync for tenant `t-sso` of instance `i-sso`; asserts `000000`.
    fn kit(&self, sync: &str, fields: Value) {
        let mut body =
            json!({"instanceId":"i-sso","tenantId":"t-sso","testFlag":0,"timeStamp":v1_time_stamp(self.ep.now())});
        if let (Some(b), Value::Object(f)) = (body.as_object_mut(), fields) {
            b.extend(f);
        }
        let mp = Marketplace::from_key(KIT_KEY).unwrap_or_else(|| panic!("key"));
        let out = self.ep.send(&mp.kit(
            &format!("/produceAPI/v2/{sync}"),
            body.to_string().as_bytes(),
            self.ep.now(),
            &fresh_nonce(),
        ));
        assert!(
            String::from_utf8_lossy(&out.body).contains("\"000000\""),
            "{sync}: {}",
            String::from_utf8_lossy(&out.body)
        );
    }

    /// `authSync` of one user (flag 1 add, 3 revoke, 0 delete).
    fn auth(&self, flag: i64, user: &str, enable: bool) {
        self.kit(
            "authSync",
            json!({"appId":"app-sso","currentSyncTime":"20240101000000000","flag":flag,
            "userList":[{"userName":user,"name":user,"orgCode":"o1","role":"admin","enable": enable.to_string()}]}),
        );
    }

    fn get(&self, path_and_query: &str, cookies: &[&str]) -> Outbound {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let mut headers = Vec::new();
        if !cookies.is_empty() {
            headers.push(("cookie".to_owned(), cookies.join("; ")));
        }
        self.ep.send(&Inbound { method: "GET".into(), path: path.into(), query: query.into(), headers, body: vec![] })
    }

    /// Starts a login: the authorize URL's `state` and the state cookie (`name=value`).
    fn start(&self, tenant: &str) -> (String, String) {
        let out = self.get(&format!("/sso/login?tenant={tenant}"), &[]);
        assert_eq!(out.status, 302, "{}", String::from_utf8_lossy(&out.body));
        let location = out.header("location").unwrap_or_default().to_owned();
        let state = query_param(&location, "state").unwrap_or_else(|| panic!("no state in {location}"));
        (state, cookie_pair(&out, "koogallery_sso_state"))
    }

    /// A full login of `user` through the callback; the session cookie (`name=value`).
    fn login(&self, user: &str) -> String {
        let (state, state_cookie) = self.start("sso-co");
        let code = self.idp.issue_code(CLIENT_ID, &format!("{ORIGIN}/sso/callback"), user);
        let out = self.get(&format!("/sso/callback?code={code}&state={}", enc(&state)), &[&state_cookie]);
        assert_eq!(out.status, 302, "{}", String::from_utf8_lossy(&out.body));
        assert_eq!(out.header("location"), Some("/app/home"));
        cookie_pair(&out, "koogallery_sso")
    }

    fn me(&self, session: &str) -> (u16, Value) {
        let out = self.get("/sso/me", &[session]);
        (out.status, serde_json::from_slice(&out.body).unwrap_or(Value::Null))
    }
}

fn enc(s: &str) -> String {
    s.replace('%', "%25").replace('+', "%2B").replace('&', "%26").replace('=', "%3D")
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    koogallery_core::http::parse_query(query).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The `name=value` of a `Set-Cookie` for `name`.
fn cookie_pair(out: &Outbound, name: &str) -> String {
    set_cookie(out, name)
        .and_then(|c| c.split(';').next().map(str::to_owned))
        .unwrap_or_else(|| panic!("no {name} cookie: {:?}", out.headers))
}

fn set_cookie(out: &Outbound, name: &str) -> Option<String> {
    out.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.clone())
        .find(|v| v.starts_with(&format!("{name}=")))
}

fn error_code(out: &Outbound) -> String {
    let body = String::from_utf8_lossy(&out.body);
    if let Ok(v) = serde_json::from_str::<Value>(&body) {
        return v["error"].as_str().unwrap_or_default().to_owned();
    }
    body.split("<code id=\"error\">").nth(1).and_then(|r| r.split('<').next()).unwrap_or_default().to_owned()
}

#[test]
fn an_authorised_user_logs_in_through_the_callback_and_me_shows_them() {
    let w = World::new();
    let out = w.get("/sso/login?tenant=sso-co", &[]);
    assert_eq!(out.status, 302);
    let location = out.header("location").unwrap_or_default();
    assert!(location.starts_with(&format!("{}/api/v1/oauth2/authorize?", w.idp.base_url())), "{location}");
    for (k, v) in [("response_type", "code"), ("client_id", CLIENT_ID), ("scope", "get_user_info")] {
        assert_eq!(query_param(location, k).as_deref(), Some(v), "{k}");
    }
    assert_eq!(query_param(location, "redirect_uri"), Some(format!("{ORIGIN}/sso/callback")));
    let state_cookie = set_cookie(&out, "koogallery_sso_state").unwrap_or_default();
    assert!(state_cookie.contains("HttpOnly") && state_cookie.contains("SameSite=Lax"), "{state_cookie}");
    assert!(!state_cookie.contains("Secure"), "no Secure on http://127.0.0.1: {state_cookie}");

    let session = w.login("zhangsan");
    let (status, me) = w.me(&session);
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        me,
        json!({"userName":"zhangsan","name":"zhangsan","tenantId":"t-sso","appId":"app-sso","role":"admin","instanceId":"i-sso"})
    );
    // What OneAccess received, read with its own parser.
    let (plain, _) = fixture();
    let forms = w.idp.token_requests();
    let form = forms.last().cloned().unwrap_or_default();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(field("grant_type").as_deref(), Some("authorization_code"));
    assert_eq!(field("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(field("client_secret"), Some(plain.clone()), "the decrypted applicationSync secret");
    assert_eq!(field("redirect_uri"), Some(format!("{ORIGIN}/sso/callback")));
    let userinfo = w
        .idp
        .received()
        .into_iter()
        .rfind(|r| r.path == "/api/v1/oauth2/userinfo")
        .unwrap_or_else(|| panic!("no userinfo"));
    assert!(userinfo.header("authorization").is_some_and(|a| a.starts_with("Bearer ")));
    // The client secret is neither in the cookie nor anywhere in the store (it stays RSA-encrypted there).
    assert!(!session.contains(&plain));
    assert!(w.ep.keys().iter().all(|k| !String::from_utf8_lossy(&w.ep.value(k).unwrap_or_default()).contains(&plain)));
    let (status, _) = w.me("koogallery_sso=forged.value.tag");
    assert_eq!(status, 401);
    let out = w.get("/sso/me", &[]);
    assert_eq!((out.status, error_code(&out).as_str()), (401, "no_session"));
}

#[test]
fn the_unified_portal_code_logs_in_at_once_and_a_reused_or_invalid_code_is_refused() {
    let w = World::new();
    // §6 step 1: the portal sends ?code=…&tenant=… to the application's login URL (no state of ours).
    let code = w.idp.issue_code(CLIENT_ID, "https://portal.example.com/login", "zhangsan");
    let out = w.get(&format!("/sso/login?code={code}&tenant=t-sso"), &[]);
    assert_eq!(out.status, 302, "{}", String::from_utf8_lossy(&out.body));
    let session = cookie_pair(&out, "koogallery_sso");
    assert_eq!(w.me(&session).0, 200);
    let form = w.idp.token_requests().last().cloned().unwrap_or_default();
    assert!(!form.iter().any(|(k, _)| k == "redirect_uri"), "the portal's code was not issued for our callback");
    let again = w.get(&format!("/sso/login?code={code}&tenant=t-sso"), &[]);
    assert_eq!((again.status, error_code(&again).as_str()), (400, "invalid_grant"));
    assert!(again.header("location").is_none());
    let (state, state_cookie) = w.start("sso-co");
    let out = w.get(&format!("/sso/callback?code=never-issued&state={}", enc(&state)), &[&state_cookie]);
    assert_eq!((out.status, error_code(&out).as_str()), (400, "invalid_grant"));
}

#[test]
fn a_state_must_come_from_this_browser_be_fresh_and_be_used_once() {
    let w = World::new();
    let callback = |state: &str, cookies: &[&str]| {
        let code = w.idp.issue_code(CLIENT_ID, &format!("{ORIGIN}/sso/callback"), "zhangsan");
        let out = w.get(&format!("/sso/callback?code={code}&state={}", enc(state)), cookies);
        (out.status, error_code(&out))
    };
    let (state, cookie) = w.start("sso-co");
    let (_, other_browser) = w.start("sso-co");
    assert_eq!(callback(&state, &[]), (400, "state_not_this_browser".into()));
    assert_eq!(callback(&state, &[&other_browser]), (400, "state_not_this_browser".into()));
    assert_eq!(callback("1.forged-state", &[&cookie]), (400, "state_unknown".into()));
    let out = w.get("/sso/callback?state=x", &[&cookie]);
    assert_eq!((out.status, error_code(&out).as_str()), (400, "missing_parameter"));
    let exchanges = w.idp.counts().token_exchanges_ok;
    assert_eq!(callback(&state, &[&cookie]).0, 302);
    assert_eq!(callback(&state, &[&cookie]), (400, "state_reused".into()));
    assert_eq!(w.idp.counts().token_exchanges_ok, exchanges + 1, "a refused state exchanges no code");
    let (late, late_cookie) = w.start("sso-co");
    w.ep.set_now(w.ep.now() + 11 * 60_000);
    assert_eq!(callback(&late, &[&late_cookie]), (400, "state_expired".into()));
    let out = w.get("/sso/callback?error=access_denied&state=x", &[]);
    assert_eq!((out.status, error_code(&out).as_str()), (403, "oneaccess_refused"));
}

#[test]
fn an_unknown_tenant_or_application_is_refused_without_a_redirect_to_any_idp() {
    let w = World::new();
    for (query, status, code) in [
        ("tenant=nope", 404, "unknown_tenant"),
        ("tenant=sso-co&appId=other-app", 404, "no_application"),
        ("", 400, "missing_tenant"),
    ] {
        let out = w.get(&format!("/sso/login?{query}"), &[]);
        assert_eq!((out.status, error_code(&out).as_str()), (status, code), "{query}");
        assert!(out.header("location").is_none(), "{query}");
        assert!(set_cookie(&out, "koogallery_sso_state").is_none());
    }
    // A tenant without any application yet.
    let mp = Marketplace::from_key(KIT_KEY).unwrap_or_else(|| panic!("key"));
    let body = json!({"instanceId":"i-2","tenantId":"t-bare","orderId":"o","tenantCode":"bare","name":"B",
        "domainName":w.idp.base_url(),"flag":1,"testFlag":0,"timeStamp":v1_time_stamp(w.ep.now())});
    w.ep.send(&mp.kit("/produceAPI/v2/tenantSync", body.to_string().as_bytes(), w.ep.now(), &fresh_nonce()));
    let out = w.get("/sso/login?tenant=bare", &[]);
    assert_eq!((out.status, error_code(&out).as_str()), (404, "no_application"));
    assert_eq!(w.idp.received().len(), 0, "OneAccess was never called");
    let out = w.get("/sso/nowhere", &[]);
    assert_eq!(out.status, 404);
    let post = w.ep.send(&Inbound {
        method: "POST".into(),
        path: "/sso/login".into(),
        query: String::new(),
        headers: vec![],
        body: vec![],
    });
    assert_eq!(post.status, 405);
}

#[test]
fn users_not_authorised_revoked_or_disabled_are_refused_and_a_userinfo_401_is_told() {
    let w = World::new();
    let attempt = |user: &str| {
        let (state, cookie) = w.start("sso-co");
        let code = w.idp.issue_code(CLIENT_ID, &format!("{ORIGIN}/sso/callback"), user);
        let out = w.get(&format!("/sso/callback?code={code}&state={}", enc(&state)), &[&cookie]);
        if out.status != 302 {
            assert!(set_cookie(&out, "koogallery_sso").is_none(), "a refused login opens no session");
        }
        (out.status, error_code(&out))
    };
    assert_eq!(attempt("lisi"), (403, "user_not_authorised".into()), "never authorised");
    assert_eq!(attempt("wangwu"), (403, "user_not_authorised".into()), "disabled");
    w.auth(3, "zhangsan", true);
    assert_eq!(attempt("zhangsan"), (403, "user_not_authorised".into()), "revoked");
    w.auth(1, "zhangsan", true);
    assert_eq!(attempt("zhangsan").0, 302, "authorised again");
    w.idp.set_access_token_ttl_s(0);
    assert_eq!(attempt("zhangsan"), (401, "userinfo_unauthorized".into()));
}

#[test]
fn a_revoked_users_session_ends_and_stays_ended_after_a_new_grant() {
    let w = World::new();
    let session = w.login("zhangsan");
    let other = w.login("zhangsan");
    assert_eq!(w.me(&session).0, 200);
    w.auth(3, "zhangsan", true);
    let (status, body) = w.me(&session);
    assert_eq!((status, body["error"].as_str()), (401, Some("session_ended")));
    w.auth(1, "zhangsan", true);
    assert_eq!(w.me(&session).0, 401, "a session from before the revoke stays ended");
    assert_eq!(w.me(&other).0, 401, "even one not used while revoked");
    let fresh = w.login("zhangsan");
    assert_eq!(w.me(&fresh).0, 200);
    // Disabling and deleting end sessions too.
    w.auth(1, "zhangsan", false);
    assert_eq!(w.me(&fresh).0, 401, "disabled");
    w.auth(1, "zhangsan", true);
    let fresh = w.login("zhangsan");
    w.auth(0, "zhangsan", true);
    assert_eq!(w.me(&fresh).0, 401, "deleted");
    w.auth(1, "zhangsan", true);
    let fresh = w.login("zhangsan");
    let (_, ct) = fixture();
    w.kit("applicationSync", json!({"appId":"app-sso","clientId":CLIENT_ID,"clientSecret":ct,"flag":0}));
    w.kit("applicationSync", json!({"appId":"app-sso","clientId":CLIENT_ID,"clientSecret":ct,"flag":1}));
    assert_eq!(w.me(&fresh).0, 401, "the application was deleted meanwhile");
}

#[test]
fn the_access_token_is_refreshed_when_expired_and_a_failed_refresh_ends_the_session() {
    let w = World::new();
    let session = w.login("zhangsan");
    assert_eq!(w.idp.counts().refreshes_ok, 0);
    w.ep.set_now(w.ep.now() + 2 * HOUR_MS);
    assert_eq!(w.me(&session).0, 200);
    assert_eq!(w.idp.counts().refreshes_ok, 1, "refreshed once");
    let refresh = w.idp.token_requests().last().cloned().unwrap_or_default();
    assert!(refresh.contains(&("grant_type".into(), "refresh_token".into())), "{refresh:?}");
    // The refresh token the component sent is the one OneAccess issued; it is kept sealed, never in clear.
    let token = refresh.iter().find(|(k, _)| k == "refresh_token").map(|(_, v)| v.clone()).unwrap_or_default();
    assert!(token.len() > 8, "{refresh:?}");
    assert!(w.ep.keys().iter().all(|k| !String::from_utf8_lossy(&w.ep.value(k).unwrap_or_default()).contains(&token)));
    assert!(!session.contains(&token));
    assert_eq!(w.me(&session).0, 200);
    assert_eq!(w.idp.counts().refreshes_ok, 1, "the new token is used until it expires");
    w.idp.revoke_refresh_tokens();
    w.ep.set_now(w.ep.now() + 2 * HOUR_MS);
    let (status, body) = w.me(&session);
    assert_eq!((status, body["error"].as_str()), (401, Some("session_ended")));
    assert_eq!(w.me(&session).0, 401);
}

#[test]
fn a_session_ends_after_its_lifetime_and_at_logout() {
    let w = World::new();
    let session = w.login("zhangsan");
    let out = w.get("/sso/logout?redirect_url=https://evil.example.com/", &[&session]);
    assert_eq!((out.status, error_code(&out).as_str()), (400, "redirect_not_allowed"));
    assert_eq!(w.me(&session).0, 200, "a refused logout changes nothing");
    let out = w.get("/sso/logout", &[&session]);
    assert_eq!(out.status, 302);
    let location = out.header("location").unwrap_or_default();
    assert!(location.starts_with(&format!("{}/api/v1/logout?", w.idp.base_url())), "{location}");
    assert_eq!(query_param(location, "redirect_url"), Some(format!("{ORIGIN}/app/home")));
    assert!(set_cookie(&out, "koogallery_sso").is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(w.me(&session).0, 401);
    let out = w.get(&format!("/sso/logout?redirect_url={}", enc(&format!("{ORIGIN}/bye"))), &[]);
    assert_eq!(
        (out.status, out.header("location")),
        (302, Some(format!("{ORIGIN}/bye").as_str())),
        "no session: straight back"
    );

    w.idp.set_access_token_ttl_s(86_400);
    let session = w.login("zhangsan");
    let refreshes = w.idp.counts().refreshes_ok;
    w.ep.set_now(w.ep.now() + 8 * HOUR_MS - 60_000);
    assert_eq!(w.me(&session).0, 200);
    w.ep.set_now(w.ep.now() + 60_000);
    assert_eq!(w.me(&session).0, 401, "sso_session_ttl_s (8 h) from login");
    assert_eq!(w.idp.counts().refreshes_ok, refreshes, "the 24 h token needed no refresh");
}

#[test]
fn deleting_the_tenant_ends_its_sessions_and_a_deleted_live_tenant_is_not_served_from_debug_data() {
    let w = World::new();
    let session = w.login("zhangsan");
    // A debug (testFlag=1) copy of the same tenant, as Seller Center's debugging tool would leave.
    let mp = Marketplace::from_key(KIT_KEY).unwrap_or_else(|| panic!("key"));
    let send = |sync: &str, body: Value| {
        let out = w.ep.send(&mp.kit(
            &format!("/produceAPI/v2/{sync}"),
            body.to_string().as_bytes(),
            w.ep.now(),
            &fresh_nonce(),
        ));
        assert!(String::from_utf8_lossy(&out.body).contains("\"000000\""), "{sync}");
    };
    let (_, ct) = fixture();
    let test = |extra: Value| {
        let mut b = json!({"instanceId":"i-sso","tenantId":"t-sso","testFlag":1,"timeStamp":v1_time_stamp(w.ep.now())});
        if let (Some(m), Value::Object(e)) = (b.as_object_mut(), extra) {
            m.extend(e);
        }
        b
    };
    send(
        "tenantSync",
        test(json!({"orderId":"o","tenantCode":"sso-co","name":"T","domainName":w.idp.base_url(),"flag":1})),
    );
    send("applicationSync", test(json!({"appId":"app-sso","clientId":CLIENT_ID,"clientSecret":ct,"flag":1})));
    w.kit(
        "tenantSync",
        json!({"orderId":"o-sso","tenantCode":"sso-co","name":"SSO Co","domainName":w.idp.base_url(),"flag":0}),
    );
    assert_eq!(w.me(&session).0, 401, "the tenant was deleted");
    let out = w.get("/sso/login?tenant=sso-co", &[]);
    assert_eq!((out.status, error_code(&out).as_str()), (404, "unknown_tenant"), "not revived from debug data");
    // A tenant only debug traffic knows is served from it.
    send(
        "tenantSync",
        test(
            json!({"tenantId":"t-dbg","orderId":"o","tenantCode":"dbg","name":"D","domainName":w.idp.base_url(),"flag":1}),
        ),
    );
    send(
        "applicationSync",
        test(json!({"tenantId":"t-dbg","appId":"app-sso","clientId":CLIENT_ID,"clientSecret":ct,"flag":1})),
    );
    assert_eq!(w.get("/sso/login?tenant=dbg", &[]).status, 302);
}

#[test]
fn a_tenant_under_two_instances_is_chosen_with_instance_id() {
    let w = World::new();
    let mp = Marketplace::from_key(KIT_KEY).unwrap_or_else(|| panic!("key"));
    let (_, ct) = fixture();
    for (sync, extra) in [
        (
            "tenantSync",
            json!({"orderId":"o-2","tenantCode":"sso-co","name":"SSO Co","domainName":w.idp.base_url(),"flag":1}),
        ),
        ("applicationSync", json!({"appId":"app-sso","clientId":CLIENT_ID,"clientSecret":ct,"flag":1})),
    ] {
        let mut body =
            json!({"instanceId":"i-two","tenantId":"t-sso","testFlag":0,"timeStamp":v1_time_stamp(w.ep.now())});
        if let (Some(m), Value::Object(e)) = (body.as_object_mut(), extra) {
            m.extend(e);
        }
        w.ep.send(&mp.kit(&format!("/produceAPI/v2/{sync}"), body.to_string().as_bytes(), w.ep.now(), &fresh_nonce()));
    }
    let out = w.get("/sso/login?tenant=sso-co", &[]);
    assert_eq!((out.status, error_code(&out).as_str()), (400, "application_ambiguous"));
    let out = w.get("/sso/login?tenant=sso-co&instanceId=i-sso", &[]);
    assert_eq!(out.status, 302, "{}", String::from_utf8_lossy(&out.body));
}

#[test]
fn of_concurrent_callbacks_with_one_state_exactly_one_logs_in() {
    let w = World::new();
    let (state, cookie) = w.start("sso-co");
    let exchanges = w.idp.counts().token_exchanges_ok;
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let code = w.idp.issue_code(CLIENT_ID, &format!("{ORIGIN}/sso/callback"), "zhangsan");
            conformance::to_http(&Inbound {
                method: "GET".into(),
                path: "/sso/callback".into(),
                query: format!("code={code}&state={}", enc(&state)),
                headers: vec![("cookie".into(), cookie.clone())],
                body: vec![],
            })
        })
        .collect();
    let (answers, max_in_flight) = w.ep.send_concurrently(requests);
    let statuses: Vec<(u16, String)> = answers.iter().map(|out| (out.status, error_code(out))).collect();
    assert!(max_in_flight >= 2, "the callbacks overlapped");
    assert_eq!(statuses.iter().filter(|(s, _)| *s == 302).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|(s, c)| *s == 302 || (*s == 400 && c == "state_reused")), "{statuses:?}");
    assert_eq!(w.idp.counts().token_exchanges_ok, exchanges + 1, "one code exchanged");
}

#[test]
fn oneaccess_down_or_too_slow_is_a_502_or_504_and_changes_nothing() {
    let w = World::new();
    let attempt = || {
        let (state, cookie) = w.start("sso-co");
        let code = w.idp.issue_code(CLIENT_ID, &format!("{ORIGIN}/sso/callback"), "zhangsan");
        let started = std::time::Instant::now();
        let out = w.get(&format!("/sso/callback?code={code}&state={}", enc(&state)), &[&cookie]);
        (out.status, error_code(&out), started.elapsed())
    };
    let sessions = || w.ep.keys().iter().filter(|k| k.starts_with("sso/session/")).count();
    w.idp.set_availability(Availability::Error500);
    let (status, code, _) = attempt();
    assert_eq!((status, code.as_str()), (502, "oneaccess_error"));
    w.idp.set_availability(Availability::Hang);
    let (status, code, took) = attempt();
    assert_eq!((status, code.as_str()), (504, "oneaccess_timeout"));
    assert!(took < std::time::Duration::from_secs(12), "answered within the deadline: {took:?}");
    assert_eq!(sessions(), 0, "no session from a failed login");
    w.idp.set_availability(Availability::Up);
    assert_eq!(attempt().0, 302);
    assert_eq!(sessions(), 1);
}

#[test]
fn oneaccess_unreachable_or_outside_the_allow_list_is_a_502() {
    // The tenant's domain is a port nothing listens on.
    let w = World::new();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(9);
    w.kit(
        "tenantSync",
        json!({"orderId":"o-sso","tenantCode":"sso-co","name":"SSO Co",
        "domainName": format!("http://127.0.0.1:{dead}"), "flag":1}),
    );
    let code = w.idp.issue_code(CLIENT_ID, "https://portal.example.com/login", "zhangsan");
    let out = w.get(&format!("/sso/login?code={code}&tenant=sso-co"), &[]);
    assert_eq!((out.status, error_code(&out).as_str()), (502, "oneaccess_error"));
    // An allow-list that does not cover the tenant's domain.
    let pinned = World::with(&[("oneaccess_hosts", "https://*.tenantaccount.example.com")]);
    let code = pinned.idp.issue_code(CLIENT_ID, "https://portal.example.com/login", "zhangsan");
    let out = pinned.get(&format!("/sso/login?code={code}&tenant=sso-co"), &[]);
    assert_eq!((out.status, error_code(&out).as_str()), (502, "oneaccess_error"));
    assert!(String::from_utf8_lossy(&out.body).contains("oneaccess_hosts"), "says what to set");
}

#[test]
fn without_its_secrets_the_component_names_the_variable_to_set() {
    let ep = WasmEndpoint::new(WasmOptions::default()).unwrap_or_else(|e| panic!("{e:#}"));
    let out = ep.send(&Inbound {
        method: "GET".into(),
        path: "/sso/me".into(),
        query: String::new(),
        headers: vec![],
        body: vec![],
    });
    assert_eq!(out.status, 500);
    let body: Value = serde_json::from_slice(&out.body).unwrap_or(Value::Null);
    assert_eq!(body["error"], "not_configured");
    assert!(body["message"].as_str().is_some_and(|m| m.starts_with("not configured: set sso_")), "{body}");
}
