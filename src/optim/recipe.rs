//! Mirror-μP (the paper's Appendix J.4 and Table 10): at initialisation `theta_0 ~ N(0, sigma^2)`
//! the first update of an element is `eta m(theta_0) grad`, so a recipe keeps
//! `E[eta m(theta_0)] = O(1)` ("maximal update", like GD's `eta = 1`) or reaches the potential's
//! margin. [`table10`] prints the paper's `(eta, lambda)` recipes for a given `sigma`;
//! [`expected_inverse_metric`] computes `E[m(theta_0)]` for any of our maps, so the expected first
//! update of a configured layer can be read before training.

use burn::tensor::{DType, Device, Tensor, TensorData};

use super::mirror_map::MirrorMap;
use crate::device_read::read_f64;

/// One row of Table 10: a regime and its `(eta, lambda)` recipes at a given `sigma`.
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    /// "mirror-μP" (maximal update at initialisation) or "margin reachable".
    pub regime: &'static str,
    /// `(eta, lambda)` pairs as the paper writes them in terms of `sigma`, e.g. `(σ^-1, σ^2)`.
    pub symbolic: Vec<&'static str>,
    /// The same pairs evaluated at `sigma` (`lambda = None` for GD, which has none).
    pub values: Vec<(f64, Option<f64>)>,
}

/// The potentials Table 10 covers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RecipePotential {
    /// Gradient descent.
    Gd,
    /// The hyperbolic entropy.
    Hyperbolic,
    /// The smoothed p-homogeneous potential `L^p_{p, lambda}`, `p > 2`.
    PHomogeneous {
        /// The exponent.
        p: f64,
    },
}

/// Table 10 of the paper at initialisation scale `sigma` (of the unnormalised Table 1
/// potentials; under our fan-in scaling the scale of `u = sqrt(fan_in) theta` at He
/// initialisation is `sqrt(2)`).
pub fn table10(potential: RecipePotential, sigma: f64) -> Vec<Recipe> {
    let s = sigma;
    match potential {
        RecipePotential::Gd => vec![
            Recipe {
                regime: "mirror-μP",
                symbolic: vec!["(1, -)"],
                values: vec![(1.0, None)],
            },
            Recipe {
                regime: "margin reachable",
                symbolic: vec!["(1, -)"],
                values: vec![(1.0, None)],
            },
        ],
        RecipePotential::Hyperbolic => vec![
            Recipe {
                regime: "mirror-μP",
                symbolic: vec!["(1, 1)", "(σ^-1, 0)", "(σ^-1, σ^2)"],
                values: vec![
                    (1.0, Some(1.0)),
                    (1.0 / s, Some(0.0)),
                    (1.0 / s, Some(s * s)),
                ],
            },
            Recipe {
                regime: "margin reachable",
                symbolic: vec!["(σ^-1, 0)", "(σ^-1, σ^4)"],
                values: vec![(1.0 / s, Some(0.0)), (1.0 / s, Some(s.powi(4)))],
            },
        ],
        RecipePotential::PHomogeneous { p } => vec![
            Recipe {
                regime: "mirror-μP",
                symbolic: vec!["(1, 1)", "(σ^(p-2), σ^(p-2))"],
                values: vec![(1.0, Some(1.0)), (s.powf(p - 2.0), Some(s.powf(p - 2.0)))],
            },
            Recipe {
                regime: "margin reachable",
                symbolic: vec!["(σ^2, σ^2)"],
                values: vec![(s * s, Some(s * s))],
            },
        ],
    }
}

/// `m(theta)` of `map` at each of `thetas`, through the optimizer's own primal step in f64:
/// `m(theta) = theta - (theta - 1 * m(theta) * 1)`.
pub fn inverse_metric_at(map: &MirrorMap, thetas: &[f64]) -> Vec<f64> {
    let device = Device::flex();
    let theta = Tensor::<1>::from_data(
        TensorData::new(thetas.to_vec(), [thetas.len()]),
        (&device, DType::F64),
    );
    let stepped = map.primal_step(theta.clone(), theta.ones_like(), 1.0);
    read_f64(theta - stepped)
}

/// `E[m(theta)]` for `theta ~ N(0, sigma^2)` by the trapezoidal rule on `[-12 sigma, 12 sigma]`
/// (24,001 nodes; the integrand is smooth but for `|u|^(p-2)` at 0, and the rule's error is far
/// below a Monte-Carlo estimate's).
pub fn expected_inverse_metric(map: &MirrorMap, sigma: f64) -> f64 {
    const HALF: usize = 12_000;
    let h = 12.0 / HALF as f64;
    let z: Vec<f64> = (0..=2 * HALF)
        .map(|i| (i as f64 - HALF as f64) * h)
        .collect();
    let thetas: Vec<f64> = z.iter().map(|z| sigma * z).collect();
    let m = inverse_metric_at(map, &thetas);
    let density = |z: f64| (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let last = z.len() - 1;
    z.iter()
        .zip(&m)
        .enumerate()
        .map(|(i, (&z, &m))| {
            let weight = if i == 0 || i == last { 0.5 } else { 1.0 };
            weight * m * density(z) * h
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;
    use crate::model::standard_normal;
    use crate::optim::{Potential, WidthScaling};

    #[test]
    fn the_expectation_matches_a_monte_carlo_estimate_within_two_percent() {
        let seed = crate::test_support::test_seed(0x0E_C1BE);
        let mut rng = StdRng::seed_from_u64(seed);
        // He initialisation at fan-in 576 (VGG's 3x3 conv over 64 channels).
        let (fan_in, sigma) = (576, (2.0f64 / 576.0).sqrt());
        let samples: Vec<f64> = (0..400_000)
            .map(|_| sigma * standard_normal(&mut rng))
            .collect();
        let potentials = [
            Potential::Gd,
            Potential::Hyperbolic { lambda: 1e-5 },
            Potential::Hyperbolic { lambda: 1.0 },
            Potential::PHomogeneous {
                p: 3.0,
                lambda: 0.1,
            },
            Potential::PHomogeneous {
                p: 10.0,
                lambda: 1e-5,
            },
            Potential::PHomogeneous {
                p: 10.0,
                lambda: 1e2,
            },
        ];
        for potential in potentials {
            for scaling in [WidthScaling::FanIn, WidthScaling::None] {
                let map = MirrorMap::new(potential, scaling, fan_in);
                let expected = expected_inverse_metric(&map, sigma);
                let m = inverse_metric_at(&map, &samples);
                let monte_carlo = m.iter().sum::<f64>() / m.len() as f64;
                assert!(
                    (expected - monte_carlo).abs() <= 0.02 * monte_carlo,
                    "seed {seed} {potential:?} {scaling:?}: quadrature {expected} vs Monte Carlo \
                     {monte_carlo}"
                );
            }
        }
    }

    #[test]
    fn closed_forms_where_they_exist() {
        // GD: m = 1. Hyperbolic, fan-in scaling, lambda -> 0: m = |u| / 1 with u ~ N(0, 2):
        // E|u| = sqrt(2) sqrt(2 / pi).
        let gd = MirrorMap::new(Potential::Gd, WidthScaling::FanIn, 100);
        assert!((expected_inverse_metric(&gd, 0.1) - 1.0).abs() < 1e-9);
        let hyperbolic = MirrorMap::new(
            Potential::Hyperbolic { lambda: 1e-12 },
            WidthScaling::FanIn,
            100,
        );
        let want = 2.0 / std::f64::consts::PI.sqrt();
        let got = expected_inverse_metric(&hyperbolic, (2.0f64 / 100.0).sqrt());
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        let recipes = table10(RecipePotential::Hyperbolic, 0.5);
        assert_eq!(recipes[0].values[2], (2.0, Some(0.25)));
        assert_eq!(recipes[1].values[1], (2.0, Some(0.0625)));
        let p10 = table10(RecipePotential::PHomogeneous { p: 10.0 }, 0.5);
        assert_eq!(p10[0].values[1], (0.5f64.powi(8), Some(0.5f64.powi(8))));
        assert_eq!(p10[1].values[0], (0.25, Some(0.25)));
    }
}
