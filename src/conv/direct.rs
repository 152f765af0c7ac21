//! The direct 3x3 convolution for CPUs with AVX-512: no im2col matrix and no GEMM packing.
//!
//! One image at a time, the input is copied once into zero-padded planes of `(height + 2) x
//! (width + 2)` values. An output computed on the same padded grid (`height` rows of `width + 2`
//! positions, the last two of each row discarded) reads tap `(kh, kw)` of every position at one
//! fixed offset, `kh * (width + 2) + kw`, so sixteen consecutive positions are one unaligned
//! vector load. A tile of 48 positions (three vectors) by 8 output channels keeps its 24
//! accumulators in registers over all `in_channels x 9` taps: per tap, 3 loads and 8 broadcast
//! weights feed 24 fused multiply-adds. The im2col + GEMM path copies every input value nine
//! times and the GEMM packs that copy again; on the 16- and 32-pixel-wide layers, where each
//! copied value feeds only 8-128 output channels, those copies cost ~25% of the convolution
//! (`bench --parts conv`, AVX-512 machine).
//!
//! Written with `std::arch` intrinsics: the tile must stay in registers, which is not something
//! the autovectorizer guarantees, and no crate offers a 3x3 convolution kernel. The summation
//! order is fixed (channel, then tap), so results are deterministic.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use super::kernels::ConvShape;

/// Output channels per tile.
const CHANNELS: usize = 8;
/// Vectors of 16 positions per tile.
const VECTORS: usize = 3;
/// Positions per tile.
const POSITIONS: usize = 16 * VECTORS;
/// The narrowest image the direct kernel is used for: below 16 pixels the two discarded
/// positions per row and the partial last tile waste a quarter or more of the work, and the
/// im2col + GEMM path (whose copies matter little with 128-512 channels) is faster.
const MIN_WIDTH: usize = 16;
/// The fewest input channels the direct kernel is used for: with 3 (VGG's first layer) the
/// im2col matrix is small and the GEMM writes the output in place, 1.5x faster than the direct
/// kernel with its staging copy.
const MIN_IN_CHANNELS: usize = 8;

/// Whether this CPU runs the direct kernel (AVX-512F, detected once).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AVX512: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVX512.get_or_init(|| std::is_x86_feature_detected!("avx512f"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether [`super::kernels::forward_with`] takes the direct path for `shape` on this CPU
/// (never with `MIRRORBURN_CONV=gemm`, which keeps im2col + GEMM for comparisons).
pub fn suits(shape: &ConvShape) -> bool {
    static GEMM_ONLY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let gemm_only = *GEMM_ONLY.get_or_init(|| {
        std::env::var(super::CONV_VARIABLE).is_ok_and(|value| value.eq_ignore_ascii_case("gemm"))
    });
    !gemm_only && available() && shape.width >= MIN_WIDTH && shape.in_channels >= MIN_IN_CHANNELS
}

/// The geometry of one padded image of a shape.
#[derive(Clone, Copy, Debug)]
pub struct Grid {
    /// Positions per padded row: `width + 2`.
    pub row: usize,
    /// Output positions computed per image: `height` padded rows, rounded up to whole tiles.
    pub positions: usize,
    /// Values per padded input plane: every tap of every computed position lies inside it.
    pub plane: usize,
}

impl Grid {
    /// The grid of `shape`.
    pub fn of(shape: &ConvShape) -> Self {
        let row = shape.width + 2;
        let positions = (shape.height * row).div_ceil(POSITIONS) * POSITIONS;
        Self {
            row,
            positions,
            plane: positions + 2 * row + 2,
        }
    }
}

/// The weights `[out, in, 3, 3]` rearranged for the kernel: per block of eight output
/// channels, per input channel and tap, the block's weights side by side (zero past the last
/// output channel).
#[derive(Clone, Debug)]
pub struct Weights {
    values: Vec<f32>,
    in_channels: usize,
    out_channels: usize,
}

impl Weights {
    /// Rearranges `weight` (`[out_channels, in_channels, 3, 3]`); with `flipped`, the weights of
    /// the transposed convolution instead (`[in, out]` swapped, taps mirrored in space), as
    /// the input gradient needs.
    pub fn new(weight: &[f32], shape: &ConvShape, flipped: bool) -> Self {
        let (cin, cout) = (shape.in_channels, shape.out_channels);
        assert_eq!(weight.len(), cout * cin * 9, "weight size");
        let (ins, outs) = if flipped { (cout, cin) } else { (cin, cout) };
        let blocks = outs.div_ceil(CHANNELS);
        let mut values = vec![0.0f32; blocks * ins * 9 * CHANNELS];
        for (index, v) in values.iter_mut().enumerate() {
            let (o, rest) = (index % CHANNELS, index / CHANNELS);
            let (tap, rest) = (rest % 9, rest / 9);
            let (c, block) = (rest % ins, rest / ins);
            let o = block * CHANNELS + o;
            if o < outs {
                *v = if flipped {
                    weight[(c * cin + o) * 9 + 8 - tap]
                } else {
                    weight[(o * cin + c) * 9 + tap]
                };
            }
        }
        Self {
            values,
            in_channels: ins,
            out_channels: outs,
        }
    }
}

/// Copies one image `[in_channels, height, width]` into `padded` (`in_channels` planes of
/// [`Grid::plane`] values): the image at row 1, column 1 of each plane, zero around it.
pub fn pad(image: &[f32], shape: &ConvShape, grid: &Grid, padded: &mut [f32]) {
    let (h, w) = (shape.height, shape.width);
    assert_eq!(padded.len(), shape.in_channels * grid.plane, "padded size");
    for (plane, source) in padded
        .chunks_exact_mut(grid.plane)
        .zip(image.chunks_exact(h * w))
    {
        // Row 0 and column 0 of row 1, then per image row its values and the two zeros that
        // end it and start the next, then the bottom row and the slack.
        plane[..grid.row + 1].fill(0.0);
        for (y, row) in source.chunks_exact(w).enumerate() {
            let at = (y + 1) * grid.row + 1;
            plane[at..][..w].copy_from_slice(row);
            plane[at + w..][..2].fill(0.0);
        }
        plane[(h + 1) * grid.row + 1..].fill(0.0);
    }
}

/// The convolution sums of one padded image (`padded`, from [`pad`]) with `weights`, into
/// `sums`: `out_channels` planes of [`Grid::positions`] values, row `y` of the output at
/// `y * grid.row` (its last two positions, and those past `height` rows, are not outputs).
///
/// # Panics
/// Where [`available`] is false, or the slices do not fit the shapes.
pub fn convolve(padded: &[f32], weights: &Weights, grid: &Grid, sums: &mut [f32]) {
    let (cin, cout) = (weights.in_channels, weights.out_channels);
    assert!(available(), "the direct convolution needs AVX-512F");
    assert_eq!(padded.len(), cin * grid.plane, "padded size");
    assert_eq!(sums.len(), cout * grid.positions, "sums size");
    assert_eq!(grid.positions % POSITIONS, 0, "whole tiles");
    let block_len = cin * 9 * CHANNELS;
    for start in (0..grid.positions).step_by(POSITIONS) {
        for (block, taps) in weights.values.chunks_exact(block_len).enumerate() {
            let first = block * CHANNELS;
            let channels = CHANNELS.min(cout - first);
            let sums = &mut sums[first * grid.positions..][..channels * grid.positions];
            // SAFETY: AVX-512F is present (asserted above). The tile reads, for each input
            // channel c and tap offset kh * row + kw <= 2 * row + 2, the values
            // c * plane + start + offset .. + POSITIONS, inside `padded` because
            // start + POSITIONS <= positions = plane - 2 * row - 2; it reads
            // cin * 9 * CHANNELS weights from `taps`, and writes `channels` rows of
            // POSITIONS values at start, inside `sums` (start + POSITIONS <= positions).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                tile(padded, start, grid, taps, cin, sums, channels);
            }
        }
    }
}

/// One tile: [`POSITIONS`] positions from `start` by `channels` (at most [`CHANNELS`]) output
/// channels, summed over `cin` channels and 9 taps.
///
/// # Safety
/// AVX-512F must be present, and the bounds listed in [`convolve`] must hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile(
    padded: &[f32],
    start: usize,
    grid: &Grid,
    taps: &[f32],
    cin: usize,
    sums: &mut [f32],
    channels: usize,
) {
    let offsets = [0, 1, 2].map(|kh| [0, 1, 2].map(|kw| kh * grid.row + kw));
    let mut acc: [[__m512; VECTORS]; CHANNELS] = [[_mm512_setzero_ps(); VECTORS]; CHANNELS];
    let base = padded.as_ptr().wrapping_add(start);
    let mut weights = taps.as_ptr();
    for c in 0..cin {
        let plane = base.wrapping_add(c * grid.plane);
        for offset in offsets.iter().flatten() {
            let at = plane.wrapping_add(*offset);
            // SAFETY: in bounds by the caller's contract.
            let inputs: [__m512; VECTORS] =
                std::array::from_fn(|v| unsafe { _mm512_loadu_ps(at.add(16 * v)) });
            for (o, row) in acc.iter_mut().enumerate() {
                // SAFETY: CHANNELS weights per tap, inside `taps` by the caller's contract.
                let w = _mm512_set1_ps(unsafe { *weights.add(o) });
                for (sum, input) in row.iter_mut().zip(&inputs) {
                    *sum = _mm512_fmadd_ps(*input, w, *sum);
                }
            }
            weights = weights.wrapping_add(CHANNELS);
        }
    }
    for (o, row) in acc.iter().enumerate().take(channels) {
        let out = sums[o * grid.positions + start..][..POSITIONS].as_mut_ptr();
        for (v, sum) in row.iter().enumerate() {
            // SAFETY: `out` holds POSITIONS values.
            unsafe { _mm512_storeu_ps(out.add(16 * v), *sum) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closeness::Closeness;
    use crate::conv::test_support::TOLERANCE;
    use crate::test_support::test_seed;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    /// The convolution sums at every output position, in f64 from the definition: `[out,
    /// height, width]` of one image `[in, height, width]` (transposed and flipped with
    /// `flipped`, as [`Weights::new`]).
    fn reference(image: &[f32], weight: &[f32], shape: &ConvShape, flipped: bool) -> Vec<f32> {
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

    /// [`pad`] and [`convolve`], with the outputs taken off the padded grid.
    fn direct(image: &[f32], weight: &[f32], shape: &ConvShape, flipped: bool) -> Vec<f32> {
        let (h, w) = (shape.height, shape.width);
        let weights = Weights::new(weight, shape, flipped);
        let ins = weights.in_channels;
        let read = ConvShape {
            in_channels: ins,
            ..*shape
        };
        let grid = Grid::of(&read);
        let mut padded = vec![f32::NAN; ins * grid.plane];
        pad(image, &read, &grid, &mut padded);
        let mut sums = vec![f32::NAN; weights.out_channels * grid.positions];
        convolve(&padded, &weights, &grid, &mut sums);
        sums.chunks_exact(grid.positions)
            .flat_map(|plane| (0..h).flat_map(move |y| plane[y * grid.row..][..w].to_vec()))
            .collect()
    }

    fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    #[test]
    fn the_direct_kernel_equals_the_definition_on_odd_shapes() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512F, so the direct kernel never runs here");
            return;
        }
        let seed = test_seed(31);
        let mut rng = StdRng::seed_from_u64(seed);
        // Channel counts around the 8-channel blocks, sizes around the 48-position tiles.
        for (cin, cout, h, w) in [
            (1, 1, 1, 1),
            (3, 5, 2, 7),
            (9, 8, 5, 3),
            (8, 17, 16, 16),
            (13, 9, 7, 33),
            (16, 16, 32, 32),
        ] {
            let shape = ConvShape {
                batch: 1,
                in_channels: cin,
                out_channels: cout,
                height: h,
                width: w,
            };
            let weight = random(cout * cin * 9, &mut rng);
            for flipped in [false, true] {
                let ins = if flipped { cout } else { cin };
                let mut image = random(ins * h * w, &mut rng);
                let expected = reference(&image, &weight, &shape, flipped);
                let actual = direct(&image, &weight, &shape, flipped);
                let context = format!("seed {seed}, {cin}-{cout}@{h}x{w}, flipped {flipped}");
                if let Err(why) = Closeness::between_f32(&expected, &actual).check(TOLERANCE) {
                    panic!("{context}: {why}");
                }
                // A NaN reaches exactly the outputs whose window holds it.
                image[0] = f32::NAN;
                let expected = reference(&image, &weight, &shape, flipped);
                let actual = direct(&image, &weight, &shape, flipped);
                let nan = |v: &[f32]| v.iter().map(|x| x.is_nan()).collect::<Vec<_>>();
                assert_eq!(nan(&actual), nan(&expected), "{context}: NaN positions");
            }
        }
    }
}
