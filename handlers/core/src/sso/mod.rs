//! OneAccess single sign-on for joint-operation buyers (protocol §6): the `sso` component's routes.
//!
//! The tenant's OneAccess domain and the application's client credentials come from what the kit syncs stored
//! ([`crate::kit::lookup`]), never from the request. A user is admitted only while `authSync` authorises them for
//! that tenant and application; the session lives in the key-value store ([`session`]) and is checked against the
//! kit state on every use, so logout, a revoke, a delete or a disable ends it ([`crate::kit::admission`]).
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /sso/login?tenant=…[&appId=…]` | `302` to the tenant's OneAccess authorize URL, with a single-use `state` bound to the browser |
//! | `GET /sso/login?code=…&tenant=…` | the unified-portal entry: the code is exchanged at once; `302` to `sso_app_url` with a session |
//! | `GET /sso/callback?code=…&state=…` | checks `state`, exchanges the code, reads userinfo, admits the user; `302` to `sso_app_url` |
//! | `GET /sso/me` | `200` JSON `{userName, name, tenantId, appId, role, instanceId}`, or `401` JSON |
//! | `GET /sso/logout[?redirect_url=…]` | ends the session; `302` to OneAccess's logout, which returns to `redirect_url` |
//!
//! Failures are pages (JSON for `/sso/me`, or when the request accepts only JSON) with the status that says
//! what happened: `404` unknown tenant or no application (and no redirect to any IdP), `400` bad, expired or
//! reused `state`, or an invalid or reused code, `401` userinfo refused, `403` a user not authorised, revoked or
//! disabled, `502`/`504` OneAccess unreachable or too slow. Logs carry ids and outcomes only: no tokens, codes,
//! secrets or user names.

mod config;
pub mod oneaccess;
pub mod session;

pub use config::{DEFAULT_SESSION_TTL_S, SsoConfig, VARIABLES};

use crate::http::{Inbound, Outbound};
use crate::kit::admission;
use crate::kit::lookup;
use crate::kit::record::{TenantRecord, tenant_key};
use crate::ports::atomic;
use crate::ports::{Backend, Clock, Random, Store, StoreError};
use crate::produce::{ConfigError, Ctx, Deadline};
use oneaccess::{OneAccess, OneAccessError, Tokens};
use session::{NewSession, SESSION_COOKIE, STATE_COOKIE, StateRefusal};

/// How long one OneAccess call may take.
pub const CALL_TIMEOUT_MS: u64 = 5_000;
/// How long one SSO request may take, all OneAccess calls included.
pub const REQUEST_DEADLINE_MS: u64 = 10_000;

/// The answer to one request, and a log summary free of tokens, codes, secrets and user names.
pub struct SsoAnswer {
    /// The HTTP response.
    pub response: Outbound,
    /// One line for the log.
    pub summary: String,
}

/// Answers one request to the `sso` component. `cfg` is the configuration, or why there is none (answered `500`
/// "not configured: set <variable>"). Never panics on input.
pub async fn handle<S: Store, B: Backend, C: Clock, R: Random>(
    req: &Inbound,
    cfg: Result<&SsoConfig, &ConfigError>,
    ctx: &Ctx<'_, S, B, C, R>,
) -> SsoAnswer {
    let json = wants_json(req);
    let route = req.path.strip_prefix("/sso").unwrap_or(&req.path).trim_end_matches('/');
    let known = matches!(route, "/login" | "/callback" | "/me" | "/logout");
    if !known {
        return Failure::new(404, "not_found", "no such SSO route (login, callback, me, logout)")
            .answer(json || route == "/me");
    }
    if req.method != "GET" {
        let mut a = Failure::new(405, "method_not_allowed", "use GET").answer(json);
        a.response.headers.push(("allow".into(), "GET".into()));
        return a;
    }
    let cfg = match cfg {
        Ok(cfg) => cfg,
        Err(e) => return Failure::new(500, "not_configured", &e.not_configured()).answer(json || route == "/me"),
    };
    let run = Run { cfg, ctx, deadline: Deadline::after(ctx.clock, REQUEST_DEADLINE_MS), now: ctx.clock.now_ms() };
    let result = match route {
        "/login" => run.login(req).await,
        "/callback" => run.callback(req).await,
        "/me" => run.me(req).await,
        _ => run.logout(req).await,
    };
    match result {
        Ok(answer) => answer,
        Err(failure) => failure.answer(json || route == "/me"),
    }
}

/// Whether the caller asked for JSON rather than a page.
fn wants_json(req: &Inbound) -> bool {
    req.header("accept").is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// A refusal: status, a machine-readable code, and what the person is told.
#[derive(Debug)]
struct Failure {
    status: u16,
    code: &'static str,
    message: String,
    cookies: Vec<String>,
}

impl Failure {
    fn new(status: u16, code: &'static str, message: &str) -> Self {
        Self { status, code, message: message.to_owned(), cookies: Vec::new() }
    }

    fn store(e: &StoreError) -> Self {
        let _ = e;
        Self::new(503, "store_unavailable", "the session store is unavailable; try again")
    }

    fn oneaccess(e: &OneAccessError) -> Self {
        match e {
            OneAccessError::InvalidGrant(_) => {
                Self::new(400, "invalid_grant", "the sign-in code is invalid, expired or was used already")
            }
            OneAccessError::Unauthorized => Self::new(401, "userinfo_unauthorized", &e.to_string()),
            OneAccessError::Timeout => Self::new(504, "oneaccess_timeout", &e.to_string()),
            OneAccessError::InvalidClient | OneAccessError::Unexpected(_) | OneAccessError::Unreachable(_) => {
                Self::new(502, "oneaccess_error", &e.to_string())
            }
        }
    }

    fn with_cookie(mut self, cookie: String) -> Self {
        self.cookies.push(cookie);
        self
    }

    fn answer(self, json: bool) -> SsoAnswer {
        let summary = format!("{} {}", self.status, self.code);
        let mut response = if json {
            let body = serde_json::json!({ "error": self.code, "message": self.message });
            respond(self.status, "application/json", body.to_string().into_bytes())
        } else {
            let page = format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign-in: {code}</title></head>\
                 <body><h1>Sign-in failed</h1><p id=\"message\">{message}</p><p><code id=\"error\">{code}</code> \
                 (HTTP {status})</p></body></html>",
                code = self.code,
                message = escape_html(&self.message),
                status = self.status,
            );
            respond(self.status, "text/html; charset=utf-8", page.into_bytes())
        };
        for c in self.cookies {
            response.headers.push(("set-cookie".into(), c));
        }
        SsoAnswer { response, summary }
    }
}

fn escape_html(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Outbound {
    Outbound {
        status,
        headers: vec![
            ("content-type".into(), content_type.into()),
            ("cache-control".into(), "no-store".into()),
            ("x-content-type-options".into(), "nosniff".into()),
        ],
        body,
    }
}

fn redirect(location: &str, cookies: Vec<String>, summary: String) -> SsoAnswer {
    let mut response = respond(302, "text/plain; charset=utf-8", Vec::new());
    response.headers.push(("location".into(), location.to_owned()));
    for c in cookies {
        response.headers.push(("set-cookie".into(), c));
    }
    SsoAnswer { response, summary }
}

/// One request's configuration, ports and deadline.
struct Run<'a, 'c, S, B, C, R> {
    cfg: &'a SsoConfig,
    ctx: &'a Ctx<'c, S, B, C, R>,
    deadline: Deadline,
    now: u64,
}

/// The tenant record and the application a login is for.
struct Target {
    rec: TenantRecord,
    app_id: String,
}

impl Target {
    fn domain_url(&self) -> &str {
        self.rec.tenant.as_ref().map_or("", |t| t.domain_url.as_str())
    }
}

impl<S: Store, B: Backend, C: Clock, R: Random> Run<'_, '_, S, B, C, R> {
    /// Milliseconds the next OneAccess call may take; `504` once the request's deadline has passed.
    fn call_budget(&self) -> Result<u64, Failure> {
        match self.deadline.remaining_ms(self.ctx.clock).min(CALL_TIMEOUT_MS) {
            0 => Err(Failure::oneaccess(&OneAccessError::Timeout)),
            ms => Ok(ms),
        }
    }

    /// The tenant named by id or code (live records first, then debug ones) and its application.
    async fn resolve(&self, tenant: &str, app_id: Option<&str>, instance_id: Option<&str>) -> Result<Target, Failure> {
        // Debug records (`testFlag=1`) serve only a tenant the live namespace has never known: a live tenant that
        // was deleted is not brought back by old debug data.
        let store = self.ctx.store;
        let mut records = lookup::tenant(store, false, tenant).await.map_err(|e| Failure::store(&e))?;
        if records.is_empty() && !lookup::ever_known(store, false, tenant).await.map_err(|e| Failure::store(&e))? {
            records = lookup::tenant(store, true, tenant).await.map_err(|e| Failure::store(&e))?;
        }
        if records.is_empty() {
            return Err(Failure::new(404, "unknown_tenant", "no such tenant (tenantSync has not described it)"));
        }
        let mut found: Vec<Target> = records
            .into_iter()
            .filter(|rec| instance_id.is_none_or(|want| want == rec.instance_id))
            .flat_map(|rec| {
                let apps: Vec<String> =
                    rec.apps.keys().filter(|a| app_id.is_none_or(|want| want == a.as_str())).cloned().collect();
                apps.into_iter().map(move |app_id| Target { rec: rec.clone(), app_id })
            })
            .collect();
        match found.len() {
            0 => Err(Failure::new(404, "no_application", "the tenant has no such application (applicationSync)")),
            1 => Ok(found.remove(0)),
            _ => Err(Failure::new(
                400,
                "application_ambiguous",
                "the tenant has several applications or instances: add appId (and instanceId)",
            )),
        }
    }

    fn client(&self, target: &Target) -> Result<(String, String), Failure> {
        let app = target.rec.apps.get(&target.app_id).ok_or_else(|| {
            Failure::new(404, "no_application", "the tenant has no such application (applicationSync)")
        })?;
        let secret = lookup::client_secret(app, &self.cfg.rsa_private_key).map_err(|_| {
            Failure::new(
                500,
                "client_secret_unreadable",
                "the application's client secret does not decrypt with rsa_private_key",
            )
        })?;
        Ok((app.client_id.clone(), secret))
    }

    async fn login(&self, req: &Inbound) -> Result<SsoAnswer, Failure> {
        let params = req.query_params();
        let param =
            |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let Some(tenant) = param("tenant") else {
            return Err(Failure::new(400, "missing_tenant", "tenant is required (the tenant id or code)"));
        };
        let target = self.resolve(tenant, param("appId"), param("instanceId")).await?;
        if let Some(code) = param("code") {
            // The unified portal's entry (§6 step 1): the code was issued for the application's login URL.
            let answer = self.finish(&target, code, None).await?;
            return Ok(answer);
        }
        // Only the client id is needed here: the secret is decrypted (RSA, tens of ms) only to exchange a code.
        let client_id = target.rec.apps.get(&target.app_id).map(|a| a.client_id.clone()).unwrap_or_default();
        let _ = session::sweep_if_due(self.ctx.store, self.ctx.random, self.now).await;
        let started = session::start_login(
            self.ctx.store,
            self.ctx.random,
            self.cfg,
            self.now,
            (target.rec.test, &target.rec.instance_id, &target.rec.tenant_id, &target.app_id),
        )
        .await
        .map_err(|e| Failure::store(&e))?;
        let location =
            oneaccess::authorize_url(target.domain_url(), &client_id, &self.cfg.redirect_uri, &started.state);
        let cookie = session::set_cookie(self.cfg, STATE_COOKIE, &started.cookie, "/sso", session::STATE_TTL_MS / 1000);
        Ok(redirect(
            &location,
            vec![cookie],
            format!("302 authorize tenant={} app={}", target.rec.tenant_id, target.app_id),
        ))
    }

    async fn callback(&self, req: &Inbound) -> Result<SsoAnswer, Failure> {
        let params = req.query_params();
        let param =
            |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let clear_state = session::set_cookie(self.cfg, STATE_COOKIE, "", "/sso", 0);
        if let Some(error) = param("error") {
            let error: String = error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect();
            return Err(Failure::new(403, "oneaccess_refused", &format!("OneAccess refused the sign-in ({error})"))
                .with_cookie(clear_state));
        }
        let (Some(code), Some(state)) = (param("code"), param("state")) else {
            return Err(Failure::new(400, "missing_parameter", "code and state are required").with_cookie(clear_state));
        };
        let cookie = session::cookie(req.header("cookie"), STATE_COOKIE);
        let taken = session::take_login(self.ctx.store, self.ctx.random, self.cfg, self.now, state, cookie)
            .await
            .map_err(|e| Failure::store(&e))?;
        let login = taken.map_err(|r: StateRefusal| {
            let code = match r {
                StateRefusal::NotThisBrowser => "state_not_this_browser",
                StateRefusal::Unknown => "state_unknown",
                StateRefusal::Expired => "state_expired",
                StateRefusal::Used => "state_reused",
            };
            Failure::new(400, code, r.message()).with_cookie(clear_state.clone())
        })?;
        let key = tenant_key(login.test, &login.instance_id, &login.tenant_id);
        let rec = atomic::read::<_, TenantRecord>(self.ctx.store, &key)
            .await
            .map_err(|e| Failure::store(&e))?
            .filter(|r| r.tenant.is_some())
            .ok_or_else(|| Failure::new(404, "unknown_tenant", "the tenant was deleted during the sign-in"))?;
        let target = Target { rec, app_id: login.app_id };
        let mut answer = self
            .finish(&target, code, Some(&self.cfg.redirect_uri))
            .await
            .map_err(|f| f.with_cookie(clear_state.clone()))?;
        answer.response.headers.push(("set-cookie".into(), clear_state));
        Ok(answer)
    }

    /// Exchanges the code, reads the user, admits them and opens a session.
    async fn finish(&self, target: &Target, code: &str, redirect_uri: Option<&str>) -> Result<SsoAnswer, Failure> {
        let (client_id, client_secret) = self.client(target)?;
        let idp = OneAccess {
            backend: self.ctx.backend,
            domain_url: target.domain_url(),
            client_id: &client_id,
            client_secret: &client_secret,
        };
        let tokens: Tokens =
            idp.exchange_code(code, redirect_uri, self.call_budget()?).await.map_err(|e| Failure::oneaccess(&e))?;
        let user = idp.userinfo(&tokens.access_token, self.call_budget()?).await.map_err(|e| Failure::oneaccess(&e))?;
        let rec = &target.rec;
        if !rec.is_authorised(&target.app_id, &user.user_name) {
            let why = match rec.users.get(&target.app_id).and_then(|u| u.get(&user.user_name)) {
                None => "this account is not authorised for the application (authSync)",
                Some(u) if !u.authorised => "this account's authorisation was revoked",
                Some(_) => "this account is disabled",
            };
            return Err(Failure::new(403, "user_not_authorised", why));
        }
        let cookie = session::create(
            self.ctx.store,
            self.ctx.random,
            self.cfg,
            self.now,
            NewSession {
                target: (rec.test, &rec.instance_id, &rec.tenant_id, &target.app_id),
                user_name: &user.user_name,
                login_seq: rec.seq,
                expires_in_s: tokens.expires_in,
                refresh_token: tokens.refresh_token.as_deref(),
            },
        )
        .await
        .map_err(|e| Failure::store(&e))?;
        let set = session::set_cookie(self.cfg, SESSION_COOKIE, &cookie, "/", self.cfg.session_ttl_s);
        Ok(redirect(
            &self.cfg.app_url,
            vec![set],
            format!("302 logged in tenant={} app={}", rec.tenant_id, target.app_id),
        ))
    }

    async fn me(&self, req: &Inbound) -> Result<SsoAnswer, Failure> {
        let no_session = || Failure::new(401, "no_session", "not logged in");
        let cookie = session::cookie(req.header("cookie"), SESSION_COOKIE);
        let found = session::find(self.ctx.store, self.cfg, self.now, cookie)
            .await
            .map_err(|e| Failure::store(&e))?
            .ok_or_else(no_session)?;
        let s = &found.session;
        let ended = |why: &str| {
            Failure::new(401, "session_ended", why).with_cookie(session::set_cookie(
                self.cfg,
                SESSION_COOKIE,
                "",
                "/",
                0,
            ))
        };
        let rec = atomic::read::<_, TenantRecord>(self.ctx.store, &tenant_key(s.test, &s.instance_id, &s.tenant_id))
            .await
            .map_err(|e| Failure::store(&e))?;
        let admitted = match &rec {
            Some(rec) => admission::still_admitted(self.ctx.store, rec, &s.app_id, &s.user_name, s.login_seq)
                .await
                .map_err(|e| Failure::store(&e))?,
            None => false,
        };
        let Some(rec) = rec.filter(|_| admitted) else {
            self.ctx.store.delete(&found.key).await.map_err(|e| Failure::store(&e))?;
            return Err(ended("the user's access to the application was revoked"));
        };
        if s.access_expires_ms <= self.now {
            let target = Target { rec: rec.clone(), app_id: s.app_id.clone() };
            let (client_id, client_secret) = self.client(&target)?;
            let idp = OneAccess {
                backend: self.ctx.backend,
                domain_url: target.domain_url(),
                client_id: &client_id,
                client_secret: &client_secret,
            };
            let refresh = s.refresh_sealed.as_deref().and_then(|sealed| session::open(self.cfg, &found.key, sealed));
            let refreshed = match refresh {
                Some(token) => idp.refresh(&token, self.call_budget()?).await,
                None => Err(OneAccessError::InvalidGrant("no refresh token".into())),
            };
            match refreshed {
                Ok(tokens) => session::refreshed(
                    self.ctx.store,
                    self.ctx.random,
                    self.cfg,
                    self.now,
                    &found,
                    tokens.expires_in,
                    tokens.refresh_token.as_deref(),
                )
                .await
                .map_err(|e| Failure::store(&e))?,
                Err(OneAccessError::InvalidGrant(_) | OneAccessError::InvalidClient) => {
                    // A racing request may have refreshed first (OneAccess can rotate refresh tokens): then the
                    // session stands.
                    let now = atomic::read::<_, session::Session>(self.ctx.store, &found.key)
                        .await
                        .map_err(|e| Failure::store(&e))?;
                    if now.is_none_or(|n| n.access_expires_ms == s.access_expires_ms) {
                        self.ctx.store.delete(&found.key).await.map_err(|e| Failure::store(&e))?;
                        return Err(ended("OneAccess refused to refresh the session"));
                    }
                }
                Err(e) => return Err(Failure::oneaccess(&e)),
            }
        }
        let user = rec.users.get(&s.app_id).and_then(|u| u.get(&s.user_name));
        let body = serde_json::json!({
            "userName": s.user_name,
            "name": user.map(|u| u.name.as_str()).unwrap_or_default(),
            "tenantId": s.tenant_id,
            "appId": s.app_id,
            "role": user.map(|u| u.role.as_str()).unwrap_or("user"),
            "instanceId": s.instance_id,
        });
        Ok(SsoAnswer {
            response: respond(200, "application/json", body.to_string().into_bytes()),
            summary: format!("200 me tenant={} app={}", s.tenant_id, s.app_id),
        })
    }

    async fn logout(&self, req: &Inbound) -> Result<SsoAnswer, Failure> {
        let params = req.query_params();
        let target = match params.iter().find(|(k, _)| k == "redirect_url").map(|(_, v)| v.as_str()) {
            Some(url) if self.cfg.allows_redirect(url) => url.to_owned(),
            Some(_) => {
                return Err(Failure::new(
                    400,
                    "redirect_not_allowed",
                    "redirect_url must be on the application's own origin",
                ));
            }
            None => self.cfg.absolute_app_url(),
        };
        let cookie = session::cookie(req.header("cookie"), SESSION_COOKIE);
        let found = session::find(self.ctx.store, self.cfg, self.now, cookie).await.map_err(|e| Failure::store(&e))?;
        let clear = session::set_cookie(self.cfg, SESSION_COOKIE, "", "/", 0);
        let Some(found) = found else {
            return Ok(redirect(&target, vec![clear], "302 logout without session".into()));
        };
        self.ctx.store.delete(&found.key).await.map_err(|e| Failure::store(&e))?;
        let s = &found.session;
        let rec = atomic::read::<_, TenantRecord>(self.ctx.store, &tenant_key(s.test, &s.instance_id, &s.tenant_id))
            .await
            .map_err(|e| Failure::store(&e))?;
        let location = match rec.as_ref().and_then(|r| r.tenant.as_ref()) {
            Some(t) => oneaccess::logout_url(&t.domain_url, &target),
            None => target,
        };
        Ok(redirect(&location, vec![clear], format!("302 logged out tenant={} app={}", s.tenant_id, s.app_id)))
    }
}
