//! Login state and sessions, kept server-side in the key-value store and named by MAC'd cookies.
//!
//! - A **state** (the OAuth `state` of one login attempt) is single use, short-lived and bound to the browser that
//!   started it: the browser holds a random nonce in a cookie, the state record holds the nonce's digest.
//! - A **session** is a random id in the `koogallery_sso` cookie, MAC'd with a key derived from
//!   `sso_session_secret` (a forged or altered cookie is refused before the store is read). The record holds who
//!   logged in, for which tenant and application, and the OneAccess refresh token sealed with AES-256-GCM (nothing
//!   usable is in the cookie, nor in clear in the store). Deleting the record ends the session everywhere.
//!
//! Both keys carry their expiry minute (`sso/state/<minute>/…`, `sso/session/<minute>/…`), so the periodic sweep
//! deletes expired ones from the key listing alone.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::SsoConfig;
use crate::ports::atomic::{self, Change, Tokened};
use crate::ports::{Random, Store, StoreError};
use crate::signing::error::{ct_eq, hmac_sha256};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "koogallery_sso";
/// Name of the cookie binding a login attempt to its browser.
pub const STATE_COOKIE: &str = "koogallery_sso_state";
/// How long a login attempt may take at OneAccess.
pub const STATE_TTL_MS: u64 = 10 * 60_000;

const MINUTE_MS: u64 = 60_000;
const STATE_PREFIX: &str = "sso/state/";
const SESSION_PREFIX: &str = "sso/session/";
const SWEEP_KEY: &str = "sso/sweep";
const SWEEP_INTERVAL_MS: u64 = MINUTE_MS;
const SWEEP_BATCH: usize = 5_000;

fn random_token<R: Random + ?Sized>(random: &R) -> String {
    let mut bytes = [0u8; 32];
    random.fill(&mut bytes);
    B64.encode(bytes)
}

fn digest(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn mac(cfg: &SsoConfig, kind: &str, value: &str) -> String {
    B64.encode(hmac_sha256(cfg.cookie_key(), &[kind.as_bytes(), &[0], value.as_bytes()]))
}

fn mac_ok(cfg: &SsoConfig, kind: &str, value: &str, tag: &str) -> bool {
    ct_eq(mac(cfg, kind, value).as_bytes(), tag.as_bytes())
}

/// A cookie's value from a `Cookie` request header.
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, `Secure` unless local; `max_age_s` 0 deletes the cookie.
pub fn set_cookie(cfg: &SsoConfig, name: &str, value: &str, path: &str, max_age_s: u64) -> String {
    let secure = if cfg.secure_cookies { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age_s}; HttpOnly; SameSite=Lax{secure}")
}

/// What a login attempt remembers between the redirect to OneAccess and the callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginState {
    /// Debug-traffic namespace of the tenant.
    pub test: bool,
    /// The tenant record's instance.
    pub instance_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The application.
    pub app_id: String,
    /// SHA-256 of the browser's nonce.
    binding: String,
    /// Set by the one callback that used it.
    #[serde(default)]
    used: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
}

impl Tokened for LoginState {
    fn write_tokens(&self) -> &[String] {
        &self.writes
    }
    fn write_tokens_mut(&mut self) -> &mut Vec<String> {
        &mut self.writes
    }
}

/// A new login attempt: the `state` to send to OneAccess and the state cookie for the browser.
pub struct StartedLogin {
    /// The OAuth `state` parameter.
    pub state: String,
    /// The `koogallery_sso_state` cookie value.
    pub cookie: String,
}

/// Stores a login attempt for `(test, instance, tenant, app)`.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn start_login<S: Store, R: Random>(
    store: &S,
    random: &R,
    cfg: &SsoConfig,
    now_ms: u64,
    target: (bool, &str, &str, &str),
) -> Result<StartedLogin, StoreError> {
    let (test, instance_id, tenant_id, app_id) = target;
    let minute = now_ms.saturating_add(STATE_TTL_MS) / MINUTE_MS + 1;
    let state = format!("{minute}.{}", random_token(random));
    let nonce = random_token(random);
    let record = LoginState {
        test,
        instance_id: instance_id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        app_id: app_id.to_owned(),
        binding: digest(&nonce),
        used: false,
        writes: Vec::new(),
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| StoreError(e.to_string()))?;
    store.set(&state_key(&state).unwrap_or_default(), &bytes).await?;
    let cookie = format!("{nonce}.{}", mac(cfg, "state", &nonce));
    Ok(StartedLogin { state, cookie })
}

fn state_key(state: &str) -> Option<String> {
    let (minute, rest) = state.split_once('.')?;
    let minute: u64 = minute.parse().ok()?;
    (!rest.is_empty()).then(|| format!("{STATE_PREFIX}{minute}/{}", digest(state)))
}

/// Why a callback's `state` is refused (each a `400`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRefusal {
    /// No state cookie, or one that was altered: the login did not start in this browser.
    NotThisBrowser,
    /// Unknown (never issued, or swept).
    Unknown,
    /// Past its ten minutes.
    Expired,
    /// Used by an earlier callback.
    Used,
}

impl StateRefusal {
    /// What the person is told.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotThisBrowser => "this sign-in did not start in this browser (state cookie missing or invalid)",
            Self::Unknown => "unknown sign-in state",
            Self::Expired => "the sign-in took too long (state expired)",
            Self::Used => "this sign-in link was used already (state reused)",
        }
    }
}

/// Takes the login attempt named by `state` for the browser holding `cookie_value`, once.
///
/// # Errors
/// The outer [`StoreError`] when the store fails; the inner refusal when the state may not be used.
pub async fn take_login<S: Store, R: Random>(
    store: &S,
    random: &R,
    cfg: &SsoConfig,
    now_ms: u64,
    state: &str,
    cookie_value: Option<&str>,
) -> Result<Result<LoginState, StateRefusal>, StoreError> {
    let Some((nonce, tag)) = cookie_value.and_then(|c| c.split_once('.')) else {
        return Ok(Err(StateRefusal::NotThisBrowser));
    };
    if !mac_ok(cfg, "state", nonce, tag) {
        return Ok(Err(StateRefusal::NotThisBrowser));
    }
    let Some(key) = state_key(state) else { return Ok(Err(StateRefusal::Unknown)) };
    let expired = state
        .split_once('.')
        .and_then(|(m, _)| m.parse::<u64>().ok())
        .is_none_or(|m| m.saturating_mul(MINUTE_MS) <= now_ms);
    let binding = digest(nonce);
    let taken = atomic::update(store, random, now_ms, &key, |current: Option<LoginState>| match current {
        None => Change::Keep(Err(StateRefusal::Unknown)),
        Some(s) if !ct_eq(s.binding.as_bytes(), binding.as_bytes()) => Change::Keep(Err(StateRefusal::NotThisBrowser)),
        Some(s) if s.used => Change::Keep(Err(StateRefusal::Used)),
        Some(_) if expired => Change::Keep(Err(StateRefusal::Expired)),
        Some(mut s) => {
            s.used = true;
            let taken = s.clone();
            Change::Write(s, Ok(taken))
        }
    })
    .await?;
    Ok(taken)
}

/// One logged-in user's session.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Debug-traffic namespace of the tenant.
    pub test: bool,
    /// The tenant record's instance.
    pub instance_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The application.
    pub app_id: String,
    /// The OneAccess account (`userName`, as `authSync` names it).
    pub user_name: String,
    /// The tenant record's `seq` when the user was admitted ([`crate::kit::admission`]).
    pub login_seq: u64,
    /// When the session ends regardless of use.
    pub expires_ms: u64,
    /// When the OneAccess access token expires; the refresh token is used after that.
    pub access_expires_ms: u64,
    /// The refresh token, sealed ([`seal`]); `None` when OneAccess gave none.
    #[serde(default)]
    pub refresh_sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("tenant_id", &self.tenant_id)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl Tokened for Session {
    fn write_tokens(&self) -> &[String] {
        &self.writes
    }
    fn write_tokens_mut(&mut self) -> &mut Vec<String> {
        &mut self.writes
    }
}

/// A session found from its cookie, with its store key.
pub struct Found {
    /// The store key (also the seal's associated data).
    pub key: String,
    /// The session.
    pub session: Session,
}

/// The fields of a new session.
pub struct NewSession<'a> {
    /// Namespace, instance, tenant, application of the record the user was admitted from.
    pub target: (bool, &'a str, &'a str, &'a str),
    /// The OneAccess account.
    pub user_name: &'a str,
    /// The record's `seq` at admission.
    pub login_seq: u64,
    /// Access-token lifetime from OneAccess (`expires_in`, s).
    pub expires_in_s: u64,
    /// The refresh token, if any.
    pub refresh_token: Option<&'a str>,
}

/// Stores a new session; returns the session cookie's value.
///
/// # Errors
/// [`StoreError`] when the store fails (or the token cannot be sealed).
pub async fn create<S: Store, R: Random>(
    store: &S,
    random: &R,
    cfg: &SsoConfig,
    now_ms: u64,
    new: NewSession<'_>,
) -> Result<String, StoreError> {
    let expires_ms = now_ms.saturating_add(cfg.session_ttl_s * 1000);
    let minute = expires_ms / MINUTE_MS + 1;
    let id = format!("{minute}.{}", random_token(random));
    let key = format!("{SESSION_PREFIX}{minute}/{}", digest(&id));
    let (test, instance_id, tenant_id, app_id) = new.target;
    let refresh_sealed = match new.refresh_token {
        Some(t) => Some(seal(cfg, random, &key, t)?),
        None => None,
    };
    let session = Session {
        test,
        instance_id: instance_id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        app_id: app_id.to_owned(),
        user_name: new.user_name.to_owned(),
        login_seq: new.login_seq,
        expires_ms,
        access_expires_ms: access_expiry(now_ms, new.expires_in_s),
        refresh_sealed,
        writes: Vec::new(),
    };
    let bytes = serde_json::to_vec(&session).map_err(|e| StoreError(e.to_string()))?;
    store.set(&key, &bytes).await?;
    Ok(format!("{id}.{}", mac(cfg, "session", &id)))
}

/// When an access token issued now with `expires_in_s` is treated as expired: a minute early, so a token is never
/// used in its last seconds.
pub fn access_expiry(now_ms: u64, expires_in_s: u64) -> u64 {
    // At most a day whatever OneAccess says; a short lifetime loses half of itself rather than all of it.
    let lifetime = expires_in_s.min(86_400) * 1000;
    now_ms.saturating_add(lifetime - (lifetime / 2).min(MINUTE_MS))
}

/// The store key a session cookie names, if the cookie is genuine (checked in constant time).
pub fn key_of_cookie(cfg: &SsoConfig, cookie_value: &str) -> Option<String> {
    let (id, tag) = cookie_value.rsplit_once('.')?;
    let (minute, rest) = id.split_once('.')?;
    let minute: u64 = minute.parse().ok()?;
    if rest.is_empty() || !mac_ok(cfg, "session", id, tag) {
        return None;
    }
    Some(format!("{SESSION_PREFIX}{minute}/{}", digest(id)))
}

/// The live session a cookie names: `None` when the cookie is missing, forged, or names no live session (an
/// expired one is deleted).
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn find<S: Store>(
    store: &S,
    cfg: &SsoConfig,
    now_ms: u64,
    cookie_value: Option<&str>,
) -> Result<Option<Found>, StoreError> {
    let Some(key) = cookie_value.and_then(|c| key_of_cookie(cfg, c)) else { return Ok(None) };
    let Some(session) = atomic::read::<_, Session>(store, &key).await? else { return Ok(None) };
    if session.expires_ms <= now_ms {
        store.delete(&key).await?;
        return Ok(None);
    }
    Ok(Some(Found { key, session }))
}

/// Records a refreshed access token in the session (unless a racing request refreshed it first).
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn refreshed<S: Store, R: Random>(
    store: &S,
    random: &R,
    cfg: &SsoConfig,
    now_ms: u64,
    found: &Found,
    expires_in_s: u64,
    refresh_token: Option<&str>,
) -> Result<(), StoreError> {
    let sealed = match refresh_token {
        Some(t) => Some(seal(cfg, random, &found.key, t)?),
        None => found.session.refresh_sealed.clone(),
    };
    let before = found.session.access_expires_ms;
    atomic::update(store, random, now_ms, &found.key, |current: Option<Session>| match current {
        Some(mut s) if s.access_expires_ms == before => {
            s.access_expires_ms = access_expiry(now_ms, expires_in_s);
            s.refresh_sealed = sealed.clone();
            Change::Write(s, ())
        }
        // Ended meanwhile (logout), or refreshed by another request: leave it.
        _ => Change::Keep(()),
    })
    .await
}

/// Seals `plain` for the session at `key`: base64url(nonce ‖ AES-256-GCM ciphertext), the key as associated data
/// (a sealed token copied to another session does not open).
///
/// # Errors
/// [`StoreError`] if encryption fails (it does not for these sizes).
pub fn seal<R: Random + ?Sized>(cfg: &SsoConfig, random: &R, key: &str, plain: &str) -> Result<String, StoreError> {
    let cipher = Aes256Gcm::new(cfg.seal_key().into());
    let mut nonce = [0u8; 12];
    random.fill(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain.as_bytes(), aad: key.as_bytes() })
        .map_err(|_| StoreError("token could not be sealed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(B64.encode(out))
}

/// Opens what [`seal`] sealed for `key`; `None` when it was sealed under another secret or for another session.
pub fn open(cfg: &SsoConfig, key: &str, sealed: &str) -> Option<String> {
    let bytes = B64.decode(sealed).ok()?;
    if bytes.len() < 12 {
        return None;
    }
    let (nonce, ct) = bytes.split_at(12);
    let cipher = Aes256Gcm::new(cfg.seal_key().into());
    let plain = cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: key.as_bytes() }).ok()?;
    String::from_utf8(plain).ok()
}

/// Deletes expired states and sessions (at most 5 000), at most once a minute across all instances; returns how
/// many.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn sweep_if_due<S: Store, R: Random>(store: &S, random: &R, now_ms: u64) -> Result<usize, StoreError> {
    if !atomic::claim_due(store, random, now_ms, SWEEP_KEY, SWEEP_INTERVAL_MS).await? {
        return Ok(0);
    }
    crate::ports::delete_listed(store, SWEEP_BATCH, |k| {
        let rest = k.strip_prefix(STATE_PREFIX).or_else(|| k.strip_prefix(SESSION_PREFIX));
        rest.and_then(|r| r.split_once('/'))
            .and_then(|(m, _)| m.parse::<u64>().ok())
            .is_some_and(|m| m.saturating_mul(MINUTE_MS) <= now_ms)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MemoryStore, OsRandom};

    fn cfg(secret: &str) -> SsoConfig {
        let pem = include_str!("../../../../tests/fixtures/kit_rsa3072_private.pem");
        let vars = [
            ("sso_redirect_uri", "http://127.0.0.1:3000/sso/callback"),
            ("sso_app_url", "/app"),
            ("sso_session_secret", secret),
            ("rsa_private_key", pem),
        ];
        SsoConfig::from_variables(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())).expect("valid")
    }

    const SECRET: &str = "an-sso-session-secret-of-32-chars!!";
    const NOW: u64 = 1_700_000_000_000;

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        pollster::block_on(f)
    }

    #[test]
    fn a_state_is_taken_once_and_only_by_the_browser_that_started_it() {
        let (store, c) = (MemoryStore::new(), cfg(SECRET));
        let started = block(start_login(&store, &OsRandom, &c, NOW, (false, "i", "t", "a"))).expect("store");
        let take = |cookie: Option<&str>, now: u64| {
            block(take_login(&store, &OsRandom, &c, now, &started.state, cookie)).expect("store")
        };
        let mut other = started.cookie.clone();
        other.replace_range(0..1, if other.starts_with('A') { "B" } else { "A" });
        assert_eq!(take(None, NOW).err(), Some(StateRefusal::NotThisBrowser));
        assert_eq!(take(Some(&other), NOW).err(), Some(StateRefusal::NotThisBrowser), "altered nonce");
        // A genuine cookie of another login attempt (another browser) does not match this state's binding.
        let second = block(start_login(&store, &OsRandom, &c, NOW, (false, "i", "t", "a"))).expect("store");
        assert_eq!(take(Some(&second.cookie), NOW).err(), Some(StateRefusal::NotThisBrowser));
        assert_eq!(take(Some(&started.cookie), NOW + STATE_TTL_MS + 2 * MINUTE_MS).err(), Some(StateRefusal::Expired));
        let taken = take(Some(&started.cookie), NOW).expect("first use");
        assert_eq!((taken.tenant_id.as_str(), taken.app_id.as_str()), ("t", "a"));
        assert_eq!(take(Some(&started.cookie), NOW).err(), Some(StateRefusal::Used));
        let forged = block(take_login(&store, &OsRandom, &c, NOW, "123.nope", Some(&started.cookie))).expect("store");
        assert_eq!(forged.err(), Some(StateRefusal::Unknown));
    }

    #[test]
    fn a_session_cookie_is_refused_when_altered_or_made_under_another_secret() {
        let (store, c) = (MemoryStore::new(), cfg(SECRET));
        let new = NewSession {
            target: (false, "i", "t", "a"),
            user_name: "u",
            login_seq: 3,
            expires_in_s: 7200,
            refresh_token: Some("rt-secret"),
        };
        let cookie = block(create(&store, &OsRandom, &c, NOW, new)).expect("store");
        assert!(!cookie.contains("rt-secret"));
        let found = block(find(&store, &c, NOW, Some(&cookie))).expect("store").expect("live");
        assert_eq!(found.session.user_name, "u");
        let raw = store_bytes(&store, &found.key);
        assert!(!raw.contains("rt-secret"), "the refresh token is sealed at rest");
        let sealed = found.session.refresh_sealed.clone().expect("sealed");
        assert_eq!(open(&c, &found.key, &sealed).as_deref(), Some("rt-secret"));
        assert_eq!(open(&c, "sso/session/1/other", &sealed), None, "bound to its session");
        assert_eq!(open(&cfg("another-secret-of-at-least-32-chars"), &found.key, &sealed), None);
        let mut altered = cookie.clone();
        let last = altered.pop().map_or('A', |ch| if ch == 'A' { 'B' } else { 'A' });
        altered.push(last);
        for bad in [altered.as_str(), "1.2.3", "", "x"] {
            assert!(block(find(&store, &c, NOW, Some(bad))).expect("store").is_none(), "{bad:?}");
        }
        let foreign = cfg("another-secret-of-at-least-32-chars");
        assert!(block(find(&store, &foreign, NOW, Some(&cookie))).expect("store").is_none());
        let end = NOW + c.session_ttl_s * 1000;
        assert!(block(find(&store, &c, end, Some(&cookie))).expect("store").is_none(), "expired");
        assert!(block(store.get(&found.key)).expect("store").is_none(), "an expired session is deleted");
    }

    fn store_bytes(store: &MemoryStore, key: &str) -> String {
        String::from_utf8(block(store.get(key)).expect("store").unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn the_sweep_deletes_only_expired_states_and_sessions() {
        let (store, c) = (MemoryStore::new(), cfg(SECRET));
        block(start_login(&store, &OsRandom, &c, NOW, (false, "i", "t", "a"))).expect("store");
        let new = NewSession {
            target: (false, "i", "t", "a"),
            user_name: "u",
            login_seq: 1,
            expires_in_s: 60,
            refresh_token: None,
        };
        block(create(&store, &OsRandom, &c, NOW, new)).expect("store");
        block(store.set("kit/live/tenant/i/t", b"{}")).expect("store");
        assert_eq!(block(sweep_if_due(&store, &OsRandom, NOW)).expect("store"), 0, "nothing expired yet");
        let later = NOW + STATE_TTL_MS + 3 * MINUTE_MS;
        assert_eq!(block(sweep_if_due(&store, &OsRandom, later)).expect("store"), 1, "the state only");
        let much_later = NOW + c.session_ttl_s * 1000 + 3 * MINUTE_MS;
        assert_eq!(block(sweep_if_due(&store, &OsRandom, much_later)).expect("store"), 1, "then the session");
        assert!(block(store.get("kit/live/tenant/i/t")).expect("store").is_some());
    }
}
