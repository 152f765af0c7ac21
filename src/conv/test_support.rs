//! Checks of our convolution against Burn's, for this module's and the model's tests.

use burn::tensor::{Device, Distribution, Tensor};

use super::{conv3x3, conv3x3_options};
use crate::closeness::{Closeness, Tolerance};
use crate::device_read::read_data;

/// Both compute the same sums of products in a different order. The f32 rounding of sums of up
/// to 4,608 terms (forward, input gradient) or batch x 1,024 terms (weight gradient) gives
/// differences of ~1e-6 of the largest value (measured); the peak bound leaves a margin of ten.
/// Per element (values at least 1e-3 of the peak) the same absolute rounding is up to ~1e-3 of
/// the value.
pub const TOLERANCE: Tolerance = Tolerance {
    peak: 2e-5,
    element: 1e-2,
};

/// Output, input gradient and weight gradient of `conv(x, w)` under the loss `sum(conv * r)`.
fn conv_and_grads(
    conv: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
    x: &Tensor<4>,
    w: &Tensor<4>,
    r: &Tensor<4>,
) -> [Vec<f32>; 3] {
    let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
    let out = conv(x.clone(), w.clone());
    let grads = (out.clone() * r.clone()).sum().backward();
    [
        values(out.inner()),
        values(x.grad(&grads).expect("input gradient")),
        values(w.grad(&grads).expect("weight gradient")),
    ]
}

/// The f32 values of a tensor.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    read_data(tensor).try_to_vec::<f32>().expect("f32")
}

/// Asserts that `actual` equals `expected` within [`TOLERANCE`], element by element (a NaN or
/// infinity where `expected` is finite always fails); `context` names the comparison.
pub fn assert_close(actual: &[f32], expected: &[f32], context: &str) {
    if let Err(why) = Closeness::between_f32(expected, actual).check(TOLERANCE) {
        panic!("{context}: {why}");
    }
}

/// Asserts that forward, input gradient and weight gradient of [`conv3x3`] equal Burn's
/// `conv2d` within [`TOLERANCE`] for random inputs of `(batch, in, out, side)` on the autodiff
/// `device`; `context` goes into the failure message.
pub fn assert_conv_matches_burn(
    (batch, cin, cout, side): (usize, usize, usize, usize),
    device: &Device,
    context: &str,
) {
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<4>::random([batch, cin, side, side], normal, device);
    let w = Tensor::<4>::random([cout, cin, 3, 3], normal, device);
    let r = Tensor::<4>::random([batch, cout, side, side], normal, device);
    let ours = conv_and_grads(|x, w| conv3x3(x, w, None), &x, &w, &r);
    let burns = conv_and_grads(
        |x, w| burn::tensor::module::conv2d(x, w, None, conv3x3_options()),
        &x,
        &w,
        &r,
    );
    for (part, (a, b)) in ["forward", "input gradient", "weight gradient"]
        .iter()
        .zip(ours.iter().zip(&burns))
    {
        assert_close(
            a,
            b,
            &format!("{context}: {part} of {cin}->{cout}@{side}, batch {batch}"),
        );
    }
}
