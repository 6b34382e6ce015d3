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
