//! The data of a run: CIFAR-10 found (or downloaded) the one way every command does it, then the
//! config's training and validation subsets and the batcher.

use std::path::Path;
use std::sync::Arc;

use super::error::TrainError;
use crate::config::TrainConfig;
use crate::data::{self, CifarBatcher, CifarDataset};

/// The training and validation sets of a run and their batcher.
pub struct RunDatasets {
    /// The training subset.
    pub train: CifarDataset,
    /// The validation subset.
    pub val: CifarDataset,
    /// Normalises with the training split's statistics.
    pub batcher: CifarBatcher,
}

/// Loads CIFAR-10 from `--data-dir` (`cli_dir`), else the config's `data.dir`, else
/// `$MIRRORBURN_DATA`, else `data/` (downloading when the config allows), and selects the
/// config's subsets.
pub fn run_datasets(
    config: &TrainConfig,
    cli_dir: Option<&Path>,
) -> Result<RunDatasets, TrainError> {
    let dir = data::data_dir(cli_dir, config.data.dir.as_deref());
    let cifar = data::load(&dir, config.data.download)?;
    let batcher = CifarBatcher::new(config.data.normalization, &cifar.train);
    let subset_seed = config.data.subset_seed;
    Ok(RunDatasets {
        train: CifarDataset::subset(Arc::new(cifar.train), config.data.n_train, subset_seed),
        val: CifarDataset::subset(Arc::new(cifar.test), config.data.n_val, subset_seed),
        batcher,
    })
}
