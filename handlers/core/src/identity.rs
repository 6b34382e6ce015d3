//! Deterministic instance IDs: a name-based UUID (v5) derived from the idempotency key.
//!
//! Spin's key-value store has no compare-and-swap, so two concurrent `newInstance` retries for the same order line
//! cannot coordinate. Deriving the `instanceId` from the order's own key makes them agree anyway: both compute the
//! same ID and write the same record (design.md, "Deterministic identity"). The first request's `businessId` is
//! never used, because every retry carries a new one.
//!
//! The UUID name is built unambiguously: a scheme tag (`order-line` or `on-demand`, so the two keys never collide)
//! followed by each part as `/<UTF-8 byte length>:<part>`, so no choice of field values can make two different keys
//! produce the same name. The namespace is fixed for the project ([`NAMESPACE`]); changing it, or the name layout,
//! would change every instance ID already handed to the marketplace.
//!
//! 1. For a V2 `newInstance`, call [`instance_id_for_order_line`] with `orderId` and `orderLineId`.
//! 2. For an on-demand line (query order says `ON_DEMAND`), or V1 which has no order line, call
//!    [`instance_id_for_on_demand`] with `orderId` and `productId`.
//!
//! ```
//! use koogallery_core::identity::instance_id_for_order_line;
//!
//! let id = instance_id_for_order_line("CS2211181819B4LVS", "CS2211181819B4LVS-000001");
//! assert_eq!(id, "264147e0-ba11-5b5b-8796-487aebd7c914");
//! // A retry (new businessId, same order line) gets the same instance.
//! assert_eq!(id, instance_id_for_order_line("CS2211181819B4LVS", "CS2211181819B4LVS-000001"));
//! ```

use std::fmt::Write as _;

use uuid::Uuid;

/// The project's UUID namespace: `uuid5(NAMESPACE_URL, "https://github.com/koogallery-edge/instance-id")`.
/// Pinned as bytes so that it can never drift with a refactor; a test re-derives it.
pub const NAMESPACE: Uuid =
    Uuid::from_bytes([0xc2, 0x92, 0xbd, 0xb3, 0x84, 0x7c, 0x51, 0x90, 0xb9, 0x58, 0x92, 0x0f, 0x74, 0xeb, 0x87, 0x0d]);

/// Builds the unambiguous UUID name `koogallery-edge/<scheme>/<len>:<part>/<len>:<part>…`.
fn name(scheme: &str, parts: &[&str]) -> String {
    let mut name = format!("koogallery-edge/{scheme}");
    for part in parts {
        // Writing to a String cannot fail.
        let _ = write!(name, "/{}:{}", part.len(), part);
    }
    name
}

fn derive(scheme: &str, parts: &[&str]) -> String {
    Uuid::new_v5(&NAMESPACE, name(scheme, parts).as_bytes()).hyphenated().to_string()
}

/// The instance ID for an order line (`orderId` + `orderLineId`), the V2 `newInstance` idempotency key.
/// Lower-case hyphenated UUID, 36 characters, well within the 64-character `instanceId` limit.
pub fn instance_id_for_order_line(order_id: &str, order_line_id: &str) -> String {
    derive("order-line", &[order_id, order_line_id])
}

/// The instance ID for an on-demand purchase (`orderId` + `productId`), where one order can create several
/// instances (§2.3), and for V1 `newInstance`, which has no order line.
pub fn instance_id_for_on_demand(order_id: &str, product_id: &str) -> String {
    derive("on-demand", &[order_id, product_id])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_the_documented_derivation() {
        assert_eq!(NAMESPACE, Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://github.com/koogallery-edge/instance-id"));
        assert_eq!(NAMESPACE.to_string(), "c292bdb3-847c-5190-b958-920f74eb870d");
    }

    // Known answers computed independently with Python's `uuid.uuid5` over the same names.
    #[test]
    fn known_answers() {
        let cases = [
            (
                instance_id_for_order_line("CS2211181819B4LVS", "CS2211181819B4LVS-000001"),
                "264147e0-ba11-5b5b-8796-487aebd7c914",
            ),
            (
                instance_id_for_on_demand("CS2211181819B4LVS", "OFFI461867333479178240"),
                "fce44043-6e7a-5b2f-b4d3-651dca01a945",
            ),
            (
                instance_id_for_order_line("MOCKPERIODYEARNEW", "MOCKPERIODYEARNEW-000001"),
                "ab664429-308c-581d-9981-da2d40653fae",
            ),
            (
                instance_id_for_on_demand("CS1906666666ABCDE", "00301-666666-0--0"),
                "c4a9d74c-227e-523b-8800-1fd78729c0f0",
            ),
            (instance_id_for_order_line("订单", "行"), "7daa0ffe-857b-58ef-b0e2-9f68e652ea2e"),
        ];
        for (i, (got, want)) in cases.iter().enumerate() {
            assert_eq!(got, want, "vector {i}");
        }
    }

    #[test]
    fn names_are_unambiguous() {
        assert_eq!(name("order-line", &["a/1:b", ""]), "koogallery-edge/order-line/5:a/1:b/0:");
        assert_ne!(instance_id_for_order_line("a/1:b", ""), instance_id_for_order_line("a", "1:b"));
        assert_ne!(instance_id_for_order_line("ab", "c"), instance_id_for_order_line("a", "bc"));
        assert_ne!(instance_id_for_order_line("O1", "P1"), instance_id_for_on_demand("O1", "P1"));
    }

    #[test]
    fn ids_are_v5_and_fit_the_field() {
        let id = instance_id_for_on_demand("O", "P");
        let parsed = Uuid::parse_str(&id).map(|u| u.get_version_num());
        assert_eq!(parsed, Ok(5));
        assert_eq!(id.len(), 36);
    }
}
