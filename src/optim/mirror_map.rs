//! [`MirrorMap`]: a potential resolved for one tensor, and every elementwise map a mirror step or a
//! diagnostic needs (gradient, inverse metric, exact step, potential, conjugate) as tensor
//! operations. f32 tensors on the `flex` CPU backend take one-pass kernels instead
//! ([`fused_cpu`](super::fused_cpu)); both compute the same formulas.
//!
//! Everything p-homogeneous is computed in the rescaled variable `z = k t` of [`ScaledP`], where
//! the power term is O(1) at |z| ~ 1, so no constant overflows f32 for any `p >= 2` the config
//! accepts (the raw coefficient `b` exceeds f32 for p >~ 20 at VGG fan-ins).

use burn::tensor::Tensor;

use super::fallback::note_fallbacks_on_device;
use super::fused_cpu::{self, on_host_f32};
use super::potential::{Potential, WidthScaling};

/// Newton iterations of the p-homogeneous gradient inverse on the tensor path. The start is an
/// upper bound within a factor 2 of the root (within `2^(1/(p-1))` when the power term dominates)
/// and Newton decreases monotonically from there, so 12 iterations reach f32 precision for
/// every `p <= 32` (tested up to 24).
const NEWTON_ITERATIONS: usize = 12;

/// Dual increments `|d|` of the hyperbolic step below this use `theta cosh d - r sinh d` (exact at
/// `d = 0`); larger ones use the overflow-free exponential form.
pub(super) const HYPERBOLIC_SMALL_STEP: f64 = 0.25;

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

/// A p-homogeneous map in the variable `z = k t`: with `e = p - 2`,
/// `R'(t) = (a / k) phi(z)`, `phi(z) = z + beta |z|^e z`, and `R''(t) = a (1 + beta (p-1) |z|^e)`.
/// Normally `k = (b / a)^(1/e)` and `beta = 1`; when that `k` leaves `exp(+-40)` (p just above 2)
/// `k = 1` and `beta = b / a`, which is then moderate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaledP {
    /// Degree.
    pub p: f64,
    /// Coefficient of the quadratic part of `R`.
    pub a: f64,
    /// Scale of `z = k t`.
    pub k: f64,
    /// Coefficient of the power term in `z`.
    pub beta: f64,
}

impl ScaledP {
    /// The rescaled form of `R'(t) = a t + b |t|^(p-2) t`.
    pub fn new(p: f64, a: f64, b: f64) -> Self {
        let e = p - 2.0;
        let ln_k = if e > 0.0 {
            (b / a).ln() / e
        } else {
            f64::INFINITY
        };
        if ln_k.abs() <= 40.0 {
            Self {
                p,
                a,
                k: ln_k.exp(),
                beta: 1.0,
            }
        } else {
            Self {
                p,
                a,
                k: 1.0,
                beta: b / a,
            }
        }
    }

    /// The exponent `e = p - 2`.
    pub fn e(&self) -> f64 {
        self.p - 2.0
    }

    /// Why f32 arithmetic cannot represent this map, if it cannot.
    pub fn f32_problem(&self) -> Option<String> {
        let constants = [self.a, self.k, self.a / self.k, self.beta * (self.p - 1.0)];
        let fits = |v: f64| v.is_finite() && (v as f32).is_normal();
        (!constants.iter().all(|&v| fits(v))).then(|| {
            format!(
                "its constants (a = {:e}, k = {:e}, beta (p-1) = {:e}) leave the f32 range \
                 1e-38..3e38; use a larger lambda or a p further from 2",
                self.a,
                self.k,
                self.beta * (self.p - 1.0)
            )
        })
    }
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
                // b = w^((p-2)/2) / ((p-1) lambda), through logs so that huge p stays finite.
                let ln_b = (p - 2.0) / 2.0 * w.ln() - ((p - 1.0) * lambda).ln();
                MirrorMap::PHomogeneous {
                    p,
                    a: 1.0,
                    b: ln_b.exp(),
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

    /// Why f32 arithmetic cannot step with this map on every backend, if it cannot: a constant
    /// outside the normal f32 range (GPUs flush subnormals to zero, so e.g. the hyperbolic offset
    /// `1/s^2 = lambda / fan-in` must be normal, or weights at zero never move on a GPU only).
    pub fn f32_problem(&self) -> Option<String> {
        let normal = |v: f64| v.is_finite() && (v as f32).is_normal();
        match *self {
            MirrorMap::Euclidean => None,
            MirrorMap::Hyperbolic { c, s } => {
                let inv_s2 = 1.0 / (s * s);
                (![c, s, inv_s2].into_iter().all(normal)).then(|| {
                    format!(
                        "its constants (c = {c:e}, s = {s:e}, 1/s^2 = {inv_s2:e}) leave the normal \
                         f32 range 1.2e-38..3.4e38 (GPUs flush smaller values to zero); use a \
                         larger lambda"
                    )
                })
            }
            MirrorMap::PHomogeneous { .. } => self.scaled().and_then(|sp| sp.f32_problem()),
        }
    }

    /// The rescaled form of a p-homogeneous map (`None` for the others).
    pub fn scaled(&self) -> Option<ScaledP> {
        match *self {
            MirrorMap::PHomogeneous { p, a, b } => Some(ScaledP::new(p, a, b)),
            _ => None,
        }
    }

    /// One primal (inverse-metric) step `theta - lr * m(theta) * grad`.
    pub fn primal_step<const D: usize>(
        &self,
        theta: Tensor<D>,
        grad: Tensor<D>,
        lr: f64,
    ) -> Tensor<D> {
        if on_host_f32(&theta, &grad) {
            return fused_cpu::primal_step(*self, theta, grad, lr);
        }
        match *self {
            // Same ops as Burn's SGD, so the two agree bit for bit.
            MirrorMap::Euclidean => theta - grad.mul_scalar(lr),
            MirrorMap::Hyperbolic { c, s } => {
                let metric = theta.clone().square().add_scalar(1.0 / (s * s)).sqrt();
                theta - metric.mul(grad).mul_scalar(lr / c)
            }
            MirrorMap::PHomogeneous { .. } => {
                let sp = self.scaled().expect("p-homogeneous");
                let power = abs_pow(theta.clone().mul_scalar(sp.k), sp.e());
                let curvature = power.mul_scalar(sp.beta * (sp.p - 1.0)).add_scalar(1.0);
                theta - grad.div(curvature).mul_scalar(lr / sp.a)
            }
        }
    }

    /// One exact mirror step: the `theta'` with `R'(theta') = R'(theta) - lr * grad`. Closed form
    /// for the hyperbolic entropy, a safeguarded Newton solve for p-homogeneous potentials. With
    /// `grad = 0` it is the identity. Where the exact step is not representable in the tensor's
    /// precision (a non-finite result), the primal step is used, and the fallbacks are counted
    /// on the device (see [`dual_fallbacks`](super::dual_fallbacks)) and reported once per
    /// process. Nothing is read back to the host.
    pub fn dual_step<const D: usize>(
        &self,
        theta: Tensor<D>,
        grad: Tensor<D>,
        lr: f64,
    ) -> Tensor<D> {
        if *self != MirrorMap::Euclidean && on_host_f32(&theta, &grad) {
            return fused_cpu::dual_step(*self, theta, grad, lr);
        }
        let exact = match *self {
            MirrorMap::Euclidean => return self.primal_step(theta, grad, lr),
            MirrorMap::Hyperbolic { c, s } => {
                hyperbolic_dual(theta.clone(), grad.clone().mul_scalar(lr / c), s)
            }
            MirrorMap::PHomogeneous { .. } => {
                let sp = self.scaled().expect("p-homogeneous");
                let z = theta.clone().mul_scalar(sp.k);
                let primal = self
                    .primal_step(theta.clone(), grad.clone(), lr)
                    .mul_scalar(sp.k);
                let target = phi(z, sp) - grad.clone().mul_scalar(lr * sp.k / sp.a);
                // Where the gradient is zero the step is exactly the identity (t k / k may not
                // round back to t).
                let still = grad.clone().equal_elem(0.0);
                solve_phi(target, sp, Some(primal))
                    .div_scalar(sp.k)
                    .mask_where(still, theta.clone())
            }
        };
        // Counted on the device and masked unconditionally: no read, so the step never waits.
        let bad = exact.clone().is_finite().bool_not();
        note_fallbacks_on_device(bad.clone().int().sum());
        exact.mask_where(bad, self.primal_step(theta, grad, lr))
    }

    /// The mirror map `R'(theta)`, elementwise.
    pub fn gradient<const D: usize>(&self, theta: Tensor<D>) -> Tensor<D> {
        match *self {
            MirrorMap::Euclidean => theta,
            MirrorMap::Hyperbolic { c, s } => theta.mul_scalar(s).asinh().mul_scalar(c),
            MirrorMap::PHomogeneous { .. } => {
                let sp = self.scaled().expect("p-homogeneous");
                phi(theta.mul_scalar(sp.k), sp).mul_scalar(sp.a / sp.k)
            }
        }
    }

    /// The inverse of [`gradient`](Self::gradient): the `theta` with `R'(theta) = target`.
    ///
    /// For p-homogeneous maps this solves `z + beta z^(p-1) = |target| k / a` for `z = k |theta|`
    /// by Newton's method started at the upper bound `min(tau, (tau / beta)^(1/(p-1)))`. The
    /// function is convex and increasing in `z`, so the iterates decrease monotonically to the
    /// root and never overshoot below zero.
    pub fn gradient_inverse<const D: usize>(&self, target: Tensor<D>) -> Tensor<D> {
        match *self {
            MirrorMap::Euclidean => target,
            MirrorMap::Hyperbolic { c, s } => target.div_scalar(c).sinh().div_scalar(s),
            MirrorMap::PHomogeneous { .. } => {
                let sp = self.scaled().expect("p-homogeneous");
                solve_phi(target.mul_scalar(sp.k / sp.a), sp, None).div_scalar(sp.k)
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
            MirrorMap::PHomogeneous { .. } => {
                let sp = self.scaled().expect("p-homogeneous");
                p_quadratic_plus_power(theta, sp, 1.0 / sp.p)
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
            MirrorMap::PHomogeneous { .. } => {
                let sp = self.scaled().expect("p-homogeneous");
                p_quadratic_plus_power(theta, sp, 1.0 - 1.0 / sp.p)
            }
        }
    }
}

/// `a t^2 / 2 + factor b |t|^p` in the rescaled form `(a / k^2) (z^2/2 + factor beta |z|^e z^2)`.
fn p_quadratic_plus_power<const D: usize>(theta: Tensor<D>, sp: ScaledP, factor: f64) -> Tensor<D> {
    let z = theta.mul_scalar(sp.k);
    let z2 = z.clone().square();
    let power = abs_pow(z, sp.e())
        .mul(z2.clone())
        .mul_scalar(factor * sp.beta);
    (z2.mul_scalar(0.5) + power).mul_scalar(sp.a / (sp.k * sp.k))
}

/// `phi(z) = z + beta |z|^e z`.
fn phi<const D: usize>(z: Tensor<D>, sp: ScaledP) -> Tensor<D> {
    let power = abs_pow(z.clone(), sp.e())
        .mul(z.clone())
        .mul_scalar(sp.beta);
    z + power
}

/// The `z` with `phi(z) = target` by Newton on `|z|` (see [`MirrorMap::gradient_inverse`]),
/// started at `guess` where it has the target's sign (a primal step: then one or two iterations
/// suffice, and an exact guess stays exact), else at the upper bound.
fn solve_phi<const D: usize>(
    target: Tensor<D>,
    sp: ScaledP,
    guess: Option<Tensor<D>>,
) -> Tensor<D> {
    let sign = target.clone().sign();
    let size = target.abs();
    let e = sp.e();
    if e == 0.0 {
        return size.div_scalar(1.0 + sp.beta).mul(sign);
    }
    let bound = size.clone().min_pair(
        size.clone()
            .div_scalar(sp.beta)
            .powf_scalar(1.0 / (sp.p - 1.0)),
    );
    let mut y = match guess {
        Some(guess) => {
            // The guess starts Newton only where it is an upper bound of the root on the
            // target's side (then the iterates decrease monotonically from it).
            let guess = guess.abs().min_pair(bound.clone());
            let above = phi(guess.clone(), sp).greater_equal(size.clone());
            let usable = guess
                .clone()
                .mul(sign.clone())
                .greater_elem(0.0)
                .bool_and(above);
            bound.mask_where(usable, guess)
        }
        None => bound,
    };
    for _ in 0..NEWTON_ITERATIONS {
        let y_pow = abs_pow(y.clone(), e);
        let value = y_pow.clone().mul(y.clone()).mul_scalar(sp.beta) + y.clone() - size.clone();
        let slope = y_pow.mul_scalar(sp.beta * (sp.p - 1.0)).add_scalar(1.0);
        y = (y - value.div(slope)).clamp_min(0.0);
    }
    y.mul(sign)
}

/// The exact hyperbolic step `sinh(asinh(s theta) - d) / s` for the dual increment `d`, written
/// so that it is exact at `d = 0` and overflows only where the result does. For small `|d|`:
/// `theta + (theta (cosh d - 1) - r sinh d)` with `r = sqrt(theta^2 + 1/s^2)` and `cosh d - 1`,
/// `sinh d` as Taylor polynomials (exact to f64 rounding for `|d| < 0.25`). No shader `sinh`
/// or `cosh`: those may be `(e^x - e^-x) / 2`, ~6e-4 relative error at `d = 1e-4` in f32, and
/// zero below `|d| ~ 6e-8` (a weight at zero would never move). The update is formed before it
/// is added, so it is accurate relative to itself, not only to `theta`. Larger `|d|` use
/// `(P e^-d - M e^d) / 2` with `P = r + theta`, `M = r - theta` (each computed without
/// cancellation, `P M = 1/s^2`) and the exponentials taken of `+-d + ln(P/2)`.
fn hyperbolic_dual<const D: usize>(theta: Tensor<D>, d: Tensor<D>, s: f64) -> Tensor<D> {
    let inv_s2 = 1.0 / (s * s);
    let r = theta.clone().square().add_scalar(inv_s2).sqrt();
    let d2 = d.clone().square();
    // cosh d - 1 = d^2/2 (1 + d^2/12 + d^4/360 + d^6/20160).
    let cosh_minus_one = polynomial(d2.clone(), &[1.0, 1.0 / 12.0, 1.0 / 360.0, 1.0 / 20160.0])
        .mul(d2.clone())
        .mul_scalar(0.5);
    // sinh d = d (1 + d^2/6 + d^4/120 + d^6/5040 + d^8/362880).
    let sinh = polynomial(
        d2,
        &[1.0, 1.0 / 6.0, 1.0 / 120.0, 1.0 / 5040.0, 1.0 / 362880.0],
    )
    .mul(d.clone());
    let small = theta.clone() + (theta.clone() * cosh_minus_one - r.clone() * sinh);
    let positive = theta.clone().greater_equal_elem(0.0);
    let sum = r.clone() + theta.clone();
    let difference = r - theta;
    let p = sum.clone().mask_where(
        positive.clone().bool_not(),
        difference.clone().recip().mul_scalar(inv_s2),
    );
    let m = difference.mask_where(positive, sum.recip().mul_scalar(inv_s2));
    let large =
        (p.mul_scalar(0.5).log() - d.clone()).exp() - (m.mul_scalar(0.5).log() + d.clone()).exp();
    let is_large = d.abs().greater_equal_elem(HYPERBOLIC_SMALL_STEP);
    small.mask_where(is_large, large)
}

/// `c[0] + c[1] x + c[2] x^2 + ...` by Horner's rule (at least two coefficients).
fn polynomial<const D: usize>(x: Tensor<D>, coefficients: &[f64]) -> Tensor<D> {
    let (&last, rest) = coefficients.split_last().expect("coefficients");
    let (&next, rest) = rest.split_last().expect("at least two coefficients");
    let mut value = x.clone().mul_scalar(last).add_scalar(next);
    for &c in rest.iter().rev() {
        value = value.mul(x.clone()).add_scalar(c);
    }
    value
}

/// `|x|^e` for `e >= 0` (`0^0 = 1`): by multiplications for integer `e` up to 64 (exact to f32
/// rounding on every backend; a shader `pow` is `exp2(e log2 x)`, whose error grows with `e`),
/// else `powf` of `|x|` (non-integer `p` only).
fn abs_pow<const D: usize>(x: Tensor<D>, e: f64) -> Tensor<D> {
    if e == 0.0 {
        return x.ones_like();
    }
    if e.fract() != 0.0 || e > 64.0 {
        return x.abs().powf_scalar(e);
    }
    let n = e as u32;
    // Square and multiply; an even power needs no `abs` (p = 10 gives three squarings).
    let mut base = if n.is_multiple_of(2) { x } else { x.abs() };
    let mut result: Option<Tensor<D>> = None;
    let mut rest = n;
    loop {
        if rest & 1 == 1 {
            result = Some(match result {
                None => base.clone(),
                Some(r) => r * base.clone(),
            });
        }
        rest >>= 1;
        if rest == 0 {
            break;
        }
        base = base.square();
    }
    result.expect("n >= 1")
}
