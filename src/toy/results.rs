//! Running every method on every seed, the results' schema (`results.json`) and their table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::config::ToyConfig;
use super::experiment::{ToyRun, run};
use crate::diagnostics::MeanStd;

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
