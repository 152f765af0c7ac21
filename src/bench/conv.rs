//! Per VGG-16 layer shape: the forward pass, the input gradient and the weight gradient of our
//! 3x3 convolution ([`crate::conv::kernels`]) and of Burn flex's (`conv2d`,
//! `conv2d_x_backward`, `conv2d_weight_backward`), on the same random tensors.

use std::time::Instant;

use burn::backend::Flex;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::tensor::TensorData;
use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::median;
use crate::conv::conv3x3_options;
use crate::conv::kernels::{self, ConvShape};
use crate::model::{ConvLayerShape, conv_layer_shapes};

/// Milliseconds of forward, input gradient and weight gradient.
#[derive(Debug, Clone, Copy)]
pub struct ConvTimes {
    /// Forward pass.
    pub forward_ms: f64,
    /// Input gradient.
    pub input_grad_ms: f64,
    /// Weight gradient.
    pub weight_grad_ms: f64,
}

/// Timing of one layer shape.
#[derive(Debug, Clone)]
pub struct ConvRow {
    /// The layer shape.
    pub shape: ConvLayerShape,
    /// How many of VGG-16's 13 conv layers have it.
    pub count: usize,
    /// Whether it is the first layer (whose input gradient training never computes).
    pub first: bool,
    /// Our kernels.
    pub ours: ConvTimes,
    /// Burn flex's convolution.
    pub burn: ConvTimes,
}

/// Median milliseconds of `repeats` calls of `work` after one warm-up.
fn time_ms<R>(repeats: usize, mut work: impl FnMut() -> R) -> f64 {
    let mut times = Vec::with_capacity(repeats);
    for round in 0..=repeats {
        let start = Instant::now();
        std::hint::black_box(work());
        if round > 0 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    median(times)
}

/// Times both convolutions on every distinct layer shape of VGG-16 at `width_divisor`, batch
/// `batch_size`, median of `repeats` after a warm-up.
pub fn conv_rows(width_divisor: usize, batch_size: usize, repeats: usize) -> Vec<ConvRow> {
    let mut rng = StdRng::seed_from_u64(0);
    let mut random = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random::<f32>() - 0.5).collect() };
    let mut rows: Vec<ConvRow> = Vec::new();
    for (index, layer) in conv_layer_shapes(width_divisor).into_iter().enumerate() {
        if let Some(last) = rows.last_mut().filter(|row| row.shape == layer) {
            last.count += 1;
            continue;
        }
        let shape = ConvShape {
            batch: batch_size,
            in_channels: layer.in_channels,
            out_channels: layer.out_channels,
            height: layer.side,
            width: layer.side,
        };
        let side = layer.side;
        let x_dims = [batch_size, layer.in_channels, side, side];
        let w_dims = [layer.out_channels, layer.in_channels, 3, 3];
        let g_dims = [batch_size, layer.out_channels, side, side];
        let (x, w, g) = (
            random(x_dims.iter().product()),
            random(w_dims.iter().product()),
            random(g_dims.iter().product()),
        );
        let flex = |values: &Vec<f32>, dims: [usize; 4]| {
            FloatTensor::<Flex>::from_data(TensorData::new(values.clone(), dims))
        };
        let (fx, fw, fg) = (flex(&x, x_dims), flex(&w, w_dims), flex(&g, g_dims));
        let options = conv3x3_options;
        let ours = ConvTimes {
            forward_ms: time_ms(repeats, || kernels::forward(&x, &w, &shape)),
            input_grad_ms: time_ms(repeats, || kernels::input_grad(&g, &w, &shape)),
            weight_grad_ms: time_ms(repeats, || kernels::weight_grad(&x, &g, &shape)),
        };
        let burn = ConvTimes {
            forward_ms: time_ms(repeats, || {
                Flex::conv2d(fx.clone(), fw.clone(), None, options())
            }),
            input_grad_ms: time_ms(repeats, || {
                Flex::conv2d_x_backward(fx.clone(), fw.clone(), fg.clone(), options())
            }),
            weight_grad_ms: time_ms(repeats, || {
                Flex::conv2d_weight_backward(fx.clone(), fw.clone(), fg.clone(), options())
            }),
        };
        rows.push(ConvRow {
            shape: layer,
            count: 1,
            first: index == 0,
            ours,
            burn,
        });
    }
    rows
}

/// The rows as a Markdown table, with totals over VGG-16's 13 layers (weighted by count; the
/// input-gradient total leaves out the first layer, as training does).
pub fn conv_table(rows: &[ConvRow], width_divisor: usize, batch_size: usize) -> String {
    let width = match width_divisor {
        1 => "full width".to_string(),
        k => format!("width/{k}"),
    };
    let mut out = format!(
        "Convolution per VGG-16 layer shape (flex, {width}, batch {batch_size}; medians, ms; ratio = Burn / ours)\n\n| layer | n | ours fwd | burn fwd | ratio | ours dgrad | burn dgrad | ratio | ours wgrad | burn wgrad | ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let mut totals = [0.0f64; 6];
    for row in rows {
        let (o, b) = (row.ours, row.burn);
        let pairs = [
            (o.forward_ms, b.forward_ms),
            (o.input_grad_ms, b.input_grad_ms),
            (o.weight_grad_ms, b.weight_grad_ms),
        ];
        let s = row.shape;
        out.push_str(&format!(
            "| {}-{}@{} | {} |",
            s.in_channels, s.out_channels, s.side, row.count
        ));
        for (part, (ours, burn)) in pairs.iter().enumerate() {
            out.push_str(&format!(" {ours:.2} | {burn:.2} | {:.2} |", burn / ours));
            if !(part == 1 && row.first) {
                totals[2 * part] += ours * row.count as f64;
                totals[2 * part + 1] += burn * row.count as f64;
            }
        }
        out.push('\n');
    }
    out.push_str("| **all 13 layers** | 13 |");
    for part in 0..3 {
        let (ours, burn) = (totals[2 * part], totals[2 * part + 1]);
        out.push_str(&format!(" {ours:.1} | {burn:.1} | {:.2} |", burn / ours));
    }
    let (ours, burn) = (
        totals[0] + totals[2] + totals[4],
        totals[1] + totals[3] + totals[5],
    );
    out.push_str(&format!(
        "\n\nAll three, 13 layers: ours {ours:.1} ms, Burn {burn:.1} ms ({:.2}x)\n",
        burn / ours
    ));
    out
}
