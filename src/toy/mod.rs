//! `mirrorburn toy`: the student-teacher experiment of paper §5 and Appendix J.1-J.2. Every
//! method runs on every seed; results go to `results.json` and `tables.md`, with figures.
//!
//! `results.json` schema: `{ "config": <the ToyConfig>, "methods": [ { "name", "potential",
//! "lr", "runs": [ToyRun...], "summary": { "<measure>": { "mean", "std" } } } ] }` where the
//! measures are `gamma_1`, `gamma_2`, `gamma_3`, `q_margin`, `active_neurons`, `balance_drift`
//! (over the seeds that did not diverge) and `ToyRun` holds `seed`, `steps`,
//! `log10_final_loss`, `diverged`, `rescaled_at`, `gamma` ([k=1, 2, 3]), `q_margin`,
//! `active_neurons`, `balance_drift`, `trajectory` ([{ step, log10_inverse_loss, gamma }]),
//! `representation` ([[x, y]] per hidden neuron) and `first_layer` (flattened weights).

mod config;
mod experiment;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use config::{ToyConfig, ToyMethod};
pub use experiment::{Problem, ToyRun, TrajectoryPoint, k_margins, problem, run, student_weights};

use crate::diagnostics::layer_histogram;
use crate::report::{Chart, MeanStd, Series};

/// Size of the toy figures (smaller than the report's: they are committed as references).
const FIGURE_SIZE: (u32, u32) = (720, 450);

/// One method's runs and summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// Method name.
    pub name: String,
    /// The potential.
    pub potential: crate::optim::Potential,
    /// Base step size.
    pub lr: f64,
    /// One run per seed.
    pub runs: Vec<ToyRun>,
    /// Measures over the non-diverged runs.
    pub summary: BTreeMap<String, MeanStd>,
}

/// The whole experiment's results (`results.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToyResults {
    /// The config that produced them.
    pub config: ToyConfig,
    /// Per method.
    pub methods: Vec<MethodResult>,
}

/// Runs every method on every seed (seeds in parallel threads), printing one line per run.
pub fn run_all(config: &ToyConfig) -> ToyResults {
    let methods = config
        .methods
        .iter()
        .map(|method| {
            let runs: Vec<ToyRun> = std::thread::scope(|scope| {
                let handles: Vec<_> = config
                    .seeds
                    .iter()
                    .map(|&seed| scope.spawn(move || run(config, method, seed)))
                    .collect();
                handles.into_iter().map(|h| h.join().expect("a toy run panicked")).collect()
            });
            for r in &runs {
                println!(
                    "{} seed {}: {} steps, log10 L {:.1}{}, gamma = [{:.3e}, {:.3e}, {:.3e}], active {}",
                    method.name,
                    r.seed,
                    r.steps,
                    r.log10_final_loss,
                    if r.diverged { " DIVERGED" } else { "" },
                    r.gamma[0],
                    r.gamma[1],
                    r.gamma[2],
                    r.active_neurons
                );
            }
            let ok: Vec<&ToyRun> = runs.iter().filter(|r| !r.diverged).collect();
            let measure = |f: &dyn Fn(&ToyRun) -> f64| MeanStd::of(&ok.iter().map(|r| f(r)).collect::<Vec<_>>());
            let mut summary = BTreeMap::new();
            summary.insert("gamma_1".to_string(), measure(&|r| r.gamma[0]));
            summary.insert("gamma_2".to_string(), measure(&|r| r.gamma[1]));
            summary.insert("gamma_3".to_string(), measure(&|r| r.gamma[2]));
            summary.insert("q_margin".to_string(), measure(&|r| r.q_margin));
            summary.insert("active_neurons".to_string(), measure(&|r| r.active_neurons as f64));
            summary.insert("balance_drift".to_string(), measure(&|r| r.balance_drift));
            MethodResult {
                name: method.name.clone(),
                potential: method.potential,
                lr: method.lr,
                runs,
                summary,
            }
        })
        .collect();
    ToyResults {
        config: config.clone(),
        methods,
    }
}

/// The results as a Markdown table (mean ± std over seeds).
pub fn table(results: &ToyResults) -> String {
    let mut md = format!(
        "# {} ({}-layer student, {} seeds)\n\n| method | lr | L1 margin | L2 margin | L3 margin | Q-margin | active neurons | balance drift | reached L target | diverged |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        results.config.name,
        results.config.depth,
        results.config.seeds.len()
    );
    for m in &results.methods {
        let cell = |key: &str| {
            let v = m.summary[key];
            format!("{:.3e} ± {:.2e}", v.mean, v.std)
        };
        let active = m.summary["active_neurons"];
        let diverged = m.runs.iter().filter(|r| r.diverged).count();
        let target = results.config.loss_target.log10();
        let reached = m
            .runs
            .iter()
            .filter(|r| r.log10_final_loss < target)
            .count();
        let _ = writeln!(
            md,
            "| {} ({}) | {} | {} | {} | {} | {} | {:.1} ± {:.1} | {} | {reached}/{} | {diverged}/{} |",
            m.name,
            m.potential.label(),
            m.lr,
            cell("gamma_1"),
            cell("gamma_2"),
            cell("gamma_3"),
            cell("q_margin"),
            active.mean,
            active.std,
            cell("balance_drift"),
            m.runs.len(),
            m.runs.len()
        );
    }
    md
}

/// Writes `results.json`, `tables.md` and the figures into `out`.
pub fn write_outputs(results: &ToyResults, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let json = serde_json::to_vec(results)?;
    crate::fsutil::write_atomic(&out.join("results.json"), &json)?;
    let mut md = table(results);
    md.push('\n');
    for m in &results.methods {
        let first = &m.runs[0];
        let chart = Chart {
            title: format!(
                "{}: input-weight representation (seed {})",
                m.name, first.seed
            ),
            x_label: "first input coordinate".into(),
            y_label: "second input coordinate".into(),
            series: vec![Series {
                name: m.potential.label(),
                points: first.representation.iter().map(|p| (p[0], p[1])).collect(),
                markers_only: true,
                ..Default::default()
            }],
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
        series: results
            .methods
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let w = &m.runs[0].first_layer;
                let h = layer_histogram(0, 0, "layers.0", 2, w);
                let total = h.count.max(1) as f64;
                let points = (0..h.magnitude.counts.len())
                    .map(|b| {
                        let centre = (h.magnitude.edges[b] * h.magnitude.edges[b + 1]).sqrt();
                        (centre, h.magnitude.counts[b] as f64 / total)
                    })
                    .collect();
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
            series: results
                .methods
                .iter()
                .enumerate()
                .map(|(i, m)| Series {
                    name: m.name.clone(),
                    points: m.runs[0]
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
    crate::fsutil::write_atomic(&out.join("tables.md"), md.as_bytes())?;
    Ok(())
}
