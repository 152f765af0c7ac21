//! The 3x3, stride-1, padding-1 convolution of f32 NCHW tensors in host memory, its input
//! gradient and its weight gradient, each as GEMMs of the `gemm` crate with the batch folded into
//! the GEMM's column dimension.
//!
//! The batch is cut into chunks of whole images, so that each GEMM sees at least
//! `TARGET_COLUMNS` output positions (Burn's flex convolution runs one GEMM per image, with only
//! `H * W` = 4 columns in VGG's last block). Chunks run in parallel on rayon's pool, one GEMM per
//! chunk on one core; each worker thread keeps its im2col and staging buffers between calls. The
//! input gradient is the forward convolution of the output gradient with the flipped, transposed
//! weights (no col2im scatter). The weight gradient accumulates one GEMM per chunk into one
//! buffer per worker, summed at the end; its im2col matrix is written transposed (the 9 x
//! in_channels taps of a pixel contiguous), the column-major left operand the GEMM reads without
//! packing (2.4x faster at 64-64@32, 2-4x on the 8-16 channel layers of width/8, than the
//! row-major one, whose reduction dimension was contiguous in both operands).

use std::cell::RefCell;

use rayon::prelude::*;

use super::gemm::gemm;

/// Output positions (images x pixels) a chunk's GEMM aims for.
const TARGET_COLUMNS: usize = 1024;

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

    /// Images per chunk: enough for [`TARGET_COLUMNS`] columns, but at least one chunk per thread.
    fn images_per_chunk(&self) -> usize {
        let per_thread = self.batch.div_ceil(rayon::current_num_threads()).max(1);
        (TARGET_COLUMNS / self.pixels()).clamp(1, per_thread)
    }
}

thread_local! {
    /// Per worker thread: the im2col matrix and a staging matrix, reused across calls.
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
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
    let (h, w, hw) = (shape.height, shape.width, shape.pixels());
    let columns = images * hw;
    for (row, out) in cols.chunks_exact_mut(columns).enumerate() {
        let (c, kh, kw) = (row / 9, row % 9 / 3, row % 3);
        for (image, out) in out.chunks_exact_mut(hw).enumerate() {
            let plane = &x[(image * shape.in_channels + c) * hw..][..hw];
            for (y, out) in out.chunks_exact_mut(w).enumerate() {
                let source_y = (y + kh).wrapping_sub(1);
                if source_y >= h {
                    out.fill(0.0);
                    continue;
                }
                let src = &plane[source_y * w..][..w];
                match kw {
                    0 => {
                        out[0] = 0.0;
                        out[1..].copy_from_slice(&src[..w - 1]);
                    }
                    1 => out.copy_from_slice(src),
                    _ => {
                        out[..w - 1].copy_from_slice(&src[1..]);
                        out[w - 1] = 0.0;
                    }
                }
            }
        }
    }
}

/// [`im2col`] transposed: `cols[j * depth + c * 9 + kh * 3 + kw]` for column `j` (image, pixel),
/// so that the weight gradient's GEMM reads its left operand column by column without packing.
fn im2col_transposed(x: &[f32], images: usize, shape: &ConvShape, cols: &mut [f32]) {
    let (h, w, hw, depth) = (shape.height, shape.width, shape.pixels(), shape.depth());
    for (image, block) in cols.chunks_exact_mut(hw * depth).enumerate().take(images) {
        let planes = &x[image * shape.in_channels * hw..][..shape.in_channels * hw];
        for (p, row) in block.chunks_exact_mut(depth).enumerate() {
            let (y, xx) = (p / w, p % w);
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

/// The convolution `[batch, out_channels, height, width]` of `x` (`[batch, in_channels, height,
/// width]`) with `weight` (`[out_channels, in_channels, 3, 3]`), padding 1, no bias.
pub fn forward(x: &[f32], weight: &[f32], shape: &ConvShape) -> Vec<f32> {
    let (hw, depth, out_channels) = (shape.pixels(), shape.depth(), shape.out_channels);
    assert_eq!(x.len(), shape.batch * shape.in_channels * hw, "input size");
    assert_eq!(weight.len(), out_channels * depth, "weight size");
    let mut out = vec![0.0f32; shape.batch * out_channels * hw];
    if out.is_empty() {
        return out;
    }
    let per_chunk = shape.images_per_chunk();
    let in_image = shape.in_channels * hw;
    out.par_chunks_mut(per_chunk * out_channels * hw)
        .enumerate()
        .for_each(|(chunk, out)| {
            let images = out.len() / (out_channels * hw);
            let columns = images * hw;
            let x = &x[chunk * per_chunk * in_image..][..images * in_image];
            let staging = if images == 1 { 0 } else { out.len() };
            with_buffers(depth * columns, staging, |cols, staged| {
                im2col(x, images, shape, cols);
                // result(pixel j, channel o) at o * columns + j: with one image exactly `out`.
                let result: &mut [f32] = if images == 1 { out } else { staged };
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
                if images > 1 {
                    // [channel][image][pixel] -> [image][channel][pixel]
                    for (o, row) in staged.chunks_exact(columns).enumerate() {
                        for (image, pixels) in row.chunks_exact(hw).enumerate() {
                            out[(image * out_channels + o) * hw..][..hw].copy_from_slice(pixels);
                        }
                    }
                }
            });
        });
    out
}

/// The gradient with respect to the input of [`forward`], given the output gradient `grad`: the
/// forward convolution of `grad` with the weights transposed (in <-> out) and flipped in space.
pub fn input_grad(grad: &[f32], weight: &[f32], shape: &ConvShape) -> Vec<f32> {
    let (cin, cout) = (shape.in_channels, shape.out_channels);
    assert_eq!(weight.len(), cout * cin * 9, "weight size");
    let mut flipped = vec![0.0f32; weight.len()];
    for o in 0..cout {
        for c in 0..cin {
            for tap in 0..9 {
                flipped[(c * cout + o) * 9 + 8 - tap] = weight[(o * cin + c) * 9 + tap];
            }
        }
    }
    forward(grad, &flipped, &shape.transposed())
}

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
    let per_chunk = shape.images_per_chunk();
    let parts = rayon::current_num_threads().min(shape.batch.div_ceil(per_chunk));
    let per_part = shape.batch.div_ceil(parts);
    let sums: Vec<Vec<f32>> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let mut sum = vec![0.0f32; size];
            let first = part * per_part;
            let last = (first + per_part).min(shape.batch);
            for start in (first..last).step_by(per_chunk) {
                let images = per_chunk.min(last - start);
                let columns = images * hw;
                let x = &x[start * in_image..][..images * in_image];
                let grad = &grad[start * out_image..][..images * out_image];
                let staging = if images == 1 { 0 } else { images * out_image };
                with_buffers(depth * columns, staging, |cols, staged| {
                    im2col_transposed(x, images, shape, cols);
                    // g(pixel j, channel o) at o * columns + j: with one image exactly `grad`.
                    let g: &[f32] = if images == 1 {
                        grad
                    } else {
                        for (image, channels) in grad.chunks_exact(out_image).enumerate() {
                            for (o, pixels) in channels.chunks_exact(hw).enumerate() {
                                staged[o * columns + image * hw..][..hw].copy_from_slice(pixels);
                            }
                        }
                        staged
                    };
                    // dw(tap t, channel o) at o * depth + t = sum_j cols(t, j) g(j, o)
                    gemm(
                        (depth, out_channels, columns),
                        &mut sum,
                        (1, depth),
                        cols,
                        (1, depth),
                        g,
                        (1, columns),
                        true,
                    );
                });
            }
            sum
        })
        .collect();
    // Summed in part order, so the result does not depend on scheduling.
    let mut parts = sums.into_iter();
    let mut total = parts.next().expect("at least one part");
    for part in parts {
        total.iter_mut().zip(&part).for_each(|(t, p)| *t += p);
    }
    total
}
