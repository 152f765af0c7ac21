//! Separable mirror potentials, their width rescaling, and the elementwise maps a mirror step
//! needs (DESIGN §1).
//!
//! A [`Potential`] plus a [`WidthScaling`] and a tensor's fan-in resolve to a [`MirrorMap`]: a
//! strictly convex, separable potential `R_w` whose gradient, inverse Hessian (the *inverse
//! metric* `m`), convex conjugate at the gradient `Q(grad R_w(theta))` and gradient inverse are
//! all available as tensor operations.

use burn::tensor::Tensor;

use super::fused_cpu::{Power, fused_update, on_host_f32, squarings};
use serde::{Deserialize, Serialize};

/// Newton iterations of the p-homogeneous gradient inverse. The start is an upper bound within a
/// factor 1.5 of the root and Newton is monotone from there, so 12 iterations reach f32 (and
/// near f64) precision for every `p <= 32`.
const NEWTON_ITERATIONS: usize = 12;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepForm {
    /// `theta - lr * m(theta) * grad`, with the inverse metric `m` (Appendix J.3).
    Primal,
    /// The exact mirror step `grad R(theta') = grad R(theta) - lr * grad`.
    Dual,
}

/// Fan-in of a parameter from its shape in Burn's layouts: conv weights `[c_out, c_in/groups,
/// k..]` give the product of all but the first dimension, linear weights `[d_in, d_out]` give
/// `d_in`, and vectors (biases) give 1.
pub fn fan_in(dims: &[usize]) -> usize {
    match dims.len() {
        0 | 1 => 1,
        2 => dims[0],
        _ => dims[1..].iter().product(),
    }
}

/// A potential resolved for one tensor: the elementwise coefficients of `R_w`.
///
/// * `Euclidean`: `R'(t) = t`.
/// * `Hyperbolic`: `R'(t) = c asinh(s t)`, so `m(t) = sqrt(t^2 + 1/s^2) / c`.
/// * `PHomogeneous`: `R'(t) = a t + b |t|^(p-2) t`, so `m(t) = 1 / (a + b (p-1) |t|^(p-2))`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MirrorMap {
    /// Gradient descent.
    Euclidean,
    /// Hyperbolic entropy with outer scale `c` and inner scale `s`.
    Hyperbolic {
        /// Outer scale of the gradient map.
        c: f64,
        /// Inner scale of the gradient map.
        s: f64,
    },
    /// Smoothed p-homogeneous potential with linear coefficient `a` and power coefficient `b`.
    PHomogeneous {
        /// Degree.
        p: f64,
        /// Coefficient of the quadratic part.
        a: f64,
        /// Coefficient of the p-th power part.
        b: f64,
    },
}

impl MirrorMap {
    /// Resolves `potential` for a tensor of fan-in `fan_in` under `scaling` (DESIGN §1 table).
    pub fn new(potential: Potential, scaling: WidthScaling, fan_in: usize) -> Self {
        let w = fan_in as f64;
        match (potential, scaling) {
            (Potential::Gd, _) => MirrorMap::Euclidean,
            (Potential::Hyperbolic { lambda }, WidthScaling::FanIn) => MirrorMap::Hyperbolic {
                c: (1.0 + lambda).sqrt() / w.sqrt(),
                s: (w / lambda).sqrt(),
            },
            (Potential::Hyperbolic { lambda }, WidthScaling::None) => MirrorMap::Hyperbolic {
                c: 1.0,
                s: 1.0 / lambda.sqrt(),
            },
            (Potential::PHomogeneous { p, lambda }, WidthScaling::FanIn) => {
                MirrorMap::PHomogeneous {
                    p,
                    a: 1.0,
                    b: w.powf((p - 2.0) / 2.0) / ((p - 1.0) * lambda),
                }
            }
            (Potential::PHomogeneous { p, lambda }, WidthScaling::None) => {
                MirrorMap::PHomogeneous {
                    p,
                    a: lambda,
                    b: 1.0,
                }
            }
        }
    }

    /// One primal (inverse-metric) step `theta - lr * m(theta) * grad`.
    pub fn primal_step<const D: usize>(
        &self,
        theta: Tensor<D>,
        grad: Tensor<D>,
        lr: f64,
    ) -> Tensor<D> {
        if *self != MirrorMap::Euclidean && on_host_f32(&theta, &grad) {
            return self.fused_primal_step(theta, grad, lr);
        }
        match *self {
            // Same ops as Burn's SGD, so the two agree bit for bit.
            MirrorMap::Euclidean => theta - grad.mul_scalar(lr),
            MirrorMap::Hyperbolic { c, s } => {
                let metric = theta.clone().square().add_scalar(1.0 / (s * s)).sqrt();
                theta - metric.mul(grad).mul_scalar(lr / c)
            }
            MirrorMap::PHomogeneous { p, a, b } => {
                let curvature = p_curvature(theta.clone(), p, a, b);
                theta - grad.div(curvature).mul_scalar(lr)
            }
        }
    }

    /// The primal step of a non-Euclidean map as one pass over host memory (see
    /// [`fused_update`]); the tensors must be f32 on `flex`.
    fn fused_primal_step<const D: usize>(
        &self,
        theta: Tensor<D>,
        grad: Tensor<D>,
        lr: f64,
    ) -> Tensor<D> {
        match *self {
            MirrorMap::Euclidean => self.primal_step(theta, grad, lr),
            MirrorMap::Hyperbolic { c, s } => {
                let (offset, scale) = ((1.0 / (s * s)) as f32, (lr / c) as f32);
                fused_update(theta, grad, move |t, g| {
                    t - (t * t + offset).sqrt() * g * scale
                })
            }
            MirrorMap::PHomogeneous { p, a, b } => {
                let (e, a, lr) = (p - 2.0, a as f32, lr as f32);
                if e == 0.0 {
                    let curvature = a + (b * (p - 1.0)) as f32;
                    return fused_update(theta, grad, move |t, g| t - g / curvature * lr);
                }
                // b (p-1) |t|^e = |k t|^e: scaling first keeps |k t| near O(1), so the power stays
                // out of the (very slow) subnormal range.
                let k = (b * (p - 1.0)).powf(1.0 / e) as f32;
                let step = move |t: f32, g: f32, power: f32| t - g / (a + power) * lr;
                match Power::of(e) {
                    Power::Squarings(1) => {
                        fused_update(theta, grad, move |t, g| step(t, g, squarings::<1>(k * t)))
                    }
                    Power::Squarings(2) => {
                        fused_update(theta, grad, move |t, g| step(t, g, squarings::<2>(k * t)))
                    }
                    Power::Squarings(3) => {
                        fused_update(theta, grad, move |t, g| step(t, g, squarings::<3>(k * t)))
                    }
                    Power::Squarings(n) => {
                        let e = 2f32.powi(n as i32);
                        fused_update(theta, grad, move |t, g| step(t, g, (k * t).abs().powf(e)))
                    }
                    Power::General(e) => {
                        fused_update(theta, grad, move |t, g| step(t, g, (k * t).abs().powf(e)))
                    }
                }
            }
        }
    }

    /// One exact mirror step: the `theta'` with `R'(theta') = R'(theta) - lr * grad`. Closed form
    /// for the hyperbolic entropy, a safeguarded Newton solve for p-homogeneous potentials.
    /// Where the exact step is not representable (a non-finite result), the primal step is used.
    pub fn dual_step<const D: usize>(
        &self,
        theta: Tensor<D>,
        grad: Tensor<D>,
        lr: f64,
    ) -> Tensor<D> {
        match *self {
            MirrorMap::Euclidean => self.primal_step(theta, grad, lr),
            MirrorMap::Hyperbolic { c, s } => theta
                .mul_scalar(s)
                .asinh()
                .sub(grad.mul_scalar(lr / c))
                .sinh()
                .div_scalar(s),
            MirrorMap::PHomogeneous { .. } => {
                let target = self.gradient(theta.clone()) - grad.clone().mul_scalar(lr);
                let exact = self.gradient_inverse(target);
                let bad = exact.clone().is_finite().bool_not();
                exact.mask_where(bad, self.primal_step(theta, grad, lr))
            }
        }
    }

    /// The mirror map `R'(theta)`, elementwise.
    pub fn gradient<const D: usize>(&self, theta: Tensor<D>) -> Tensor<D> {
        match *self {
            MirrorMap::Euclidean => theta,
            MirrorMap::Hyperbolic { c, s } => theta.mul_scalar(s).asinh().mul_scalar(c),
            MirrorMap::PHomogeneous { p, a, b } => {
                let power = abs_pow(theta.clone(), p - 2.0)
                    .mul(theta.clone())
                    .mul_scalar(b);
                theta.mul_scalar(a) + power
            }
        }
    }

    /// The inverse of [`gradient`](Self::gradient): the `theta` with `R'(theta) = target`.
    ///
    /// For p-homogeneous maps this solves `a y + b y^(p-1) = |target|` for `y = |theta|` by
    /// Newton's method started at the upper bound `min(|T|/a, (|T|/b)^(1/(p-1)))`. The function is
    /// convex and increasing in `y`, so the iterates decrease monotonically to the root and never
    /// overshoot below zero.
    pub fn gradient_inverse<const D: usize>(&self, target: Tensor<D>) -> Tensor<D> {
        match *self {
            MirrorMap::Euclidean => target,
            MirrorMap::Hyperbolic { c, s } => target.div_scalar(c).sinh().div_scalar(s),
            MirrorMap::PHomogeneous { p, a, b } => {
                let sign = target.clone().sign();
                let size = target.abs();
                let mut y = size
                    .clone()
                    .div_scalar(a)
                    .min_pair(size.clone().div_scalar(b).powf_scalar(1.0 / (p - 1.0)));
                if p == 2.0 {
                    return size.div_scalar(a + b).mul(sign);
                }
                for _ in 0..NEWTON_ITERATIONS {
                    let y_pow = abs_pow(y.clone(), p - 2.0);
                    let value = y_pow.clone().mul(y.clone()).mul_scalar(b)
                        + y.clone().mul_scalar(a)
                        - size.clone();
                    let slope = y_pow.mul_scalar(b * (p - 1.0)).add_scalar(a);
                    y = (y - value.div(slope)).clamp_min(0.0);
                }
                y.mul(sign)
            }
        }
    }

    /// The potential `R(theta)` itself, elementwise (up to an additive constant).
    pub fn potential<const D: usize>(&self, theta: Tensor<D>) -> Tensor<D> {
        match *self {
            MirrorMap::Euclidean => theta.square().mul_scalar(0.5),
            MirrorMap::Hyperbolic { c, s } => {
                let root = theta.clone().square().add_scalar(1.0 / (s * s)).sqrt();
                let arc = theta.clone().mul_scalar(s).asinh();
                (theta.mul(arc) - root).mul_scalar(c)
            }
            MirrorMap::PHomogeneous { p, a, b } => {
                let power = abs_pow(theta.clone(), p).mul_scalar(b / p);
                theta.square().mul_scalar(a / 2.0) + power
            }
        }
    }

    /// The conjugate at the gradient, `Q(R'(theta)) = <theta, R'(theta)> - R(theta)`, elementwise,
    /// in closed form (Table 1 with the width factors): `t^2/2` for GD, `c sqrt(t^2 + 1/s^2)` for the
    /// hyperbolic entropy and `a t^2/2 + b (1 - 1/p) |t|^p` for p-homogeneous potentials.
    pub fn conjugate_at_gradient<const D: usize>(&self, theta: Tensor<D>) -> Tensor<D> {
        match *self {
            MirrorMap::Euclidean => theta.square().mul_scalar(0.5),
            MirrorMap::Hyperbolic { c, s } => theta
                .square()
                .add_scalar(1.0 / (s * s))
                .sqrt()
                .mul_scalar(c),
            MirrorMap::PHomogeneous { p, a, b } => {
                let power = abs_pow(theta.clone(), p).mul_scalar(b * (1.0 - 1.0 / p));
                theta.square().mul_scalar(a / 2.0) + power
            }
        }
    }
}

/// `R''(t) = a + b (p - 1) |t|^(p-2)` of a p-homogeneous map: the inverse of its metric.
fn p_curvature<const D: usize>(theta: Tensor<D>, p: f64, a: f64, b: f64) -> Tensor<D> {
    abs_pow(theta, p - 2.0)
        .mul_scalar(b * (p - 1.0))
        .add_scalar(a)
}

/// `|x|^e` for `e >= 0`, by repeated squaring when `e` is a power of two (2, 4, 8, ...: cheaper
/// and exact), else `powf` of `|x|`; `0^0 = 1`.
fn abs_pow<const D: usize>(x: Tensor<D>, e: f64) -> Tensor<D> {
    if e == 0.0 {
        x.ones_like()
    } else if e.fract() == 0.0 && e >= 2.0 && (e as u64).is_power_of_two() {
        // |x|^(2^k) by k squarings, one cheap pass each (p = 10 gives three).
        let mut out = x;
        for _ in 0..(e as u64).trailing_zeros() {
            out = out.square();
        }
        out
    } else {
        x.abs().powf_scalar(e)
    }
}
