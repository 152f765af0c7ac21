//! Evaluation of a model on a dataset, and the on-device tally of loss and hits it shares with
//! the training loop.

use std::sync::Arc;

use burn::data::dataloader::DataLoader;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Float, Int, Tensor};

use super::error::TrainError;
use crate::data::{self, CifarBatch, CifarBatcher, CifarDataset};
use crate::device_read::read_scalar;
use crate::model::Vgg;

/// Mean cross-entropy and accuracy of `model` (in validation mode) on `dataset`.
pub fn evaluate(
    model: &Vgg,
    dataset: &CifarDataset,
    batcher: &CifarBatcher,
    batch_size: usize,
    device: &Device,
) -> Result<(f64, f64), TrainError> {
    let device = device.clone().without_autodiff();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let loader: Arc<dyn DataLoader<CifarBatch>> =
        data::loader(dataset.clone(), batcher.clone(), batch_size, None, &device);
    let mut tally = Tally::default();
    for batch in loader.iter() {
        let batch = batch.map_err(|e| TrainError::Batch {
            split: "validation",
            message: e.to_string(),
        })?;
        let logits = model.forward(batch.images);
        let loss = loss_fn.forward(logits.clone(), batch.targets.clone());
        tally.add(loss, logits, batch.targets);
    }
    Ok(tally.finish())
}

/// Loss and hit counts summed on the device over an epoch, read back once at the end (and, on a
/// terminal, every 50 batches for the progress bar).
#[derive(Default, Clone)]
pub struct Tally {
    loss_sum: Option<Tensor<1>>,
    hits: Option<Tensor<1, Int>>,
    /// Images added so far.
    pub seen: usize,
}

impl Tally {
    /// Adds one batch: its mean loss, logits and targets.
    pub fn add(&mut self, mean_loss: Tensor<1>, logits: Tensor<2>, targets: Tensor<1, Int>) {
        let n = targets.dims()[0];
        let hits = logits
            .argmax(1)
            .squeeze_dim::<1>(1)
            .equal(targets)
            .int()
            .sum();
        let loss = mean_loss.mul_scalar(n as f64);
        self.loss_sum = Some(match self.loss_sum.take() {
            None => loss,
            Some(total) => total + loss,
        });
        self.hits = Some(match self.hits.take() {
            None => hits,
            Some(total) => total + hits,
        });
        self.seen += n;
    }

    /// The summed loss (exactly as accumulated on the device) and hits so far.
    pub fn totals(&self) -> (f32, i64) {
        let loss = self
            .loss_sum
            .clone()
            .map_or(0.0, read_scalar::<f32, 1, Float>);
        let hits = self.hits.clone().map_or(0, read_scalar::<i64, 1, Int>);
        (loss, hits)
    }

    /// A tally continuing from totals read with [`totals`](Self::totals) over `seen` images.
    pub fn resume(loss_sum: f32, hits: i64, seen: usize, device: &Device) -> Self {
        if seen == 0 {
            return Self::default();
        }
        Self {
            // 0 + x is exactly x: the device's own dtypes, the stored values.
            loss_sum: Some(Tensor::zeros([1], device).add_scalar(loss_sum as f64)),
            hits: Some(Tensor::<1, Int>::zeros([1], device).add_scalar(hits)),
            seen,
        }
    }

    /// Mean loss and accuracy.
    pub fn finish(self) -> (f64, f64) {
        let seen = self.seen.max(1) as f64;
        let loss = self.loss_sum.map_or(0.0, read_scalar::<f64, 1, Float>);
        let hits = self.hits.map_or(0, read_scalar::<i64, 1, Int>);
        (loss / seen, hits as f64 / seen)
    }
}
