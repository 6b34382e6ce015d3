//! The fixture's kit side: V2 (`x-sign`) and V1 (`authToken` header) syncs, kit syncs at the production URL, and
//! forward-mode events for tenant, user and whole-tree changes, posted to the emulator's webhook receiver with
//! Standard Webhooks headers. A small model of the kit contract, enough for the emulator's kit rules.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use koogallery_core::crypto::rsa_secret::decrypt_client_secret;
use koogallery_core::http::{Inbound, Outbound};
use koogallery_core::ports::system_now_ms;
use koogallery_core::signing::body_sign;
use koogallery_core::signing::keys::{KeyRing, SecretKey};
use koogallery_core::signing::kit::{KitAuth, KitVerifier};
use koogallery_core::signing::v1::{V1AuthToken, kit_v1_params};
use koogallery_core::signing::window::TimestampWindow;
use koogallery_core::webhook::WebhookSigner;
use koogallery_core::wire::json_out::to_ascii_json;
use koogallery_core::wire::kit::{KitGeneration, KitRequest, KitResponse, KitSync, SyncFlag, parse_kit_request};
use koogallery_core::wire::result_code::ResultCode;
use serde_json::{Value, json};

use super::{Defect, KIT_KEY, RSA_PRIVATE};

/// The backend secret the fixture signs events with (and the emulator is given).
pub const BACKEND_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What one tenant holds, as far as events go.
#[derive(Default)]
struct Tenant {
    tenant: Option<Value>,
    /// (appId, userName) → (user as sent, authorised).
    users: BTreeMap<(String, String), (Value, bool)>,
    orgs: Vec<Value>,
}

/// The kit endpoint's state and where its events go.
pub struct KitSide {
    defect: Defect,
    backend_url: String,
    tenants: Mutex<BTreeMap<String, Tenant>>,
    seq: AtomicU64,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// How a request reached the kit side.
pub enum Route {
    /// `/produceAPI/v2/<name>` or `/produceAPI/<name>`.
    Path(KitSync, KitGeneration),
    /// The production URL with `x-sign` and no `signature` parameter.
    ProductionUrl,
    /// The production URL, V2 query signature, activity naming a kit sync: the basic key never verifies one.
    BasicKeyOnKitActivity,
}

impl KitSide {
    /// A kit side delivering events to `backend_url`.
    pub fn new(defect: Defect, backend_url: String) -> Self {
        Self {
            defect,
            backend_url,
            tenants: Mutex::default(),
            seq: AtomicU64::new(0),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    /// Whether `inbound` is for the kit side.
    pub fn route(inbound: &Inbound) -> Option<Route> {
        if let Some((sync, generation)) = KitSync::from_path(&inbound.path) {
            return Some(Route::Path(sync, generation));
        }
        let signed_v2 = inbound.query_params().iter().any(|(k, _)| k == "signature");
        if inbound.header("x-sign").is_some() && !signed_v2 {
            return Some(Route::ProductionUrl);
        }
        let activity = serde_json::from_slice::<Value>(&inbound.body)
            .ok()
            .and_then(|v| v.get("activity").and_then(Value::as_str).and_then(KitSync::from_name));
        (signed_v2 && activity.is_some()).then_some(Route::BasicKeyOnKitActivity)
    }

    /// Answers a kit request: verify, parse, apply (delivering events), answer with a kit `Body-Sign`.
    pub async fn handle(&self, route: Route, inbound: &Inbound) -> Outbound {
        let keys = KeyRing::parse_list(KIT_KEY).expect("kit key");
        let code = match route {
            Route::BasicKeyOnKitActivity => ResultCode::AuthFailed,
            Route::Path(sync, KitGeneration::V1) => match verify_v1(&keys, inbound) {
                Err(code) => code,
                Ok(()) => self.apply(sync, &inbound.body).await,
            },
            Route::Path(sync, KitGeneration::V2) => match self.verify_v2(&keys, inbound) {
                Err(code) => code,
                Ok(()) => self.apply(sync, &inbound.body).await,
            },
            Route::ProductionUrl => match self.verify_v2(&keys, inbound) {
                Err(code) => code,
                Ok(()) => match infer(&inbound.body) {
                    Some(sync) => self.apply(sync, &inbound.body).await,
                    None => ResultCode::InvalidParameter,
                },
            },
        };
        let body = to_ascii_json(&KitResponse::new(code));
        Outbound {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json;charset=UTF-8".into()),
                ("body-sign".into(), body_sign::header_value(keys.signing_key(), &body)),
            ],
            body,
        }
    }

    fn verify_v2(&self, keys: &KeyRing, inbound: &Inbound) -> Result<(), ResultCode> {
        if self.defect == Defect::KitSkipsVerification {
            return Ok(());
        }
        let auth = KitAuth {
            sign: inbound.header("x-sign"),
            timestamp: inbound.header("x-timestamp"),
            nonce: inbound.header("x-nonce"),
        };
        match KitVerifier::new(keys.clone(), TimestampWindow::default()).verify(auth, &inbound.body, system_now_ms()) {
            Ok(_) => Ok(()),
            Err(e) if e.is_authentication_failure() => Err(ResultCode::AuthFailed),
            Err(_) => Err(ResultCode::InvalidParameter),
        }
    }

    async fn apply(&self, sync: KitSync, body: &[u8]) -> ResultCode {
        let request = match parse_kit_request(sync, body) {
            Ok(r) => r,
            Err(_) => return ResultCode::InvalidParameter,
        };
        if let KitRequest::ApplicationSync(app) = &request
            && decrypt_client_secret(RSA_PRIVATE, &app.client_secret).is_err()
        {
            return ResultCode::AppSecretInvalid;
        }
        let events = self.changes(&request);
        for (kind, data) in events {
            self.deliver(&kind, data).await;
        }
        ResultCode::Success
    }

    /// Applies `request` to the model and returns the events its effective changes owe the backend.
    fn changes(&self, request: &KitRequest) -> Vec<(String, Value)> {
        let always = self.defect == Defect::KitEventOnEveryCall;
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        match request {
            KitRequest::TenantSync(t) => {
                let rec = tenants.entry(t.tenant_id.clone()).or_default();
                let base = json!({ "instanceId": t.instance_id, "tenantId": t.tenant_id, "testFlag": true });
                if t.flag == SyncFlag::Delete {
                    if rec.tenant.take().is_some() || always {
                        rec.users.clear();
                        rec.orgs.clear();
                        out.push(("tenant.deleted".to_owned(), base));
                    }
                } else {
                    let fields = json!({
                        "tenantCode": t.tenant_code, "name": t.name, "domainName": t.domain_name,
                        "orderId": t.order_id,
                    });
                    let kind = match &rec.tenant {
                        None => Some("tenant.created"),
                        Some(old) if *old != fields || always => Some("tenant.updated"),
                        Some(_) => None,
                    };
                    rec.tenant = Some(fields.clone());
                    if let Some(kind) = kind {
                        out.push((kind.to_owned(), merge(base, fields)));
                    }
                }
            }
            KitRequest::AuthSync(a) => {
                let rec = tenants.entry(a.tenant_id.clone()).or_default();
                for user in &a.user_list {
                    let key = (a.app_id.clone(), user.user_name.clone());
                    let fields = json!({ "userName": user.user_name, "name": user.name, "enable": user.enable });
                    let kind = match a.flag {
                        SyncFlag::Delete => rec.users.remove(&key).map(|_| "user.deleted"),
                        SyncFlag::Revoke => match rec.users.get_mut(&key) {
                            Some((_, authorised)) if *authorised || always => {
                                *authorised = false;
                                Some("user.revoked")
                            }
                            _ => None,
                        },
                        _ => {
                            let kind = match rec.users.get(&key) {
                                None => Some("user.created"),
                                Some((old, true)) if *old == fields && !always => None,
                                Some(_) => Some("user.updated"),
                            };
                            rec.users.insert(key, (fields.clone(), true));
                            kind
                        }
                    };
                    if let Some(kind) = kind {
                        let data = json!({
                            "instanceId": a.instance_id, "tenantId": a.tenant_id, "testFlag": true,
                            "appId": a.app_id, "user": fields,
                        });
                        out.push((kind.to_owned(), data));
                    }
                }
            }
            KitRequest::AllOrgSync(o) => {
                let rec = tenants.entry(o.tenant_id.clone()).or_default();
                let mut orgs: Vec<Value> = o
                    .org_info_list
                    .iter()
                    .map(|n| json!({ "orgCode": n.org_code, "orgName": n.org_name, "parentCode": n.parent_code }))
                    .collect();
                orgs.sort_by(|a, b| a["orgCode"].as_str().cmp(&b["orgCode"].as_str()));
                if rec.orgs != orgs || always {
                    rec.orgs = orgs.clone();
                    let data = json!({
                        "instanceId": o.instance_id, "tenantId": o.tenant_id, "testFlag": true, "orgs": orgs,
                    });
                    out.push(("org.tree_replaced".to_owned(), data));
                }
            }
            _ => {}
        }
        out
    }

    /// Posts one event to the backend (once: the receiver answers 200).
    async fn deliver(&self, kind: &str, data: Value) {
        let id = format!("evt_{}", self.seq.fetch_add(1, Ordering::SeqCst));
        let body = json!({ "id": id, "type": kind, "timestamp": system_now_ms(), "data": data }).to_string();
        let secret = match self.defect {
            Defect::KitBadWebhookSignature => "whsec_bm90IHRoZSBiYWNrZW5kIHNlY3JldA==",
            _ => BACKEND_SECRET,
        };
        let headers = WebhookSigner::new(&SecretKey::new(secret)).headers(&id, body.as_bytes(), system_now_ms());
        let mut request = http::Request::post(&self.backend_url);
        for (k, v) in &headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let request = request.body(Full::new(Bytes::from(body))).expect("event request");
        // A receiver that is not there (a test without one) loses the event, as a backend outage would.
        let _ = self.client.request(request).await;
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// V1: `authToken` header over the body's top-level fields, HMAC key = kit key + `timeStamp`.
fn verify_v1(keys: &KeyRing, inbound: &Inbound) -> Result<(), ResultCode> {
    let params = kit_v1_params(&inbound.body).ok_or(ResultCode::InvalidParameter)?;
    let token = inbound.header("authToken").unwrap_or("");
    V1AuthToken::new(keys.clone())
        .verify_params_key(&params, token)
        .map(|_| ())
        .map_err(|e| if e.is_authentication_failure() { ResultCode::AuthFailed } else { ResultCode::InvalidParameter })
}

/// The sync a kit body at the production URL is: its `activity`, or its shape.
fn infer(body: &[u8]) -> Option<KitSync> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else { return None };
    if let Some(activity) = map.get("activity").and_then(Value::as_str) {
        return KitSync::from_name(activity);
    }
    let has = |k: &str| map.contains_key(k);
    if has("userList") {
        Some(KitSync::AuthSync)
    } else if has("orgInfoList") || has("orgInfo") {
        Some(KitSync::AllOrgSync)
    } else if has("clientSecret") {
        Some(KitSync::ApplicationSync)
    } else if has("domainName") || has("tenantCode") {
        Some(KitSync::TenantSync)
    } else if has("orgCode") {
        Some(KitSync::SingleOrgSync)
    } else {
        None
    }
}
