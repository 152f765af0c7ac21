//! Separable mirror potentials (paper Table 1), their width rescaling, the step forms, and the
//! fan-in rule (DESIGN §1). A potential, a scaling and a tensor's fan-in resolve to a
//! [`MirrorMap`](super::MirrorMap).

use serde::{Deserialize, Serialize};

/// A separable mirror potential (paper Table 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Potential {
    /// Euclidean potential `|theta|^2 / 2`: plain gradient descent.
    Gd,
    /// Hyperbolic entropy `theta asinh(theta / sqrt(lambda)) - sqrt(theta^2 + lambda)`; sparse bias.
    Hyperbolic {
        /// Smoothing `lambda > 0`; large lambda tends to GD.
        lambda: f64,
    },
    /// Smoothed p-homogeneous potential `|theta|^p / p + lambda theta^2 / 2`; dense bias.
    PHomogeneous {
        /// Degree `p >= 2`.
        p: f64,
        /// Smoothing `lambda > 0`; large lambda tends to GD.
        lambda: f64,
    },
}

impl Potential {
    /// Degree of asymptotic homogeneity `alpha` (2 for GD, 1 hyperbolic, p for p-homogeneous).
    pub fn alpha(&self) -> f64 {
        match *self {
            Potential::Gd => 2.0,
            Potential::Hyperbolic { .. } => 1.0,
            Potential::PHomogeneous { p, .. } => p,
        }
    }

    /// Short human-readable name, e.g. `hyperbolic(lambda=0.1)`.
    pub fn label(&self) -> String {
        match *self {
            Potential::Gd => "gd".to_string(),
            Potential::Hyperbolic { lambda } => format!("hyperbolic(lambda={lambda})"),
            Potential::PHomogeneous { p, lambda } => format!("p{p}(lambda={lambda})"),
        }
    }
}

/// How a layer's fan-in enters the inverse metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WidthScaling {
    /// Rescale by the fan-in `w` (`u = sqrt(w) theta`), normalised so that the average step at
    /// He initialisation matches GD (the VGG experiment, Appendix J.3).
    FanIn,
    /// The unnormalised Table 1 potentials (the student-teacher experiment).
    None,
}

/// Which discretisation of the mirror flow a step uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepForm {
    /// `theta - lr * m(theta) * grad`, with the inverse metric `m` (Appendix J.3). The default.
    #[default]
    Primal,
    /// The exact mirror step `grad R(theta') = grad R(theta) - lr * grad`.
    Dual,
}

impl StepForm {
    /// The name used in configs: `primal` or `dual`.
    pub fn name(&self) -> &'static str {
        match self {
            StepForm::Primal => "primal",
            StepForm::Dual => "dual",
        }
    }
}

/// Fan-in of a parameter from its shape in Burn's layouts: conv weights `[c_out, c_in/groups,
/// k..]` give the product of all but the first dimension, linear weights `[d_in, d_out]` (Burn's
/// `Linear` layout) give `d_in = dims[0]`, and vectors and scalars (biases) give 1.
///
/// A rank-2 weight stored `[out, in]` (PyTorch's layout) would get `out` as its fan-in: such a
/// module must transpose its weights, or the width rescaling is wrong. `MirrorDescentConfig::describe`
/// prints the fan-in every parameter gets.
pub fn fan_in(dims: &[usize]) -> usize {
    match dims.len() {
        0 | 1 => 1,
        2 => dims[0],
        _ => dims[1..].iter().product(),
    }
}

/// The potentials every check of the mirror step covers (the optimizer tests, `mirrorburn bench
/// --parts step-accuracy`): GD, the hyperbolic entropy at a large and a small lambda, p = 3 and
/// the paper's p = 10.
pub const CHECKED_POTENTIALS: [Potential; 5] = [
    Potential::Gd,
    Potential::Hyperbolic { lambda: 0.1 },
    Potential::Hyperbolic { lambda: 1e-5 },
    Potential::PHomogeneous {
        p: 3.0,
        lambda: 1.0,
    },
    Potential::PHomogeneous {
        p: 10.0,
        lambda: 0.01,
    },
];
