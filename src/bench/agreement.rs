//! Backends agree on a training step: from the same host-drawn weights and the same batch, one
//! step (forward, cross-entropy, backward, mirror step) on each backend, compared with `flex`.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Float};

use super::benchmark_potentials;
use super::pipeline::synthetic_batch;
use crate::backend::BackendDevice;
use crate::closeness::{Closeness, Tolerance};
use crate::device_read::{read_f64, read_scalar};
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

/// Bounds of a training step against `flex`'s: loss (relative), logits and every parameter
/// tensor's update (backward and mirror step together), element by element (see [`Closeness`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AgreementBounds {
    /// Name shown in tables.
    pub name: &'static str,
    /// Largest relative difference of the loss.
    pub loss: f64,
    /// The logits.
    pub logits: Tolerance,
    /// Every tensor's update.
    pub updates: Tolerance,
}

/// Plain f32 arithmetic in another summation order (flex, lavapipe; measured there at ~1e-6 of
/// the peak for the logits and ~1e-5 for the updates): a margin of 10-100.
pub const F32_BOUNDS: AgreementBounds = AgreementBounds {
    name: "f32",
    loss: 1e-4,
    logits: Tolerance {
        peak: 1e-4,
        element: 1e-3,
    },
    updates: Tolerance {
        peak: 1e-3,
        element: 1e-2,
    },
};

/// GPU convolutions may run on TF32 tensor cores (cubek does for f32 from sm_80 on, as cuDNN
/// does by default): inputs keep 10 mantissa bits (~5e-4 relative). Measured on an H200 (cuda,
/// width/8, batch 100; `artifacts/bench/gpu-check-h200.md`): logits 1.5e-3 of their peak, and
/// the first layer's weight gradient, a sum of 102,400 products with much cancellation, up to
/// 8.3e-2 of its peak (the same for every optimizer: it is the backward pass). These bounds keep
/// a margin of ~3 and still fail a NaN, a sign or a wrong formula (O(1) differences); the
/// mirror step itself is held to f32 precision per element without convolutions
/// (`bench --parts step-accuracy`).
pub const TF32_BOUNDS: AgreementBounds = AgreementBounds {
    name: "tf32",
    loss: 2e-3,
    logits: Tolerance {
        peak: 1e-2,
        element: f64::INFINITY,
    },
    updates: Tolerance {
        peak: 0.25,
        element: f64::INFINITY,
    },
};

/// How far a backend's step is from `flex`'s.
#[derive(Debug, Clone)]
pub struct AgreementRow {
    /// Backend name.
    pub backend: String,
    /// Optimizer label.
    pub optimizer: String,
    /// The step's differences.
    pub difference: StepDifference,
}

/// Element-by-element differences of one training step from a reference step.
#[derive(Debug, Clone)]
pub struct StepDifference {
    /// `|loss - loss_ref| / |loss_ref|` (infinite when the loss is not finite and the
    /// reference's is).
    pub loss: f64,
    /// The logits.
    pub logits: Closeness,
    /// Per parameter tensor, its update.
    pub updates: Vec<Closeness>,
}

impl StepDifference {
    /// The worst peak-relative difference of any tensor's update (infinite on a NaN).
    pub fn worst_update_peak(&self) -> f64 {
        self.updates
            .iter()
            .map(Closeness::peak_relative)
            .fold(0.0, |m, v| if v > m || v.is_nan() { v } else { m })
    }

    /// The worst per-element relative difference of any tensor's update (infinite on a NaN).
    pub fn worst_update_element(&self) -> f64 {
        self.updates
            .iter()
            .map(Closeness::element_relative)
            .fold(0.0, |m, v| if v > m || v.is_nan() { v } else { m })
    }

    /// `Ok` within `bounds`, else what is out of them.
    pub fn check(&self, bounds: &AgreementBounds) -> Result<(), String> {
        if self.loss.is_nan() || self.loss > bounds.loss {
            return Err(format!(
                "loss differs by {:e} (bound {:e})",
                self.loss, bounds.loss
            ));
        }
        self.logits
            .check(bounds.logits)
            .map_err(|e| format!("logits: {e}"))?;
        for (index, update) in self.updates.iter().enumerate() {
            update
                .check(bounds.updates)
                .map_err(|e| format!("update of parameter tensor {index}: {e}"))?;
        }
        Ok(())
    }
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
        loss: read_scalar::<f64, 1, Float>(loss),
        logits: read_f64(logits),
        updates: before
            .iter()
            .zip(&after)
            .map(|(b, a)| a.values.iter().zip(&b.values).map(|(a, b)| a - b).collect())
            .collect(),
    }
}

/// How far `other` is from `reference`, element by element.
pub fn compare(reference: &StepOutcome, other: &StepOutcome) -> StepDifference {
    let loss = if reference.loss.is_finite() && !other.loss.is_finite() {
        f64::INFINITY
    } else {
        (other.loss - reference.loss).abs() / reference.loss.abs()
    };
    StepDifference {
        loss,
        logits: Closeness::between(&reference.logits, &other.logits),
        updates: reference
            .updates
            .iter()
            .zip(&other.updates)
            .map(|(r, o)| Closeness::between(r, o))
            .collect(),
    }
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
            rows.push(AgreementRow {
                backend: compute.backend.name().to_string(),
                optimizer: format!("{} {}", config.potential.label(), config.step.name()),
                difference: compare(&reference, &outcome),
            });
        }
    }
    rows
}

/// The rows as a Markdown table, with each row's verdict against `bounds`.
pub fn agreement_table(
    rows: &[AgreementRow],
    width_divisor: usize,
    batch_size: usize,
    bounds: &AgreementBounds,
) -> String {
    let mut out = format!(
        "One training step vs flex (same host-drawn weights and batch; width 1/{width_divisor}, batch {batch_size}, lr 0.05): element-wise differences (peak: max |a - b| / max |flex|; element: max |a - b| / |flex| where |flex| >= 1e-3 of the peak). Verdict under the {} bounds: loss {:.0e}, logits {:.0e} / {:.0e}, updates {:.0e} / {:.0e}.\n\n| backend | optimizer | loss | logits peak | logits element | update peak (worst tensor) | update element (worst tensor) | verdict |\n|---|---|---:|---:|---:|---:|---:|---|\n",
        bounds.name,
        bounds.loss,
        bounds.logits.peak,
        bounds.logits.element,
        bounds.updates.peak,
        bounds.updates.element
    );
    for row in rows {
        let d = &row.difference;
        out.push_str(&format!(
            "| {} | {} | {:.1e} | {:.1e} | {:.1e} | {:.1e} | {:.1e} | {} |\n",
            row.backend,
            row.optimizer,
            d.loss,
            d.logits.peak_relative(),
            d.logits.element_relative(),
            d.worst_update_peak(),
            d.worst_update_element(),
            match d.check(bounds) {
                Ok(()) => "pass".to_string(),
                Err(why) => format!("FAIL: {why}"),
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One element of one update of a real step (flex, width/32) is replaced by a NaN, an
    /// infinity or its f32 neighbour: the first two fail every bound, the ulp passes the bounds
    /// and is still measured, at that element, per element.
    #[test]
    fn a_planted_nan_inf_or_ulp_in_one_update_is_caught_where_it_should_be() {
        let config = MirrorDescentConfig::new();
        let reference = one_step(&Device::flex(), 32, 1, &config, 4, 0.05);
        let (tensor, element) = (3, 17);
        let plant = |value: f64| {
            let mut other = reference.clone();
            other.updates[tensor][element] = value;
            compare(&reference, &other)
        };
        assert!(compare(&reference, &reference).check(&F32_BOUNDS).is_ok());
        for bad in [f64::NAN, f64::INFINITY] {
            let difference = plant(bad);
            assert_eq!(
                difference.updates[tensor].non_finite.map(|n| n.0),
                Some(element)
            );
            assert_eq!(difference.worst_update_peak(), f64::INFINITY);
            assert!(difference.check(&F32_BOUNDS).is_err(), "{bad}");
            assert!(difference.check(&TF32_BOUNDS).is_err(), "{bad}");
        }
        let original = reference.updates[tensor][element];
        let neighbour = f32::from_bits((original as f32).to_bits() + 1) as f64;
        let difference = plant(neighbour);
        assert!(difference.check(&F32_BOUNDS).is_ok());
        let seen = &difference.updates[tensor];
        assert_eq!(seen.worst_abs.0, element);
        assert!(seen.peak_relative() > 0.0 && seen.peak_relative() < 1e-6);
        // Every other tensor is untouched.
        for (index, other) in difference.updates.iter().enumerate() {
            if index != tensor {
                assert_eq!(other.peak_relative(), 0.0, "tensor {index}");
            }
        }
    }
}
