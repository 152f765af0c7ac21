//! Checks of our convolution against Burn's, for this module's and the model's tests.

use burn::tensor::{Device, Distribution, Tensor};

use super::{conv3x3, conv3x3_options};

/// Both compute the same sums of products in a different order. The f32 rounding of sums of up
/// to 4,608 terms (forward, input gradient) or batch x 1,024 terms (weight gradient) gives
/// relative differences of ~1e-6 (measured); this bound leaves a margin of ten.
pub const TOLERANCE: f32 = 2e-5;

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
    tensor.into_data().try_to_vec::<f32>().expect("f32")
}

/// The largest difference relative to the largest magnitude of `expected`.
pub fn relative_error(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len());
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = actual
        .iter()
        .zip(expected)
        .fold(0f32, |m, (a, e)| m.max((a - e).abs()));
    worst / scale.max(f32::MIN_POSITIVE)
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
        let error = relative_error(a, b);
        assert!(
            error <= TOLERANCE,
            "{context}: {part} of {cin}->{cout}@{side}, batch {batch}: relative error {error:e}"
        );
    }
}
