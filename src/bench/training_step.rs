//! The whole training step (forward, cross-entropy, backward, mirror step) of VGG-16 on one
//! synthetic batch, timed in two parts: forward + backward, then the optimizer step, each
//! ended by a device sync.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::Device;

use super::median;
use super::pipeline::synthetic_batch;
use crate::device_read::device_reads;
use crate::model::Vgg;
use crate::optim::{MirrorDescentConfig, Potential, StepForm};

/// Timing of one training-step configuration.
#[derive(Debug, Clone)]
pub struct StepRow {
    /// Width divisor of the VGG-16 (1 = full width).
    pub width_divisor: usize,
    /// Trainable parameters.
    pub params: usize,
    /// Optimizer label, e.g. `hyperbolic(lambda=0.01) primal`.
    pub optimizer: String,
    /// Median seconds of forward + backward.
    pub forward_backward_s: f64,
    /// Median seconds of the optimizer step.
    pub optimizer_s: f64,
    /// Batch size.
    pub batch_size: usize,
    /// Device-to-host reads per training step (0 on a correct GPU path; see
    /// [`device_reads`]).
    pub reads_per_step: f64,
}

impl StepRow {
    /// Training images per second of the whole step.
    pub fn images_per_s(&self) -> f64 {
        self.batch_size as f64 / (self.forward_backward_s + self.optimizer_s)
    }

    /// The optimizer step's share of the whole step.
    pub fn optimizer_share(&self) -> f64 {
        self.optimizer_s / (self.forward_backward_s + self.optimizer_s)
    }
}

/// The optimizers timed in the training step: GD, hyperbolic and p = 10 (primal), and p = 10
/// with the exact step (the costliest).
fn optimizers() -> Vec<MirrorDescentConfig> {
    let hyperbolic = Potential::Hyperbolic { lambda: 0.01 };
    let p10 = Potential::PHomogeneous {
        p: 10.0,
        lambda: 0.01,
    };
    vec![
        MirrorDescentConfig::new().with_potential(Potential::Gd),
        MirrorDescentConfig::new().with_potential(hyperbolic),
        MirrorDescentConfig::new().with_potential(p10),
        MirrorDescentConfig::new()
            .with_potential(p10)
            .with_step(StepForm::Dual),
    ]
}

/// Times `repeats` training steps (after one warm-up) of every optimizer at every width on
/// `device` (a plain device; autodiff is added here), batch `batch_size`.
pub fn step_rows(
    width_divisors: &[usize],
    batch_size: usize,
    repeats: usize,
    device: &Device,
) -> Vec<StepRow> {
    let device = device.clone().autodiff();
    let batch = synthetic_batch(batch_size, 1, &device);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut rows = Vec::new();
    for &width_divisor in width_divisors {
        for config in optimizers() {
            let mut model = Vgg::new(width_divisor, 0, &device);
            let mut optimizer = config
                .init_for(&model)
                .expect("benchmark settings are valid");
            let (mut forward_backward, mut step) = (Vec::new(), Vec::new());
            let reads_before = device_reads();
            for _ in 0..=repeats {
                let start = Instant::now();
                let logits = model.forward(batch.images.clone());
                let loss = loss_fn.forward(logits, batch.targets.clone());
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                device.sync().expect("device sync");
                let middle = Instant::now();
                model = optimizer.step(1e-3, model, grads);
                device.sync().expect("device sync");
                forward_backward.push((middle - start).as_secs_f64());
                step.push(middle.elapsed().as_secs_f64());
            }
            let reads = device_reads() - reads_before;
            forward_backward.remove(0); // warm-up
            step.remove(0);
            rows.push(StepRow {
                width_divisor,
                params: model.num_params(),
                optimizer: format!("{} {}", config.potential.label(), config.step.name()),
                forward_backward_s: median(forward_backward),
                optimizer_s: median(step),
                batch_size,
                reads_per_step: reads as f64 / (repeats + 1) as f64,
            });
        }
    }
    rows
}

/// The rows as a Markdown table.
pub fn step_table(rows: &[StepRow], backend: &str) -> String {
    let mut out = format!(
        "Training step ({backend}): forward, cross-entropy, backward and mirror step on one synthetic batch (medians)\n\n| width | parameters | optimizer | batch | images/s | forward+backward ms | optimizer ms | optimizer share | reads/step |\n|---|---:|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1}% | {} |\n",
            if row.width_divisor == 1 {
                "full".to_string()
            } else {
                format!("1/{}", row.width_divisor)
            },
            row.params,
            row.optimizer,
            row.batch_size,
            row.images_per_s(),
            row.forward_backward_s * 1e3,
            row.optimizer_s * 1e3,
            100.0 * row.optimizer_share(),
            row.reads_per_step
        ));
    }
    out
}
