//! [`Ctx`]: the ports a produce request runs against.

/// What a handler needs from the outside world, borrowed for one request.
pub struct Ctx<'a, S, B, C, R> {
    /// Key-value store.
    pub store: &'a S,
    /// The seller's backend (forward mode).
    pub backend: &'a B,
    /// Wall clock.
    pub clock: &'a C,
    /// Secure randomness (AES IVs).
    pub random: &'a R,
}

/// When a request must have answered by, on the clock's monotonic time: every backend call and every piece of
/// background delivery fits in what is left.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at_ms: u64,
}

impl Deadline {
    /// A deadline `budget_ms` from now.
    pub fn after<C: crate::ports::Clock + ?Sized>(clock: &C, budget_ms: u64) -> Self {
        Self { at_ms: clock.monotonic_ms().saturating_add(budget_ms) }
    }

    /// Milliseconds left (0 once passed).
    pub fn remaining_ms<C: crate::ports::Clock + ?Sized>(&self, clock: &C) -> u64 {
        self.at_ms.saturating_sub(clock.monotonic_ms())
    }
}
