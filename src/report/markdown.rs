//! `report.md` and its figures for a set of run directories.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::charts::{
    LAMBDA_STATISTICS, balance_chart, curves_chart, lambda_chart, magnitude_chart, margin_chart,
    pruning_chart,
};
use super::read::{Method, group, read_run};
use crate::diagnostics::{MeanStd, PruneScope};
use crate::fsutil::{WriteError, write_atomic};
use crate::plot::PlotError;
use crate::rundir::RunDirError;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No run directory was given.
    #[error("no run directories given; pass at least one with --runs")]
    NoRuns,
    /// A run directory cannot be read.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// A figure cannot be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// The report cannot be written.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// A unit enum's config spelling (`fan_in`, `primal`, ...).
fn name_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Writes the figures and `report.md` for `run_dirs` into `out`; returns the report's path.
pub fn write_report(run_dirs: &[PathBuf], out: &Path) -> Result<PathBuf, ReportError> {
    if run_dirs.is_empty() {
        return Err(ReportError::NoRuns);
    }
    let runs = run_dirs
        .iter()
        .map(|d| read_run(d))
        .collect::<Result<Vec<_>, _>>()?;
    let methods = group(runs);
    let mut md = String::from("# mirrorburn report\n\n");
    let _ = writeln!(
        md,
        "Runs: {}\n",
        run_dirs
            .iter()
            .map(|d| format!("`{}`", d.display()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    md.push_str(&accuracy_table(&methods));
    md.push_str(&weights_table(&methods));

    let figures = [
        (
            "weights_first_layer",
            "First-layer weight magnitudes (Figure 4 left)",
            magnitude_chart(&methods, true),
        ),
        (
            "weights_last_layer",
            "Last-layer weight magnitudes (Figure 14)",
            magnitude_chart(&methods, false),
        ),
        (
            "pruning",
            "Validation accuracy vs sparsity, layer-wise (Figure 4 middle)",
            pruning_chart(&methods, PruneScope::Layer),
        ),
        (
            "margins_vs_epoch",
            "Product-norm margin vs epoch",
            margin_chart(&methods, false),
        ),
        (
            "margins_vs_inverse_loss",
            "Product-norm margin vs 1/loss (Figure 2 right)",
            margin_chart(&methods, true),
        ),
        (
            "curves",
            "Training and validation accuracy",
            curves_chart(&methods),
        ),
        ("balance_drift", "Balance drift", balance_chart(&methods)),
    ];
    let global = methods
        .iter()
        .flat_map(|m| &m.runs)
        .filter_map(|r| r.pruning.as_ref())
        .any(|rows| rows.iter().any(|r| r.scope == PruneScope::Global));
    let figures = figures.into_iter().chain(global.then(|| {
        (
            "pruning_global",
            "Validation accuracy vs sparsity, global threshold",
            pruning_chart(&methods, PruneScope::Global),
        )
    }));
    let lambda_figures = LAMBDA_STATISTICS
        .iter()
        .filter_map(|&(name, caption, y_label, statistic)| {
            lambda_chart(&methods, caption, y_label, statistic).map(|chart| (name, caption, chart))
        })
        .collect::<Vec<_>>();
    for (name, caption, chart) in figures.chain(lambda_figures) {
        chart.render(&out.join(name))?;
        let _ = writeln!(
            md,
            "\n## {caption}\n\n![{caption}]({name}.png)\n\n[SVG]({name}.svg)"
        );
    }
    let path = out.join("report.md");
    write_atomic(&path, md.as_bytes())?;
    Ok(path)
}

/// Best validation accuracy per method, mean ± std over seeds, with the settings.
fn accuracy_table(methods: &[Method]) -> String {
    let mut md = String::from(
        "## Best validation accuracy (Table 9 style)\n\n| method | seeds | best val acc (%) | settings |\n|---|---:|---:|---|\n",
    );
    for method in methods {
        let best: Vec<f64> = method
            .runs
            .iter()
            .filter_map(|r| r.summary.best_val_acc)
            .map(|a| 100.0 * a)
            .collect();
        let MeanStd { mean, std } = MeanStd::of(&best);
        let c = &method.runs[0].config;
        let _ = writeln!(
            md,
            "| {} | {} | {mean:.2} ± {std:.2} | width/{}, {} train / {} val images, {} epochs, batch {}, lr {}, {} step, {} scaling |",
            method.label,
            method.runs.len(),
            c.model.width_divisor,
            c.data.n_train.map_or("all".into(), |n| n.to_string()),
            c.data.n_val.map_or("all".into(), |n| n.to_string()),
            c.epochs,
            c.batch_size,
            c.lr,
            name_of(&c.optimizer.step),
            name_of(&c.optimizer.width_scaling),
        );
    }
    md
}

/// `mean ± std` of the values, each multiplied by `scale`, with `digits` decimals; `–` when
/// there are none.
fn spread(values: &[f64], scale: f64, digits: usize) -> String {
    if values.is_empty() {
        return "–".to_string();
    }
    let scaled: Vec<f64> = values.iter().map(|v| v * scale).collect();
    let MeanStd { mean, std } = MeanStd::of(&scaled);
    format!("{mean:.digits$} ± {std:.digits$}")
}

/// Per method, mean ± std over its seeds: fit, end-of-training margin, first- and last-layer
/// sparsity statistics, and pruned accuracies (layer-wise and global).
fn weights_table(methods: &[Method]) -> String {
    let mut md = String::from(
        "\n## Fit, margin and weights, side by side (mean ± std over seeds)\n\n| method | seeds | final train acc (%) | final val acc (%) | normalised margin (end) | margin > 0 | first layer: near zero | first layer: ‖W‖₁/‖W‖₂ | last layer: near zero | last layer: ‖W‖₁/‖W‖₂ |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for method in methods {
        let runs = &method.runs;
        let last_metrics = |f: fn(&crate::rundir::EpochMetrics) -> f64| -> Vec<f64> {
            runs.iter()
                .filter_map(|r| r.metrics.last().map(f))
                .collect()
        };
        let margins: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.margins.last().map(|m| m.product_norm_margin))
            .collect();
        let positive = margins.iter().filter(|&&m| m > 0.0).count();
        let layer = |first: bool, f: fn(&crate::diagnostics::LayerSummary) -> f64| -> Vec<f64> {
            runs.iter()
                .filter_map(|r| r.first_last.as_ref())
                .map(|(a, b)| f(if first { &a.summary } else { &b.summary }))
                .collect()
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {positive}/{} | {} | {} | {} | {} |",
            method.label,
            runs.len(),
            spread(&last_metrics(|m| m.train_acc), 100.0, 2),
            spread(&last_metrics(|m| m.val_acc), 100.0, 2),
            spread_sci(&margins),
            margins.len(),
            spread(&layer(true, |s| s.frac_near_zero), 1.0, 4),
            spread(&layer(true, |s| s.l1_over_l2), 1.0, 2),
            spread(&layer(false, |s| s.frac_near_zero), 1.0, 4),
            spread(&layer(false, |s| s.l1_over_l2), 1.0, 2),
        );
    }
    md.push_str(
        "\n(\"near zero\": |w| < 1e-3 max |w| of the layer, at the last logged epoch; normalised margin: min_i q_i / prod_l ||W_l||_F on the margin probe images, at the last logged epoch.)\n",
    );
    md.push_str(
        "\n## Validation accuracy after magnitude pruning (%, mean ± std over seeds; no retraining)\n\n| method | layer-wise 50% | layer-wise 80% | layer-wise 90% | global 50% | global 80% | global 90% |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for method in methods {
        let at = |scope: PruneScope, s: f64| -> Vec<f64> {
            method
                .runs
                .iter()
                .filter_map(|r| r.pruning.as_ref())
                .filter_map(|rows| {
                    rows.iter()
                        .find(|r| r.scope == scope && (r.sparsity - s).abs() < 1e-9)
                        .map(|r| r.val_acc)
                })
                .collect()
        };
        let _ = write!(md, "| {} |", method.label);
        for scope in [PruneScope::Layer, PruneScope::Global] {
            for s in [0.5, 0.8, 0.9] {
                let values = at(scope, s);
                let _ = write!(md, " {} ({}) |", spread(&values, 100.0, 2), values.len());
            }
        }
        md.push('\n');
    }
    md.push_str("\n(In parentheses: the number of pruned seeds.)\n");
    md
}

/// `mean ± std` in scientific notation; `–` when there are no values.
fn spread_sci(values: &[f64]) -> String {
    if values.is_empty() {
        return "–".to_string();
    }
    let MeanStd { mean, std } = MeanStd::of(values);
    format!("{mean:.3e} ± {std:.1e}")
}
