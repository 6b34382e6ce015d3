//! The project's HTTP-level suites against the real runners, `harness up` and `spin up`, on each runner's own
//! default store and on Redis, the two runners compared request by request, and state carried from one runner to
//! the other through the state directory they share (`portable`).
//!
//! Spin comes from `SPIN`, `PATH` (≥ 4.1) or `../shared/tools/spin`; without one these tests run on the harness
//! only and say so, unless `KOOGALLERY_REQUIRE_SPIN` is set (CI), where a missing Spin fails them. One suite runs
//! at a time (the runners share the two cores; the emulator's 5 s answer rule must not measure contention).

mod suites;
