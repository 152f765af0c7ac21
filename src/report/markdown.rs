//! `report.md` and its figures for a set of run directories.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::charts::{balance_chart, curves_chart, magnitude_chart, margin_chart, pruning_chart};
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
    for (name, caption, chart) in figures {
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

/// First- and last-layer sparsity statistics and pruned accuracies of each method's first seed.
fn weights_table(methods: &[Method]) -> String {
    let mut md = String::from(
        "\n## Weights and pruning, side by side\n\n| method | first-layer fraction near zero | first-layer ‖W‖₁/‖W‖₂ | last-layer fraction near zero | val acc at 50% / 80% / 90% sparsity (%) |\n|---|---:|---:|---:|---|\n",
    );
    for method in methods {
        let run = &method.runs[0];
        let (near0, ratio, near_last) =
            run.first_last
                .as_ref()
                .map_or((f64::NAN, f64::NAN, f64::NAN), |(f, l)| {
                    (
                        f.summary.frac_near_zero,
                        f.summary.l1_over_l2,
                        l.summary.frac_near_zero,
                    )
                });
        let at = |s: f64| {
            run.pruning
                .as_ref()
                .and_then(|rows| {
                    rows.iter()
                        .find(|r| r.scope == PruneScope::Layer && (r.sparsity - s).abs() < 1e-9)
                })
                .map_or("–".to_string(), |r| format!("{:.2}", 100.0 * r.val_acc))
        };
        let _ = writeln!(
            md,
            "| {} | {near0:.4} | {ratio:.2} | {near_last:.4} | {} / {} / {} |",
            method.label,
            at(0.5),
            at(0.8),
            at(0.9)
        );
    }
    md.push_str("\n(\"near zero\": |w| < 1e-3 max |w| of the layer; first seed of each method.)\n");
    md
}
