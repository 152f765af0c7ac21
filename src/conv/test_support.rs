//! Checks of our convolution against Burn's, for this module's and the model's tests.

use burn::tensor::{Device, Distribution, Tensor};

use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;

use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::kernels::ConvShape;
use super::vector::{self, Isa};
use super::{conv3x3, conv3x3_options, conv3x3_relu};
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
pub fn conv_and_grads(
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

/// What follows the convolution in a comparison: nothing ([`conv3x3`]), or ReLU with or
/// without a 2x2 max pool ([`conv3x3_relu`]).
#[derive(Clone, Copy, Debug)]
pub enum Block {
    /// The convolution alone.
    Conv,
    /// Convolution and ReLU.
    Relu,
    /// Convolution, ReLU and 2x2 max pool.
    ReluPool,
}

impl Block {
    /// Ours: [`conv3x3`] or [`conv3x3_relu`].
    pub fn ours(self, x: Tensor<4>, w: Tensor<4>, b: Option<Tensor<1>>) -> Tensor<4> {
        match self {
            Block::Conv => conv3x3(x, w, b),
            Block::Relu => conv3x3_relu(x, w, b, false),
            Block::ReluPool => conv3x3_relu(x, w, b, true),
        }
    }

    /// Burn's `conv2d`, then its `relu` and `max_pool2d`.
    pub fn burns(self, x: Tensor<4>, w: Tensor<4>, b: Option<Tensor<1>>) -> Tensor<4> {
        let out = burn::tensor::module::conv2d(x, w, b, conv3x3_options());
        match self {
            Block::Conv => out,
            Block::Relu => relu(out),
            Block::ReluPool => max_pool2d(relu(out), MaxPoolOptions::new([2, 2])),
        }
    }

    /// The output's image side for an input side `side`.
    fn out_side(self, side: usize) -> usize {
        match self {
            Block::ReluPool => side / 2,
            _ => side,
        }
    }
}

/// Below this share of the largest sum, whether a sum is positive or the largest of its pooling
/// window can depend on the summation order: 100 times the rounding differences measured (see
/// [`TOLERANCE`]).
const UNSETTLED: f32 = 1e-4;

/// 1 at each output of `block` whose ReLU sign and pooling maximum are settled, 0 where they
/// depend on rounding (a sum within [`UNSETTLED`] of the peak of 0, or of its window's runner-up),
/// from Burn's sums. Multiplying the output gradient by it compares the backward passes only
/// where both implementations must route the gradient the same way: elsewhere one ulp of
/// difference in a sum sends the whole gradient another way in either.
fn settled(block: Block, x: &Tensor<4>, w: &Tensor<4>) -> Tensor<4> {
    let sums = burn::tensor::module::conv2d(
        x.clone().inner(),
        w.clone().inner(),
        None,
        conv3x3_options(),
    );
    let [batch, channels, side, _] = sums.dims();
    let sums = values(sums);
    let peak = sums.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let near = |a: f32, b: f32| (a - b).abs() <= UNSETTLED * peak;
    let out_side = block.out_side(side);
    let mut mask = Vec::with_capacity(batch * channels * out_side * out_side);
    for plane in sums.chunks_exact(side * side) {
        for (y, x) in (0..out_side).flat_map(|y| (0..out_side).map(move |x| (y, x))) {
            let keep = match block {
                Block::Conv => true,
                Block::Relu => !near(plane[y * side + x], 0.0),
                Block::ReluPool => {
                    let mut window: Vec<f32> = [(0, 0), (0, 1), (1, 0), (1, 1)]
                        .iter()
                        .map(|(dy, dx)| plane[(2 * y + dy) * side + 2 * x + dx])
                        .collect();
                    window.sort_by(|a, b| b.total_cmp(a));
                    !near(window[0], 0.0) && !near(window[0], window[1])
                }
            };
            mask.push(if keep { 1.0 } else { 0.0 });
        }
    }
    let dims = [batch, channels, out_side, out_side];
    Tensor::from_data(burn::tensor::TensorData::new(mask, dims), &x.device())
}

/// Asserts that forward, input gradient and weight gradient of `block` with our kernels equal
/// Burn's ops within [`TOLERANCE`] for random inputs of `(batch, in, out, side)` on the
/// autodiff `device`; `context` goes into the failure message.
pub fn assert_block_matches_burn(
    block: Block,
    (batch, cin, cout, side): (usize, usize, usize, usize),
    device: &Device,
    context: &str,
) {
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<4>::random([batch, cin, side, side], normal, device);
    let w = Tensor::<4>::random([cout, cin, 3, 3], normal, device);
    let out_side = block.out_side(side);
    let r = Tensor::<4>::random([batch, cout, out_side, out_side], normal, device);
    let r = r * settled(block, &x, &w);
    let ours = conv_and_grads(|x, w| block.ours(x, w, None), &x, &w, &r);
    let burns = conv_and_grads(|x, w| block.burns(x, w, None), &x, &w, &r);
    for (part, (a, b)) in ["forward", "input gradient", "weight gradient"]
        .iter()
        .zip(ours.iter().zip(&burns))
    {
        assert_close(
            a,
            b,
            &format!("{context}: {part} of {block:?} {cin}->{cout}@{side}, batch {batch}"),
        );
    }
}

/// The convolution sums at every output position, in f64 from the definition: `[out,
/// height, width]` of one image `[in, height, width]` (transposed and flipped with
/// `flipped`, as the input gradient needs).
pub fn reference(image: &[f32], weight: &[f32], shape: &ConvShape, flipped: bool) -> Vec<f32> {
    let (h, w, cin, cout) = (
        shape.height,
        shape.width,
        shape.in_channels,
        shape.out_channels,
    );
    let (ins, outs) = if flipped { (cout, cin) } else { (cin, cout) };
    let mut out = vec![0.0f32; outs * h * w];
    for o in 0..outs {
        for y in 0..h {
            for x in 0..w {
                let mut sum = 0.0f64;
                for c in 0..ins {
                    for (tap, (kh, kw)) in (0..3)
                        .flat_map(|kh| (0..3).map(move |kw| (kh, kw)))
                        .enumerate()
                    {
                        let (sy, sx) = ((y + kh).wrapping_sub(1), (x + kw).wrapping_sub(1));
                        if sy < h && sx < w {
                            let weight = if flipped {
                                weight[(c * cin + o) * 9 + 8 - tap]
                            } else {
                                weight[(o * cin + c) * 9 + tap]
                            };
                            sum += f64::from(image[(c * h + sy) * w + sx]) * f64::from(weight);
                        }
                    }
                }
                out[(o * h + y) * w + x] = sum as f32;
            }
        }
    }
    out
}

/// `len` values uniform in [-1, 1).
pub fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// A generator seeded with `seed` where this CPU runs the AVX-512 kernels; elsewhere `None`,
/// after a note that the test of `kernel` is skipped (the kernel never runs there).
pub fn rng_if_avx512(kernel: &str, seed: u64) -> Option<StdRng> {
    if vector::detected() == Some(Isa::Avx512) {
        return Some(StdRng::seed_from_u64(seed));
    }
    eprintln!("skipped: this CPU runs no AVX-512 kernels, so {kernel} never runs here");
    None
}

/// Every instruction set this CPU runs `kernel` on, widest first (on an AVX-512 CPU the AVX2
/// tiles too, which AVX2-only CPUs run), and a generator seeded with `seed`. With none (no AVX2
/// + FMA), a note that the test is skipped.
pub fn isas_of_this_cpu(kernel: &str, seed: u64) -> (Vec<Isa>, StdRng) {
    let isas: Vec<Isa> = Isa::ALL
        .into_iter()
        .filter(|isa| isa.on_this_cpu())
        .collect();
    if isas.is_empty() {
        eprintln!("skipped: this CPU has neither AVX-512F nor AVX2 + FMA, so {kernel} never runs");
    }
    (isas, StdRng::seed_from_u64(seed))
}

/// `run` on every instruction set in `isas`: each result within [`TOLERANCE`] of `expected`,
/// and all of them equal bit for bit (each lane sums in the same order on every instruction
/// set). Panics naming `context` and the instruction set otherwise.
pub fn check_every_isa(
    isas: &[Isa],
    expected: &[f32],
    context: &str,
    run: impl Fn(Isa) -> Vec<f32>,
) {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut first: Option<Vec<u32>> = None;
    for &isa in isas {
        let actual = run(isa);
        assert_close(&actual, expected, &format!("{context}, {isa:?}"));
        let first = first.get_or_insert_with(|| bits(&actual));
        assert!(
            bits(&actual) == *first,
            "{context}: {isa:?} differs from {:?}",
            isas[0]
        );
    }
}
