//! What the report reads from run directories (through the `rundir` readers), and the grouping
//! of runs into methods: runs whose resolved configs differ only in `seed` (and `name`).

use std::path::{Path, PathBuf};

use crate::config::TrainConfig;
use crate::diagnostics::{BalanceRow, LayerHistogram, Margins, max_drift};
use crate::optim::StepForm;
use crate::rundir::{EpochMetrics, PruneRow, RunDir, RunDirError, Summary};

/// What the report reads from one run directory.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The run directory.
    pub dir: PathBuf,
    /// Its config.
    pub config: TrainConfig,
    /// Its summary.
    pub summary: Summary,
    /// `metrics.csv`.
    pub metrics: Vec<EpochMetrics>,
    /// `margins.csv`.
    pub margins: Vec<Margins>,
    /// Per logged epoch, the largest |drift| of `Q_l - Q_{l+1}` over layers.
    pub balance_drift: Vec<(usize, f64)>,
    /// Last recorded histograms of the first and the last weight layer.
    pub first_last: Option<(LayerHistogram, LayerHistogram)>,
    /// `pruning.csv`, if the run was pruned.
    pub pruning: Option<Vec<PruneRow>>,
}

/// Reads everything the report needs from a run directory.
pub fn read_run(dir: &Path) -> Result<RunData, RunDirError> {
    let run = RunDir::new(dir);
    let config = run.read_config()?;
    let summary = run.read_summary()?.ok_or_else(|| RunDirError::Corrupt {
        path: run.path(crate::rundir::SUMMARY_FILE),
        reason: "missing: the run never started".into(),
    })?;
    let histograms = run.read_histograms()?;
    let last_epoch = histograms.iter().map(|h| h.epoch).max();
    let at_last: Vec<&LayerHistogram> = histograms
        .iter()
        .filter(|h| Some(h.epoch) == last_epoch)
        .collect();
    let first_last = match (at_last.first(), at_last.last()) {
        (Some(a), Some(b)) => Some(((*a).clone(), (*b).clone())),
        _ => None,
    };
    Ok(RunData {
        dir: dir.to_path_buf(),
        metrics: run.read_metrics()?,
        margins: run.read_margins()?,
        balance_drift: drift_per_epoch(&run.read_balance()?),
        config,
        summary,
        first_last,
        pruning: run.read_pruning()?,
    })
}

/// The largest |drift| of each logged epoch.
fn drift_per_epoch(rows: &[BalanceRow]) -> Vec<(usize, f64)> {
    let mut epochs: Vec<usize> = rows.iter().map(|r| r.epoch).collect();
    epochs.dedup();
    epochs
        .into_iter()
        .map(|epoch| {
            let of_epoch: Vec<BalanceRow> =
                rows.iter().filter(|r| r.epoch == epoch).cloned().collect();
            (epoch, max_drift(&of_epoch))
        })
        .collect()
}

/// The method a run belongs to: its potential (with `dual step` for the exact step, and the lr
/// when it is not the paper's 0.1).
pub fn method_label(config: &TrainConfig) -> String {
    let mut label = config.optimizer.potential.label();
    if config.optimizer.step == StepForm::Dual {
        label.push_str(", dual step");
    }
    if config.lr != 0.1 {
        label.push_str(&format!(", lr {}", config.lr));
    }
    label
}

/// Runs of one method: the same resolved config but for `seed` and `name`.
#[derive(Clone, Debug)]
pub struct Method {
    /// Label in tables and legends.
    pub label: String,
    /// The runs, one per seed.
    pub runs: Vec<RunData>,
}

/// The config with `seed` and `name` blanked: runs with equal keys are seeds of one method.
pub fn method_key(config: &TrainConfig) -> String {
    let mut key = config.clone();
    key.seed = 0;
    key.name = String::new();
    key.to_toml()
}

/// Runs grouped into methods, in order of first appearance. Two methods with the same label
/// (configs that differ in something the label does not show) get numbered labels.
pub fn group(runs: Vec<RunData>) -> Vec<Method> {
    let mut groups: Vec<(String, Method)> = Vec::new();
    for run in runs {
        let key = method_key(&run.config);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, method)) => method.runs.push(run),
            None => groups.push((
                key,
                Method {
                    label: method_label(&run.config),
                    runs: vec![run],
                },
            )),
        }
    }
    let mut methods: Vec<Method> = groups.into_iter().map(|(_, m)| m).collect();
    let labels: Vec<String> = methods.iter().map(|m| m.label.clone()).collect();
    for (i, method) in methods.iter_mut().enumerate() {
        if labels.iter().filter(|l| **l == labels[i]).count() > 1 {
            let nth = labels[..=i].iter().filter(|l| **l == labels[i]).count();
            method.label = format!("{} #{nth}", labels[i]);
        }
    }
    methods
}
