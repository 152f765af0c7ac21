//! The accuracy-vs-sparsity curve of a trained run under one-shot magnitude pruning, written to
//! `pruning.csv` in the run directory.

use std::path::Path;

use super::datasets::run_datasets;
use super::error::TrainError;
use super::evaluate::evaluate;
use super::model_io::load_model;
use super::stop::stop_requested;
use crate::backend::BackendDevice;
use crate::diagnostics::{PruneScope, prune_weights, weight_layers, with_weights, zero_fraction};
use crate::model::Vgg;
use crate::rundir::{PruneRow, RunDir, RunDirError};

/// Which weights of a run to prune.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckpointChoice {
    /// The weights at the end of training (the latest intact checkpoint): the network whose
    /// histograms and margins the report shows. The default everywhere.
    Last,
    /// The weights with the best validation accuracy.
    Best,
}

/// The default sparsity grid.
pub const DEFAULT_SPARSITIES: [f64; 13] = [
    0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99,
];

/// Prunes `run`'s chosen weights at each sparsity, evaluates them on the run's validation
/// subset and writes its rows to `pruning.csv` (replacing earlier rows of the same scope);
/// returns them. The run directory is locked meanwhile.
pub fn prune_run(
    run_dir: &Path,
    checkpoint: CheckpointChoice,
    sparsities: &[f64],
    scope: PruneScope,
    compute: &BackendDevice,
    data_dir: Option<&Path>,
) -> Result<Vec<PruneRow>, TrainError> {
    if sparsities.is_empty() {
        return Err(TrainError::Sparsities("no sparsity given".into()));
    }
    if let Some(bad) = sparsities.iter().find(|s| !(0.0..=1.0).contains(*s)) {
        return Err(TrainError::Sparsities(format!("{bad} is not in [0, 1]")));
    }
    let run = RunDir::new(run_dir);
    let _lock = run.lock()?;
    let config = run.read_config()?;
    let missing = |what: &str| RunDirError::NoIntactCheckpoint {
        dir: run_dir.to_path_buf(),
        reason: format!("no {what} yet; train the run first"),
    };
    let (bytes, origin) = match checkpoint {
        CheckpointChoice::Best => (
            run.best_model()?.ok_or_else(|| missing("best model"))?,
            "best-model.bpk".to_string(),
        ),
        CheckpointChoice::Last => {
            let (epoch, bytes) = run.last_model()?.ok_or_else(|| missing("checkpoint"))?;
            (bytes, format!("of the epoch-{epoch} checkpoint"))
        }
    };
    let device = compute.device.clone();
    let model = load_model(
        bytes,
        Vgg::new(config.model.width_divisor, config.seed, &device),
        &origin,
    )?;
    let sets = run_datasets(&config, data_dir)?;

    let layers = weight_layers(&model);
    let paths: Vec<String> = layers.iter().map(|l| l.path.clone()).collect();
    let original: Vec<Vec<f32>> = layers
        .into_iter()
        .map(|l| l.weights.into_iter().map(|w| w as f32).collect())
        .collect();
    let mut rows = Vec::new();
    for &sparsity in sparsities {
        if stop_requested() {
            return Err(TrainError::Stopped {
                what: format!("pruning {}", run_dir.display()),
            });
        }
        let pruned = prune_weights(&original, sparsity, scope);
        let per_layer: Vec<f64> = pruned.iter().map(|w| zero_fraction(w)).collect();
        let total: usize = pruned.iter().map(Vec::len).sum();
        let zeros: f64 = per_layer
            .iter()
            .zip(&pruned)
            .map(|(f, w)| f * w.len() as f64)
            .sum();
        let candidate = with_weights(model.clone(), pruned);
        let (val_loss, val_acc) = evaluate(
            &candidate,
            &sets.val,
            &sets.batcher,
            config.batch_size,
            &device,
        )?;
        println!(
            "sparsity {sparsity:.3}: val acc {:.2}%  val loss {val_loss:.4}",
            100.0 * val_acc
        );
        rows.push(PruneRow {
            sparsity,
            scope,
            achieved: zeros / total as f64,
            val_loss,
            val_acc,
            per_layer: paths.iter().cloned().zip(per_layer).collect(),
        });
    }
    // Rows of the other scope stay: a run can carry both curves.
    let mut all: Vec<PruneRow> = run
        .read_pruning()?
        .unwrap_or_default()
        .into_iter()
        .filter(|row| row.scope != scope)
        .collect();
    all.extend(rows.iter().cloned());
    run.write_pruning(&all)?;
    Ok(rows)
}
