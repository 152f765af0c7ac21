//! `metrics.csv`: one row per finished epoch.

use super::csv::{CsvRecord, Row};
use super::error::RunDirError;

/// One row of `metrics.csv`.
#[derive(Clone, Debug, PartialEq)]
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
    const HEADER: &'static [&'static str] = &[
        "epoch",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "lr",
        "wall_s",
        "images_per_s",
    ];

    fn to_cells(&self) -> Vec<String> {
        vec![
            self.epoch.to_string(),
            self.train_loss.to_string(),
            self.train_acc.to_string(),
            self.val_loss.to_string(),
            self.val_acc.to_string(),
            self.lr.to_string(),
            format!("{:.3}", self.wall_s),
            format!("{:.1}", self.images_per_s),
        ]
    }

    fn from_row(row: &Row) -> Result<Self, RunDirError> {
        Ok(Self {
            epoch: row.get("epoch")?,
            train_loss: row.get("train_loss")?,
            train_acc: row.get("train_acc")?,
            val_loss: row.get("val_loss")?,
            val_acc: row.get("val_acc")?,
            lr: row.get("lr")?,
            wall_s: row.get("wall_s")?,
            images_per_s: row.get("images_per_s")?,
        })
    }

    fn epoch(&self) -> usize {
        self.epoch
    }
}
