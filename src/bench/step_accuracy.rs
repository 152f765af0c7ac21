//! The mirror step alone on a backend's tensor path, in f32, against the f64 host step
//! ([`MirrorMap::step_host`]) element by element: every potential x width scaling x step form
//! at updates of relative size 1e-7 to 1e-2. No convolution is involved, so unlike the
//! agreement check this holds a GPU to f32 precision (it is what catches shader `sinh`,
//! flushed subnormals or an inaccurate `pow`).

use burn::tensor::{Device, Tensor, TensorData};

use crate::closeness::{Closeness, Tolerance};
use crate::device_read::read_f64;
use crate::optim::{CHECKED_POTENTIALS, MirrorMap, StepForm, WidthScaling};

/// Per element: 1e-5 of the tensor's largest update, and 1e-4 of each update at least 1e-3 of
/// that, after an allowance of [`NEW_WEIGHT_ULPS`] f32 ulps of the new weight.
pub const STEP_TOLERANCE: Tolerance = Tolerance {
    peak: 1e-5,
    element: 1e-4,
};

/// The allowance in f32 ulps of the new weight: an update recovered as `new - old` carries the
/// rounding of `new` (half an ulp), and the p-homogeneous exact step solves for `new` from a
/// residual rounded at that scale (a few ulps).
pub const NEW_WEIGHT_ULPS: f64 = 4.0;

/// Relative update sizes stepped (median `|update| / |theta|` over the non-zero weights).
pub const RELATIVE_UPDATES: [f64; 6] = [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2];

/// The worst differences of one potential x scaling x form over every relative update size.
#[derive(Debug, Clone)]
pub struct StepAccuracyRow {
    /// Potential label.
    pub potential: String,
    /// Width scaling.
    pub scaling: WidthScaling,
    /// Step form.
    pub form: StepForm,
    /// Worst peak-relative difference (infinite on a NaN).
    pub peak: f64,
    /// Worst per-element relative difference (infinite on a NaN).
    pub element: f64,
    /// The first failure against [`STEP_TOLERANCE`], if any.
    pub failure: Option<String>,
}

/// `n` f32 weights (normal(0, 0.05), every 10th zero, every 10th offset 5 at 1e-4 scale) and
/// `n` normal(0, 1) gradients from `seed` (xorshift and Box-Muller: the same on every machine).
pub fn weights_and_gradients(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut normal = move || {
        let (u, v) = (uniform(), uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let theta = (0..n)
        .map(|i| match i % 10 {
            0 => 0.0,
            5 => (1e-4 * normal()) as f32,
            _ => (0.05 * normal()) as f32,
        })
        .collect();
    let grad = (0..n).map(|_| normal() as f32).collect();
    (theta, grad)
}

/// The median of `|primal update| / |theta|` at step size 1 over the non-zero weights.
fn relative_update_at_unit_lr(map: MirrorMap, theta: &[f64], grad: &[f64]) -> f64 {
    let mut stepped = theta.to_vec();
    map.step_host(StepForm::Primal, &mut stepped, grad, 1.0);
    let mut ratios: Vec<f64> = theta
        .iter()
        .zip(&stepped)
        .filter(|(t, _)| **t != 0.0)
        .map(|(t, s)| ((s - t) / t).abs())
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// Steps `n` weights drawn from `seed` on `device` and on the host for every potential x
/// scaling x form x relative size (fan-in 576, a VGG layer's), and compares the updates.
pub fn step_accuracy_rows(device: &Device, n: usize, seed: u64) -> Vec<StepAccuracyRow> {
    let (theta32, grad32) = weights_and_gradients(n, seed);
    let theta: Vec<f64> = theta32.iter().map(|&v| v as f64).collect();
    let grad: Vec<f64> = grad32.iter().map(|&v| v as f64).collect();
    let tensor =
        |values: &[f32]| Tensor::<1>::from_data(TensorData::new(values.to_vec(), [n]), device);
    let update = |new: &[f64]| -> Vec<f64> { new.iter().zip(&theta).map(|(a, b)| a - b).collect() };
    let mut rows = Vec::new();
    for potential in CHECKED_POTENTIALS {
        for scaling in [WidthScaling::FanIn, WidthScaling::None] {
            let map = MirrorMap::new(potential, scaling, 576);
            let unit = relative_update_at_unit_lr(map, &theta, &grad);
            for form in [StepForm::Primal, StepForm::Dual] {
                let mut row = StepAccuracyRow {
                    potential: potential.label(),
                    scaling,
                    form,
                    peak: 0.0,
                    element: 0.0,
                    failure: None,
                };
                for relative_size in RELATIVE_UPDATES {
                    let lr = relative_size / unit;
                    let (t, g) = (tensor(&theta32), tensor(&grad32));
                    let stepped = match form {
                        StepForm::Primal => map.primal_step(t, g, lr),
                        StepForm::Dual => map.dual_step(t, g, lr),
                    };
                    let device_values = read_f64(stepped);
                    let mut host = theta.clone();
                    map.step_host(form, &mut host, &grad, lr);
                    let closeness =
                        Closeness::with_slack(&update(&host), &update(&device_values), |i| {
                            NEW_WEIGHT_ULPS * f32::EPSILON as f64 * host[i].abs()
                        });
                    row.peak = row.peak.max(closeness.peak_relative());
                    row.element = row.element.max(closeness.element_relative());
                    if let (None, Err(why)) = (&row.failure, closeness.check(STEP_TOLERANCE)) {
                        row.failure = Some(format!("relative update {relative_size:e}: {why}"));
                    }
                }
                rows.push(row);
            }
        }
    }
    rows
}

/// The rows as a Markdown table with each row's verdict.
pub fn step_accuracy_table(rows: &[StepAccuracyRow], backend: &str) -> String {
    let mut out = format!(
        "The mirror step alone on {backend} (f32 tensor path) vs the f64 host step, per element, \
         relative updates 1e-7..1e-2: worst differences of the updates after {NEW_WEIGHT_ULPS} \
         ulps of the new weight (bounds: peak {:.0e}, element {:.0e})\n\n\
         | potential | scaling | step | peak | element | verdict |\n|---|---|---|---:|---:|---|\n",
        STEP_TOLERANCE.peak, STEP_TOLERANCE.element
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {:?} | {} | {:.1e} | {:.1e} | {} |\n",
            row.potential,
            row.scaling,
            row.form.name(),
            row.peak,
            row.element,
            match &row.failure {
                None => "pass".to_string(),
                Some(why) => format!("FAIL: {why}"),
            }
        ));
    }
    out
}
