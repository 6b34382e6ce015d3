//! A virtual wall clock the guest sees as `SystemTime::now()`.
//!
//! Signed KooGallery requests carry timestamps that must fall inside a window around "now". Pinning the guest's
//! clock lets recorded requests and known-answer vectors (timestamps in 2023) verify, and lets tests move time
//! forward to expire windows without sleeping. The clock only moves when told to; clones share one time.
//!
//! ```
//! use harness::clock::VirtualClock;
//! let clock = VirtualClock::at_ms(1_680_508_066_618);
//! clock.advance_ms(60_001);
//! assert_eq!(clock.now_ms(), 1_680_508_126_619);
//! ```

use koogallery_core::ports::system_now_ms;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime_wasi::HostWallClock;

/// A settable wall clock, in milliseconds since the Unix epoch, shared by all clones.
#[derive(Debug, Clone)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    /// A clock stopped at `ms` milliseconds since the epoch.
    pub fn at_ms(ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(ms)))
    }

    /// A clock stopped at the host's current time.
    pub fn now() -> Self {
        Self::at_ms(system_now_ms())
    }

    /// The clock's time in milliseconds since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Sets the time.
    pub fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms` (saturating).
    pub fn advance_ms(&self, ms: u64) {
        let _ = self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| Some(t.saturating_add(ms)));
    }
}

impl HostWallClock for VirtualClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_time_and_the_wasi_view_agrees() {
        let a = VirtualClock::at_ms(1000);
        let b = a.clone();
        b.set_ms(5000);
        a.advance_ms(250);
        assert_eq!(b.now_ms(), 5250);
        assert_eq!(HostWallClock::now(&a), Duration::from_millis(5250));
    }
}
