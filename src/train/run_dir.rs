//! The files of a run directory: `config.toml`, `metrics.csv`, `summary.json`, and the
//! checkpoint (`checkpoint.json` pointing at model and optimizer files under `checkpoints/`).
//! Every write is atomic.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

/// Column names of `metrics.csv`.
pub const METRICS_HEADER: &str =
    "epoch,train_loss,train_acc,val_loss,val_acc,lr,wall_s,images_per_s";

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

impl EpochMetrics {
    fn to_csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{:.3},{:.1}",
            self.epoch,
            self.train_loss,
            self.train_acc,
            self.val_loss,
            self.val_acc,
            self.lr,
            self.wall_s,
            self.images_per_s
        )
    }

    fn from_csv(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 8 {
            return None;
        }
        let num = |i: usize| f[i].parse::<f64>().ok();
        Some(Self {
            epoch: f[0].parse().ok()?,
            train_loss: num(1)?,
            train_acc: num(2)?,
            val_loss: num(3)?,
            val_acc: num(4)?,
            lr: num(5)?,
            wall_s: num(6)?,
            images_per_s: num(7)?,
        })
    }
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Training (or killed while training; `--resume` continues it).
    Running,
    /// All epochs done.
    Completed,
    /// A non-finite loss stopped the run.
    Diverged,
    /// An error stopped the run.
    Failed,
}

/// `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Run name.
    pub name: String,
    /// Status.
    pub status: RunStatus,
    /// Epochs finished.
    pub epochs_completed: usize,
    /// Epochs planned.
    pub epochs_planned: usize,
    /// Best validation accuracy so far (0..1).
    pub best_val_acc: Option<f64>,
    /// Epoch of the best validation accuracy.
    pub best_epoch: Option<usize>,
    /// Validation accuracy after the last finished epoch.
    pub final_val_acc: Option<f64>,
    /// What stopped the run, for `diverged` and `failed`.
    pub error: Option<String>,
    /// Backend used.
    pub backend: String,
    /// mirrorburn's version.
    pub mirrorburn_version: String,
    /// Burn's version.
    pub burn_version: String,
}

/// `checkpoint.json`: the last complete checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Epochs completed when it was taken.
    pub epoch: usize,
    /// Model record file, relative to the run directory.
    pub model: String,
    /// Optimizer record file, relative to the run directory.
    pub optimizer: String,
}

/// A run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

/// Name of the best model's record file.
pub const BEST_MODEL: &str = "checkpoints/best-model.bpk";

impl RunDir {
    /// The run directory at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the run directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Writes `bytes` to `relative` atomically.
    pub fn write(&self, relative: &str, bytes: &[u8]) -> std::io::Result<()> {
        write_atomic(&self.path(relative), bytes)
    }

    /// Reads `summary.json`, if there is one.
    pub fn summary(&self) -> Option<Summary> {
        read_json(&self.path("summary.json"))
    }

    /// Writes `summary.json`.
    pub fn write_summary(&self, summary: &Summary) -> std::io::Result<()> {
        self.write("summary.json", &json_bytes(summary))
    }

    /// Reads `checkpoint.json`, if there is one.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        read_json(&self.path("checkpoint.json"))
    }

    /// Writes model and optimizer records for `epoch`, then points `checkpoint.json` at them,
    /// then removes the previous checkpoint's files. A crash at any point leaves a complete
    /// checkpoint behind.
    pub fn write_checkpoint(
        &self,
        epoch: usize,
        model: &[u8],
        optimizer: &[u8],
    ) -> std::io::Result<()> {
        let previous = self.checkpoint();
        let next = Checkpoint {
            epoch,
            model: format!("checkpoints/model-epoch{epoch:05}.bpk"),
            optimizer: format!("checkpoints/optimizer-epoch{epoch:05}.bpk"),
        };
        self.write(&next.model, model)?;
        self.write(&next.optimizer, optimizer)?;
        self.write("checkpoint.json", &json_bytes(&next))?;
        if let Some(old) = previous.filter(|old| old.epoch != epoch) {
            let _ = fs::remove_file(self.path(&old.model));
            let _ = fs::remove_file(self.path(&old.optimizer));
        }
        Ok(())
    }

    /// The rows of `metrics.csv` (none if absent).
    pub fn metrics(&self) -> Vec<EpochMetrics> {
        fs::read_to_string(self.path("metrics.csv"))
            .map(|text| {
                text.lines()
                    .skip(1)
                    .filter_map(EpochMetrics::from_csv)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Rewrites `metrics.csv` with `rows`.
    pub fn write_metrics(&self, rows: &[EpochMetrics]) -> std::io::Result<()> {
        let mut text = format!("{METRICS_HEADER}\n");
        for row in rows {
            text.push_str(&row.to_csv());
            text.push('\n');
        }
        self.write("metrics.csv", text.as_bytes())
    }
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("plain data serializes");
    bytes.push(b'\n');
    bytes
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}
