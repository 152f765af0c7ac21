//! The toy experiment's files: `results.json`, `tables.md` and its figures.

use std::fmt::Write as _;
use std::path::Path;

use super::comparison::side_by_side;
use super::experiment::ToyRun;
use super::flow_limit::{flow_limit_tables, flow_limits};
use super::paper::paper_table;
use super::results::{MethodResult, ToyResults, table};
use crate::diagnostics::layer_histogram;
use crate::fsutil::{WriteError, write_atomic};
use crate::plot::{Chart, PlotError, Series};

/// Size of the toy figures (smaller than the report's: they are committed as references).
const FIGURE_SIZE: (u32, u32) = (720, 450);

/// Why the toy outputs could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ToyError {
    /// A file cannot be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A figure cannot be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// Writes `results.json`, `tables.md` and the figures into `out`.
pub fn write_outputs(results: &ToyResults, out: &Path) -> Result<(), ToyError> {
    let json = serde_json::to_vec(results).expect("plain data serializes");
    write_atomic(&out.join("results.json"), &json)?;
    let mut md = table(results);
    md.push('\n');
    md.push_str(&flow_limit_tables(results));
    md.push('\n');
    // Figures show each method at its flow limit (its smallest c).
    // A method whose every run diverged has nothing to draw; the others show their first
    // non-diverged run.
    let limits: Vec<(&MethodResult, &ToyRun)> = flow_limits(results)
        .into_iter()
        .filter_map(|l| Some((l.runs, l.runs.runs.iter().find(|r| !r.diverged)?)))
        .collect();
    if let Some(paper) = results.config.paper_table.as_deref().and_then(paper_table) {
        md.push_str(&side_by_side(paper, results));
        md.push('\n');
    }
    for &(m, first) in &limits {
        // The teacher's unit neurons, scaled to the student's largest, so directions compare.
        let largest = first
            .representation
            .iter()
            .map(|p| p[0].hypot(p[1]))
            .fold(0.0, f64::max);
        let chart = Chart {
            title: format!(
                "{}: a_j w_j (seed {}, c = {}); teacher red",
                m.name, first.seed, m.rescale_c
            ),
            x_label: "first input coordinate".into(),
            y_label: "second input coordinate".into(),
            series: vec![
                Series {
                    name: m.potential.label(),
                    points: first.representation.iter().map(|p| (p[0], p[1])).collect(),
                    markers_only: true,
                    ..Default::default()
                },
                Series {
                    name: "teacher a_j w_j (scaled to the largest student neuron)".into(),
                    points: first
                        .teacher
                        .iter()
                        .map(|t| (largest * t[0], largest * t[1]))
                        .collect(),
                    markers_only: true,
                    color: 1,
                    ..Default::default()
                },
            ],
            size: Some(FIGURE_SIZE),
            ..Default::default()
        };
        let name = format!("representation_{}", m.name);
        chart.render(&out.join(&name))?;
        let _ = writeln!(md, "![{name}]({name}.png)\n");
    }
    let magnitudes = Chart {
        title: "First-layer weight magnitudes (seed of the first run)".into(),
        x_label: "|w| (log scale)".into(),
        y_label: "fraction of weights per bin".into(),
        log_x: true,
        series: limits
            .iter()
            .enumerate()
            .map(|(i, (m, first))| {
                let w = &first.first_layer;
                let h = layer_histogram(0, 0, "layers.0", 2, w);
                let points = h.magnitude.geometric_density(h.count);
                Series {
                    name: m.name.clone(),
                    points,
                    color: i,
                    ..Default::default()
                }
            })
            .collect(),
        size: Some(FIGURE_SIZE),
        ..Default::default()
    };
    magnitudes.render(&out.join("weight_magnitudes"))?;
    md.push_str("![weight_magnitudes](weight_magnitudes.png)\n\n");
    for k in 0..3 {
        let chart = Chart {
            title: format!("L{} margin vs 1/L (first seed)", k + 1),
            x_label: "log10(1 / training loss)".into(),
            y_label: format!("gamma_{} (log scale)", k + 1),
            log_y: true,
            series: limits
                .iter()
                .enumerate()
                .map(|(i, (m, first))| Series {
                    name: m.name.clone(),
                    points: first
                        .trajectory
                        .iter()
                        .map(|t| (t.log10_inverse_loss, t.gamma[k]))
                        .collect(),
                    color: i,
                    ..Default::default()
                })
                .collect(),
            size: Some(FIGURE_SIZE),
            ..Default::default()
        };
        let name = format!("margin_l{}_vs_inverse_loss", k + 1);
        chart.render(&out.join(&name))?;
        let _ = writeln!(md, "![{name}]({name}.png)\n");
    }
    write_atomic(&out.join("tables.md"), md.as_bytes())?;
    Ok(())
}
