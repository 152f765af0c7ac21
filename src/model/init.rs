//! Initial weights drawn on the host from a seed, then uploaded: one seed gives the same network
//! on every backend (each backend's own RNG draws differently).

use rand::{RngExt, rngs::StdRng};

/// One draw from the standard normal distribution (Box-Muller).
pub fn standard_normal(rng: &mut StdRng) -> f64 {
    let (u, v): (f64, f64) = (rng.random(), rng.random());
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// `count` He-normal weights for a layer with fan-in `fan_in`: N(0, 2 / fan_in), as f32.
pub fn he_normal(rng: &mut StdRng, count: usize, fan_in: usize) -> Vec<f32> {
    let std = (2.0 / fan_in as f64).sqrt();
    (0..count)
        .map(|_| (std * standard_normal(rng)) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn he_normal_has_the_he_variance() {
        let seed = crate::test_support::test_seed(3);
        let fan_in = 288;
        let values = he_normal(&mut StdRng::seed_from_u64(seed), 200_000, fan_in);
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / values.len() as f64;
        let expected = 2.0 / fan_in as f64;
        assert!(
            mean.abs() < 0.01 * expected.sqrt(),
            "seed {seed}: mean {mean}"
        );
        assert!(
            (var / expected - 1.0).abs() < 0.02,
            "seed {seed}: var {var} vs {expected}"
        );
    }
}
