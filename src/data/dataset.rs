//! CIFAR-10 as Burn `Dataset`s and a `Batcher`: deterministic subsets, per-epoch shuffling by
//! seed, optional crop-and-flip augmentation, and per-channel normalisation.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use super::cifar::{IMAGE_BYTES, Split};

/// One image (channel-major bytes) and its class.
#[derive(Debug, Clone)]
pub struct CifarItem {
    /// 3 x 32 x 32 pixel bytes.
    pub pixels: Vec<u8>,
    /// Class index 0..=9.
    pub label: u8,
}

/// A batch ready for the model.
#[derive(Debug, Clone)]
pub struct CifarBatch {
    /// Normalised images `[batch, 3, 32, 32]`.
    pub images: Tensor<4>,
    /// Class indices `[batch]`.
    pub targets: Tensor<1, Int>,
}

/// How pixels are scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// Per-channel `(x - mean) / std` with the training split's statistics (the default).
    Standardize,
    /// `x / 255`.
    Unit,
}

/// A selection of images from a split, optionally augmented.
#[derive(Clone)]
pub struct CifarDataset {
    split: Arc<Split>,
    indices: Arc<Vec<usize>>,
    augment_seed: Option<u64>,
}

impl CifarDataset {
    /// The first `n` images of a fixed random permutation (seeded by `subset_seed`) of `split`,
    /// in their original order; `n = None` or `n >= len` takes every image.
    pub fn subset(split: Arc<Split>, n: Option<usize>, subset_seed: u64) -> Self {
        let total = split.len();
        let mut indices: Vec<usize> = (0..total).collect();
        if let Some(n) = n.filter(|&n| n < total) {
            indices.shuffle(&mut StdRng::seed_from_u64(subset_seed));
            indices.truncate(n);
            indices.sort_unstable();
        }
        Self {
            split,
            indices: Arc::new(indices),
            augment_seed: None,
        }
    }

    /// The same images with random crop (4-pixel zero padding) and horizontal flip, drawn from
    /// `seed` and the image index, so an epoch's augmentation is reproducible.
    pub fn augmented(&self, seed: u64) -> Self {
        Self {
            augment_seed: Some(seed),
            ..self.clone()
        }
    }
}

impl Dataset<CifarItem> for CifarDataset {
    fn get(&self, index: usize) -> Result<CifarItem, DatasetError> {
        let &source = self.indices.get(index).ok_or_else(|| {
            let len = self.indices.len();
            DatasetError::new(std::io::Error::other(format!(
                "index {index} >= length {len}"
            )))
        })?;
        let pixels = self.split.image(source);
        let pixels = match self.augment_seed {
            Some(seed) => crop_and_flip(
                pixels,
                seed ^ (source as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ),
            None => pixels.to_vec(),
        };
        Ok(CifarItem {
            pixels,
            label: self.split.labels[source],
        })
    }

    fn len(&self) -> usize {
        self.indices.len()
    }
}

/// Random 32x32 crop of the image padded by 4 zero pixels, then a coin-flip mirror.
fn crop_and_flip(pixels: &[u8], seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (dy, dx) = (
        rng.random_range(0..=8i32) - 4,
        rng.random_range(0..=8i32) - 4,
    );
    let flip = rng.random_bool(0.5);
    let mut out = vec![0u8; IMAGE_BYTES];
    for channel in 0..3 {
        for y in 0..32i32 {
            for x in 0..32i32 {
                let sx = if flip { 31 - x } else { x } + dx;
                let sy = y + dy;
                if (0..32).contains(&sx) && (0..32).contains(&sy) {
                    out[channel * 1024 + (y * 32 + x) as usize] =
                        pixels[channel * 1024 + (sy * 32 + sx) as usize];
                }
            }
        }
    }
    out
}

/// Turns items into normalised image tensors.
#[derive(Clone, Debug)]
pub struct CifarBatcher {
    mean: [f32; 3],
    std: [f32; 3],
}

impl CifarBatcher {
    /// A batcher for `normalization`, with statistics taken from `train` where needed.
    pub fn new(normalization: Normalization, train: &Split) -> Self {
        match normalization {
            Normalization::Unit => Self {
                mean: [0.0; 3],
                std: [255.0; 3],
            },
            Normalization::Standardize => {
                let (mean, std) = channel_stats(train);
                Self { mean, std }
            }
        }
    }
}

/// Per-channel mean and standard deviation of a split's pixels (0..255 scale).
pub fn channel_stats(split: &Split) -> ([f32; 3], [f32; 3]) {
    let mut sums = [0f64; 3];
    let mut squares = [0f64; 3];
    for image in split.pixels.chunks_exact(IMAGE_BYTES) {
        for (channel, plane) in image.chunks_exact(1024).enumerate() {
            for &value in plane {
                let v = value as f64;
                sums[channel] += v;
                squares[channel] += v * v;
            }
        }
    }
    let count = (split.len() * 1024).max(1) as f64;
    let mean = sums.map(|s| s / count);
    let std: Vec<f64> = (0..3)
        .map(|c| (squares[c] / count - mean[c] * mean[c]).max(1e-12).sqrt())
        .collect();
    (
        mean.map(|m| m as f32),
        [std[0] as f32, std[1] as f32, std[2] as f32],
    )
}

impl Batcher<CifarItem, CifarBatch> for CifarBatcher {
    fn batch(&self, items: Vec<CifarItem>, device: &Device) -> CifarBatch {
        let n = items.len();
        let mut values = Vec::with_capacity(n * IMAGE_BYTES);
        let mut labels = Vec::with_capacity(n);
        for item in &items {
            for (channel, plane) in item.pixels.chunks_exact(1024).enumerate() {
                let (mean, std) = (self.mean[channel], self.std[channel]);
                values.extend(plane.iter().map(|&v| (v as f32 - mean) / std));
            }
            labels.push(item.label as i64);
        }
        CifarBatch {
            images: Tensor::from_data(TensorData::new(values, [n, 3, 32, 32]), device),
            targets: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}

/// A loader over `dataset` in batches of `batch_size`, shuffled by `shuffle_seed` if given.
pub fn loader(
    dataset: CifarDataset,
    batcher: CifarBatcher,
    batch_size: usize,
    shuffle_seed: Option<u64>,
    device: &Device,
) -> Arc<dyn DataLoader<CifarBatch>> {
    let mut builder = DataLoaderBuilder::new(batcher)
        .batch_size(batch_size)
        .set_device(device.clone());
    if let Some(seed) = shuffle_seed {
        builder = builder.shuffle(seed);
    }
    builder.build(dataset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(n: usize) -> Arc<Split> {
        let mut split = Split::default();
        for i in 0..n {
            split
                .pixels
                .extend((0..IMAGE_BYTES).map(|p| ((i * 7 + p) % 256) as u8));
            split.labels.push((i % 10) as u8);
        }
        Arc::new(split)
    }

    #[test]
    fn subsets_are_deterministic_and_distinct() {
        let data = split(100);
        let a = CifarDataset::subset(data.clone(), Some(10), 3);
        let b = CifarDataset::subset(data.clone(), Some(10), 3);
        let c = CifarDataset::subset(data.clone(), Some(10), 4);
        assert_eq!(a.indices, b.indices);
        assert_ne!(a.indices, c.indices);
        assert_eq!(a.len(), 10);
        assert_eq!(CifarDataset::subset(data, None, 0).len(), 100);
    }

    #[test]
    fn augmentation_is_reproducible_and_keeps_pixels() {
        let data = split(4);
        let base = CifarDataset::subset(data.clone(), None, 0);
        let a = base.augmented(9).get(2).unwrap();
        let b = base.augmented(9).get(2).unwrap();
        assert_eq!(a.pixels, b.pixels);
        let original = base.get(2).unwrap();
        let differs =
            (0..32u64).any(|s| base.augmented(s).get(2).unwrap().pixels != original.pixels);
        assert!(differs, "some seed must crop or flip");
        // Padding only adds zeros: every non-zero output pixel exists in the source image.
        assert!(
            a.pixels
                .iter()
                .all(|p| *p == 0 || original.pixels.contains(p))
        );
    }

    #[test]
    fn standardized_batches_have_zero_mean_per_channel() {
        let data = split(20);
        let batcher = CifarBatcher::new(Normalization::Standardize, &data);
        let items: Vec<_> = (0..20)
            .map(|i| CifarDataset::subset(data.clone(), None, 0).get(i).unwrap())
            .collect();
        let batch = batcher.batch(items, &Device::flex());
        let means: Vec<f32> = batch
            .images
            .mean_dims(&[0, 2, 3])
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(means.iter().all(|m| m.abs() < 1e-4), "{means:?}");
        let targets: Vec<i64> = batch
            .targets
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        assert_eq!(targets[..3], [0, 1, 2]);
    }
}
