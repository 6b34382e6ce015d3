//! Query order in the production interface (protocol §2.3, §9.3). A V2 `newInstance` or `upgradeInstance` does not
//! say what was bought; with `openapi_ak` set, the order is read from the marketplace:
//!
//! - An on-demand line (`chargingMode` `ON_DEMAND`) with one product is keyed on `orderId` + `productId`, so every
//!   line of one order for that product is one instance; any other line on `orderId` + `orderLineId`, as before.
//!   The on-demand key is recorded for the line ([`state::line_key`]) before the instance is created, and every
//!   later request for the line takes it from there without a query: a retry never depends on the marketplace
//!   answering the same way again.
//! - The order, as [`crate::wire::order`] reads it, is kept with the instance (`details.queryOrder`, the product in
//!   `productId`) and reaches the backend in forward mode's `instance.created`; an upgrade's order in its
//!   `instance.upgraded`.
//! - When the marketplace cannot answer now (no answer in time, a status other than `2xx`/`4xx`, `408`, `429`, a
//!   body that is not a query-order answer) a production request is answered `000005`: the marketplace retries it
//!   for 3 hours, and keying on a guess could create a second instance once the order can be read. When it refuses
//!   (another `4xx`, a code other than `MKT.0000`: an order it does not know, credentials it rejects) a retry would
//!   not help: the instance is keyed on the order line as without OpenAPI, and the refusal is logged with the
//!   request. A debug request (`testFlag=1`, the dial tests among them) is never failed for the query: it takes the
//!   order line, noted in the log.
//! - An instance already created under its order-line key (before `openapi_ak` was set, or after a refusal) keeps
//!   that key and is not queried again, so turning query order on never splits an order line into two instances.

use serde_json::{Map, Value};

use super::config::ProduceConfig;
use super::ctx::{Ctx, Deadline};
use super::state;
use crate::identity;
use crate::lifecycle::Event;
use crate::openapi::order::{QueryOrderError, query_order};
use crate::ports::{Backend, Clock, Random, Store, StoreError};
use crate::wire::order::{ChargingMode, OrderInfo, OrderLine};
use crate::wire::v2 as msg;

/// At most this much of the request's remaining time is kept from the query for the rest of the request (the store
/// writes, forward mode's backend call, the answer); a quarter of it when that is less, so a short
/// `request_deadline_ms` still leaves the query most of the time.
const RESERVED_AFTER_QUERY_MS: u64 = 1_000;

/// Why the order cannot be read now: the request is answered `000005` and the marketplace retries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NotNow(pub(super) String);

/// What the marketplace said about an order.
#[derive(Debug)]
pub(super) enum Lookup {
    /// The order (`MKT.0000`).
    Found(Box<OrderInfo>),
    /// A refusal a retry would not change; the text says which, for the log.
    Refused(String),
}

/// Sorts a failed query into "ask again later" and "a refusal that stands": only a `4xx` other than `408` and `429`,
/// or an answer with a code other than `MKT.0000`, stands.
pub(super) fn classify(error: QueryOrderError) -> Result<Lookup, NotNow> {
    match error {
        QueryOrderError::Status(status) if (400..500).contains(&status) && status != 408 && status != 429 => {
            Ok(Lookup::Refused(error.to_string()))
        }
        QueryOrderError::Refused { .. } => Ok(Lookup::Refused(error.to_string())),
        _ => Err(NotNow(error.to_string())),
    }
}

/// Reads the order from the marketplace within what the request's deadline leaves after
/// [`RESERVED_AFTER_QUERY_MS`]; `None` without `openapi_ak`.
async fn lookup<S, B: Backend, C: Clock, R>(
    cfg: &ProduceConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    deadline: &Deadline,
    order_id: &str,
    order_line_id: &str,
) -> Option<Result<Lookup, NotNow>> {
    let openapi = match cfg.openapi.as_ref()? {
        Ok(openapi) => openapi,
        Err(e) => return Some(Err(NotNow(format!("order query {}", e.not_configured())))),
    };
    let remaining = deadline.remaining_ms(ctx.clock);
    let budget = remaining.saturating_sub(RESERVED_AFTER_QUERY_MS.min(remaining / 4));
    let query_deadline = Deadline::after(ctx.clock, budget);
    let answer = query_order(openapi, order_id, Some(order_line_id), ctx.backend, ctx.clock, &query_deadline).await;
    Some(match answer {
        Ok(answer) => match answer.order_info {
            Some(order) => Ok(Lookup::Found(Box::new(order))),
            None => Err(NotNow("order query: the answer has no orderInfo".to_owned())),
        },
        Err(e) => classify(e),
    })
}

/// The line an order answer describes for `order_line_id`: that line, or the only one.
fn line_of<'o>(order: &'o OrderInfo, order_line_id: &str) -> Option<&'o OrderLine> {
    let only = match order.order_line.as_slice() {
        [only] => Some(only),
        _ => None,
    };
    order.line(order_line_id).or(only)
}

/// The on-demand key's product: the line is `ON_DEMAND` and names exactly one product (several would collapse
/// into one instance under any one of them, so they keep the order-line key).
fn on_demand_product(line: &OrderLine) -> Option<String> {
    if line.charging_mode != Some(ChargingMode::OnDemand) {
        return None;
    }
    let mut products = line.product_info.iter().filter_map(|p| p.product_id.as_deref()).filter(|p| !p.is_empty());
    let first = products.next()?;
    products.all(|p| p == first).then(|| first.to_owned())
}

/// `details` (the request's own, if any) with the order added as `queryOrder`.
fn with_order(details: Option<Value>, order: &OrderInfo) -> Value {
    let mut map = match details {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    map.insert("queryOrder".to_owned(), serde_json::to_value(order).unwrap_or(Value::Null));
    Value::Object(map)
}

/// How a `newInstance` is keyed and what is kept with its instance. (No `Debug`: `details` holds the buyer's
/// contact data.)
pub(super) struct Keyed {
    /// The instance ID (deterministic, see [`identity`]).
    pub(super) instance_id: String,
    /// The product, when the order says it.
    pub(super) product_id: Option<String>,
    /// Order details kept with the instance.
    pub(super) details: Option<Value>,
    /// How the key was chosen, when it is worth a log line (a refusal, a debug request without its order).
    pub(super) note: Option<String>,
}

/// Keys a `newInstance` (see the module documentation). `on_demand_in_body` is the product when the request itself
/// carries the order and names an on-demand product for this line (the order-in-body variant: no query then, nor
/// for a body that carries the order without one); `details` are the request's own.
///
/// # Errors
/// A store failure; `Ok(Err(_))` when the order cannot be read now.
pub(super) async fn key_new_instance<S: Store, B: Backend, C: Clock, R: Random>(
    r: &msg::NewInstance,
    on_demand_in_body: Option<String>,
    details: Option<Value>,
    cfg: &ProduceConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    deadline: &Deadline,
) -> Result<Result<Keyed, NotNow>, StoreError> {
    let test = r.test_flag.is_debug();
    let line_key = identity::instance_id_for_order_line(&r.order_id, &r.order_line_id);
    let recorded = state::line_instance(ctx.store, test, &r.order_id, &r.order_line_id).await?;
    if let Some(instance_id) = &recorded
        && state::load(ctx.store, test, instance_id).await?.is_some()
    {
        // A retry of a created line: its creation changes nothing, so nothing else is needed.
        return Ok(Ok(Keyed { instance_id: instance_id.clone(), product_id: on_demand_in_body, details, note: None }));
    }
    // Otherwise (no record, or a request that stopped between recording the line and creating the instance) the
    // line is keyed again for its product and details; a recorded ID stands over the new choice below.
    let by_line = |details, note| Keyed { instance_id: line_key.clone(), product_id: None, details, note };
    let (keyed, record) = if let Some(product) = on_demand_in_body {
        let instance_id = identity::instance_id_for_on_demand(&r.order_id, &product);
        (Keyed { instance_id, product_id: Some(product), details, note: None }, true)
    } else if r.order_info.is_some()
        || cfg.openapi.is_none()
        || (recorded.is_none() && state::load(ctx.store, test, &line_key).await?.is_some())
    {
        (by_line(details, None), recorded.is_some())
    } else {
        let keyed = match lookup(cfg, ctx, deadline, &r.order_id, &r.order_line_id).await {
            None => by_line(details, None),
            Some(Err(not_now)) if !test => return Ok(Err(not_now)),
            Some(Err(NotNow(why))) => by_line(details, Some(format!("{why}; debug request keyed on the order line"))),
            Some(Ok(Lookup::Refused(why))) => by_line(details, Some(format!("{why}; keyed on the order line"))),
            Some(Ok(Lookup::Found(order))) => {
                let line = line_of(&order, &r.order_line_id);
                let on_demand = line.and_then(on_demand_product);
                let product_id = on_demand.clone().or_else(|| line.and_then(OrderLine::product_id).map(str::to_owned));
                let instance_id = match &on_demand {
                    Some(product) => identity::instance_id_for_on_demand(&r.order_id, product),
                    None => line_key.clone(),
                };
                Keyed { instance_id, product_id, details: Some(with_order(details, &order)), note: None }
            }
        };
        // Whatever the query decided is recorded, so two racing requests that were answered differently (one
        // refused, one given the order) still agree on one instance.
        (keyed, true)
    };
    if !record {
        return Ok(Ok(keyed));
    }
    // Recorded before the instance exists: a retry finds the key even if this request ends here. The first
    // recorded ID stands.
    let now = ctx.clock.now_ms();
    let (order_id, line_id) = (&r.order_id, &r.order_line_id);
    let instance_id =
        state::record_line_instance(ctx.store, ctx.random, now, test, order_id, line_id, &keyed.instance_id).await?;
    Ok(Ok(Keyed { instance_id, ..keyed }))
}

/// What an `upgradeInstance` learns from query order: the new product and the order. (No `Debug`: `details` holds
/// the buyer's contact data.)
#[derive(Default)]
pub(super) struct Upgrade {
    /// The product after the change.
    pub(super) product_id: Option<String>,
    /// The upgrade order.
    pub(super) details: Option<Value>,
    /// A refusal, for the log.
    pub(super) note: Option<String>,
}

/// Reads the upgrade order when `openapi_ak` is set and the upgrade will change a known, live instance; nothing
/// otherwise (an unknown instance is answered `000003`, a repeated upgrade changes nothing, a debug upgrade of a
/// production instance is only acknowledged: no query for them).
///
/// # Errors
/// A store failure; `Ok(Err(_))` when the order cannot be read now.
pub(super) async fn upgrade_details<S: Store, B: Backend, C: Clock, R: Random>(
    r: &msg::UpgradeInstance,
    cfg: &ProduceConfig,
    ctx: &Ctx<'_, S, B, C, R>,
    deadline: &Deadline,
) -> Result<Result<Upgrade, NotNow>, StoreError> {
    if cfg.openapi.is_none() {
        return Ok(Ok(Upgrade::default()));
    }
    let test = r.test_flag.is_debug();
    // The namespaces `apply_event` would change: the request's, or for a production request a debug-only instance.
    let rec = match state::load(ctx.store, test, &r.instance_id).await? {
        None if !test => state::load(ctx.store, true, &r.instance_id).await?,
        found => found,
    };
    let Some(rec) = rec else { return Ok(Ok(Upgrade::default())) };
    let key =
        Event::Upgrade { order_id: r.order_id.clone(), order_line_id: None, product_id: None, details: None }.key();
    if rec.status.is_released() || key.is_some_and(|k| rec.applied.contains(&k)) {
        return Ok(Ok(Upgrade::default()));
    }
    let Some(lookup) = lookup(cfg, ctx, deadline, &r.order_id, &r.order_line_id).await else {
        return Ok(Ok(Upgrade::default()));
    };
    let without =
        |why: String| Upgrade { note: Some(format!("{why}; upgraded without the order")), ..Upgrade::default() };
    Ok(match lookup {
        Err(not_now) if !test => Err(not_now),
        Err(NotNow(why)) | Ok(Lookup::Refused(why)) => Ok(without(why)),
        Ok(Lookup::Found(order)) => {
            let product_id = line_of(&order, &r.order_line_id).and_then(OrderLine::product_id).map(str::to_owned);
            Ok(Upgrade { product_id, details: Some(with_order(None, &order)), note: None })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::Unreachable;
    use serde_json::json;

    #[test]
    fn only_refusals_that_a_retry_would_not_change_stand() {
        let not_now = |e: QueryOrderError| matches!(classify(e), Err(NotNow(_)));
        let refused = |e: QueryOrderError| matches!(classify(e), Ok(Lookup::Refused(_)));
        assert!(not_now(QueryOrderError::Unreachable(Unreachable { primary: "timed out".into(), fallback: None })));
        for status in [500, 502, 503, 504, 408, 429, 302, 100] {
            assert!(not_now(QueryOrderError::Status(status)), "{status}");
        }
        assert!(not_now(QueryOrderError::Unreadable));
        for status in [400, 401, 403, 404] {
            assert!(refused(QueryOrderError::Status(status)), "{status}");
        }
        assert!(refused(QueryOrderError::Refused { code: "MKT.0101".into() }));
    }

    fn order(lines: serde_json::Value) -> OrderInfo {
        serde_json::from_value(json!({ "orderId": "O", "orderLine": lines })).expect("order")
    }

    #[test]
    fn an_on_demand_line_with_one_product_is_keyed_on_it() {
        let o = order(json!([
            {"orderLineId": "O-1", "chargingMode": "ON_DEMAND", "productInfo": [{"productId": "P"}]},
            {"orderLineId": "O-2", "chargingMode": "PERIOD", "productInfo": [{"productId": "P"}]},
            {"orderLineId": "O-3", "chargingMode": "ON_DEMAND", "productInfo": [{"productId": "P"}, {"productId": "Q"}]},
            {"orderLineId": "O-4", "chargingMode": "ON_DEMAND", "productInfo": [{"productId": "P"}, {"productId": "P"}]},
            {"orderLineId": "O-5", "chargingMode": "ON_DEMAND_PKG", "productInfo": [{"productId": "P"}]},
            {"orderLineId": "O-6", "chargingMode": "ON_DEMAND", "productInfo": [{"productId": ""}]},
        ]));
        let product = |line: &str| line_of(&o, line).and_then(on_demand_product);
        assert_eq!(product("O-1").as_deref(), Some("P"));
        assert_eq!(product("O-2"), None, "a period line keeps its order-line key");
        assert_eq!(product("O-3"), None, "two products keep the order-line key");
        assert_eq!(product("O-4").as_deref(), Some("P"), "the same product twice is one product");
        assert_eq!(product("O-5"), None, "a package is bought per line");
        assert_eq!(product("O-6"), None);
        assert!(line_of(&o, "O-9").is_none(), "an unknown line of a many-line order is not guessed");
        let single =
            order(json!([{"orderLineId": "X", "chargingMode": "ON_DEMAND", "productInfo": [{"productId": "P"}]}]));
        assert_eq!(line_of(&single, "O-1").and_then(on_demand_product).as_deref(), Some("P"), "the only line");
    }
}
