//! The 3x3, stride-1, padding-1 convolution of f32 NCHW tensors in host memory, its input
//! gradient and its weight gradient, each as GEMMs of the `gemm` crate with the batch folded into
//! the GEMM's column dimension.
//!
//! The batch is cut into chunks of whole images, so that each GEMM sees at least
//! `FORWARD_COLUMNS` (weight gradient: `TARGET_COLUMNS`) output positions (Burn's flex
//! convolution runs one GEMM per image, with only
//! `H * W` = 4 columns in VGG's last block). Chunks run in parallel on rayon's pool, one GEMM per
//! chunk on one core; each worker thread keeps its im2col and staging buffers between calls. The
//! input gradient is the forward convolution of the output gradient with the flipped, transposed
//! weights (no col2im scatter). The weight gradient accumulates one GEMM per chunk (per band of
//! rows where one image's im2col matrix would not fit the level-2 cache) into one buffer per
//! worker, summed at the end; its im2col matrix is written transposed (the 9 x in_channels taps
//! of a pixel contiguous), the column-major left operand the GEMM reads without packing (2.4x
//! faster at 64-64@32, 2-4x on the 8-16 channel layers of width/8, than the row-major one, whose
//! reduction dimension was contiguous in both operands).
//!
//! On CPUs with AVX-512 the forward pass (and so the input gradient) of images at least 16 wide
//! with at least 8 input channels runs the [`direct`] kernel instead of im2col + GEMM, and so does
//! the weight gradient of such layers with at most 32 output channels (and finite inputs). The
//! forward pass and input gradient of images at most 4 wide run the [`small`] kernel, which skips
//! the taps on the padding (with finite weights; a NaN or infinite weight keeps im2col + GEMM,
//! whose `0 * w` products are the definition's).
//!
//! [`forward_with`] applies an [`Epilogue`] (bias, ReLU, 2x2 max pool) while it copies the GEMM's
//! result into NCHW order, keeping the window index of each maximum; [`epilogue_grad`] turns the
//! output gradient back into the gradient of the convolution's sums, and [`bias_grad`] sums it
//! per channel.

use std::borrow::Cow;
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use super::direct;
use super::gemm::gemm;
use super::small;

/// Output positions (images x pixels) a chunk's GEMM aims for in the weight gradient. Measured
/// on an AVX-512 machine (min of 11 runs per layer, batch 100): 256 beats 1024 by 5-10% on the
/// 8-pixel layers and 128-128@16's weight gradient, and ties elsewhere; 128 is slower at 2
/// pixels and on 64-64@32 (in bands of 128 pixels).
const TARGET_COLUMNS: usize = 256;

/// The same for the forward pass and the input gradient, which run im2col + GEMM only on the
/// 8-pixel layers on AVX-512 CPUs: there 128 columns (an im2col matrix of 1.2 MB at 256-256@8,
/// not 2.4, within the 2 MiB level-2 cache) beat 256 by ~4% (256-256@8 forward 23.2 -> 22.2 ms,
/// 23.7 -> 22.2, two alternated rounds of min of 9), and tie on the other layers.
const FORWARD_COLUMNS: usize = 128;

/// The dimensions of one convolution: input `[batch, in_channels, height, width]`, weights
/// `[out_channels, in_channels, 3, 3]`, output `[batch, out_channels, height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
}

impl ConvShape {
    fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// The GEMM depth of the forward pass: `in_channels * 9`.
    fn depth(&self) -> usize {
        self.in_channels * 9
    }

    /// The same convolution run backwards (output channels become input channels).
    fn transposed(&self) -> Self {
        Self {
            in_channels: self.out_channels,
            out_channels: self.in_channels,
            ..*self
        }
    }

    /// Images per chunk: enough for `columns` columns, but at least one chunk per thread.
    fn images_per_chunk(&self, columns: usize) -> usize {
        let per_thread = self.batch.div_ceil(rayon::current_num_threads()).max(1);
        (columns / self.pixels()).clamp(1, per_thread)
    }
}

thread_local! {
    /// Per worker thread: the im2col matrix and a staging matrix, reused across calls.
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `len` zeros, written by rayon's pool. `vec![0; len]` zeroes the whole buffer on the calling
/// thread while the other cores wait: the heap keeps freed buffers (`crate::heap`), so glibc's
/// `calloc` cannot hand out fresh zero pages, and that `memset` took 3% of a full-width step's
/// samples (`perf`, AVX-512 machine). Below [`PARALLEL_MIN`] values, on the calling thread.
pub(super) fn zeros<T: Default + Copy + Send + Sync>(len: usize) -> Vec<T> {
    if len < PARALLEL_MIN {
        return vec![T::default(); len];
    }
    let mut values = Vec::with_capacity(len);
    values.par_extend(rayon::iter::repeat_n(T::default(), len));
    values
}

/// The fewest values that a pass over a buffer hands to rayon's pool: called from outside the
/// pool, each parallel call costs a hand-over and a wake-up (~10-50 us), more than a pass over
/// 64 Ki values on one core.
const PARALLEL_MIN: usize = 1 << 16;

/// `work(index, chunk)` for each chunk of `chunk` values of `values`, on rayon's pool when
/// `values` holds at least [`PARALLEL_MIN`] of them, else on the calling thread.
pub(super) fn for_each_chunk<T: Send>(
    values: &mut [T],
    chunk: usize,
    work: impl Fn(usize, &mut [T]) + Send + Sync,
) {
    if values.len() < PARALLEL_MIN {
        values
            .chunks_mut(chunk)
            .enumerate()
            .for_each(|(index, chunk)| work(index, chunk));
    } else {
        values
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(index, chunk)| work(index, chunk));
    }
}

/// Runs `work` with this thread's two buffers, grown to at least `first` and `second` elements.
fn with_buffers<R>(
    first: usize,
    second: usize,
    work: impl FnOnce(&mut [f32], &mut [f32]) -> R,
) -> R {
    BUFFERS.with(|buffers| {
        let (a, b) = &mut *buffers.borrow_mut();
        if a.len() < first {
            a.resize(first, 0.0);
        }
        if b.len() < second {
            b.resize(second, 0.0);
        }
        work(&mut a[..first], &mut b[..second])
    })
}

/// Writes the im2col matrix of `images` (consecutive images of `x`, each
/// `[in_channels, height, width]`) into `cols`: row `c * 9 + kh * 3 + kw` holds, for every image
/// and pixel, the input at offset `(kh - 1, kw - 1)` (zero outside the image).
fn im2col(x: &[f32], images: usize, shape: &ConvShape, cols: &mut [f32]) {
    let (w, hw) = (shape.width, shape.pixels());
    let columns = images * hw;
    for (row, out) in cols.chunks_exact_mut(columns).enumerate() {
        let (c, kh, kw) = (row / 9, row % 9 / 3, row % 3);
        // Pixel p reads the plane at p + shift: one copy of the overlapping range per image
        // (not one per image row, which costs a call per 2-32 values), then the pixels whose
        // source lies outside the image (a border row or column) are zeroed.
        let shift = (kh * w + kw) as isize - (w + 1) as isize;
        let signed_hw = hw as isize;
        let first = (-shift).clamp(0, signed_hw);
        let (first, last) = (
            first as usize,
            (signed_hw - shift.max(0)).max(first) as usize,
        );
        for (image, out) in out.chunks_exact_mut(hw).enumerate() {
            let plane = &x[(image * shape.in_channels + c) * hw..][..hw];
            out[..first].fill(0.0);
            out[last..].fill(0.0);
            if first < last {
                let source = (first as isize + shift) as usize;
                out[first..last].copy_from_slice(&plane[source..source + last - first]);
            }
            match kw {
                0 => out.iter_mut().step_by(w).for_each(|v| *v = 0.0),
                2 => out.iter_mut().skip(w - 1).step_by(w).for_each(|v| *v = 0.0),
                _ => {}
            }
        }
    }
}

/// [`im2col`] transposed, for the output pixels `pixels` of each image: `cols[j * depth + c * 9 +
/// kh * 3 + kw]` for column `j` (image, pixel), so that the weight gradient's GEMM reads its left
/// operand column by column without packing.
fn im2col_transposed(
    x: &[f32],
    images: usize,
    shape: &ConvShape,
    pixels: Range<usize>,
    cols: &mut [f32],
) {
    let (h, w, hw, depth) = (shape.height, shape.width, shape.pixels(), shape.depth());
    let per_image = pixels.len() * depth;
    for (image, block) in cols.chunks_exact_mut(per_image).enumerate().take(images) {
        let planes = &x[image * shape.in_channels * hw..][..shape.in_channels * hw];
        for (p, row) in pixels.clone().zip(block.chunks_exact_mut(depth)) {
            let (y, xx) = (p / w, p % w);
            if (1..h - 1).contains(&y) && (1..w - 1).contains(&xx) {
                // Inside the image: all nine taps are there, no bounds to test.
                let corner = (y - 1) * w + xx - 1;
                for (c, taps) in row.chunks_exact_mut(9).enumerate() {
                    let s = &planes[c * hw + corner..][..2 * w + 3];
                    taps.copy_from_slice(&[
                        s[0],
                        s[1],
                        s[2],
                        s[w],
                        s[w + 1],
                        s[w + 2],
                        s[2 * w],
                        s[2 * w + 1],
                        s[2 * w + 2],
                    ]);
                }
                continue;
            }
            for (c, taps) in row.chunks_exact_mut(9).enumerate() {
                let plane = &planes[c * hw..][..hw];
                for kh in 0..3 {
                    let sy = (y + kh).wrapping_sub(1);
                    for kw in 0..3 {
                        let sx = (xx + kw).wrapping_sub(1);
                        taps[kh * 3 + kw] = if sy < h && sx < w {
                            plane[sy * w + sx]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// What the forward pass applies to the convolution before writing it out: VGG's bias, ReLU
/// and 2x2 max pool (stride 2, floor), fused into the copy from the GEMM's result.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// A bias per output channel, added first.
    pub bias: Option<&'a [f32]>,
    /// `max(0, v)` (a NaN stays NaN, as Burn's `relu` keeps it).
    pub relu: bool,
    /// 2x2 max pooling; the index (0..4, row-major in the window) of each maximum is recorded.
    pub pool: bool,
}

impl Epilogue<'_> {
    /// Output pixels per channel of an image of `shape`.
    pub fn out_pixels(&self, shape: &ConvShape) -> usize {
        if self.pool {
            (shape.height / 2) * (shape.width / 2)
        } else {
            shape.pixels()
        }
    }

    /// Adds `bias` to `plane` and applies the ReLU if any, in place: two loops without a test
    /// inside, so that both vectorize.
    fn activate_in_place(&self, plane: &mut [f32], bias: f32) {
        if self.relu {
            for v in plane {
                let value = *v + bias;
                *v = if value <= 0.0 { 0.0 } else { value };
            }
        } else if bias != 0.0 {
            plane.iter_mut().for_each(|v| *v += bias);
        }
    }

    /// Writes one channel plane of one image: `src` holds its `height` rows of `width` sums, row
    /// `y` at `y * src_row`; `dst` gets the output plane, `argmax` (pooling only) the window index
    /// of each maximum.
    fn write_plane(
        &self,
        src: &[f32],
        src_row: usize,
        bias: f32,
        shape: &ConvShape,
        dst: &mut [f32],
        argmax: &mut [u8],
    ) {
        let w = shape.width;
        if !self.pool {
            for (y, row) in dst.chunks_exact_mut(w).enumerate() {
                row.copy_from_slice(&src[y * src_row..][..w]);
            }
            self.activate_in_place(dst, bias);
            return;
        }
        let out_w = w / 2;
        if out_w == 0 {
            return;
        }
        let rows = dst
            .chunks_exact_mut(out_w)
            .zip(argmax.chunks_exact_mut(out_w));
        let relu = self.relu;
        for (y, (dst, argmax)) in rows.enumerate() {
            let top = &src[2 * y * src_row..][..w];
            let bottom = &src[(2 * y + 1) * src_row..][..w];
            let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
            for ((d, a), (t, b)) in dst.iter_mut().zip(argmax.iter_mut()).zip(windows) {
                // Burn's scan of the window in row-major order, where a later value wins if it
                // is larger or NaN, computed as each row's winner, then the rows' (the same
                // result), with selects that vectorize.
                let (p, q, r, s) = (t[0] + bias, t[1] + bias, b[0] + bias, b[1] + bias);
                let right = q > p || q.is_nan();
                let (top_best, top_index) = if right { (q, 1u8) } else { (p, 0) };
                let right = s > r || s.is_nan();
                let (bottom_best, bottom_index) = if right { (s, 3u8) } else { (r, 2) };
                let lower = bottom_best > top_best || bottom_best.is_nan();
                let best = if lower { bottom_best } else { top_best };
                *a = if lower { bottom_index } else { top_index };
                *d = if relu && best <= 0.0 { 0.0 } else { best };
            }
        }
    }
}

/// The output of [`forward_with`]: `values` `[batch, out_channels, out_height, out_width]` and,
/// when pooling, the window index of each value's maximum (empty otherwise).
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// The output values.
    pub values: Vec<f32>,
    /// Per output value, the index (0..4, row-major) of the maximum in its 2x2 window.
    pub argmax: Vec<u8>,
}

/// The convolution `[batch, out_channels, height, width]` of `x` (`[batch, in_channels, height,
/// width]`) with `weight` (`[out_channels, in_channels, 3, 3]`), padding 1, no bias.
pub fn forward(x: &[f32], weight: &[f32], shape: &ConvShape) -> Vec<f32> {
    forward_with(x, weight, shape, Epilogue::default()).values
}

/// [`forward`] followed by `epilogue`, in one pass over the GEMM's result.
pub fn forward_with(x: &[f32], weight: &[f32], shape: &ConvShape, epilogue: Epilogue) -> Output {
    assert_eq!(
        weight.len(),
        shape.out_channels * shape.depth(),
        "weight size"
    );
    convolve(x, &Kernel::new(weight, shape, false), shape, epilogue)
}

/// The weights of a convolution in the form its kernel reads them.
enum Kernel<'a> {
    /// Rearranged for the [`direct`] kernel, with the padded grid of the convolution's images.
    Direct(direct::Weights, direct::Grid),
    /// Rearranged for the [`small`] images' kernel.
    Small(small::Weights),
    /// `[out_channels, in_channels, 3, 3]`, the right operand of im2col + GEMM.
    Gemm(Cow<'a, [f32]>),
}

impl<'a> Kernel<'a> {
    /// The kernel for `weight` (`[out_channels, in_channels, 3, 3]` of `shape`) on this CPU; with
    /// `flipped`, for the transposed convolution with mirrored taps (the input gradient).
    fn new(weight: &'a [f32], shape: &ConvShape, flipped: bool) -> Self {
        let run = if flipped { shape.transposed() } else { *shape };
        if direct::suits(&run) {
            let weights = direct::Weights::new(weight, shape, flipped);
            return Kernel::Direct(weights, direct::Grid::of(&run));
        }
        if small::suits(&run)
            && let Some(weights) = small::Weights::new(weight, shape, flipped)
        {
            return Kernel::Small(weights);
        }
        Kernel::Gemm(if flipped {
            Cow::Owned(flipped_weights(weight, shape))
        } else {
            Cow::Borrowed(weight)
        })
    }
}

/// The convolution of `x` with `kernel`'s weights, followed by `epilogue` ([`forward_with`]).
fn convolve(x: &[f32], kernel: &Kernel, shape: &ConvShape, epilogue: Epilogue) -> Output {
    let (hw, depth, out_channels) = (shape.pixels(), shape.depth(), shape.out_channels);
    assert_eq!(x.len(), shape.batch * shape.in_channels * hw, "input size");
    if let Some(bias) = epilogue.bias {
        assert_eq!(bias.len(), out_channels, "bias size");
    }
    let out_pixels = epilogue.out_pixels(shape);
    let out_image = out_channels * out_pixels;
    let len = shape.batch * out_image;
    let argmax_len = if epilogue.pool { len } else { 0 };
    if len == 0 {
        return Output::default();
    }
    let per_chunk = match kernel {
        Kernel::Small(_) => small::images_per_chunk(shape.batch),
        _ => shape.images_per_chunk(FORWARD_COLUMNS),
    };
    let in_image = shape.in_channels * hw;
    let chunk_len = per_chunk * out_image;
    let (values, argmax) = filled_in_chunks(
        (len, argmax_len),
        chunk_len,
        |chunk, out: &mut [f32], argmax: &mut [u8]| {
            let images = out.len() / out_image;
            let columns = images * hw;
            let x = &x[chunk * per_chunk * in_image..][..images * in_image];
            let bias = |o: usize| epilogue.bias.map_or(0.0, |bias| bias[o]);
            // Writes channel `o` of image `image`, whose sums are in `src` with rows `src_row`
            // apart, into the chunk's `out` and `argmax`.
            let write = |out: &mut [f32],
                         argmax: &mut [u8],
                         (image, o): (usize, usize),
                         src: &[f32],
                         src_row: usize| {
                let at = (image * out_channels + o) * out_pixels;
                let argmax = if epilogue.pool {
                    &mut argmax[at..][..out_pixels]
                } else {
                    &mut []
                };
                let dst = &mut out[at..][..out_pixels];
                epilogue.write_plane(src, src_row, bias(o), shape, dst, argmax);
            };
            let weight = match kernel {
                Kernel::Gemm(weight) => &**weight,
                Kernel::Direct(weights, grid) => {
                    let (padded, sums) = (
                        shape.in_channels * grid.plane,
                        out_channels * grid.positions,
                    );
                    with_buffers(padded, sums, |padded, sums| {
                        for (image, x) in x.chunks_exact(in_image).enumerate() {
                            direct::pad(x, shape, grid, padded);
                            direct::convolve(padded, weights, grid, sums);
                            for (o, plane) in sums.chunks_exact(grid.positions).enumerate() {
                                write(out, argmax, (image, o), plane, grid.row);
                            }
                        }
                    });
                    return;
                }
                Kernel::Small(weights) => {
                    let sums = images * out_channels * hw;
                    with_buffers(x.len(), sums, |transposed, sums| {
                        small::transpose(x, shape, transposed);
                        small::convolve(transposed, weights, shape, sums);
                        for (plane, sums) in sums.chunks_exact(hw).enumerate() {
                            let at = (plane / out_channels, plane % out_channels);
                            write(out, argmax, at, sums, shape.width);
                        }
                    });
                    return;
                }
            };
            // With one image and no pooling the GEMM's result is the output's layout.
            let in_place = images == 1 && !epilogue.pool;
            let staging = if in_place { 0 } else { out_channels * columns };
            with_buffers(depth * columns, staging, |cols, staged| {
                im2col(x, images, shape, cols);
                // result(pixel j, channel o) at o * columns + j
                let result: &mut [f32] = if in_place { &mut *out } else { staged };
                gemm(
                    (columns, out_channels, depth),
                    result,
                    (1, columns),
                    cols,
                    (1, columns),
                    weight,
                    (1, depth),
                    false,
                );
                if in_place {
                    for (o, plane) in out.chunks_exact_mut(hw).enumerate() {
                        epilogue.activate_in_place(plane, bias(o));
                    }
                    return;
                }
                // [channel][image][pixel] -> [image][channel][pixel]
                for (o, row) in staged.chunks_exact(columns).enumerate() {
                    for (image, pixels) in row.chunks_exact(hw).enumerate() {
                        write(out, argmax, (image, o), pixels, shape.width);
                    }
                }
            });
        },
    );
    Output { values, argmax }
}

/// Two buffers of `lens` values (the second one empty, or as long as the first), filled on
/// rayon's pool by `work(index, first, second)` for each chunk of `chunk` values of the first
/// and the matching chunk of the second. Each chunk is zeroed by the core that then fills it,
/// while it is in that core's cache: a zeroing pass over a whole buffer first (larger than the
/// caches at full width) sends every value to memory twice (64-64@32, with the direct kernel's
/// one-column padding, alone within the noise: forward 25.9 -> 24.7 ms, input gradient
/// 26.0 -> 24.7, AVX-512 machine, min of 9).
fn filled_in_chunks<A, B>(
    (len, second_len): (usize, usize),
    chunk: usize,
    work: impl Fn(usize, &mut [A], &mut [B]) + Send + Sync,
) -> (Vec<A>, Vec<B>)
where
    A: Copy + Default + Send,
    B: Copy + Default + Send,
{
    assert!(second_len == 0 || second_len == len, "second buffer size");
    let (mut first, mut second) = (Vec::with_capacity(len), Vec::with_capacity(second_len));
    let chunks = len.div_ceil(chunk.max(1));
    let second_chunks: Vec<&mut [MaybeUninit<B>]> = if second_len > 0 {
        second.spare_capacity_mut()[..second_len]
            .chunks_mut(chunk)
            .collect()
    } else {
        (0..chunks).map(|_| <&mut [_]>::default()).collect()
    };
    first.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .zip(second_chunks)
        .enumerate()
        .for_each(|(index, (a, b))| work(index, zeroed(a), zeroed(b)));
    // SAFETY: the chunks above cover the first `len` and `second_len` values of the spare
    // capacities, and `zeroed` initialized each of them (a panic would not reach this line).
    unsafe {
        first.set_len(len);
        second.set_len(second_len);
    }
    (first, second)
}

/// `chunk` with every value set to `T::default()`, as initialized values.
fn zeroed<T: Copy + Default>(chunk: &mut [MaybeUninit<T>]) -> &mut [T] {
    for value in chunk.iter_mut() {
        value.write(T::default());
    }
    // SAFETY: every element was just initialized, and `MaybeUninit<T>` has the layout of `T`.
    unsafe { &mut *(chunk as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// The gradient with respect to the convolution's sums (before bias, ReLU and pooling) of the
/// forward pass with `epilogue` (its bias not needed), given the gradient `grad` of its output,
/// the output `values` and, when pooling, its `argmax` ([`Output`]): the gradient goes to each
/// window's maximum, where the output is not `<= 0` (ReLU's mask; Burn's `relu_backward` lets a
/// NaN through likewise).
pub fn epilogue_grad(
    grad: &[f32],
    values: &[f32],
    argmax: &[u8],
    shape: &ConvShape,
    epilogue: Epilogue,
) -> Vec<f32> {
    let (hw, out_pixels) = (shape.pixels(), epilogue.out_pixels(shape));
    let planes = shape.batch * shape.out_channels;
    assert_eq!(grad.len(), planes * out_pixels, "gradient size");
    assert_eq!(values.len(), grad.len(), "output size");
    assert!(!epilogue.pool || argmax.len() == grad.len(), "argmax size");
    let passes = |value: f32| !(epilogue.relu && value <= 0.0);
    if !epilogue.pool {
        // One pass, each value written once (no zeroing first).
        return grad
            .par_iter()
            .zip(values)
            .with_min_len(1 << 14)
            .map(|(&g, &v)| if passes(v) { g } else { 0.0 })
            .collect();
    }
    if planes == 0 || hw == 0 {
        return Vec::new();
    }
    let w = shape.width;
    let (sums, _) = filled_in_chunks(
        (planes * hw, 0),
        hw,
        |plane, sums: &mut [f32], _: &mut [u8]| {
            let grad = &grad[plane * out_pixels..][..out_pixels];
            let values = &values[plane * out_pixels..][..out_pixels];
            let argmax = &argmax[plane * out_pixels..][..out_pixels];
            let out_w = w / 2;
            if out_w == 0 {
                return;
            }
            let rows = grad.chunks_exact(out_w).zip(values.chunks_exact(out_w));
            for ((y, (grad, values)), argmax) in rows.enumerate().zip(argmax.chunks_exact(out_w)) {
                let pair = &mut sums[2 * y * w..][..2 * w];
                for (px, ((&g, &v), &k)) in grad.iter().zip(values).zip(argmax).enumerate() {
                    if passes(v) {
                        let k = usize::from(k);
                        pair[(k / 2) * w + 2 * px + k % 2] = g;
                    }
                }
            }
        },
    );
    sums
}

/// The gradient of the bias of [`forward_with`], given the gradient `sums` of the convolution's
/// sums ([`epilogue_grad`]): per channel (in parallel), the sum over images and pixels,
/// accumulated in f64 in eight fixed lanes (a fixed order that vectorizes).
pub fn bias_grad(sums: &[f32], shape: &ConvShape) -> Vec<f32> {
    let (hw, channels) = (shape.pixels(), shape.out_channels);
    assert_eq!(sums.len(), shape.batch * channels * hw, "gradient size");
    (0..channels)
        .into_par_iter()
        .map(|o| {
            let mut lanes = [0.0f64; 8];
            let mut rest = 0.0f64;
            for image in 0..shape.batch {
                let plane = &sums[(image * channels + o) * hw..][..hw];
                let mut chunks = plane.chunks_exact(8);
                for chunk in &mut chunks {
                    lanes
                        .iter_mut()
                        .zip(chunk)
                        .for_each(|(l, &v)| *l += f64::from(v));
                }
                rest += chunks
                    .remainder()
                    .iter()
                    .map(|&v| f64::from(v))
                    .sum::<f64>();
            }
            (lanes.iter().sum::<f64>() + rest) as f32
        })
        .collect()
}

/// The gradient with respect to the input of [`forward`], given the output gradient `grad`: the
/// forward convolution of `grad` with the weights transposed (in <-> out) and flipped in space.
pub fn input_grad(grad: &[f32], weight: &[f32], shape: &ConvShape) -> Vec<f32> {
    let (cin, cout) = (shape.in_channels, shape.out_channels);
    assert_eq!(weight.len(), cout * cin * 9, "weight size");
    let kernel = Kernel::new(weight, shape, true);
    convolve(grad, &kernel, &shape.transposed(), Epilogue::default()).values
}

/// The weights `[in_channels, out_channels, 3, 3]` of the transposed convolution, taps mirrored
/// in space (the input gradient's GEMM operand). Built in blocks of [`FLIP_BLOCK`] input channels
/// on rayon's pool; each block reads its channels' taps of one output channel contiguously (the
/// unblocked single-threaded copy read 36 bytes per 18 KiB stride; with this one the input
/// gradient of 512-512@4 took ~2 ms less).
fn flipped_weights(weight: &[f32], shape: &ConvShape) -> Vec<f32> {
    let (cin, cout) = (shape.in_channels, shape.out_channels);
    let mut flipped = zeros(weight.len());
    if flipped.is_empty() {
        return flipped;
    }
    flipped
        .par_chunks_mut(FLIP_BLOCK * cout * 9)
        .enumerate()
        .for_each(|(block, out)| {
            let (first, channels) = (block * FLIP_BLOCK, out.len() / (cout * 9));
            for o in 0..cout {
                let taps = weight[(o * cin + first) * 9..][..channels * 9].chunks_exact(9);
                for (c, taps) in taps.enumerate() {
                    let dst = &mut out[(c * cout + o) * 9..][..9];
                    dst.iter_mut()
                        .zip(taps.iter().rev())
                        .for_each(|(d, &t)| *d = t);
                }
            }
        });
    flipped
}

/// Input channels per block of [`flipped_weights`].
const FLIP_BLOCK: usize = 16;

/// The gradient `[out_channels, in_channels, 3, 3]` with respect to the weights of
/// [`forward`], given its input `x` and the output gradient `grad`.
pub fn weight_grad(x: &[f32], grad: &[f32], shape: &ConvShape) -> Vec<f32> {
    let (hw, depth, out_channels) = (shape.pixels(), shape.depth(), shape.out_channels);
    let (in_image, out_image) = (shape.in_channels * hw, out_channels * hw);
    assert_eq!(x.len(), shape.batch * in_image, "input size");
    assert_eq!(grad.len(), shape.batch * out_image, "gradient size");
    let size = out_channels * depth;
    if shape.batch == 0 {
        return vec![0.0; size];
    }
    let direct = direct::suits_weight_grad(shape, x).then(|| direct::Grid::of(shape));
    let per_chunk = match &direct {
        Some(grid) => direct_grad_images(shape, grid),
        None => shape.images_per_chunk(TARGET_COLUMNS),
    };
    let parts = rayon::current_num_threads().min(shape.batch.div_ceil(per_chunk));
    let per_part = shape.batch.div_ceil(parts);
    let sums: Vec<Vec<f32>> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let mut sum = vec![0.0f32; size];
            let first = part * per_part;
            let last = (first + per_part).min(shape.batch);
            if let Some(grid) = &direct {
                for start in (first..last).step_by(per_chunk) {
                    let images = per_chunk.min(last - start);
                    let x = &x[start * in_image..][..images * in_image];
                    let grad = &grad[start * out_image..][..images * out_image];
                    direct_weight_grad(x, grad, shape, grid, images, &mut sum);
                }
                return sum;
            }
            for start in (first..last).step_by(per_chunk) {
                let images = per_chunk.min(last - start);
                let x = &x[start * in_image..][..images * in_image];
                let grad = &grad[start * out_image..][..images * out_image];
                if images == 1 {
                    // g(pixel j, channel o) at o * hw + j is `grad` itself; an image larger than
                    // a band is summed band by band.
                    let band_len = band_pixels(shape);
                    for band in (0..hw).step_by(band_len) {
                        let band = band..(band + band_len).min(hw);
                        with_buffers(depth * band.len(), 0, |cols, _| {
                            im2col_transposed(x, 1, shape, band.clone(), cols);
                            let g = &grad[band.start..];
                            add_tap_products(shape, band.len(), cols, (g, hw), &mut sum);
                        });
                    }
                    continue;
                }
                let columns = images * hw;
                with_buffers(depth * columns, images * out_image, |cols, staged| {
                    im2col_transposed(x, images, shape, 0..hw, cols);
                    // g(pixel j, channel o) at o * columns + j.
                    for (image, channels) in grad.chunks_exact(out_image).enumerate() {
                        for (o, pixels) in channels.chunks_exact(hw).enumerate() {
                            staged[o * columns + image * hw..][..hw].copy_from_slice(pixels);
                        }
                    }
                    add_tap_products(shape, columns, cols, (staged, columns), &mut sum);
                });
            }
            sum
        })
        .collect();
    // Each value summed in part order, so the result does not depend on scheduling; in blocks
    // on rayon's pool (on one core, this sum of 2 x 2.4 M values took ~1 ms at 512-512).
    let mut parts = sums.into_iter();
    let mut total = parts.next().expect("at least one part");
    let rest: Vec<Vec<f32>> = parts.collect();
    for_each_chunk(&mut total, SUM_BLOCK, |block, total| {
        for part in &rest {
            let part = &part[block * SUM_BLOCK..][..total.len()];
            total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
        }
    });
    total
}

/// Values per block of the weight gradient's final sum over parts.
const SUM_BLOCK: usize = 1 << 14;

/// Output pixels per band of an image's weight gradient: the whole image when its im2col matrix
/// fits in half of a 2 MiB level-2 cache, else whole rows, about [`TARGET_COLUMNS`] of them.
/// Measured on an AVX-512 machine (min of 9 runs, batch 100): 64-64@32 (2.4 MB per image) 40 ms
/// whole, 35 ms in bands of 256 pixels, 40 in bands of 512; 8-8@32 (0.3 MB) 0.14 ms slower in
/// bands.
fn band_pixels(shape: &ConvShape) -> usize {
    let hw = shape.pixels().max(1);
    if hw * shape.depth() * size_of::<f32>() <= 1 << 20 {
        return hw;
    }
    (TARGET_COLUMNS.div_ceil(shape.width).max(1) * shape.width).min(hw)
}

/// `sum(t, o) += sum_j cols(t, j) g(j, o)` over `columns` columns: `sum` at `o * depth + t`,
/// `cols` at `j * depth + t` ([`im2col_transposed`]), `g` at `o * g_row + j`.
fn add_tap_products(
    shape: &ConvShape,
    columns: usize,
    cols: &[f32],
    (g, g_row): (&[f32], usize),
    sum: &mut [f32],
) {
    let depth = shape.depth();
    gemm(
        (depth, shape.out_channels, columns),
        sum,
        (1, depth),
        cols,
        (1, depth),
        g,
        (1, g_row),
        true,
    );
}

/// Images per chunk of the direct weight gradient: as many as keep the chunk's padded inputs
/// and gradients within ~1 MiB (half of a 2 MiB level-2 cache), at least one.
fn direct_grad_images(shape: &ConvShape, grid: &direct::Grid) -> usize {
    let planes = shape.out_channels.div_ceil(direct::GRAD_CHANNELS) * direct::GRAD_CHANNELS;
    let per_image = shape.in_channels * grid.plane + planes * grid.positions;
    ((1 << 18) / per_image).clamp(1, shape.batch.max(1))
}

/// Adds the weight gradient of `images` consecutive images (inputs `x`, output gradients
/// `grad`) to `sum` with the [`direct`] kernel, in this thread's buffers.
fn direct_weight_grad(
    x: &[f32],
    grad: &[f32],
    shape: &ConvShape,
    grid: &direct::Grid,
    images: usize,
    sum: &mut [f32],
) {
    let planes = shape.out_channels.div_ceil(direct::GRAD_CHANNELS) * direct::GRAD_CHANNELS;
    let (padded_image, grad_image) = (shape.in_channels * grid.plane, planes * grid.positions);
    let (in_image, out_image) = (
        shape.in_channels * shape.pixels(),
        shape.out_channels * shape.pixels(),
    );
    with_buffers(
        images * padded_image,
        images * grad_image,
        |padded, grads| {
            for image in 0..images {
                let x = &x[image * in_image..][..in_image];
                direct::pad(
                    x,
                    shape,
                    grid,
                    &mut padded[image * padded_image..][..padded_image],
                );
                let grad = &grad[image * out_image..][..out_image];
                direct::pad_grad(
                    grad,
                    shape,
                    grid,
                    &mut grads[image * grad_image..][..grad_image],
                );
            }
            direct::add_weight_grad(padded, grads, shape, grid, images, sum);
        },
    );
}
