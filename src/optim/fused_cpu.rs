//! One-pass elementwise updates for tensors in host memory (the `flex` CPU backend).
//!
//! Burn's CPU backend runs each tensor operation as its own pass over memory, so a primal mirror
//! step written with tensor ops (square, add, sqrt, multiply, subtract, ...) costs several times
//! an SGD step. For f32 tensors on `flex` the update is applied here in a single parallel pass over
//! the tensor's own buffer instead. GPU backends keep the tensor ops, which Burn fuses itself.

use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

/// Elements per parallel chunk.
const CHUNK: usize = 1 << 15;

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
    theta: Tensor<D>,
    grad: Tensor<D>,
    update: impl Fn(f32, f32) -> f32 + Sync,
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
        .for_each(|(t, g)| {
            for (t, &g) in t.iter_mut().zip(g) {
                *t = update(*t, g);
            }
        });
    Tensor::<D>::from_data(values, &device).reshape(shape)
}

/// How to raise `|t|` to a fixed power `e >= 0` inside a one-pass kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Power {
    /// `e = 2^k` with `k >= 1`: `k` exact squarings.
    Squarings(u32),
    /// Any other exponent: `powf`.
    General(f32),
}

impl Power {
    /// The cheapest exact way to compute `|t|^e`.
    pub fn of(e: f64) -> Self {
        if e.fract() == 0.0 && e >= 2.0 && (e as u64).is_power_of_two() {
            Power::Squarings((e as u64).trailing_zeros())
        } else {
            Power::General(e as f32)
        }
    }
}

/// `t^(2^K)` by `K` squarings; a constant `K` lets the loop unroll and vectorise.
pub fn squarings<const K: u32>(t: f32) -> f32 {
    let mut out = t;
    for _ in 0..K {
        out *= out;
    }
    out
}
