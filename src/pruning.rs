//! `mirrorburn prune`: the accuracy-vs-sparsity curve of a trained run under one-shot magnitude
//! pruning, written to `pruning.csv` in the run directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::backend::Backend;
use crate::data::{self, CifarBatcher, CifarDataset};
use crate::diagnostics::{PruneScope, prune_weights, weight_layers, with_weights, zero_fraction};
use crate::fsutil::write_atomic;
use crate::model::Vgg;
use crate::train::{BEST_MODEL, RunDir, TrainConfig, evaluate, load_model};

/// Which checkpoint of a run to prune.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckpointChoice {
    /// The weights with the best validation accuracy.
    Best,
    /// The last checkpoint.
    Last,
}

/// One row of `pruning.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneRow {
    /// Requested sparsity.
    pub sparsity: f64,
    /// Achieved fraction of zero weights over all weight layers.
    pub achieved: f64,
    /// Validation loss after pruning.
    pub val_loss: f64,
    /// Validation accuracy after pruning.
    pub val_acc: f64,
    /// Achieved sparsity of each weight layer.
    pub per_layer: Vec<f64>,
}

/// The default sparsity grid.
pub const DEFAULT_SPARSITIES: [f64; 13] = [
    0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99,
];

/// Prunes `run`'s checkpoint at each sparsity, evaluates it on the run's validation subset and
/// writes `pruning.csv`; returns the rows.
pub fn prune_run(
    run_dir: &Path,
    checkpoint: CheckpointChoice,
    sparsities: &[f64],
    scope: PruneScope,
    backend: Backend,
    data_dir: Option<&Path>,
) -> anyhow::Result<Vec<PruneRow>> {
    anyhow::ensure!(!sparsities.is_empty(), "--sparsities is empty");
    if let Some(bad) = sparsities.iter().find(|s| !(0.0..=1.0).contains(*s)) {
        anyhow::bail!("--sparsities: {bad} is not in [0, 1]");
    }
    let run = RunDir::new(run_dir);
    let config = TrainConfig::load(&run.path("config.toml"), &[])
        .with_context(|| format!("{} is not a run directory", run_dir.display()))?;
    let record = match checkpoint {
        CheckpointChoice::Best => run.path(BEST_MODEL),
        CheckpointChoice::Last => {
            let last = run.checkpoint().with_context(|| {
                format!(
                    "{} has no checkpoint.json; train it first",
                    run_dir.display()
                )
            })?;
            run.path(&last.model)
        }
    };
    let device = backend.device()?;
    let model = load_model(&record, Vgg::new(config.model.width_divisor, &device))?;

    let dir = data::data_dir(data_dir.or(config.data.dir.as_deref()));
    let cifar = data::load(&dir, config.data.download)?;
    let batcher = CifarBatcher::new(config.data.normalization, &cifar.train);
    let val = CifarDataset::subset(
        Arc::new(cifar.test),
        config.data.n_val,
        config.data.subset_seed,
    );

    let layers = weight_layers(&model);
    let paths: Vec<String> = layers.iter().map(|l| l.path.clone()).collect();
    let original: Vec<Vec<f32>> = layers
        .into_iter()
        .map(|l| l.weights.into_iter().map(|w| w as f32).collect())
        .collect();
    let mut rows = Vec::new();
    for &sparsity in sparsities {
        let pruned = prune_weights(&original, sparsity, scope);
        let per_layer: Vec<f64> = pruned.iter().map(|w| zero_fraction(w)).collect();
        let total: usize = pruned.iter().map(Vec::len).sum();
        let zeros: f64 = per_layer
            .iter()
            .zip(&pruned)
            .map(|(f, w)| f * w.len() as f64)
            .sum();
        let candidate = with_weights(model.clone(), pruned);
        let (val_loss, val_acc) = evaluate(&candidate, &val, &batcher, config.batch_size, &device)?;
        println!(
            "sparsity {sparsity:.3}: val acc {:.2}%  val loss {val_loss:.4}",
            100.0 * val_acc
        );
        rows.push(PruneRow {
            sparsity,
            achieved: zeros / total as f64,
            val_loss,
            val_acc,
            per_layer,
        });
    }
    write_atomic(
        &run.path("pruning.csv"),
        to_csv(&rows, &paths, scope).as_bytes(),
    )?;
    Ok(rows)
}

fn to_csv(rows: &[PruneRow], paths: &[String], scope: PruneScope) -> String {
    let scope = match scope {
        PruneScope::Layer => "layer",
        PruneScope::Global => "global",
    };
    let mut text = format!(
        "sparsity,scope,achieved_sparsity,val_loss,val_acc,{}\n",
        paths.join(",")
    );
    for row in rows {
        let layers: Vec<String> = row.per_layer.iter().map(|v| v.to_string()).collect();
        text.push_str(&format!(
            "{},{scope},{},{},{},{}\n",
            row.sparsity,
            row.achieved,
            row.val_loss,
            row.val_acc,
            layers.join(",")
        ));
    }
    text
}

/// `(sparsity, val_acc)` pairs of a run's `pruning.csv`, if it has one.
pub fn read_curve(run_dir: &Path) -> Option<Vec<(f64, f64)>> {
    let text = std::fs::read_to_string(PathBuf::from(run_dir).join("pruning.csv")).ok()?;
    Some(
        text.lines()
            .skip(1)
            .filter_map(|line| {
                let cells: Vec<&str> = line.split(',').collect();
                Some((cells.first()?.parse().ok()?, cells.get(4)?.parse().ok()?))
            })
            .collect(),
    )
}
