//! `metrics.csv`: one row per finished epoch.

use serde::{Deserialize, Serialize};

use super::csv::CsvRecord;

/// One row of `metrics.csv` (its field names are the columns).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training cross-entropy over the epoch.
    pub train_loss: f64,
    /// Training accuracy over the epoch (0..1), measured while training.
    pub train_acc: f64,
    /// Validation cross-entropy after the epoch.
    pub val_loss: f64,
    /// Validation accuracy after the epoch (0..1).
    pub val_acc: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training and validation).
    pub wall_s: f64,
    /// Training images per second.
    pub images_per_s: f64,
}

impl CsvRecord for EpochMetrics {
    fn epoch(&self) -> usize {
        self.epoch
    }
}
