//! Backends agree on a training step: from the same host-drawn weights and the same batch, one
//! step (forward, cross-entropy, backward, mirror step) on each backend, compared with `flex`.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::Device;

use super::benchmark_potentials;
use super::pipeline::synthetic_batch;
use crate::backend::BackendDevice;
use crate::model::Vgg;
use crate::optim::{MirrorDescentConfig, StepForm, named_params};

/// What one training step produced, on the host.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// The batch's mean cross-entropy before the step.
    pub loss: f64,
    /// The logits before the step, row-major.
    pub logits: Vec<f64>,
    /// Per parameter tensor, the step's update `theta_after - theta_before`.
    pub updates: Vec<Vec<f64>>,
}

/// How far a backend's step is from `flex`'s.
#[derive(Debug, Clone)]
pub struct AgreementRow {
    /// Backend name.
    pub backend: String,
    /// Optimizer label.
    pub optimizer: String,
    /// `|loss - loss_flex| / |loss_flex|`.
    pub loss: f64,
    /// `max |logit - logit_flex| / max |logit_flex|`.
    pub logits: f64,
    /// Largest over tensors of `||update - update_flex|| / ||update_flex||` (backward and
    /// mirror step together).
    pub update: f64,
}

/// The step settings compared: every potential, primal and dual.
pub fn agreement_optimizers() -> Vec<MirrorDescentConfig> {
    let potentials = benchmark_potentials();
    [StepForm::Primal, StepForm::Dual]
        .into_iter()
        .flat_map(|step| {
            potentials.map(|p| MirrorDescentConfig::new().with_potential(p).with_step(step))
        })
        .collect()
}

/// One training step of a width/`width_divisor` VGG-16 drawn from `seed` on `device`, on a
/// synthetic batch of `batch_size` images (the same on every device), at step size `lr`.
pub fn one_step(
    device: &Device,
    width_divisor: usize,
    seed: u64,
    optimizer: &MirrorDescentConfig,
    batch_size: usize,
    lr: f64,
) -> StepOutcome {
    let device = device.clone().autodiff();
    let batch = synthetic_batch(batch_size, seed, &device);
    let model = Vgg::new(width_divisor, seed, &device);
    let before = named_params(&model, true);
    let logits = model.forward(batch.images);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits.clone(), batch.targets);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut optimizer_state = optimizer.init_for(&model).expect("valid settings");
    let model = optimizer_state.step(lr, model, grads);
    let after = named_params(&model, true);
    StepOutcome {
        loss: loss.into_scalar::<f64>(),
        logits: logits.into_data().iter::<f64>().collect(),
        updates: before
            .iter()
            .zip(&after)
            .map(|(b, a)| a.values.iter().zip(&b.values).map(|(a, b)| a - b).collect())
            .collect(),
    }
}

fn norm(values: impl Iterator<Item = f64>) -> f64 {
    values.map(|v| v * v).sum::<f64>().sqrt()
}

/// How far `other` is from `reference` (see [`AgreementRow`]).
pub fn compare(reference: &StepOutcome, other: &StepOutcome) -> (f64, f64, f64) {
    let peak = reference.logits.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let logits = reference
        .logits
        .iter()
        .zip(&other.logits)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / peak;
    let update = reference
        .updates
        .iter()
        .zip(&other.updates)
        .map(|(r, o)| norm(r.iter().zip(o).map(|(r, o)| r - o)) / norm(r.iter().copied()))
        .fold(0.0, f64::max);
    (
        (other.loss - reference.loss).abs() / reference.loss.abs(),
        logits,
        update,
    )
}

/// One step of every [`agreement_optimizers`] setting on each of `computes`, compared with the
/// same step on `flex`.
pub fn agreement_rows(
    computes: &[BackendDevice],
    width_divisor: usize,
    batch_size: usize,
) -> Vec<AgreementRow> {
    let flex = Device::flex();
    let mut rows = Vec::new();
    for config in agreement_optimizers() {
        let reference = one_step(&flex, width_divisor, 1, &config, batch_size, 0.05);
        for compute in computes {
            let outcome = one_step(&compute.device, width_divisor, 1, &config, batch_size, 0.05);
            let (loss, logits, update) = compare(&reference, &outcome);
            rows.push(AgreementRow {
                backend: compute.backend.name().to_string(),
                optimizer: format!("{} {}", config.potential.label(), config.step.name()),
                loss,
                logits,
                update,
            });
        }
    }
    rows
}

/// The rows as a Markdown table.
pub fn agreement_table(rows: &[AgreementRow], width_divisor: usize, batch_size: usize) -> String {
    let mut out = format!(
        "One training step vs flex (same host-drawn weights and batch; width 1/{width_divisor}, batch {batch_size}, lr 0.05): relative differences\n\n| backend | optimizer | loss | logits (max) | update (worst tensor) |\n|---|---|---:|---:|---:|\n"
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {:.1e} | {:.1e} | {:.1e} |\n",
            row.backend, row.optimizer, row.loss, row.logits, row.update
        ));
    }
    out
}
