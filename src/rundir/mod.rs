//! The run directory: every file in it has one typed writer and one typed reader here.
//!
//! `config.toml`, `summary.json`, `checkpoint.json` (+ `checkpoints/`), `metrics.csv`,
//! `histograms.jsonl`, `margins.csv`, `balance.csv`, `pruning.csv`, `tensorboard/` and the
//! `run.lock`.

mod balance;
mod checkpoint;
mod crash;
mod csv;
mod dir;
mod error;
mod lock;
mod margins;
mod metrics;
mod pruning;
mod summary;
mod tensorboard;

#[cfg(test)]
mod tests;

pub use checkpoint::{
    Checkpoint, CheckpointIndex, EpochProgress, LoadedCheckpoint, StoredFile, md5_hex,
};
pub use crash::{CHECKPOINT_STEPS, CRASH_VARIABLE};
pub use dir::{
    BALANCE_FILE, BEST_MODEL_FILE, CHECKPOINT_FILE, CONFIG_FILE, HISTOGRAMS_FILE, MARGINS_FILE,
    METRICS_FILE, PRUNING_FILE, RunDir, SUMMARY_FILE,
};
pub use error::RunDirError;
pub use lock::{LOCK_FILE, RunLock};
pub use metrics::EpochMetrics;
pub use pruning::PruneRow;
pub use summary::{RunStatus, Summary};
pub use tensorboard::{Event, EventWriter, SummaryValue, TENSORBOARD_DIR, read_events};
