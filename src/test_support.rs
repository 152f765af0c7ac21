//! Helpers for the crate's unit tests: a fixed, overridable seed and the potentials every
//! optimizer and diagnostics test covers.

/// The environment variable that overrides every unit test's seed.
pub const SEED_VARIABLE: &str = "MIRRORBURN_TEST_SEED";

/// The test seed: `$MIRRORBURN_TEST_SEED` if set, else `default`. Failure messages print it.
pub fn test_seed(default: u64) -> u64 {
    match std::env::var(SEED_VARIABLE) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VARIABLE}={text} is not an unsigned integer")),
        Err(_) => default,
    }
}

/// Potentials every optimizer test covers (also used by the diagnostics tests).
pub use crate::optim::CHECKED_POTENTIALS as POTENTIALS;
