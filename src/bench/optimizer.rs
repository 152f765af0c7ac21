//! One optimizer step over the whole VGG-16 parameter set: Burn's SGD against every potential,
//! primal and dual.

use std::time::Instant;

use burn::optim::{ModuleOptimizer, SgdConfig};
use burn::tensor::Device;

use super::benchmark_potentials;
use crate::model::Vgg;
use crate::optim::{MirrorDescentConfig, StepForm, random_gradients};

/// One row of the benchmark table.
#[derive(Debug, Clone)]
pub struct BenchRow {
    /// Optimizer label.
    pub name: String,
    /// Median seconds per step.
    pub median_s: f64,
    /// Minimum seconds per step.
    pub min_s: f64,
}

/// The optimizers the benchmark compares: Burn's SGD, then GD, hyperbolic and p = 10, primal
/// and dual.
fn contenders() -> Vec<(String, ModuleOptimizer)> {
    let mut list = vec![("burn sgd".to_string(), SgdConfig::new().init())];
    let potentials = benchmark_potentials();
    for step in [StepForm::Primal, StepForm::Dual] {
        for potential in potentials {
            let config = MirrorDescentConfig::new()
                .with_potential(potential)
                .with_step(step);
            let optimizer = config.init().expect("benchmark settings are valid");
            list.push((
                format!("{} {:?}", potential.label(), step).to_lowercase(),
                optimizer,
            ));
        }
    }
    list
}

/// Times `repeats` steps of every contender on a VGG-16 of the given width on `device`
/// (an autodiff device). Gradients are drawn before each timed step.
pub fn run(width_divisor: usize, repeats: usize, device: &Device) -> Vec<BenchRow> {
    let mut model = Vgg::new(width_divisor, 0, device);
    let mut rows = Vec::new();
    for (name, mut optimizer) in contenders() {
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats + 1 {
            let grads = random_gradients(&model, 1e-3);
            device.sync().expect("device sync");
            let start = Instant::now();
            model = optimizer.step(1e-3, model, grads);
            device.sync().expect("device sync");
            times.push(start.elapsed().as_secs_f64());
        }
        times.remove(0); // warm-up
        times.sort_by(f64::total_cmp);
        rows.push(BenchRow {
            name,
            median_s: times[times.len() / 2],
            min_s: times[0],
        });
    }
    rows
}

/// The rows as a Markdown table with each median relative to Burn's SGD.
pub fn to_markdown(rows: &[BenchRow], params: usize) -> String {
    let base = rows[0].median_s;
    let mut out = format!(
        "One optimizer step over {params} parameters\n\n| optimizer | median ms | min ms | vs SGD |\n|---|---:|---:|---:|\n"
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.2}x |\n",
            row.name,
            row.median_s * 1e3,
            row.min_s * 1e3,
            row.median_s / base
        ));
    }
    out
}
