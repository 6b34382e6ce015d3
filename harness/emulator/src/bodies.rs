//! The emulator's orders: ids unique to the run, so runs never collide in the endpoint's store. The bodies
//! themselves are the marketplace's, from `koogallery_core::marketplace::samples`, serialised with keys sorted.

use koogallery_core::marketplace::samples::{Charging, OrderLine};
use koogallery_core::wire::time::{Precision, format_compact_utc};

/// The run's order `EMU<run><tag>` with line `…-000001` and product `EMUPROD<run><tag>`.
pub(crate) fn run_order(run: &str, tag: &str, charging: Charging) -> OrderLine {
    let order_id = format!("EMU{run}{tag}");
    OrderLine::new(&order_id, &format!("{order_id}-000001"), &format!("EMUPROD{run}{tag}"), charging)
}

/// A follow-up order of `order` (renewal, upgrade, unsubscription): `<order>-<suffix>`, line `…-000001`.
pub(crate) fn follow_up(order: &OrderLine, suffix: &str) -> (String, String) {
    let order = format!("{}-{suffix}", order.order_id);
    let line = format!("{order}-000001");
    (order, line)
}

/// `expireTime` for `ms` in the 14-digit (`long == false`) or 17-digit documented form.
pub(crate) fn expire_time(ms: u64, long: bool) -> String {
    format_compact_utc(ms, if long { Precision::Millis17 } else { Precision::Seconds14 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use koogallery_core::marketplace::samples::{self, encode};

    #[test]
    fn run_orders_are_tagged_and_period_bodies_documented() {
        let order = run_order("1", "P", Charging::Period);
        assert_eq!(
            encode(&samples::new_instance(&order, "b")),
            br#"{"activity":"newInstance","businessId":"b","orderId":"EMU1P","orderLineId":"EMU1P-000001","testFlag":"1"}"#
        );
        assert_eq!(follow_up(&order, "R1"), ("EMU1P-R1".to_owned(), "EMU1P-R1-000001".to_owned()));
    }

    #[test]
    fn refresh_expire_time_has_both_documented_lengths() {
        let ms = 1_680_508_066_618;
        assert_eq!(expire_time(ms, false), "20230403074746");
        assert_eq!(expire_time(ms, true), "20230403074746618");
    }
}
