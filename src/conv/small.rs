//! The 3x3 convolution of small images (at most 4 pixels wide) for CPUs with AVX-512 or AVX2 +
//! FMA, vectorized over output channels, without the taps that fall on the zero padding.
//!
//! im2col + GEMM multiplies every padding tap by its weight: on a 2x2 image five of each
//! pixel's nine taps lie outside it (56% of the GEMM's work), on 4x4 images 31%, on 8x8 16%.
//! Here each output pixel sums only its taps inside the image. A chunk of images (one thread's
//! share of the batch) is first copied into `[pixel][channel][image]` order. A tile is one output
//! pixel of up to 12 images by 32 output channels (on AVX2: up to 6 images, in two parts of 16
//! channels); its accumulators stay in registers over the pixel's taps and a slice of 32 input
//! channels: per tap and input channel, 2 loads of weights and one broadcast input per image
//! feed two fused multiply-adds per image. The weights are rearranged once per call, per block
//! of 32 output channels as `[tap][in_channel][32]`; a slice's weights (36 KiB) stay in the
//! level-1 cache while all the chunk's tiles read them.
//!
//! Measured on an AVX-512 machine (`kernels::forward` and `input_grad` timed directly, batch
//! 100, 2 threads, min of 11): 512-512@2 forward 8.1 -> 6.7 ms and input gradient 10.3 -> 7.1 ms, 512-512@4
//! 27.4 -> 26.7 and 29.7 -> 26.8 ms, width/8's 64-64@4 and 64-64@2 1.4-2x faster; on 8x8 images
//! (256-256@8 forward 27.2 -> 34.5 ms) it is slower than im2col + GEMM, which keeps those. The
//! tile alone runs at ~64% of the FMA units' peak (130-143 GFLOP/s of ~210 on one core).
//!
//! Skipping a padding tap drops a product `0 * w`, which the definition has: with a NaN or
//! infinite weight it is NaN, so [`super::kernels`] takes the GEMM path for such weights.
//! The summation order per output is fixed (input-channel slice, tap, input channel), so results
//! are deterministic, do not depend on how images are grouped into tiles, and are the same on
//! AVX-512 and AVX2 (each lane sums in that order either way).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{__m256, __m512};

use std::sync::atomic::{AtomicBool, Ordering};

use super::direct;
use super::kernels::{ConvShape, for_each_chunk, zeros};
use super::vector::{self, Isa, Vector};

/// Vectors of output channels per image in a tile (part): on AVX-512, 2 (32 channels) with up to
/// 12 images beat 4 with up to 6 (512-512@4: 132 against 123 GFLOP/s on one core).
const VECTORS: usize = 2;
/// Output channels per block of weights: one AVX-512 tile, two AVX2 parts.
const CHANNELS: usize = 32;
/// The widest image this kernel is used for: see the measurements above.
const MAX_WIDTH: usize = 4;
/// Input channels per pass over a chunk (16-512 measured: 16 and 32 are best, within 5%).
const SLICE: usize = 32;

/// Images per chunk of a batch of `batch` images: one thread's share, so that each thread
/// streams the weights from memory once.
pub fn images_per_chunk(batch: usize) -> usize {
    batch.div_ceil(rayon::current_num_threads()).max(1)
}

/// Whether [`super::kernels`] takes this path for `shape` on this CPU: AVX-512F or AVX2 + FMA,
/// images at most `MAX_WIDTH` (4) wide, and not `MIRRORBURN_CONV=gemm`.
pub fn suits(shape: &ConvShape) -> bool {
    !direct::gemm_only() && direct::available() && shape.width <= MAX_WIDTH
}

/// The weights `[out, in, 3, 3]` rearranged for the kernel: per block of 32 output channels, per
/// tap and input channel, the block's weights side by side (zero past the last output channel).
#[derive(Clone, Debug)]
pub struct Weights {
    values: Vec<f32>,
    in_channels: usize,
    out_channels: usize,
}

impl Weights {
    /// Rearranges `weight` (`[out_channels, in_channels, 3, 3]` of `shape`); with `flipped`, the
    /// weights of the transposed convolution instead (`[in, out]` swapped, taps mirrored in
    /// space), as the input gradient needs. `None` when a weight is NaN or infinite.
    pub fn new(weight: &[f32], shape: &ConvShape, flipped: bool) -> Option<Self> {
        let (cin, cout) = (shape.in_channels, shape.out_channels);
        assert_eq!(weight.len(), cout * cin * 9, "weight size");
        let (ins, outs) = if flipped { (cout, cin) } else { (cin, cout) };
        let mut values = zeros(outs.div_ceil(CHANNELS) * 9 * ins * CHANNELS);
        // Per block (on rayon's pool from 64 Ki values), input channel by input channel, so
        // that the 9 rows of 32 weights being written stay in the level-1 cache (output channel
        // by output channel, each write lands 9 * in_channels * 32 values from the last: 4.5 ms
        // at 512-512). Each weight is read once, and tested for being finite there (a separate
        // test on one core took 0.44 ms at 512-512, the serial zeroing 0.3 ms, of 1.6 in all).
        let finite = AtomicBool::new(true);
        for_each_chunk(&mut values, 9 * ins * CHANNELS, |block, panel| {
            let first = block * CHANNELS;
            let mut all_finite = true;
            for c in 0..ins {
                for (lane, o) in (first..outs.min(first + CHANNELS)).enumerate() {
                    let taps = if flipped {
                        &weight[(c * cin + o) * 9..][..9]
                    } else {
                        &weight[(o * cin + c) * 9..][..9]
                    };
                    for (tap, &w) in taps.iter().enumerate() {
                        let tap = if flipped { 8 - tap } else { tap };
                        panel[(tap * ins + c) * CHANNELS + lane] = w;
                        all_finite &= w.is_finite();
                    }
                }
            }
            finite.fetch_and(all_finite, Ordering::Relaxed);
        });
        if !finite.into_inner() {
            return None;
        }
        Some(Self {
            values,
            in_channels: ins,
            out_channels: outs,
        })
    }
}

/// Copies `images` (`[image][channel][pixel]` of `shape`) into `transposed`
/// (`[pixel][channel][image]`): a tile's inputs for one channel are then side by side, read at
/// fixed offsets from one pointer.
pub fn transpose(images: &[f32], shape: &ConvShape, transposed: &mut [f32]) {
    let (hw, cin) = (shape.height * shape.width, shape.in_channels);
    assert_eq!(images.len(), transposed.len(), "transposed size");
    let count = images.len() / (cin * hw).max(1);
    // Channel by channel, image by image: each image's plane is read in order, and the `hw`
    // rows it writes to fill over consecutive images, in the level-1 cache (pixel by pixel, the
    // reads were `in_channels x pixels` apart: at 256-256@8 that took 11% of the samples of `perf`
    // against the tiles' 48%; this order, 5%).
    for c in 0..cin {
        for n in 0..count {
            let plane = &images[(n * cin + c) * hw..][..hw];
            for (p, &v) in plane.iter().enumerate() {
                transposed[(p * cin + c) * count + n] = v;
            }
        }
    }
}

/// One tap of an output pixel that lies inside the image.
#[derive(Clone, Copy, Debug, Default)]
struct Tap {
    /// The tap, `kh * 3 + kw`.
    index: usize,
    /// The input pixel it reads.
    pixel: usize,
}

/// The taps of output pixel `p` of `shape` that lie inside the image, in tap order; the count.
fn taps_of(p: usize, shape: &ConvShape) -> ([Tap; 9], usize) {
    let (h, w) = (shape.height, shape.width);
    let (y, x) = (p / w, p % w);
    let mut taps = [Tap::default(); 9];
    let mut count = 0;
    for kh in 0..3 {
        for kw in 0..3 {
            let (sy, sx) = ((y + kh).wrapping_sub(1), (x + kw).wrapping_sub(1));
            if sy < h && sx < w {
                taps[count] = Tap {
                    index: kh * 3 + kw,
                    pixel: sy * w + sx,
                };
                count += 1;
            }
        }
    }
    (taps, count)
}

/// The convolution sums `[image][out_channel][pixel]` of the images in `transposed` (from
/// [`transpose`]) with `weights`, written to `sums`.
///
/// # Panics
/// Where [`direct::available`] is false, or the slices do not fit `shape` and `weights`.
pub fn convolve(transposed: &[f32], weights: &Weights, shape: &ConvShape, sums: &mut [f32]) {
    let isa = vector::detected().expect("this convolution needs AVX-512F or AVX2 + FMA");
    convolve_on(isa, transposed, weights, shape, sums);
}

/// [`convolve`] on `isa` (which this CPU must have): the tests run every one the CPU has.
fn convolve_on(
    isa: Isa,
    transposed: &[f32],
    weights: &Weights,
    shape: &ConvShape,
    sums: &mut [f32],
) {
    let (hw, cin, cout) = (
        shape.height * shape.width,
        weights.in_channels,
        weights.out_channels,
    );
    assert!(isa.on_this_cpu(), "{isa:?} is not available on this CPU");
    assert_eq!(cin, shape.in_channels, "weights' input channels");
    assert_eq!(cout, shape.out_channels, "weights' output channels");
    assert_eq!(transposed.len() % (hw * cin).max(1), 0, "transposed size");
    let images = transposed.len() / (hw * cin).max(1);
    assert_eq!(sums.len(), images * cout * hw, "sums size");
    // The block's sums, `[pixel][image][32]`, carried from one slice of input channels to the next.
    let mut block_sums = vec![[0.0f32; CHANNELS]; hw * images];
    let pixel_taps: Vec<([Tap; 9], usize)> = (0..hw).map(|p| taps_of(p, shape)).collect();
    // The images in tiles of at most `images_per_tile`, as even as they go (50 on AVX-512:
    // five of 10).
    let tiles = images.div_ceil(images_per_tile(isa));
    for (block, panel) in weights.values.chunks_exact(9 * cin * CHANNELS).enumerate() {
        for first_channel in (0..cin).step_by(SLICE) {
            let channels = first_channel..cin.min(first_channel + SLICE);
            for (pixel_sums, (taps, count)) in block_sums.chunks_exact_mut(images).zip(&pixel_taps)
            {
                let mut first = 0;
                for tile in 0..tiles {
                    let rows = images / tiles + usize::from(tile < images % tiles);
                    let inputs = Inputs {
                        x: &transposed[first..],
                        images,
                        taps: &taps[..*count],
                        panel,
                        channels: channels.clone(),
                        cin,
                    };
                    let out = &mut pixel_sums[first..first + rows];
                    // SAFETY: `isa` is this CPU's (asserted); `x` holds, from `first`, the
                    // `images` values of each pixel and channel (`rows <= images - first`),
                    // each tap's pixel is inside the image, the channels lie below `cin`, and
                    // `panel` holds 9 taps of `cin` rows of CHANNELS weights (the chunk size).
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        run_tile(isa, &inputs, out);
                    }
                    first += rows;
                }
            }
        }
        let lanes = CHANNELS.min(cout - block * CHANNELS);
        for (p, tiles) in block_sums.chunks_exact(images).enumerate() {
            for (image, values) in tiles.iter().enumerate() {
                let sums = &mut sums[(image * cout + block * CHANNELS) * hw..];
                for (lane, &v) in values[..lanes].iter().enumerate() {
                    sums[lane * hw + p] = v;
                }
            }
        }
    }
}

/// The most images per tile on `isa`: 24 accumulators of AVX-512's 32 registers (12 images by 2
/// vectors of 16 channels), 12 of AVX2's 16 (6 images by 2 vectors of 8, half a block at a time).
fn images_per_tile(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 12,
        Isa::Avx2 => 6,
    }
}

/// What a tile at one output pixel reads.
struct Inputs<'a> {
    /// The tile's first image's values of every pixel and channel, `images` apart, the tile's
    /// images side by side.
    x: &'a [f32],
    /// Images per pixel and channel in `x`.
    images: usize,
    /// The pixel's taps inside the image.
    taps: &'a [Tap],
    /// The block's weights: per tap and input channel, [`CHANNELS`] side by side.
    panel: &'a [f32],
    /// The input channels summed over in this pass.
    channels: std::ops::Range<usize>,
    /// All input channels.
    cin: usize,
}

/// One tile of `out.len()` images (at most [`images_per_tile`]) on `isa`, by the image count's
/// instance of the tile.
///
/// # Safety
/// As for [`part`], for every part the tile runs.
#[cfg(target_arch = "x86_64")]
unsafe fn run_tile(isa: Isa, inputs: &Inputs, out: &mut [[f32; CHANNELS]]) {
    // The image count is a constant of each instance, so that the accumulators are registers.
    macro_rules! by_rows {
        ($tile:ident: $($rows:literal)*) => {
            match out.len() {
                // SAFETY: this function's contract.
                $($rows => unsafe { $tile::<$rows>(inputs, out) },)*
                rows => unreachable!("{rows} images in one tile"),
            }
        };
    }
    match isa {
        Isa::Avx512 => by_rows!(tile_avx512: 1 2 3 4 5 6 7 8 9 10 11 12),
        Isa::Avx2 => by_rows!(tile_avx2: 1 2 3 4 5 6),
    }
}

/// A tile of `R` images by 32 output channels on AVX-512: 2 vectors per image.
///
/// # Safety
/// AVX-512F must be present, and the bounds of [`part`] must hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<const R: usize>(inputs: &Inputs, out: &mut [[f32; CHANNELS]]) {
    // SAFETY: AVX-512F is present; the bounds hold (this function's contract).
    unsafe { part::<__m512, R>(inputs, 0, out) };
}

/// The same tile on AVX2, as two parts of 16 output channels (the block's first and last).
///
/// # Safety
/// AVX2 and FMA must be present, and the bounds of [`part`] must hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const R: usize>(inputs: &Inputs, out: &mut [[f32; CHANNELS]]) {
    for lane in [0, CHANNELS / 2] {
        // SAFETY: AVX2 and FMA are present; the bounds hold (this function's contract).
        unsafe { part::<__m256, R>(inputs, lane, out) };
    }
}

/// Part of a tile of `R` images at one output pixel: 2 vectors of output channels, from `lane`
/// of the block. For each tap and each input channel of the pass, the broadcast input times the
/// tap's weights, summed in 2R registers, added to `out` (from zero for the first channel).
///
/// # Safety
/// `V`'s instruction set must be present; `lane + 2 * V::LANES <= CHANNELS`, `out.len() >= R`,
/// `inputs.x` must hold at least `(tap.pixel * cin + channels.end - 1) * images + R` values for
/// every tap, `panel` at least `9 * cin * CHANNELS`, and `channels.end <= cin`.
#[inline(always)]
unsafe fn part<V: Vector, const R: usize>(
    inputs: &Inputs,
    lane: usize,
    out: &mut [[f32; CHANNELS]],
) {
    let Inputs {
        x,
        images,
        taps,
        panel,
        ref channels,
        cin,
    } = *inputs;
    debug_assert!(panel.len() >= 9 * cin * CHANNELS && out.len() >= R && channels.end <= cin);
    debug_assert!(lane + VECTORS * V::LANES <= CHANNELS);
    // SAFETY (all vector operations): the instruction set is present, and every pointer stays
    // inside its slice, by this function's contract.
    let mut acc = [[unsafe { V::zero() }; VECTORS]; R];
    if channels.start > 0 {
        for (acc, out) in acc.iter_mut().zip(out.iter()) {
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = unsafe { V::load(out.as_ptr().add(lane + V::LANES * v)) };
            }
        }
    }
    for tap in taps {
        debug_assert!((tap.pixel * cin + channels.end - 1) * images + R <= x.len());
        unsafe {
            let w = panel.as_ptr().add(tap.index * cin * CHANNELS + lane);
            let x = x.as_ptr().add(tap.pixel * cin * images);
            for c in channels.clone() {
                let mut weights = [V::zero(); VECTORS];
                for (v, weights) in weights.iter_mut().enumerate() {
                    *weights = V::load(w.add(c * CHANNELS + V::LANES * v));
                }
                let x = x.add(c * images);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let input = V::splat(*x.add(r));
                    for (acc, &weights) in acc.iter_mut().zip(&weights) {
                        *acc = input.mul_add(weights, *acc);
                    }
                }
            }
        }
    }
    for (out, acc) in out.iter_mut().zip(&acc) {
        for (v, &acc) in acc.iter().enumerate() {
            unsafe { acc.store(out.as_mut_ptr().add(lane + V::LANES * v)) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::test_support::{check_every_isa, isas_of_this_cpu, random, reference};
    use crate::test_support::test_seed;

    /// [`transpose`] and [`convolve_on`] `isa` on `images` (`[image][in][pixel]`), the sums
    /// starting as NaN (so that a sum left unwritten fails).
    fn small(isa: Isa, images: &[f32], weights: &Weights, shape: &ConvShape) -> Vec<f32> {
        let mut transposed = vec![f32::NAN; images.len()];
        transpose(images, shape, &mut transposed);
        let count = images.len() / (shape.in_channels * shape.height * shape.width);
        let mut sums = vec![f32::NAN; count * shape.out_channels * shape.height * shape.width];
        convolve_on(isa, &transposed, weights, shape, &mut sums);
        sums
    }

    #[test]
    fn the_small_kernel_equals_the_definition_on_odd_shapes() {
        let seed = test_seed(33);
        let (isas, mut rng) = isas_of_this_cpu("the small-image kernel", seed);
        // Channel counts around the 32-channel blocks and the 32-channel slices, images around
        // the tiles of 12 and 6 (25: tiles of 9, 8, 8 or 5 of 5), non-square images up to 4 wide.
        for (cin, cout, h, w, images) in [
            (1, 1, 1, 1, 1),
            (3, 5, 2, 2, 13),
            (33, 31, 4, 4, 25),
            (32, 64, 2, 3, 12),
            (5, 40, 3, 1, 7),
            (65, 33, 4, 2, 50),
        ] {
            let shape = ConvShape {
                batch: images,
                in_channels: cin,
                out_channels: cout,
                height: h,
                width: w,
            };
            let weight = random(cout * cin * 9, &mut rng);
            for flipped in [false, true] {
                let (ins, outs) = if flipped { (cout, cin) } else { (cin, cout) };
                let run = ConvShape {
                    in_channels: ins,
                    out_channels: outs,
                    ..shape
                };
                let weights = Weights::new(&weight, &shape, flipped).expect("finite weights");
                let mut x = random(images * ins * h * w, &mut rng);
                let expected = |x: &[f32]| -> Vec<f32> {
                    x.chunks_exact(ins * h * w)
                        .flat_map(|image| reference(image, &weight, &shape, flipped))
                        .collect()
                };
                let context =
                    format!("seed {seed}, {cin}-{cout}@{h}x{w} x{images}, flipped {flipped}");
                check_every_isa(&isas, &expected(&x), &context, |isa| {
                    small(isa, &x, &weights, &run)
                });
                // A NaN in the last image's last channel reaches exactly the outputs whose
                // window holds it.
                let last = x.len() - 1 - (w + 1).min(h * w - 1);
                x[last] = f32::NAN;
                let nan = |v: &[f32]| v.iter().map(|x| x.is_nan()).collect::<Vec<_>>();
                for &isa in &isas {
                    let actual = small(isa, &x, &weights, &run);
                    assert_eq!(
                        nan(&actual),
                        nan(&expected(&x)),
                        "{context}, {isa:?}: NaN positions"
                    );
                }
            }
        }
    }

    #[test]
    fn a_weight_that_is_not_finite_is_refused() {
        let shape = ConvShape {
            batch: 1,
            in_channels: 2,
            out_channels: 3,
            height: 2,
            width: 2,
        };
        for bad in [f32::NAN, f32::INFINITY] {
            let mut weight = vec![0.5f32; 3 * 2 * 9];
            weight[40] = bad;
            assert!(Weights::new(&weight, &shape, false).is_none(), "{bad}");
            assert!(Weights::new(&weight, &shape, true).is_none(), "{bad}");
        }
    }
}
