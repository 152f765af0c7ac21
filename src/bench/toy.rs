//! The student-teacher toy's step (forward pass, gradient, mirror step, loss bookkeeping): the
//! hand-derived f64 path the experiment uses against Burn's autodiff path it is tested against,
//! per depth and method of `configs/toy-{2,3}layer.toml`.

use std::time::Instant;

use super::median;
use crate::toy::{GradientPath, ToyConfig, run};

/// Microseconds per step of one method at one depth.
#[derive(Debug, Clone)]
pub struct ToyStepRow {
    /// Student depth (2 or 3).
    pub depth: usize,
    /// Method name of the config.
    pub method: String,
    /// The hand path.
    pub hand_us: f64,
    /// Burn's autodiff path.
    pub autodiff_us: f64,
}

/// Times `steps` steps of every method of `configs` (each a loaded toy config) on both gradient
/// paths, median of `repeats` after a warm-up; runs start at init seed 0, before separation.
pub fn toy_step_rows(configs: &[ToyConfig], steps: usize, repeats: usize) -> Vec<ToyStepRow> {
    let mut rows = Vec::new();
    for config in configs {
        let problem = config.problem_for(0).expect("the configs' problems draw");
        for method in &config.methods {
            let per_step = |gradient: GradientPath| {
                let config = ToyConfig {
                    gradient,
                    max_steps: steps,
                    loss_target: 0.0,
                    ..config.clone()
                };
                let mut times = Vec::with_capacity(repeats);
                for round in 0..=repeats {
                    let start = Instant::now();
                    let r = run(&config, method, 0, 0.1, &problem);
                    assert_eq!(r.steps, steps, "{} stopped early", method.name);
                    if round > 0 {
                        times.push(start.elapsed().as_secs_f64() * 1e6 / steps as f64);
                    }
                }
                median(times)
            };
            rows.push(ToyStepRow {
                depth: config.depth,
                method: method.name.clone(),
                hand_us: per_step(GradientPath::Hand),
                autodiff_us: per_step(GradientPath::Autodiff),
            });
        }
    }
    rows
}

/// The rows as a Markdown table.
pub fn toy_step_table(rows: &[ToyStepRow], steps: usize) -> String {
    let mut out = format!(
        "Toy step ({steps} steps per run, median µs per step; one thread)\n\n\
         | depth | method | hand f64 | Burn autodiff | speed-up |\n|---|---|---|---|---|\n"
    );
    for r in rows {
        out += &format!(
            "| {} | {} | {:.1} | {:.1} | {:.1}x |\n",
            r.depth,
            r.method,
            r.hand_us,
            r.autodiff_us,
            r.autodiff_us / r.hand_us
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toy_benchmark_times_every_method_on_both_paths() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/toy-2layer.toml");
        let config = ToyConfig::load(&path).unwrap();
        let rows = toy_step_rows(std::slice::from_ref(&config), 20, 1);
        assert_eq!(rows.len(), config.methods.len());
        assert!(
            rows.iter().all(|r| r.hand_us > 0.0 && r.autodiff_us > 0.0),
            "{rows:?}"
        );
        let table = toy_step_table(&rows, 20);
        assert_eq!(
            table.lines().filter(|l| l.starts_with("| 2 |")).count(),
            3,
            "{table}"
        );
    }
}
