//! The report's figures, one function per chart, from runs grouped into methods.

use super::read::Method;
use crate::diagnostics::{MeanStd, PruneScope};
use crate::plot::{Chart, Series};
use crate::rundir::PruneRow;

/// First- or last-layer weight magnitudes of each method's first seed (Figure 4 left, Figure 14).
pub fn magnitude_chart(methods: &[Method], first: bool) -> Chart {
    let which = if first { "first" } else { "last" };
    let series = methods
        .iter()
        .enumerate()
        .filter_map(|(i, method)| {
            let (f, l) = method.runs[0].first_last.as_ref()?;
            let h = if first { f } else { l };
            Some(Series {
                name: format!("{} (epoch {})", method.label, h.epoch),
                points: h.magnitude.geometric_density(h.count),
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

/// Mean validation accuracy vs sparsity with the min..max band over seeds (Figure 4 middle), for
/// one pruning scope. Seeds are aligned by sparsity value; a sparsity missing from some seed uses
/// those that have it.
pub fn pruning_chart(methods: &[Method], scope: PruneScope) -> Chart {
    let series = methods
        .iter()
        .enumerate()
        .filter_map(|(i, method)| {
            let curves: Vec<Vec<&PruneRow>> = method
                .runs
                .iter()
                .filter_map(|r| r.pruning.as_ref())
                .map(|rows| rows.iter().filter(|r| r.scope == scope).collect::<Vec<_>>())
                .filter(|rows| !rows.is_empty())
                .collect();
            let mut sparsities: Vec<f64> = curves
                .iter()
                .flat_map(|c| c.iter().map(|r| r.sparsity))
                .collect();
            sparsities.sort_by(f64::total_cmp);
            sparsities.dedup();
            if sparsities.is_empty() {
                return None;
            }
            let mut points = Vec::new();
            let mut band = Vec::new();
            for s in sparsities {
                let accs: Vec<f64> = curves
                    .iter()
                    .filter_map(|c| c.iter().find(|r| r.sparsity == s))
                    .map(|r| 100.0 * r.val_acc)
                    .collect();
                points.push((100.0 * s, MeanStd::of(&accs).mean));
                if curves.len() > 1 {
                    let lo = accs.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = accs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    band.push((100.0 * s, lo, hi));
                }
            }
            Some(Series {
                name: format!("{} ({} seeds)", method.label, curves.len()),
                points,
                band,
                color: i,
                ..Default::default()
            })
        })
        .collect();
    Chart {
        title: format!(
            "One-shot magnitude pruning, {} (band: min..max over seeds)",
            match scope {
                PruneScope::Layer => "each layer to the sparsity",
                PruneScope::Global => "one global threshold",
            }
        ),
        x_label: "sparsity (%)".into(),
        y_label: "validation accuracy (%)".into(),
        series,
        ..Default::default()
    }
}

/// Product-norm margin of each method's first seed against the epoch or against 1/loss
/// (Figure 2 right).
pub fn margin_chart(methods: &[Method], against_loss: bool) -> Chart {
    let series = methods
        .iter()
        .enumerate()
        .map(|(i, method)| {
            let run = &method.runs[0];
            let points = run
                .margins
                .iter()
                .filter_map(|m| {
                    if against_loss {
                        let loss = run.metrics.iter().find(|r| r.epoch == m.epoch)?.train_loss;
                        Some((1.0 / loss, m.product_norm_margin))
                    } else {
                        Some((m.epoch as f64, m.product_norm_margin))
                    }
                })
                .collect();
            Series {
                name: method.label.clone(),
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

/// Training (dashed) and validation (solid) accuracy per epoch of each method's first seed.
pub fn curves_chart(methods: &[Method]) -> Chart {
    let mut series = Vec::new();
    for (i, method) in methods.iter().enumerate() {
        let run = &method.runs[0];
        let of = |f: fn(&crate::rundir::EpochMetrics) -> f64| {
            run.metrics
                .iter()
                .map(|m| (m.epoch as f64, 100.0 * f(m)))
                .collect()
        };
        series.push(Series {
            name: format!("{} val", method.label),
            points: of(|m| m.val_acc),
            color: i,
            ..Default::default()
        });
        series.push(Series {
            name: format!("{} train", method.label),
            points: of(|m| m.train_acc),
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

/// The largest balance drift over layers per epoch of each method's first seed.
pub fn balance_chart(methods: &[Method]) -> Chart {
    let series = methods
        .iter()
        .enumerate()
        .map(|(i, method)| Series {
            name: method.label.clone(),
            points: method.runs[0]
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

/// One lambda and a statistic's values over its seeds.
type LambdaValues = (f64, Vec<f64>);

/// A statistic of one run for [`lambda_chart`].
pub type RunStatistic = fn(&super::read::RunData) -> Option<f64>;

/// The statistics drawn against lambda (file name, caption, y label, statistic).
pub const LAMBDA_STATISTICS: [(&str, &str, &str, RunStatistic); 4] = [
    (
        "lambda_first_layer_l1_l2",
        "First-layer ‖W‖₁/‖W‖₂ vs lambda",
        "‖W‖₁/‖W‖₂",
        |r| {
            r.first_last
                .as_ref()
                .map(|(first, _)| first.summary.l1_over_l2)
        },
    ),
    (
        "lambda_first_layer_near_zero",
        "First-layer fraction near zero vs lambda",
        "fraction near zero",
        |r| {
            r.first_last
                .as_ref()
                .map(|(first, _)| first.summary.frac_near_zero)
        },
    ),
    (
        "lambda_pruned_50",
        "Validation accuracy at 50% layer-wise sparsity vs lambda",
        "val acc (%)",
        |r| pruned_accuracy(r, 0.5),
    ),
    (
        "lambda_pruned_80",
        "Validation accuracy at 80% layer-wise sparsity vs lambda",
        "val acc (%)",
        |r| pruned_accuracy(r, 0.8),
    ),
];

fn pruned_accuracy(run: &super::read::RunData, sparsity: f64) -> Option<f64> {
    run.pruning.as_ref()?.iter().find_map(|row| {
        (row.scope == PruneScope::Layer && (row.sparsity - sparsity).abs() < 1e-9)
            .then_some(100.0 * row.val_acc)
    })
}

/// A statistic against lambda (log scale): per family of methods that differ only in lambda
/// (same potential kind and p, step and lr) and ran at two or more lambdas, the mean over seeds
/// with its min..max band; GD's mean as a horizontal line over the same range (Lemma 4.10: large
/// lambda tends to GD). `None` without such a family.
pub fn lambda_chart(
    methods: &[Method],
    caption: &str,
    y_label: &str,
    statistic: RunStatistic,
) -> Option<Chart> {
    let family_of = |m: &Method| -> Option<(String, f64)> {
        let config = &m.runs[0].config;
        let (kind, lambda) = match config.optimizer.potential {
            crate::optim::Potential::Gd => return None,
            crate::optim::Potential::Hyperbolic { lambda } => ("hyperbolic".to_string(), lambda),
            crate::optim::Potential::PHomogeneous { p, lambda } => (format!("p = {p}"), lambda),
        };
        Some((
            format!(
                "{kind}, {} step, lr {}",
                config.optimizer.step.name(),
                config.lr
            ),
            lambda,
        ))
    };
    let values = |m: &Method| -> Vec<f64> { m.runs.iter().filter_map(statistic).collect() };
    let mut families: Vec<(String, Vec<LambdaValues>)> = Vec::new();
    for method in methods {
        if let Some((family, lambda)) = family_of(method) {
            let values = values(method);
            if values.is_empty() {
                continue;
            }
            match families.iter_mut().find(|(f, _)| *f == family) {
                Some((_, points)) => points.push((lambda, values)),
                None => families.push((family, vec![(lambda, values)])),
            }
        }
    }
    families.retain(|(_, points)| points.len() >= 2);
    if families.is_empty() {
        return None;
    }
    let lambdas = families.iter().flat_map(|(_, p)| p.iter().map(|(l, _)| *l));
    let (low, high) = lambdas.fold((f64::INFINITY, 0.0f64), |(lo, hi), l| {
        (lo.min(l), hi.max(l))
    });
    let mut series: Vec<Series> = families
        .into_iter()
        .enumerate()
        .map(|(i, (family, mut points))| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                name: format!("{family} (mean, min..max over seeds)"),
                points: points
                    .iter()
                    .map(|(l, v)| (*l, MeanStd::of(v).mean))
                    .collect(),
                band: points
                    .iter()
                    .map(|(l, v)| {
                        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
                        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        (*l, min, max)
                    })
                    .collect(),
                color: i + 1,
                ..Default::default()
            }
        })
        .collect();
    for gd in methods.iter().filter(|m| family_of(m).is_none()) {
        let values = values(gd);
        if !values.is_empty() {
            let mean = MeanStd::of(&values).mean;
            series.push(Series {
                name: format!("{} (mean over {} seeds)", gd.label, values.len()),
                points: vec![(low, mean), (high, mean)],
                dashed: true,
                color: 0,
                ..Default::default()
            });
        }
    }
    Some(Chart {
        title: caption.to_string(),
        x_label: "lambda (log scale)".into(),
        y_label: y_label.to_string(),
        log_x: true,
        series,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;
    use crate::diagnostics::layer_histogram;
    use crate::report::{RunData, group};
    use crate::rundir::{RunStatus, Summary};

    /// A run of `potential` whose first layer holds `weights` and which scored `accuracy` at 50%
    /// layer-wise sparsity.
    fn run(potential: &str, seed: u64, weights: &[f64], accuracy: f64) -> RunData {
        let text = format!(
            "name = \"r\"\nseed = {seed}\nepochs = 9\nlr = 0.05\n[optimizer]\npotential = {potential}\n"
        );
        let layer = layer_histogram(9, 0, "features.0.weight", 27, weights);
        RunData {
            dir: "r".into(),
            config: TrainConfig::from_toml(&text, "test", &[]).unwrap(),
            summary: Summary {
                name: "r".into(),
                status: RunStatus::Completed,
                epochs_completed: 9,
                epochs_planned: 9,
                best_val_acc: None,
                best_epoch: None,
                final_val_acc: None,
                error: None,
                backend: "flex".into(),
                mirrorburn_version: "0".into(),
                burn_version: "0.22.1".into(),
                config_md5: None,
            },
            metrics: Vec::new(),
            margins: Vec::new(),
            balance_drift: Vec::new(),
            first_last: Some((layer.clone(), layer)),
            pruning: Some(vec![PruneRow {
                sparsity: 0.5,
                scope: PruneScope::Layer,
                achieved: 0.5,
                val_loss: 1.0,
                val_acc: accuracy,
                per_layer: Vec::new(),
            }]),
        }
    }

    #[test]
    fn statistics_are_drawn_against_lambda_with_gd_as_a_line() {
        let p10 =
            |lambda: f64| format!("{{ kind = \"p_homogeneous\", p = 10.0, lambda = {lambda} }}");
        let runs = vec![
            run("{ kind = \"gd\" }", 1, &[1.0, 1.0, 1.0, 1.0], 0.6),
            run("{ kind = \"gd\" }", 2, &[1.0, 1.0, 1.0, 1.0], 0.8),
            run(&p10(1e2), 1, &[1.0, 0.0, 0.0, 0.0], 0.2),
            run(&p10(1e2), 2, &[1.0, 1.0, 0.0, 0.0], 0.4),
            run(&p10(1e8), 1, &[1.0, 1.0, 1.0, 0.0], 0.5),
            run("{ kind = \"hyperbolic\", lambda = 0.1 }", 1, &[1.0; 4], 0.9),
        ];
        let methods = group(runs);
        let (_, caption, y_label, l1_l2) = LAMBDA_STATISTICS[0];
        let chart =
            lambda_chart(&methods, caption, y_label, l1_l2).expect("p10 ran at two lambdas");
        // One family (p = 10; hyperbolic ran at one lambda only) and GD's line.
        assert_eq!(chart.series.len(), 2, "{:?}", chart.series);
        let family = &chart.series[0];
        // l1/l2 of (1, 0, 0, 0) is 1, of (1, 1, 0, 0) sqrt(2), of (1, 1, 1, 0) sqrt(3).
        let mean = (1.0 + 2f64.sqrt()) / 2.0;
        let close = |got: (f64, f64), want: (f64, f64)| {
            assert!(
                got.0 == want.0 && (got.1 - want.1).abs() < 1e-12,
                "{got:?} vs {want:?}"
            );
        };
        close(family.points[0], (1e2, mean));
        close(family.points[1], (1e8, 3f64.sqrt()));
        let (lambda, low, high) = family.band[0];
        assert_eq!(lambda, 1e2);
        assert!((low - 1.0).abs() < 1e-12 && (high - 2f64.sqrt()).abs() < 1e-12);
        let gd = &chart.series[1];
        close(gd.points[0], (1e2, 2.0));
        close(gd.points[1], (1e8, 2.0));
        assert!(gd.dashed);
        let (_, caption, y_label, pruned_50) = LAMBDA_STATISTICS[2];
        let chart = lambda_chart(&methods, caption, y_label, pruned_50).unwrap();
        let mean_of = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
        close(
            chart.series[0].points[0],
            (1e2, 100.0 * mean_of(&[0.2, 0.4])),
        );
        close(
            chart.series[1].points[0],
            (1e2, 100.0 * mean_of(&[0.6, 0.8])),
        );
        // Without a second lambda there is nothing to draw.
        let single: Vec<_> = methods
            .into_iter()
            .filter(|m| !m.label.contains("1e8") && !m.label.contains("100000000"))
            .collect();
        assert!(lambda_chart(&single, caption, y_label, pruned_50).is_none());
    }
}
