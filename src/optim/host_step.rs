//! Mirror steps on plain f64 values in host memory, for models so small that the fixed cost of a
//! tensor operation dominates their step (the student-teacher toy: 300 weights, millions of
//! steps). The formulas are [`MirrorMap`]'s; a test holds the two paths together to 1e-12.

use super::fallback::note_fallbacks;
use super::fused_cpu::{hyperbolic_dual_large, p_dual};
use super::mirror_map::{HYPERBOLIC_SMALL_STEP, MirrorMap};
use super::potential::StepForm;

impl MirrorMap {
    /// One step `theta <- step(theta, grad)` of the given form on f64 values, elementwise: the
    /// primal step of [`primal_step`](Self::primal_step) or the exact step of
    /// [`dual_step`](Self::dual_step) (non-finite exact results take the primal step and are
    /// counted in [`dual_fallbacks`](super::dual_fallbacks)).
    pub fn step_host(&self, form: StepForm, theta: &mut [f64], grad: &[f64], lr: f64) {
        assert_eq!(theta.len(), grad.len(), "one gradient per weight");
        match *self {
            MirrorMap::Euclidean => apply(form, theta, grad, |t, g| t - g * lr, |t, g| t - g * lr),
            MirrorMap::Hyperbolic { c, s } => {
                let (inv_s2, scale) = (1.0 / (s * s), lr / c);
                let primal = |t: f64, g: f64| t - (t * t + inv_s2).sqrt() * g * scale;
                let exact = |t: f64, g: f64| {
                    let d = g * scale;
                    if d.abs() < HYPERBOLIC_SMALL_STEP {
                        t * d.cosh() - (t * t + inv_s2).sqrt() * d.sinh()
                    } else {
                        hyperbolic_dual_large(t, d, inv_s2)
                    }
                };
                apply(form, theta, grad, primal, exact)
            }
            MirrorMap::PHomogeneous { .. } => {
                let sp = self.scaled().expect("p-homogeneous");
                let (e, cb, scale) = (sp.e(), sp.beta * (sp.p - 1.0), lr / sp.a);
                let primal = |t: f64, g: f64| t - g / (abs_pow(sp.k * t, e) * cb + 1.0) * scale;
                let exact = |t: f64, g: f64| {
                    if g == 0.0 {
                        t
                    } else {
                        p_dual(sp, t, g, lr, |y| abs_pow(y, e)).0
                    }
                };
                apply(form, theta, grad, primal, exact)
            }
        }
    }
}

/// Applies the `primal` or the `exact` step to every value; an exact step that is not finite
/// (not representable) takes the primal step and is counted.
fn apply(
    form: StepForm,
    theta: &mut [f64],
    grad: &[f64],
    primal: impl Fn(f64, f64) -> f64,
    exact: impl Fn(f64, f64) -> f64,
) {
    let mut fallbacks = 0;
    for (t, &g) in theta.iter_mut().zip(grad) {
        *t = match form {
            StepForm::Primal => primal(*t, g),
            StepForm::Dual => match exact(*t, g) {
                value if value.is_finite() => value,
                _ => {
                    fallbacks += 1;
                    primal(*t, g)
                }
            },
        };
    }
    note_fallbacks(fallbacks);
}

/// `|x|^e` for `e >= 0` (`0^0 = 1`), by multiplications for integer `e` up to 64.
fn abs_pow(x: f64, e: f64) -> f64 {
    if e.fract() == 0.0 && e <= 64.0 {
        x.abs().powi(e as i32)
    } else {
        x.abs().powf(e)
    }
}
