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
