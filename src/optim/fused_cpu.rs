//! One-pass elementwise updates for tensors in host memory (the `flex` CPU backend).
//!
//! Burn's CPU backend runs each tensor operation as its own pass over memory, so a primal mirror
//! step written with tensor ops (square, add, sqrt, multiply, subtract, ...) costs several times
//! an SGD step. For f32 tensors on `flex` the update is applied here in a single parallel pass over
//! the tensor's own buffer instead, for the primal and the exact (dual) step alike. GPU backends
//! keep the tensor ops of [`MirrorMap`], which Burn fuses itself; both compute the same formulas.

use std::sync::atomic::{AtomicU64, Ordering};

use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

use super::fallback::note_fallbacks;
use super::mirror_map::{HYPERBOLIC_SMALL_STEP, MirrorMap, ScaledP};
use crate::simd::{Isa, run_on};

/// Elements per parallel chunk.
const CHUNK: usize = 1 << 15;
/// Elements per block of the two-pass update.
const BLOCK: usize = 1 << 10;

/// Whether both tensors are non-autodiff f32 tensors on the `flex` device, in host memory.
pub fn on_host_f32<const D: usize>(theta: &Tensor<D>, grad: &Tensor<D>) -> bool {
    let device = theta.device();
    device == Device::flex()
        && !device.is_autodiff()
        && theta.dtype() == DType::F32
        && grad.dtype() == DType::F32
}

/// `theta <- update(theta, grad)` elementwise in one parallel pass over the tensor's buffer.
/// The tensors must satisfy [`on_host_f32`].
pub fn fused_update<const D: usize>(
    isa: Isa,
    theta: Tensor<D>,
    grad: Tensor<D>,
    update: impl Fn(f32, f32) -> f32 + Sync,
) -> Tensor<D> {
    map_chunks(
        isa,
        theta,
        grad,
        #[inline(always)]
        |t, g| {
            for (t, &g) in t.iter_mut().zip(g) {
                *t = update(*t, g);
            }
        },
    )
}

/// Like [`fused_update`] for updates with a cheap, branch-free form that is accurate on most
/// elements: `fast` returns the value, or NaN where it is not accurate; those elements take
/// `exact`. Per chunk, a first loop (which the compiler can vectorise) runs `fast` on every
/// element, a second applies `exact` where needed.
pub fn fused_update_checked<const D: usize>(
    isa: Isa,
    theta: Tensor<D>,
    grad: Tensor<D>,
    fast: impl Fn(f32, f32) -> f32 + Sync,
    exact: impl Fn(f32, f32) -> f32 + Sync,
) -> Tensor<D> {
    map_chunks(
        isa,
        theta,
        grad,
        #[inline(always)]
        |t, g| {
            // Blocks small enough for a stack buffer that stays in L1.
            let mut values = [0.0f32; BLOCK];
            for (t, g) in t.chunks_mut(BLOCK).zip(g.chunks(BLOCK)) {
                let values = &mut values[..t.len()];
                for ((value, &t), &g) in values.iter_mut().zip(&*t).zip(g) {
                    *value = fast(t, g);
                }
                // A branch-free scan first: most blocks need no exact step at all.
                if values.iter().fold(false, |any, v| any | v.is_nan()) {
                    for ((t, &g), &value) in t.iter_mut().zip(g).zip(&*values) {
                        *t = if value.is_nan() { exact(*t, g) } else { value };
                    }
                } else {
                    t.copy_from_slice(values);
                }
            }
        },
    )
}

/// Runs `per_chunk` over matching chunks of the two tensors' buffers in parallel.
fn map_chunks<const D: usize>(
    isa: Isa,
    theta: Tensor<D>,
    grad: Tensor<D>,
    per_chunk: impl Fn(&mut [f32], &[f32]) + Sync,
) -> Tensor<D> {
    debug_assert!(on_host_f32(&theta, &grad));
    let device = theta.device();
    let shape = theta.shape();
    let mut values = theta.into_data();
    let grads = grad.into_data();
    let (Ok(values_mut), Ok(grads)) = (values.as_mut_slice::<f32>(), grads.as_slice::<f32>())
    else {
        unreachable!("f32 tensors hold f32 data");
    };
    values_mut
        .par_chunks_mut(CHUNK)
        .zip(grads.par_chunks(CHUNK))
        .for_each(|(t, g)| run_chunk(isa, &per_chunk, t, g));
    Tensor::<D>::from_data(values, &device).reshape(shape)
}

/// Runs `per_chunk` compiled for `isa` (see [`run_on`]).
fn run_chunk(isa: Isa, per_chunk: &impl Fn(&mut [f32], &[f32]), t: &mut [f32], g: &[f32]) {
    run_on(
        isa,
        #[inline(always)]
        || per_chunk(t, g),
    )
}

/// The primal step of any map in one pass, AVX2 where the CPU has it; the tensors must satisfy
/// [`on_host_f32`].
pub fn primal_step<const D: usize>(
    map: MirrorMap,
    theta: Tensor<D>,
    grad: Tensor<D>,
    lr: f64,
) -> Tensor<D> {
    primal_step_on(Isa::detected(), map, theta, grad, lr)
}

/// [`primal_step`] compiled for `isa`.
fn primal_step_on<const D: usize>(
    isa: Isa,
    map: MirrorMap,
    theta: Tensor<D>,
    grad: Tensor<D>,
    lr: f64,
) -> Tensor<D> {
    match map {
        // `g * lr` rounded, then the subtraction: Burn's SGD bit for bit, without its two
        // temporary tensors.
        MirrorMap::Euclidean => {
            let lr = lr as f32;
            fused_update(isa, theta, grad, move |t, g| t - g * lr)
        }
        MirrorMap::Hyperbolic { c, s } => {
            let (offset, scale) = ((1.0 / (s * s)) as f32, (lr / c) as f32);
            fused_update(isa, theta, grad, move |t, g| {
                t - (t * t + offset).sqrt() * g * scale
            })
        }
        MirrorMap::PHomogeneous { .. } => {
            let sp = map.scaled().expect("p-homogeneous");
            let (k, cb, scale) = (
                sp.k as f32,
                (sp.beta * (sp.p - 1.0)) as f32,
                (lr / sp.a) as f32,
            );
            let step = move |t: f32, g: f32, power: f32| t - g * scale / (1.0 + cb * power);
            // One monomorphised loop per exponent kind, so squarings unroll and vectorise.
            match integer_power(sp.e()) {
                Some(0) => fused_update(isa, theta, grad, move |t, g| step(t, g, 1.0)),
                Some(2) => {
                    fused_update(isa, theta, grad, move |t, g| step(t, g, (k * t) * (k * t)))
                }
                Some(4) => fused_update(isa, theta, grad, move |t, g| {
                    let z2 = (k * t) * (k * t);
                    step(t, g, z2 * z2)
                }),
                Some(8) => fused_update(isa, theta, grad, move |t, g| {
                    let z2 = (k * t) * (k * t);
                    let z4 = z2 * z2;
                    step(t, g, z4 * z4)
                }),
                Some(n) => fused_update(isa, theta, grad, move |t, g| step(t, g, (k * t).powi(n))),
                None => {
                    let e = sp.e() as f32;
                    fused_update(isa, theta, grad, move |t, g| {
                        step(t, g, (k * t).abs().powf(e))
                    })
                }
            }
        }
    }
}

/// The exact step of a non-Euclidean map in one pass (see [`MirrorMap::dual_step`]); the tensors
/// must satisfy [`on_host_f32`]. Non-finite exact results take the primal step and are counted.
pub fn dual_step<const D: usize>(
    map: MirrorMap,
    theta: Tensor<D>,
    grad: Tensor<D>,
    lr: f64,
) -> Tensor<D> {
    dual_step_on(Isa::detected(), map, theta, grad, lr)
}

/// [`dual_step`] compiled for `isa`.
fn dual_step_on<const D: usize>(
    isa: Isa,
    map: MirrorMap,
    theta: Tensor<D>,
    grad: Tensor<D>,
    lr: f64,
) -> Tensor<D> {
    let fallbacks = AtomicU64::new(0);
    let fallbacks = &fallbacks;
    let out = match map {
        MirrorMap::Euclidean => primal_step_on(isa, map, theta, grad, lr),
        MirrorMap::Hyperbolic { c, s } => {
            let (inv_s2, scale) = (1.0 / (s * s), lr / c);
            let (offset, scale32) = (inv_s2 as f32, scale as f32);
            fused_update_checked(
                isa,
                theta,
                grad,
                move |t, g| {
                    let d = g * scale32;
                    let value = hyperbolic_small_step(t, d, offset);
                    let accurate = (d.abs() < HYPERBOLIC_SMALL_STEP as f32) & value.is_finite();
                    nan_unless(accurate, value)
                },
                move |t, g| {
                    let d = (g as f64 * scale) as f32;
                    let exact = if (d.abs() as f64) < HYPERBOLIC_SMALL_STEP {
                        hyperbolic_small_step(t, d, offset)
                    } else {
                        hyperbolic_dual_large(t as f64, d as f64, inv_s2) as f32
                    };
                    finite_or(exact, fallbacks, || {
                        t - (t * t + offset).sqrt() * g * scale32
                    })
                },
            )
        }
        MirrorMap::PHomogeneous { .. } => {
            let sp = map.scaled().expect("p-homogeneous");
            // One monomorphised kernel per exponent kind (see `primal_step`); the fast pass in
            // f32, the full solve in f64.
            let e = sp.e();
            match integer_power(e) {
                Some(0) => p_dual_kernel(isa, sp, theta, grad, lr, fallbacks, (|_| 1.0, |_| 1.0)),
                Some(2) => {
                    p_dual_kernel(isa, sp, theta, grad, lr, fallbacks, (|y| y * y, |y| y * y))
                }
                Some(4) => p_dual_kernel(
                    isa,
                    sp,
                    theta,
                    grad,
                    lr,
                    fallbacks,
                    (|y| (y * y) * (y * y), |y| (y * y) * (y * y)),
                ),
                Some(8) => p_dual_kernel(
                    isa,
                    sp,
                    theta,
                    grad,
                    lr,
                    fallbacks,
                    (
                        |y| {
                            let y4 = (y * y) * (y * y);
                            y4 * y4
                        },
                        |y| {
                            let y4 = (y * y) * (y * y);
                            y4 * y4
                        },
                    ),
                ),
                Some(n) => p_dual_kernel(
                    isa,
                    sp,
                    theta,
                    grad,
                    lr,
                    fallbacks,
                    (move |y: f32| y.powi(n), move |y: f64| y.powi(n)),
                ),
                None => {
                    let e32 = e as f32;
                    p_dual_kernel(
                        isa,
                        sp,
                        theta,
                        grad,
                        lr,
                        fallbacks,
                        (
                            move |y: f32| y.abs().powf(e32),
                            move |y: f64| y.abs().powf(e),
                        ),
                    )
                }
            }
        }
    };
    note_fallbacks(fallbacks.load(Ordering::Relaxed));
    out
}

/// The exact p-homogeneous step: one f32 Newton iteration from the primal step wherever that is
/// provably accurate (the fast pass: almost every weight), the f64 Newton solve of [`p_dual`]
/// elsewhere. `pow` is `|y|^(p-2)` in f32 and in f64.
fn p_dual_kernel<const D: usize>(
    isa: Isa,
    sp: ScaledP,
    theta: Tensor<D>,
    grad: Tensor<D>,
    lr: f64,
    fallbacks: &AtomicU64,
    pow: (
        impl Fn(f32) -> f32 + Sync + Copy,
        impl Fn(f64) -> f64 + Sync + Copy,
    ),
) -> Tensor<D> {
    let (pow32, pow64) = pow;
    let (k, beta, c1, inv_k) = (
        sp.k as f32,
        sp.beta as f32,
        (sp.beta * (sp.p - 1.0)) as f32,
        (1.0 / sp.k) as f32,
    );
    let delta = (lr * sp.k / sp.a) as f32;
    // After a Newton step `s` from a start `s`-close to the root, the truncation error is below
    // (p-2)/2 (s/y)^2 relative; this tolerance keeps it under 1e-9, far below f32 rounding.
    let tolerance = (2e-9 / (sp.p - 2.0).max(1.0)).sqrt() as f32;
    fused_update_checked(
        isa,
        theta,
        grad,
        move |t, g| {
            let z = k * t;
            let z_pow = pow32(z);
            let d = delta * g;
            let start = z - d / (1.0 + c1 * z_pow);
            let target = z + beta * z_pow * z - d;
            let y = start.abs();
            let y_pow = pow32(y);
            let step = (y + beta * y_pow * y - target.abs()) / (1.0 + c1 * y_pow);
            let next = y - step;
            let value = f32::copysign(next, target) * inv_k;
            let accurate = (start * target > 0.0)
                & (next > 0.0)
                & (step.abs() <= tolerance * next)
                & value.is_finite();
            // A zero gradient leaves the weight exactly where it is (t k / k may not round to t).
            let value = if g == 0.0 { t } else { value };
            nan_unless(accurate | (g == 0.0), value)
        },
        move |t, g| {
            let (exact, primal) = p_dual(sp, t as f64, g as f64, lr, pow64);
            finite_or(exact as f32, fallbacks, || primal as f32)
        },
    )
}

/// `value`, or NaN where not `accurate`, without a branch (so the fast pass vectorises).
fn nan_unless(accurate: bool, value: f32) -> f32 {
    f32::from_bits(value.to_bits() | (!accurate as u32 * 0x7fc0_0000))
}

fn finite_or(value: f32, fallbacks: &AtomicU64, fallback: impl FnOnce() -> f32) -> f32 {
    if value.is_finite() {
        value
    } else {
        fallbacks.fetch_add(1, Ordering::Relaxed);
        fallback()
    }
}

/// `t cosh d - sqrt(t^2 + offset) sinh d` with cosh and sinh as their Taylor polynomials, exact
/// to f32 for `|d| < 0.25` and exactly `t` at `d = 0`.
fn hyperbolic_small_step(t: f32, d: f32, offset: f32) -> f32 {
    let d2 = d * d;
    let cosh = 1.0 + d2 * (0.5 + d2 * (1.0 / 24.0 + d2 / 720.0));
    let sinh = d * (1.0 + d2 * (1.0 / 6.0 + d2 * (1.0 / 120.0 + d2 / 5040.0)));
    t * cosh - (t * t + offset).sqrt() * sinh
}

/// The exact hyperbolic step for a dual increment `|d| >= 0.25` in the overflow-free exponential
/// form (see `MirrorMap::dual_step`), in f64.
pub(super) fn hyperbolic_dual_large(t: f64, d: f64, inv_s2: f64) -> f64 {
    let r = (t * t + inv_s2).sqrt();
    let (p, m) = if t >= 0.0 {
        (r + t, inv_s2 / (r + t))
    } else {
        (inv_s2 / (r - t), r - t)
    };
    ((0.5 * p).ln() - d).exp() - ((0.5 * m).ln() + d).exp()
}

/// The exact p-homogeneous step of one element in f64, and its primal step (the Newton start):
/// in `z = k t`, solve `phi(z') = phi(z) - lr g k / a` by Newton on `|z'|`, started at the primal
/// step when it has the right sign (typically one or two iterations), else at the upper bound.
pub(super) fn p_dual(sp: ScaledP, t: f64, g: f64, lr: f64, pow: impl Fn(f64) -> f64) -> (f64, f64) {
    let (beta, p) = (sp.beta, sp.p);
    let pow = |y: f64| pow(y.abs());
    let z = sp.k * t;
    let delta = lr * sp.k / sp.a * g;
    let z_pow = pow(z);
    let primal = z - delta / (1.0 + beta * (p - 1.0) * z_pow);
    let target = z + beta * z_pow * z - delta;
    let (sign, size) = (target.signum(), target.abs());
    let phi = |y: f64| y + beta * pow(y) * y;
    // The primal step starts Newton where it is an upper bound of the root on the target's side
    // (monotone decrease from there); otherwise the upper bound min(tau, (tau/beta)^(1/(p-1))).
    let mut y = if primal * sign > 0.0 && phi(primal.abs()) >= size {
        primal.abs()
    } else {
        size.min((size / beta).powf(1.0 / (p - 1.0)))
    };
    for _ in 0..100 {
        let step = (phi(y) - size) / (1.0 + beta * (p - 1.0) * pow(y));
        let next = (y - step).max(0.0);
        let done = (next - y).abs() <= 1e-12 * next;
        y = next;
        if done {
            break;
        }
    }
    let exact = if size == 0.0 { 0.0 } else { sign * y / sp.k };
    (exact, primal / sp.k)
}

/// `e` as an even integer exponent when it is one (0, 2, 4, ..., up to 64): `|x|^e = x^e` is then
/// computed by multiplications, exactly and without `powf`.
fn integer_power(e: f64) -> Option<i32> {
    (e.fract() == 0.0 && (0.0..=64.0).contains(&e) && (e as i32) % 2 == 0).then_some(e as i32)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};

    use super::*;
    use crate::optim::{Potential, WidthScaling};
    use crate::simd::Isa;
    use crate::test_support::{POTENTIALS, test_seed};

    type Step = fn(Isa, MirrorMap, Tensor<1>, Tensor<1>, f64) -> Tensor<1>;

    /// The AVX2 build of every kernel gives the baseline build's bits; each build is chosen
    /// per call. On a CPU without AVX2 it says so instead of comparing the baseline with itself.
    #[test]
    fn the_avx2_kernels_give_the_baseline_bits() {
        if Isa::detected() != Isa::Avx2 {
            println!("not run: this CPU has no AVX2");
            return;
        }
        let seed = test_seed(11);
        let mut state = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut uniform = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        // Weights across 1e-8..1 of both signs, exact zeros, and gradients up to large steps.
        let theta: Vec<f32> = (0..4099)
            .map(|i| match i % 7 {
                0 => 0.0,
                k => uniform() * 10f32.powi(-k),
            })
            .collect();
        let grad: Vec<f32> = (0..4099)
            .map(|i| uniform() * [1.0, 50.0, 0.0][i % 3])
            .collect();
        let device = Device::flex();
        let tensor =
            |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device);
        let bits = |t: Tensor<1>| -> Vec<u32> {
            t.into_data()
                .try_to_vec::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        for potential in POTENTIALS.into_iter().chain([Potential::PHomogeneous {
            p: 2.5,
            lambda: 0.1,
        }]) {
            let map = MirrorMap::new(potential, WidthScaling::FanIn, 512);
            for lr in [1e-3, 0.1] {
                let steps: [(&str, Step); 2] = [("primal", primal_step_on), ("dual", dual_step_on)];
                for (name, step) in steps {
                    let run = |isa| bits(step(isa, map, tensor(&theta), tensor(&grad), lr));
                    assert_eq!(
                        run(Isa::Avx2),
                        run(Isa::Baseline),
                        "{potential:?} {name} at lr {lr} (seed {seed})"
                    );
                }
            }
        }
    }
}
