//! `mirrorburn report`: figures (PNG and SVG) and a Markdown report comparing run directories.
//! Runs that differ only in `seed` form one method; curves over seeds get a min..max band.

mod plot;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub use plot::{Chart, PNG_SIZE, Series};

use crate::diagnostics::LayerHistogram;
use crate::pruning::read_curve;
use crate::train::{EpochMetrics, RunDir, Summary, TrainConfig};

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
    /// `margins.csv` rows as `(epoch, product_norm_margin, q_margin)`.
    pub margins: Vec<(usize, f64, f64)>,
    /// Per epoch, the largest |drift| of `Q_l - Q_{l+1}` over layers.
    pub balance_drift: Vec<(usize, f64)>,
    /// Last recorded histograms of the first and the last weight layer.
    pub first_last: Option<(LayerHistogram, LayerHistogram)>,
    /// `pruning.csv` as `(sparsity, val_acc)`.
    pub pruning: Option<Vec<(f64, f64)>>,
}

/// Reads everything the report needs from a run directory.
pub fn read_run(dir: &Path) -> anyhow::Result<RunData> {
    let run = RunDir::new(dir);
    let config = TrainConfig::load(&run.path("config.toml"), &[])
        .with_context(|| format!("{} is not a run directory", dir.display()))?;
    let summary = run
        .summary()
        .with_context(|| format!("{} has no readable summary.json", dir.display()))?;
    let csv = |name: &str| -> Vec<Vec<String>> {
        std::fs::read_to_string(run.path(name))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let num = |s: &str| s.parse::<f64>().ok();
    let margins = csv("margins.csv")
        .iter()
        .filter_map(|r| Some((r.first()?.parse().ok()?, num(r.get(2)?)?, num(r.get(4)?)?)))
        .collect();
    let mut balance_drift: Vec<(usize, f64)> = Vec::new();
    for row in csv("balance.csv") {
        let (Some(epoch), Some(drift)) = (
            row[0].parse::<usize>().ok(),
            row.get(5).and_then(|d| num(d)),
        ) else {
            continue;
        };
        match balance_drift.last_mut() {
            Some((e, max)) if *e == epoch => *max = max.max(drift.abs()),
            _ => balance_drift.push((epoch, drift.abs())),
        }
    }
    let histograms: Vec<LayerHistogram> = std::fs::read_to_string(run.path("histograms.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
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
        metrics: run.metrics(),
        config,
        summary,
        margins,
        balance_drift,
        first_last,
        pruning: read_curve(dir),
    })
}

/// The method a run belongs to: its potential (and lr when it is not the paper's 0.1).
pub fn method_label(config: &TrainConfig) -> String {
    let potential = config.optimizer.potential.label();
    if config.lr == 0.1 {
        potential
    } else {
        format!("{potential}, lr {}", config.lr)
    }
}

/// Runs grouped by method, in order of first appearance.
fn group(runs: Vec<RunData>) -> Vec<(String, Vec<RunData>)> {
    let mut groups: Vec<(String, Vec<RunData>)> = Vec::new();
    for run in runs {
        let label = method_label(&run.config);
        match groups.iter_mut().find(|(l, _)| *l == label) {
            Some((_, members)) => members.push(run),
            None => groups.push((label, vec![run])),
        }
    }
    groups
}

/// A unit enum's config spelling (`fan_in`, `primal`, ...).
fn name_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Mean and sample standard deviation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub std: f64,
}

impl MeanStd {
    /// Of `values` (NaN mean when empty).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Self {
            mean,
            std: var.sqrt(),
        }
    }
}

/// Writes the figures and `report.md` for `run_dirs` into `out`; returns the report's path.
pub fn write_report(run_dirs: &[PathBuf], out: &Path) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        !run_dirs.is_empty(),
        "give at least one run directory with --runs"
    );
    let runs = run_dirs
        .iter()
        .map(|d| read_run(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let groups = group(runs);
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

    md.push_str("## Best validation accuracy (Table 9 style)\n\n| method | seeds | best val acc (%) | settings |\n|---|---:|---:|---|\n");
    for (label, members) in &groups {
        let best: Vec<f64> = members
            .iter()
            .filter_map(|r| r.summary.best_val_acc)
            .map(|a| 100.0 * a)
            .collect();
        let MeanStd { mean, std } = MeanStd::of(&best);
        let c = &members[0].config;
        let _ = writeln!(
            md,
            "| {label} | {} | {mean:.2} ± {std:.2} | width/{}, {} train / {} val images, {} epochs, batch {}, lr {}, {} step, {} scaling |",
            members.len(),
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

    md.push_str("\n## Weights and pruning, side by side\n\n| method | first-layer fraction near zero | first-layer ‖W‖₁/‖W‖₂ | last-layer fraction near zero | val acc at 50% / 80% / 90% sparsity (%) |\n|---|---:|---:|---:|---|\n");
    for (label, members) in &groups {
        let run = &members[0];
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
                .and_then(|c| c.iter().find(|(x, _)| (x - s).abs() < 1e-9))
                .map_or("–".to_string(), |(_, a)| format!("{:.2}", 100.0 * a))
        };
        let _ = writeln!(
            md,
            "| {label} | {near0:.4} | {ratio:.2} | {near_last:.4} | {} / {} / {} |",
            at(0.5),
            at(0.8),
            at(0.9)
        );
    }
    md.push_str("\n(\"near zero\": |w| < 1e-3 max |w| of the layer; first seed of each method.)\n");

    let figures: Vec<(&str, &str, Chart)> = vec![
        (
            "weights_first_layer",
            "First-layer weight magnitudes (Figure 4 left)",
            magnitude_chart(&groups, true),
        ),
        (
            "weights_last_layer",
            "Last-layer weight magnitudes (Figure 14)",
            magnitude_chart(&groups, false),
        ),
        (
            "pruning",
            "Validation accuracy vs sparsity (Figure 4 middle)",
            pruning_chart(&groups),
        ),
        (
            "margins_vs_epoch",
            "Product-norm margin vs epoch",
            margin_chart(&groups, false),
        ),
        (
            "margins_vs_inverse_loss",
            "Product-norm margin vs 1/loss (Figure 2 right)",
            margin_chart(&groups, true),
        ),
        (
            "curves",
            "Training and validation accuracy",
            curves_chart(&groups),
        ),
        ("balance_drift", "Balance drift", balance_chart(&groups)),
    ];
    for (name, caption, chart) in figures {
        chart.render(&out.join(name))?;
        let _ = writeln!(
            md,
            "\n## {caption}\n\n![{caption}]({name}.png)\n\n[SVG]({name}.svg)"
        );
    }
    let path = out.join("report.md");
    crate::fsutil::write_atomic(&path, md.as_bytes())?;
    Ok(path)
}

fn magnitude_chart(groups: &[(String, Vec<RunData>)], first: bool) -> Chart {
    let which = if first { "first" } else { "last" };
    let series = groups
        .iter()
        .enumerate()
        .filter_map(|(i, (label, members))| {
            let (f, l) = members[0].first_last.as_ref()?;
            let h = if first { f } else { l };
            let total = h.count.max(1) as f64;
            let points = h
                .magnitude
                .counts
                .iter()
                .enumerate()
                .map(|(b, &c)| {
                    (
                        (h.magnitude.edges[b] * h.magnitude.edges[b + 1]).sqrt(),
                        c as f64 / total,
                    )
                })
                .collect();
            Some(Series {
                name: format!("{label} (epoch {})", h.epoch),
                points,
                color: i,
                ..Default::default()
            })
        })
        .collect();
    Chart {
        title: format!("|w| of the {which} weight layer"),
        x_label: "|w| (log scale)".into(),
        y_label: "fraction of weights per bin".into(),
        log_x: true,
        series,
        ..Default::default()
    }
}

fn pruning_chart(groups: &[(String, Vec<RunData>)]) -> Chart {
    let series = groups
        .iter()
        .enumerate()
        .filter_map(|(i, (label, members))| {
            let curves: Vec<&Vec<(f64, f64)>> =
                members.iter().filter_map(|r| r.pruning.as_ref()).collect();
            let first = curves.first()?;
            let mut points = Vec::new();
            let mut band = Vec::new();
            for (k, &(s, _)) in first.iter().enumerate() {
                let accs: Vec<f64> = curves
                    .iter()
                    .filter_map(|c| c.get(k))
                    .map(|p| 100.0 * p.1)
                    .collect();
                points.push((100.0 * s, MeanStd::of(&accs).mean));
                if curves.len() > 1 {
                    let lo = accs.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = accs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    band.push((100.0 * s, lo, hi));
                }
            }
            Some(Series {
                name: format!("{label} ({} seeds)", curves.len()),
                points,
                band,
                color: i,
                ..Default::default()
            })
        })
        .collect();
    Chart {
        title: "One-shot magnitude pruning (band: min..max over seeds)".into(),
        x_label: "sparsity (%)".into(),
        y_label: "validation accuracy (%)".into(),
        series,
        ..Default::default()
    }
}

fn margin_chart(groups: &[(String, Vec<RunData>)], against_loss: bool) -> Chart {
    let series = groups
        .iter()
        .enumerate()
        .map(|(i, (label, members))| {
            let run = &members[0];
            let points = run
                .margins
                .iter()
                .filter_map(|&(epoch, margin, _)| {
                    if against_loss {
                        let loss = run.metrics.iter().find(|m| m.epoch == epoch)?.train_loss;
                        Some((1.0 / loss, margin))
                    } else {
                        Some((epoch as f64, margin))
                    }
                })
                .collect();
            Series {
                name: label.clone(),
                points,
                color: i,
                ..Default::default()
            }
        })
        .collect();
    Chart {
        title: "q_min / prod_l ||W_l||_F on the margin subset".into(),
        x_label: if against_loss {
            "1 / training loss (log scale)"
        } else {
            "epoch"
        }
        .into(),
        y_label: "product-norm margin".into(),
        log_x: against_loss,
        series,
        ..Default::default()
    }
}

fn curves_chart(groups: &[(String, Vec<RunData>)]) -> Chart {
    let mut series = Vec::new();
    for (i, (label, members)) in groups.iter().enumerate() {
        let run = &members[0];
        let val = run
            .metrics
            .iter()
            .map(|m| (m.epoch as f64, 100.0 * m.val_acc))
            .collect();
        let train = run
            .metrics
            .iter()
            .map(|m| (m.epoch as f64, 100.0 * m.train_acc))
            .collect();
        series.push(Series {
            name: format!("{label} val"),
            points: val,
            color: i,
            ..Default::default()
        });
        series.push(Series {
            name: format!("{label} train"),
            points: train,
            color: i,
            dashed: true,
            ..Default::default()
        });
    }
    Chart {
        title: "Accuracy per epoch (solid: validation, dashed: training)".into(),
        x_label: "epoch".into(),
        y_label: "accuracy (%)".into(),
        series,
        ..Default::default()
    }
}

fn balance_chart(groups: &[(String, Vec<RunData>)]) -> Chart {
    let series = groups
        .iter()
        .enumerate()
        .map(|(i, (label, members))| Series {
            name: label.clone(),
            points: members[0]
                .balance_drift
                .iter()
                .map(|&(e, d)| (e as f64, d))
                .collect(),
            color: i,
            ..Default::default()
        })
        .collect();
    Chart {
        title: "max over layers of |drift of Q_l - Q_(l+1)| since initialisation".into(),
        x_label: "epoch".into(),
        y_label: "drift (log scale)".into(),
        log_y: true,
        series,
        ..Default::default()
    }
}
