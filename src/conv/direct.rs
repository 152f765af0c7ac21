//! The direct 3x3 convolution for CPUs with AVX-512 or AVX2 + FMA: no im2col matrix and no GEMM
//! packing.
//!
//! One image at a time, the input is copied once into zero-padded planes of `height + 2` rows of
//! `width + 1` values (one zero column serves as the right border of a row and the left border
//! of the next). An output computed on the same padded grid (`height` rows of `width + 1`
//! positions, the last of each row discarded) reads tap `(kh, kw)` of every position at one
//! fixed offset, `kh * (width + 1) + kw`, so sixteen consecutive positions are one unaligned
//! vector load. A tile of 48 positions (three vectors) by 8 output channels keeps its 24
//! accumulators in registers over all `in_channels x 9` taps: per tap, 3 loads and 8 broadcast
//! weights feed 24 fused multiply-adds (on AVX2, with half the registers, the tile runs as four
//! parts of 2 channels by 6 vectors of 8 positions). The im2col + GEMM path copies every input
//! value nine times and the GEMM packs that copy again; on the 16- and 32-pixel-wide layers,
//! where each copied value feeds only 8-128 output channels, those copies cost ~25% of the
//! convolution (`bench --parts conv`, AVX-512 machine).
//!
//! The weight gradient ([`add_weight_grad`]) puts the output gradient on the same grid (zero at
//! the discarded positions) and sums, per tile of 3 output channels and one input channel, the
//! products for all 9 taps in 27 register accumulators, then across lanes. Its lane sums and 12
//! loads per 27 multiply-adds make it worth it only with few output channels (width/8); it needs
//! AVX-512's 32 registers.
//!
//! Written with `std::arch` intrinsics: the tile must stay in registers, which is not something
//! the autovectorizer guarantees, and no crate offers a 3x3 convolution kernel. The summation
//! order is fixed (channel, then tap), so results are deterministic and the same on AVX-512 and
//! AVX2.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m256, __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_reduce_add_ps, _mm512_setzero_ps,
};

use super::kernels::{ConvShape, for_each_chunk, zeros};
use super::vector::{self, Isa, Vector};

/// Output channels per tile.
const CHANNELS: usize = 8;
/// Positions per tile: 3 AVX-512 vectors, 6 AVX2 ones.
const POSITIONS: usize = 48;
/// The narrowest image the direct kernel is used for: below 16 pixels the discarded positions
/// (with two per row then) and the partial last tile waste a quarter or more of the work, and the
/// im2col + GEMM path (whose copies matter little with 128-512 channels) is faster (with 8:
/// 128-256@8 forward 12.6 -> 19.2 ms, 256-256@8 25.5 -> 36-44 ms, `bench --parts conv`).
const MIN_WIDTH: usize = 16;
/// The fewest input channels the direct kernel is used for: with 3 (VGG's first layer) the
/// im2col matrix is small and the GEMM writes the output in place, 1.5x faster than the direct
/// kernel with its staging copy.
const MIN_IN_CHANNELS: usize = 8;

/// Whether this CPU runs the direct kernel: AVX-512F or AVX2 + FMA (detected once).
pub fn available() -> bool {
    vector::detected().is_some()
}

/// The most output channels the direct weight gradient is used for: from 64 up (full width)
/// the GEMM on the transposed im2col is as fast or faster (the tile's lane sums and its 12
/// loads per 27 multiply-adds cost more than the im2col saves); with 8-16 (width/8) the direct
/// one takes half the time.
const MAX_GRAD_OUT_CHANNELS: usize = 32;

/// Whether [`super::kernels::weight_grad`] takes the direct path for `shape` and input `x`:
/// [`suits`], AVX-512F (its tile's 27 accumulators do not fit AVX2's 16 registers), at most 32
/// output channels, and every input finite (see `finite`).
pub fn suits_weight_grad(shape: &ConvShape, x: &[f32]) -> bool {
    suits(shape)
        && vector::detected() == Some(Isa::Avx512)
        && shape.out_channels <= MAX_GRAD_OUT_CHANNELS
        && finite(x)
}

/// The most input and output channels the direct kernel is used for on AVX2: with 64-128 the
/// tile's parts (8 loads per 12 multiply-adds, half of them split across cache lines) run
/// slower than the GEMM's microkernel, which is near the FMA units' peak on AVX2 (128-128@16
/// forward 42 ms by GEMM, 56 direct; 64-64@32 even), while with 8-16 channels, where the GEMM's
/// tiles are mostly edge and its copies weigh more, the direct kernel takes 20-40% less
/// (`bench --parts conv`, an AVX-512 CPU running the AVX2 build).
const AVX2_MAX_CHANNELS: usize = 32;

/// Whether [`super::kernels::forward_with`] takes the direct path for `shape` on this CPU
/// (never with `MIRRORBURN_CONV=gemm`, which keeps im2col + GEMM for comparisons).
pub fn suits(shape: &ConvShape) -> bool {
    let channels_fit = match vector::detected() {
        Some(Isa::Avx512) => true,
        Some(Isa::Avx2) => shape.in_channels.max(shape.out_channels) <= AVX2_MAX_CHANNELS,
        None => false,
    };
    !gemm_only() && channels_fit && shape.width >= MIN_WIDTH && shape.in_channels >= MIN_IN_CHANNELS
}

/// Whether `MIRRORBURN_CONV=gemm` asks for im2col + GEMM everywhere (read once).
pub(super) fn gemm_only() -> bool {
    static GEMM_ONLY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GEMM_ONLY.get_or_init(|| {
        std::env::var(super::CONV_VARIABLE).is_ok_and(|value| value.eq_ignore_ascii_case("gemm"))
    })
}

/// The geometry of one padded image of a shape.
#[derive(Clone, Copy, Debug)]
pub struct Grid {
    /// Positions per padded row: `width + 1`. One zero column ends each row and, read one
    /// position further, starts the next (the right neighbour of the last pixel of row `y` and
    /// the left neighbour of the first pixel of row `y + 1` are the same zero).
    pub row: usize,
    /// Output positions computed per image: `height` padded rows, rounded up to whole tiles.
    pub positions: usize,
    /// Values per padded input plane: every tap of every computed position lies inside it.
    pub plane: usize,
}

impl Grid {
    /// The grid of `shape`.
    pub fn of(shape: &ConvShape) -> Self {
        let row = shape.width + 1;
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
        let mut values = zeros(blocks * ins * 9 * CHANNELS);
        // Block by block, on rayon's pool from 64 Ki values (on one core: 0.27 ms at 128-128).
        for_each_chunk(&mut values, ins * 9 * CHANNELS, |block, panel| {
            let first = block * CHANNELS;
            for (c, taps) in panel.chunks_exact_mut(9 * CHANNELS).enumerate() {
                for (lane, o) in (first..outs.min(first + CHANNELS)).enumerate() {
                    for (tap, v) in taps.iter_mut().skip(lane).step_by(CHANNELS).enumerate() {
                        *v = if flipped {
                            weight[(c * cin + o) * 9 + 8 - tap]
                        } else {
                            weight[(o * cin + c) * 9 + tap]
                        };
                    }
                }
            }
        });
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
        // Row 0 and column 0 of row 1, then per image row its values and the zero that ends
        // it and starts the next, then the bottom row and the slack.
        plane[..grid.row + 1].fill(0.0);
        for (y, row) in source.chunks_exact(w).enumerate() {
            let at = (y + 1) * grid.row + 1;
            plane[at..][..w].copy_from_slice(row);
            plane[at + w..(y + 2) * grid.row + 1].fill(0.0);
        }
        plane[(h + 1) * grid.row + 1..].fill(0.0);
    }
}

/// The convolution sums of one padded image (`padded`, from [`pad`]) with `weights`, into
/// `sums`: `out_channels` planes of [`Grid::positions`] values, row `y` of the output at
/// `y * grid.row` (its last position, and those past `height` rows, are not outputs).
///
/// # Panics
/// Where [`available`] is false, or the slices do not fit the shapes.
pub fn convolve(padded: &[f32], weights: &Weights, grid: &Grid, sums: &mut [f32]) {
    let isa = vector::detected().expect("the direct convolution needs AVX-512F or AVX2 + FMA");
    convolve_on(isa, padded, weights, grid, sums);
}

/// [`convolve`] on `isa` (which this CPU must have): the tests run every one the CPU has.
pub(super) fn convolve_on(
    isa: Isa,
    padded: &[f32],
    weights: &Weights,
    grid: &Grid,
    sums: &mut [f32],
) {
    let (cin, cout) = (weights.in_channels, weights.out_channels);
    assert!(isa.on_this_cpu(), "{isa:?} is not available on this CPU");
    assert_eq!(padded.len(), cin * grid.plane, "padded size");
    assert_eq!(sums.len(), cout * grid.positions, "sums size");
    assert_eq!(grid.positions % POSITIONS, 0, "whole tiles");
    let block_len = cin * 9 * CHANNELS;
    for start in (0..grid.positions).step_by(POSITIONS) {
        for (block, taps) in weights.values.chunks_exact(block_len).enumerate() {
            let first = block * CHANNELS;
            let channels = CHANNELS.min(cout - first);
            let sums = &mut sums[first * grid.positions..][..channels * grid.positions];
            let tile = Tile {
                padded,
                start,
                grid,
                taps,
                cin,
            };
            // SAFETY: `isa` is this CPU's. The tile reads, for each input channel c and tap
            // offset kh * row + kw <= 2 * row + 2, the values c * plane + start + offset .. +
            // POSITIONS, inside `padded` because start + POSITIONS <= positions = plane - 2 *
            // row - 2; it reads cin * 9 * CHANNELS weights from `taps`, and writes `channels`
            // rows of POSITIONS values at start, inside `sums` (start + POSITIONS <= positions).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                match isa {
                    Isa::Avx512 => tile_avx512(&tile, sums, channels),
                    Isa::Avx2 => tile_avx2(&tile, sums, channels),
                }
            }
        }
    }
}

/// What every tile of one padded image and one block of [`CHANNELS`] output channels reads.
struct Tile<'a> {
    /// The padded image (from [`pad`]).
    padded: &'a [f32],
    /// The tile's first position.
    start: usize,
    /// The image's grid.
    grid: &'a Grid,
    /// The block's weights: per input channel and tap, [`CHANNELS`] side by side.
    taps: &'a [f32],
    /// Input channels.
    cin: usize,
}

/// A tile of [`POSITIONS`] positions by `channels` output channels on AVX-512: 8 channels by 3
/// vectors, 24 of the 32 registers.
///
/// # Safety
/// AVX-512F must be present, and the bounds listed in [`convolve`] must hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512(tile: &Tile, sums: &mut [f32], channels: usize) {
    // SAFETY: AVX-512F is present; the bounds hold (this function's contract).
    unsafe { part::<__m512, 8, 3>(tile, 0, sums, channels) };
}

/// The same tile on AVX2, as four parts of 2 channels by 6 vectors (12 of the 16 registers).
///
/// # Safety
/// AVX2 and FMA must be present, and the bounds listed in [`convolve`] must hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(tile: &Tile, sums: &mut [f32], channels: usize) {
    for lane in (0..channels).step_by(2) {
        let sums = &mut sums[lane * tile.grid.positions..];
        // SAFETY: AVX2 and FMA are present; the part's reads and writes lie inside the tile's
        // (this function's contract).
        unsafe { part::<__m256, 2, 6>(tile, lane, sums, (channels - lane).min(2)) };
    }
}

/// Part of a tile: `C` output channels (the block's from `lane`) by `N` vectors of positions,
/// summed over all input channels and taps in `C x N` registers, written to the first
/// `channels` rows of `sums` (rows [`Grid::positions`] apart, the tile's positions at
/// `tile.start`).
///
/// # Safety
/// `V`'s instruction set must be present; `lane + C <= CHANNELS`, `N * V::LANES ==
/// POSITIONS`, and the bounds listed in [`convolve`] must hold.
#[inline(always)]
unsafe fn part<V: Vector, const C: usize, const N: usize>(
    tile: &Tile,
    lane: usize,
    sums: &mut [f32],
    channels: usize,
) {
    let grid = tile.grid;
    let offsets = [0, 1, 2].map(|kh| [0, 1, 2].map(|kw| kh * grid.row + kw));
    // Loops, not closures, around the vector operations: a closure would not be compiled for
    // the caller's instruction set, and the intrinsics inside would become calls.
    // SAFETY (all vector operations): the instruction set is present, and every pointer
    // stays inside its slice, by this function's contract.
    let mut acc: [[V; N]; C] = [[unsafe { V::zero() }; N]; C];
    let base = tile.padded.as_ptr().wrapping_add(tile.start);
    let mut weights = tile.taps.as_ptr().wrapping_add(lane);
    for c in 0..tile.cin {
        let plane = base.wrapping_add(c * grid.plane);
        for offset in offsets.iter().flatten() {
            let at = plane.wrapping_add(*offset);
            if C < N {
                // Few channels by many vectors (AVX2's 16 registers): the C broadcast weights
                // first, then each input vector used as soon as it is loaded.
                let mut w = [unsafe { V::zero() }; C];
                for (o, w) in w.iter_mut().enumerate() {
                    *w = unsafe { V::splat(*weights.add(o)) };
                }
                for v in 0..N {
                    let input = unsafe { V::load(at.add(V::LANES * v)) };
                    for (row, w) in acc.iter_mut().zip(&w) {
                        row[v] = unsafe { input.mul_add(*w, row[v]) };
                    }
                }
            } else {
                // Many channels by few vectors (AVX-512): the N input vectors first, then each
                // broadcast weight used N times.
                let mut inputs = [unsafe { V::zero() }; N];
                for (v, input) in inputs.iter_mut().enumerate() {
                    *input = unsafe { V::load(at.add(V::LANES * v)) };
                }
                for (o, row) in acc.iter_mut().enumerate() {
                    let w = unsafe { V::splat(*weights.add(o)) };
                    for (sum, input) in row.iter_mut().zip(&inputs) {
                        *sum = unsafe { input.mul_add(w, *sum) };
                    }
                }
            }
            weights = weights.wrapping_add(CHANNELS);
        }
    }
    for (o, row) in acc.iter().enumerate().take(channels) {
        let out = sums[o * grid.positions + tile.start..][..POSITIONS].as_mut_ptr();
        for (v, sum) in row.iter().enumerate() {
            unsafe { sum.store(out.add(V::LANES * v)) };
        }
    }
}

/// Output channels per tile of the weight gradient: 3 x 9 taps = 27 accumulators.
pub const GRAD_CHANNELS: usize = 3;

/// Copies one image's output gradient `[out_channels, height, width]` onto the padded grid:
/// `out_channels` rounded up to [`GRAD_CHANNELS`] planes of [`Grid::positions`] values, zero at
/// every position that is not an output (and in the extra planes).
pub fn pad_grad(grad: &[f32], shape: &ConvShape, grid: &Grid, padded: &mut [f32]) {
    let (h, w) = (shape.height, shape.width);
    let planes = shape.out_channels.div_ceil(GRAD_CHANNELS) * GRAD_CHANNELS;
    assert_eq!(
        padded.len(),
        planes * grid.positions,
        "padded gradient size"
    );
    for (channel, plane) in padded.chunks_exact_mut(grid.positions).enumerate() {
        if channel >= shape.out_channels {
            plane.fill(0.0);
            continue;
        }
        let source = &grad[channel * h * w..][..h * w];
        for (y, row) in source.chunks_exact(w).enumerate() {
            plane[y * grid.row..][..w].copy_from_slice(row);
            plane[y * grid.row + w..(y + 1) * grid.row].fill(0.0);
        }
        plane[h * grid.row..].fill(0.0);
    }
}

/// Whether the direct weight gradient of input `x` equals the definition: every value finite.
/// The tiles also multiply the zero gradient of the positions that are not outputs with inputs
/// of the first and last columns; an infinite or NaN input there would give NaN where the
/// definition has no product (masking those positions made the tile twice as slow).
pub(super) fn finite(x: &[f32]) -> bool {
    // Blocks with a branch-free test inside, so that it vectorizes.
    x.chunks(256)
        .all(|block| block.iter().fold(true, |ok, v| ok & v.is_finite()))
}

/// Adds the weight gradient of `images` images to `dw` (`[out_channels, in_channels, 3, 3]`):
/// `padded` holds their inputs (each from [`pad`]), `grads` their output gradients (each from
/// [`pad_grad`]). Per tile of [`GRAD_CHANNELS`] output channels and one input channel, 27
/// accumulators run over all positions of all the images, then are summed across lanes.
///
/// # Panics
/// Where [`available`] is false, or the slices do not fit the shapes.
pub fn add_weight_grad(
    padded: &[f32],
    grads: &[f32],
    shape: &ConvShape,
    grid: &Grid,
    images: usize,
    dw: &mut [f32],
) {
    let (cin, cout) = (shape.in_channels, shape.out_channels);
    let planes = cout.div_ceil(GRAD_CHANNELS) * GRAD_CHANNELS;
    assert_eq!(
        vector::detected(),
        Some(Isa::Avx512),
        "the direct weight gradient needs AVX-512F"
    );
    assert_eq!(padded.len(), images * cin * grid.plane, "padded size");
    assert_eq!(
        grads.len(),
        images * planes * grid.positions,
        "padded gradient size"
    );
    assert_eq!(dw.len(), cout * cin * 9, "weight gradient size");
    assert_eq!(grid.positions % 16, 0, "whole vectors");
    for first in (0..cout).step_by(GRAD_CHANNELS) {
        for c in 0..cin {
            // SAFETY: AVX-512F is present (asserted above). Per image, the tile reads the
            // positions 0 .. positions of planes first .. first + GRAD_CHANNELS of its gradient
            // (first + GRAD_CHANNELS <= planes), and the values offset .. offset + positions of
            // input plane c, with offset <= 2 * row + 2 = plane - positions: all inside the
            // slices, whose sizes are asserted above.
            #[cfg(target_arch = "x86_64")]
            let sums = unsafe { weight_tile(padded, grads, grid, (cin, planes), images, first, c) };
            #[cfg(not(target_arch = "x86_64"))]
            let sums = [[0.0f32; 9]; GRAD_CHANNELS];
            for (o, taps) in sums.iter().enumerate().take(cout - first) {
                let at = ((first + o) * cin + c) * 9;
                dw[at..at + 9]
                    .iter_mut()
                    .zip(taps)
                    .for_each(|(d, t)| *d += t);
            }
        }
    }
}

/// The 27 sums of one weight-gradient tile: output channels `first ..` (+ [`GRAD_CHANNELS`]),
/// input channel `c`, nine taps, over all positions of `images` images.
///
/// # Safety
/// AVX-512F must be present, and the bounds listed in [`add_weight_grad`] must hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn weight_tile(
    padded: &[f32],
    grads: &[f32],
    grid: &Grid,
    (cin, planes): (usize, usize),
    images: usize,
    first: usize,
    c: usize,
) -> [[f32; 9]; GRAD_CHANNELS] {
    let offsets: [usize; 9] = std::array::from_fn(|tap| tap / 3 * grid.row + tap % 3);
    let mut acc = [[_mm512_setzero_ps(); 9]; GRAD_CHANNELS];
    for image in 0..images {
        let x = padded.as_ptr().wrapping_add((image * cin + c) * grid.plane);
        let g = grads
            .as_ptr()
            .wrapping_add((image * planes + first) * grid.positions);
        for j in (0..grid.positions).step_by(16) {
            let mut gs = [_mm512_setzero_ps(); GRAD_CHANNELS];
            for (o, gradient) in gs.iter_mut().enumerate() {
                // SAFETY: in bounds by the caller's contract.
                *gradient = unsafe { _mm512_loadu_ps(g.add(o * grid.positions + j)) };
            }
            // Constant bounds, so that both loops unroll and the accumulators stay in registers.
            #[allow(clippy::needless_range_loop)]
            for tap in 0..9 {
                // SAFETY: in bounds by the caller's contract.
                let input = unsafe { _mm512_loadu_ps(x.add(j + offsets[tap])) };
                for o in 0..GRAD_CHANNELS {
                    acc[o][tap] = _mm512_fmadd_ps(gs[o], input, acc[o][tap]);
                }
            }
        }
    }
    // SAFETY: AVX-512F is present (this function's contract).
    unsafe { lane_sums(&acc) }
}

/// The sum of the 16 lanes of each accumulator. Kept out of line: inlined, it made the compiler
/// keep the accumulators of [`weight_tile`]'s loop on the stack (twice the time).
///
/// # Safety
/// AVX-512F must be present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline(never)]
unsafe fn lane_sums(acc: &[[__m512; 9]; GRAD_CHANNELS]) -> [[f32; 9]; GRAD_CHANNELS] {
    let mut sums = [[0.0f32; 9]; GRAD_CHANNELS];
    for (sums, acc) in sums.iter_mut().zip(acc) {
        for (sum, acc) in sums.iter_mut().zip(acc) {
            *sum = _mm512_reduce_add_ps(*acc);
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closeness::Closeness;
    use crate::conv::test_support::{
        TOLERANCE, check_every_isa, isas_of_this_cpu, random, reference, rng_if_avx512,
    };
    use crate::test_support::test_seed;
    use rand::{SeedableRng, rngs::StdRng};

    /// [`pad`] and [`convolve_on`] `isa`, with the outputs taken off the padded grid.
    fn direct(
        isa: Isa,
        image: &[f32],
        weight: &[f32],
        shape: &ConvShape,
        flipped: bool,
    ) -> Vec<f32> {
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
        convolve_on(isa, &padded, &weights, &grid, &mut sums);
        sums.chunks_exact(grid.positions)
            .flat_map(|plane| (0..h).flat_map(move |y| plane[y * grid.row..][..w].to_vec()))
            .collect()
    }

    #[test]
    fn the_direct_kernel_equals_the_definition_on_odd_shapes() {
        let seed = test_seed(31);
        let (isas, mut rng) = isas_of_this_cpu("the direct kernel", seed);
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
                let context = format!("seed {seed}, {cin}-{cout}@{h}x{w}, flipped {flipped}");
                check_every_isa(&isas, &expected, &context, |isa| {
                    direct(isa, &image, &weight, &shape, flipped)
                });
                // A NaN reaches exactly the outputs whose window holds it.
                image[0] = f32::NAN;
                let expected = reference(&image, &weight, &shape, flipped);
                let nan = |v: &[f32]| v.iter().map(|x| x.is_nan()).collect::<Vec<_>>();
                for &isa in &isas {
                    let actual = direct(isa, &image, &weight, &shape, flipped);
                    assert_eq!(
                        nan(&actual),
                        nan(&expected),
                        "{context}, {isa:?}: NaN positions"
                    );
                }
            }
        }
    }

    /// The weight gradient `[out, in, 3, 3]` in f64 from the definition, for `x` `[batch, in,
    /// h, w]` and the output gradient `g` `[batch, out, h, w]`.
    fn reference_weight_grad(x: &[f32], g: &[f32], shape: &ConvShape) -> Vec<f32> {
        let (h, w, cin, cout) = (
            shape.height,
            shape.width,
            shape.in_channels,
            shape.out_channels,
        );
        let mut dw = vec![0.0f32; cout * cin * 9];
        for (index, d) in dw.iter_mut().enumerate() {
            let (o, c, tap) = (index / (cin * 9), index / 9 % cin, index % 9);
            let mut sum = 0.0f64;
            for image in 0..shape.batch {
                for y in 0..h {
                    for xx in 0..w {
                        let (sy, sx) = (
                            (y + tap / 3).wrapping_sub(1),
                            (xx + tap % 3).wrapping_sub(1),
                        );
                        if sy < h && sx < w {
                            let input = x[((image * cin + c) * h + sy) * w + sx];
                            sum += f64::from(g[((image * cout + o) * h + y) * w + xx])
                                * f64::from(input);
                        }
                    }
                }
            }
            *d = sum as f32;
        }
        dw
    }

    #[test]
    fn the_direct_weight_gradient_equals_the_definition() {
        let seed = test_seed(32);
        let Some(mut rng) = rng_if_avx512("the direct kernel", seed) else {
            return;
        };
        // Output channels around the 3-channel tiles, sizes around the 16-position vectors.
        for (batch, cin, cout, h, w) in [
            (1, 1, 1, 1, 1),
            (2, 3, 4, 3, 5),
            (3, 5, 7, 17, 16),
            (2, 8, 8, 32, 33),
        ] {
            let shape = ConvShape {
                batch,
                in_channels: cin,
                out_channels: cout,
                height: h,
                width: w,
            };
            let x = random(batch * cin * h * w, &mut rng);
            let g = random(batch * cout * h * w, &mut rng);
            let grid = Grid::of(&shape);
            let planes = cout.div_ceil(GRAD_CHANNELS) * GRAD_CHANNELS;
            let mut padded = vec![f32::NAN; batch * cin * grid.plane];
            let mut grads = vec![f32::NAN; batch * planes * grid.positions];
            for image in 0..batch {
                let x = &x[image * cin * h * w..][..cin * h * w];
                pad(
                    x,
                    &shape,
                    &grid,
                    &mut padded[image * cin * grid.plane..][..cin * grid.plane],
                );
                let g = &g[image * cout * h * w..][..cout * h * w];
                let at = image * planes * grid.positions;
                pad_grad(
                    g,
                    &shape,
                    &grid,
                    &mut grads[at..][..planes * grid.positions],
                );
            }
            let mut actual = vec![0.0f32; cout * cin * 9];
            add_weight_grad(&padded, &grads, &shape, &grid, batch, &mut actual);
            let expected = reference_weight_grad(&x, &g, &shape);
            if let Err(why) = Closeness::between_f32(&expected, &actual).check(TOLERANCE) {
                panic!("seed {seed}, {batch}x{cin}-{cout}@{h}x{w}: {why}");
            }
        }
    }

    /// A NaN in the first column (where the direct tiles would multiply it with the zero
    /// gradient of the positions that are not outputs) reaches only the weights the definition
    /// gives it: [`kernels::weight_grad`] takes the GEMM path for such an input.
    #[test]
    fn a_nan_at_the_border_reaches_the_weight_gradient_as_in_the_definition() {
        let seed = test_seed(33);
        let mut rng = StdRng::seed_from_u64(seed);
        let shape = ConvShape {
            batch: 2,
            in_channels: 8,
            out_channels: 8,
            height: 16,
            width: 16,
        };
        let mut x = random(2 * 8 * 256, &mut rng);
        let g = random(2 * 8 * 256, &mut rng);
        x[(8 + 3) * 256 + 5 * 16] = f32::NAN; // image 1, channel 3, row 5, column 0
        let expected = reference_weight_grad(&x, &g, &shape);
        let actual = super::super::kernels::weight_grad(&x, &g, &shape);
        let nan = |v: &[f32]| v.iter().map(|x| x.is_nan()).collect::<Vec<_>>();
        assert!(
            expected.iter().any(|v| v.is_nan()),
            "the NaN reaches the gradient"
        );
        assert_eq!(nan(&actual), nan(&expected), "seed {seed}: NaN positions");
    }
}
