//! Why a training (or pruning) run stopped, by layer: config, data, run directory,
//! records, or divergence.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::data::DataError;
use crate::optim::MirrorDescentError;
use crate::rundir::RunDirError;

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// CIFAR-10 cannot be read or downloaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A run-directory file cannot be read, written or trusted (also mid-training).
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// The optimizer settings are invalid.
    #[error("config: invalid `optimizer`: {0}")]
    Optimizer(#[from] MirrorDescentError),
    /// A model or optimizer record cannot be (de)serialized.
    #[error("{what}: {message} (was the run trained with another width or mirrorburn version?)")]
    Record {
        /// Which record.
        what: String,
        /// Burn's message.
        message: String,
    },
    /// The data loader failed on an item.
    #[error("reading a {split} batch: {message}")]
    Batch {
        /// `training`, `validation` or `margin subset`.
        split: &'static str,
        /// The loader's message.
        message: String,
    },
    /// A fresh run was asked for where a run already is.
    #[error("{dir} already holds a run; pass --resume to continue it or --out to start a new one")]
    RunExists {
        /// The run directory.
        dir: PathBuf,
    },
    /// `--resume` with a config that differs from the stored one in more than `epochs`.
    #[error(
        "--resume: the config differs from {dir}/config.toml at `{key}` (stored {stored}, now \
         {requested}); only `epochs` may change when resuming — start a new run with --out"
    )]
    ConfigChanged {
        /// The run directory.
        dir: PathBuf,
        /// The first differing dotted key.
        key: String,
        /// The stored value.
        stored: String,
        /// The requested value.
        requested: String,
    },
    /// A sparsity outside [0, 1] (or none) was asked for.
    #[error("--sparsities: {0}")]
    Sparsities(String),
    /// SIGTERM or SIGINT stopped the run after a checkpoint.
    #[error(
        "interrupted in epoch {epoch} after {batches} batches; a checkpoint was written and the run \
         is marked `interrupted` — continue it exactly with --resume"
    )]
    Interrupted {
        /// The epoch in progress.
        epoch: usize,
        /// Its batches done.
        batches: usize,
    },
    /// SIGTERM or SIGINT stopped work that keeps no partial state (a pruning curve).
    #[error(
        "{what} was stopped by a signal before it finished; nothing of it was written — run the \
         same command again"
    )]
    Stopped {
        /// The work, e.g. "pruning runs/gd".
        what: String,
    },
    /// A non-finite loss.
    #[error(
        "training diverged in epoch {epoch} (non-finite {what} loss); the run is marked `diverged` and the checkpoint of epoch {kept} is kept — lower `lr` and start a new run"
    )]
    Diverged {
        /// The epoch.
        epoch: usize,
        /// `train` or `validation`.
        what: &'static str,
        /// Epoch of the last good checkpoint (0: none).
        kept: usize,
    },
    /// A non-finite loss that `summary.json` could not record: it still says `running`.
    #[error(
        "training diverged in epoch {epoch} (non-finite {what} loss), and summary.json could not be marked `diverged`: {source}"
    )]
    DivergedUnrecorded {
        /// The epoch.
        epoch: usize,
        /// `train` or `validation`.
        what: &'static str,
        /// Why `summary.json` could not be written.
        source: RunDirError,
    },
}
