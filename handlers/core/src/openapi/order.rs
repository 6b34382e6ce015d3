//! Query order (§9.3): `GET /api/mkp-openapi-public/global/v1/order/query?orderId=…&orderLineId=…`, AK/SK signed,
//! read leniently ([`crate::wire::order`]). The production interface uses it to key on-demand instances on the
//! order's product when the marketplace's request does not carry it.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{ApiRequest, OpenApiConfig, call};
use crate::ports::{Backend, Clock};
use crate::produce::Deadline;
use crate::wire::order::QueryOrderResponse;

/// The query-order path.
pub const QUERY_ORDER_PATH: &str = "/api/mkp-openapi-public/global/v1/order/query";

/// Why an order could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryOrderError {
    /// Neither endpoint answered.
    #[error("order query: marketplace unreachable: {0}")]
    Unreachable(#[from] super::Unreachable),
    /// An HTTP error status.
    #[error("order query: HTTP {0}")]
    Status(u16),
    /// The body is not a query-order answer (not JSON, or no `resultCode`).
    #[error("order query: unreadable answer")]
    Unreadable,
    /// The marketplace answered with a code other than `MKT.0000` (e.g. an unknown order).
    #[error("order query: {code}")]
    Refused {
        /// `resultCode`.
        code: String,
    },
}

/// RFC 3986 unreserved characters stay as they are.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// Reads order `order_id` (and line `order_line_id`, when given) from the marketplace.
///
/// # Errors
/// [`QueryOrderError`]: no answer, an HTTP error, an unreadable body, or a code other than `MKT.0000`.
pub async fn query_order<B: Backend, C: Clock>(
    cfg: &OpenApiConfig,
    order_id: &str,
    order_line_id: Option<&str>,
    backend: &B,
    clock: &C,
    deadline: &Deadline,
) -> Result<QueryOrderResponse, QueryOrderError> {
    let mut path = format!("{QUERY_ORDER_PATH}?orderId={}", encode(order_id));
    if let Some(line) = order_line_id {
        path.push_str(&format!("&orderLineId={}", encode(line)));
    }
    let request = ApiRequest { method: "GET", path_and_query: &path, headers: &[], body: &[] };
    let reply = call(cfg, &request, backend, clock, deadline).await?;
    if !(200..300).contains(&reply.status) {
        return Err(QueryOrderError::Status(reply.status));
    }
    let answer: QueryOrderResponse = serde_json::from_slice(&reply.body).map_err(|_| QueryOrderError::Unreadable)?;
    if answer.is_success() {
        return Ok(answer);
    }
    // Without a code the body is not a query-order answer (a gateway's error page, `{}`); a code is kept printable
    // and short, as it reaches logs.
    let code: String =
        answer.result_code.as_deref().unwrap_or("").chars().filter(char::is_ascii_graphic).take(32).collect();
    if code.is_empty() { Err(QueryOrderError::Unreadable) } else { Err(QueryOrderError::Refused { code }) }
}
