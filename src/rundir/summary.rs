//! `summary.json`: where a run stands.

use serde::{Deserialize, Serialize};

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
    /// SIGTERM or SIGINT stopped the run after a checkpoint; `--resume` continues it exactly.
    Interrupted,
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
    /// MD5 of the resolved config's TOML (`config.toml`), identifying the run's settings.
    #[serde(default)]
    pub config_md5: Option<String>,
}
