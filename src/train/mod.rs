//! Training runs: config, run directory, and the loop with checkpoints and resume.

mod config;
mod run_dir;
mod trainer;

pub use config::{
    ConfigError, DataConfig, LoggingConfig, ModelConfig, OptimizerSection, TrainConfig,
};
pub use run_dir::{
    BEST_MODEL, Checkpoint, EpochMetrics, METRICS_HEADER, RunDir, RunStatus, Summary,
};
pub use trainer::{
    BURN_VERSION, TrainError, TrainOptions, evaluate, load_model, model_bytes, train,
};
