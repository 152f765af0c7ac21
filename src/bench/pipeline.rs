//! The data pipeline alone: synthetic CIFAR-format images through the training loader (shuffle,
//! batch, normalise, upload) to the device, with nothing computed on them.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::median;
use crate::data::{
    CifarBatch, CifarBatcher, CifarDataset, IMAGE_BYTES, Normalization, Split, loader,
};
use crate::device_read::read_data;

/// Throughput of the data pipeline.
#[derive(Debug, Clone)]
pub struct PipelineRow {
    /// Images per epoch.
    pub images: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Median images per second over the timed epochs.
    pub images_per_s: f64,
}

/// `images` random CIFAR-format images (seeded), as one split.
pub fn synthetic_split(images: usize, seed: u64) -> Split {
    let mut rng = StdRng::seed_from_u64(seed);
    Split {
        pixels: (0..images * IMAGE_BYTES).map(|_| rng.random()).collect(),
        labels: (0..images).map(|_| rng.random_range(0..10u8)).collect(),
    }
}

/// One standardised batch of `batch_size` synthetic images (seeded) on `device`, through the
/// training loader.
pub fn synthetic_batch(batch_size: usize, seed: u64, device: &Device) -> CifarBatch {
    let split = synthetic_split(batch_size, seed);
    let batcher = CifarBatcher::new(Normalization::Standardize, &split);
    let dataset = CifarDataset::subset(Arc::new(split), None, 0);
    loader(dataset, batcher, batch_size, None, device)
        .iter()
        .next()
        .expect("one batch")
        .expect("synthetic batches are valid")
}

/// Times `repeats` epochs (after one warm-up) of the training loader over `images` synthetic
/// images in batches of `batch_size`, every batch synced to `device`.
pub fn pipeline_row(
    images: usize,
    batch_size: usize,
    repeats: usize,
    device: &Device,
) -> PipelineRow {
    let split = synthetic_split(images, 0);
    let batcher = CifarBatcher::new(Normalization::Standardize, &split);
    let dataset = CifarDataset::subset(Arc::new(split), None, 0);
    let mut rates = Vec::with_capacity(repeats);
    for epoch in 0..=repeats {
        let epoch_loader = loader(
            dataset.clone(),
            batcher.clone(),
            batch_size,
            Some(epoch as u64),
            device,
        );
        let start = Instant::now();
        let mut seen = 0;
        for batch in epoch_loader.iter() {
            let batch = batch.expect("synthetic batches are valid");
            seen += batch.targets.dims()[0];
            let _ = read_data(batch.images); // wait until the batch is on the device
        }
        if epoch > 0 {
            rates.push(seen as f64 / start.elapsed().as_secs_f64());
        }
    }
    PipelineRow {
        images,
        batch_size,
        images_per_s: median(rates),
    }
}

/// The row as a Markdown table.
pub fn pipeline_table(row: &PipelineRow, backend: &str) -> String {
    format!(
        "Data pipeline alone ({backend}): {} synthetic images per epoch, batch {}, shuffled, normalised, on the device\n\n| images/s (median epoch) |\n|---:|\n| {:.0} |\n",
        row.images, row.batch_size, row.images_per_s
    )
}
