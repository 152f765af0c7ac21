//! Training runs: the loop with checkpoints and resume, evaluation, the per-epoch diagnostics
//! step, and pruning of a trained run.

mod datasets;
mod error;
mod evaluate;
mod model_io;
mod prune;
mod record;
mod step;
mod stop;
mod trainer;

pub use datasets::{RunDatasets, run_datasets};
pub use error::TrainError;
pub use evaluate::{Tally, evaluate};
pub use model_io::{load_model, model_bytes};
pub use prune::{CheckpointChoice, DEFAULT_SPARSITIES, prune_run};
pub use step::train_step;
pub use stop::{install_stop_handlers, stop_requested};
pub use trainer::{BURN_VERSION, TrainOptions, train};
