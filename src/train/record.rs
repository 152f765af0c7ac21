//! The per-epoch diagnostics step: weight histograms, margins on a fixed training subset, and the
//! balance quantities, computed from one host copy of the weights and appended to the run
//! directory.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::error::TrainError;
use crate::data::{CifarBatcher, CifarDataset};
use crate::device_read::read_f64;
use crate::diagnostics::{
    LayerHistogram, LayerWeights, balance_rows, class_margins, layer_histogram, layer_q, margins,
    max_drift, weight_layers,
};
use crate::model::{NUM_CLASSES, Vgg};
use crate::optim::{MirrorDescentConfig, fan_in};
use crate::rundir::{EventWriter, RunDir, SummaryValue};

/// Images (normalised, on the evaluation device) and labels of the fixed margin subset.
pub struct MarginProbe {
    /// `[n, 3, 32, 32]`.
    pub images: Tensor<4>,
    /// Class of each image.
    pub labels: Vec<u8>,
}

/// The margin subset: the first `n` items of `dataset`, batched on `device` (no autodiff).
pub fn margin_probe(
    dataset: &CifarDataset,
    batcher: &CifarBatcher,
    n: usize,
    device: &Device,
) -> Result<MarginProbe, TrainError> {
    let n = n.min(dataset.len());
    let items = (0..n)
        .map(|i| dataset.get(i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrainError::Batch {
            split: "margin subset",
            message: e.to_string(),
        })?;
    let labels = items.iter().map(|item| item.label).collect();
    let batch = batcher.batch(items, &device.clone().without_autodiff());
    Ok(MarginProbe {
        images: batch.images,
        labels,
    })
}

/// Records histograms, margins and balance of `model` at `epoch` into `run` (and its TensorBoard
/// events). `initial_q` is filled at the first record (epoch 0) and used for the balance drift.
pub fn record_diagnostics(
    run: &RunDir,
    events: &EventWriter,
    epoch: usize,
    model: &Vgg,
    optimizer: &MirrorDescentConfig,
    probe: &MarginProbe,
    initial_q: &mut Option<Vec<f64>>,
) -> Result<(), TrainError> {
    let layers = weight_layers(model);
    let histograms: Vec<_> = layers
        .iter()
        .enumerate()
        .map(|(index, layer)| {
            layer_histogram(
                epoch,
                index,
                &layer.path,
                fan_in(&layer.dims),
                &layer.weights,
            )
        })
        .collect();
    let q = layer_q(&layers, optimizer);
    let initial = initial_q.get_or_insert_with(|| q.clone());
    let logits = logits_of(&model.valid(), &probe.images);
    let point_margins = class_margins(&logits, &probe.labels, NUM_CLASSES);
    let alpha = optimizer.potential.alpha();
    let row = margins(epoch, &point_margins, &layers, q.iter().sum(), alpha);
    let paths: Vec<String> = layers.iter().map(|l| l.path.clone()).collect();
    let balance = balance_rows(epoch, &paths, &q, initial);
    run.append_diagnostics(&histograms, &row, &balance)?;
    let mut values: Vec<SummaryValue> = [
        ("margin/product_norm", row.product_norm_margin),
        ("margin/q", row.q_margin),
        ("margin/l2", row.l2_margin),
        ("margin/q_min", row.q_min),
        ("balance/max_drift", max_drift(&balance)),
    ]
    .into_iter()
    .map(|(tag, value)| SummaryValue::Scalar {
        tag: tag.into(),
        value: value as f32,
    })
    .collect();
    values.extend(
        layers
            .iter()
            .zip(&histograms)
            .map(|(layer, h)| weight_histogram(layer, h)),
    );
    Ok(events.write(epoch as i64, &values)?)
}

/// A layer's signed-weight histogram as a TensorBoard histogram (the overflow counts as the
/// outer buckets).
fn weight_histogram(layer: &LayerWeights, h: &LayerHistogram) -> SummaryValue {
    let w = &layer.weights;
    let mut limits = vec![h.signed.edges[0]];
    limits.extend(&h.signed.edges[1..]);
    limits.push(f64::MAX);
    let mut counts = vec![h.signed.below as f64];
    counts.extend(h.signed.counts.iter().map(|&c| c as f64));
    counts.push(h.signed.above as f64);
    SummaryValue::Histogram {
        tag: format!("weights/{}", layer.path),
        min: w.iter().copied().fold(f64::INFINITY, f64::min),
        max: w.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        count: w.len() as f64,
        sum: w.iter().sum(),
        sum_squares: w.iter().map(|v| v * v).sum(),
        limits,
        counts,
    }
}

/// Logits of `images`, in chunks of 500, as row-major f64.
fn logits_of(model: &Vgg, images: &Tensor<4>) -> Vec<f64> {
    let n = images.dims()[0];
    let mut out = Vec::with_capacity(n * NUM_CLASSES);
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let chunk = images.clone().narrow(0, start, end - start);
        out.extend(read_f64(model.forward(chunk)));
    }
    out
}
