//! One student-teacher run: data on the unit circle labelled by a 3-neuron ReLU teacher, a
//! mean-field-initialised bias-free ReLU student, full-batch exponential loss in f64, mirror
//! descent with time rescaling, and the measurements of Tables 2-8.
//!
//! The loss is the mean `L = (1/N) sum_i exp(-y_i f(x_i))`. (With the sum, the paper's GD step
//! 0.1 multiplies the first gradient by N = 200 and jumps to L < 1e-100 in one step.)

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use super::config::{ToyConfig, ToyMethod};
use crate::diagnostics::{LayerWeights, balance_rows, layer_q, max_drift, q_margin, weight_layers};
use crate::model::{BiasFreeMlp, standard_normal};

/// A point of the margin trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryPoint {
    /// Step.
    pub step: usize,
    /// `log10(1 / L)`.
    pub log10_inverse_loss: f64,
    /// Normalised margins `gamma_k`, k = 1, 2, 3.
    pub gamma: [f64; 3],
}

/// Everything measured in one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToyRun {
    /// Init seed (the student's initial weights).
    pub seed: u64,
    /// Seed of the teacher and data this run trained on.
    pub problem_seed: u64,
    /// Steps taken.
    pub steps: usize,
    /// `log10` of the final training loss.
    pub log10_final_loss: f64,
    /// Whether the loss became non-finite.
    pub diverged: bool,
    /// Step at which time rescaling started, if it did.
    pub rescaled_at: Option<usize>,
    /// `gamma_k = min_i y_i f(x_i) / ||theta||_k^L` for k = 1, 2, 3.
    pub gamma: [f64; 3],
    /// Relative change of each `gamma_k` over the last decade of the loss (from the last
    /// trajectory point at least 10x the final loss to the end); `None` when the run was
    /// separated for less than a decade.
    pub margin_change: Option<[f64; 3]>,
    /// Whether every `gamma_k` changed by less than the config's `settle_tolerance` over the
    /// last decade of the loss (and the run did not diverge).
    pub settled: bool,
    /// `min_i y_i f / (alpha Q(grad R(theta)))^(L / alpha)`.
    pub q_margin: f64,
    /// Neurons of the last hidden layer with `|a_j| ||w_j||` above 1% of the largest.
    pub active_neurons: usize,
    /// Largest drift of `Q_l - Q_{l+1}` from its initial value.
    pub balance_drift: f64,
    /// Margin trajectory after separation, one point per half decade of the loss.
    pub trajectory: Vec<TrajectoryPoint>,
    /// Input-weight representation: `a_j w_j` (2-layer) or `w_j ||W_2 row j||` (3-layer).
    pub representation: Vec<[f64; 2]>,
    /// Flattened first-layer weights.
    pub first_layer: Vec<f64>,
}

/// Points, labels and the teacher of one seed.
pub struct Problem {
    /// `[n, 2]` row-major inputs on the unit circle.
    pub inputs: Vec<f64>,
    /// Labels in {-1, +1}.
    pub labels: Vec<f64>,
}

/// Data on the unit circle labelled by a random teacher with `|a_j| ||w_j|| = 1`.
pub fn problem(seed: u64, points: usize, teacher_neurons: usize) -> Problem {
    let mut rng = StdRng::seed_from_u64(seed);
    let teacher: Vec<(f64, [f64; 2])> = (0..teacher_neurons)
        .map(|_| {
            let angle = rng.random_range(0.0..std::f64::consts::TAU);
            let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            (sign, [angle.cos(), angle.sin()])
        })
        .collect();
    let mut inputs = Vec::with_capacity(2 * points);
    let mut labels = Vec::with_capacity(points);
    for _ in 0..points {
        let angle = rng.random_range(0.0..std::f64::consts::TAU);
        let x = [angle.cos(), angle.sin()];
        let f: f64 = teacher
            .iter()
            .map(|(a, w)| a * (w[0] * x[0] + w[1] * x[1]).max(0.0))
            .sum();
        inputs.extend(x);
        labels.push(if f > 0.0 { 1.0 } else { -1.0 });
    }
    Problem { inputs, labels }
}

/// Mean-field initial weights (`[d_in, d_out]` layouts): input weights N(0, 1), every later
/// layer N(0, 1) / width.
pub fn student_weights(seed: u64, depth: usize, hidden: usize) -> Vec<(Vec<f64>, [usize; 2])> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x005E_ED0F_57D0);
    let mut shapes = vec![[2, hidden]];
    shapes.extend((2..depth).map(|_| [hidden, hidden]));
    shapes.push([hidden, 1]);
    shapes
        .into_iter()
        .enumerate()
        .map(|(layer, shape)| {
            let scale = if layer == 0 { 1.0 } else { 1.0 / hidden as f64 };
            let values = (0..shape[0] * shape[1])
                .map(|_| scale * standard_normal(&mut rng))
                .collect();
            (values, shape)
        })
        .collect()
}

fn f64_tensor<const D: usize>(values: Vec<f64>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), (device, DType::F64))
}

/// Trains one method on one seed.
pub fn run(config: &ToyConfig, method: &ToyMethod, seed: u64) -> ToyRun {
    let device = Device::flex().autodiff();
    let problem_seed = config.problem_seed_for(seed);
    let data = problem(problem_seed, config.points, config.teacher_neurons);
    let n = data.labels.len();
    let inputs = f64_tensor(data.inputs, [n, 2], &device);
    let labels = f64_tensor(data.labels, [n], &device);
    let weights = student_weights(seed, config.depth, config.hidden)
        .into_iter()
        .map(|(values, shape)| f64_tensor(values, shape, &device))
        .collect();
    let mut model = BiasFreeMlp::from_weights(weights);
    let optimizer_config = method.optimizer();
    let mut optimizer = optimizer_config.init().expect("validated config");
    let initial_q = layer_q(&weight_layers(&model), &optimizer_config);

    let log_target = config.loss_target.ln();
    let (mut rescaled_at, mut diverged, mut steps) = (None, false, 0);
    let mut log_loss = f64::INFINITY;
    let mut trajectory = Vec::new();
    let mut next_record = f64::INFINITY;
    while steps < config.max_steps {
        let neg_margins = (model.forward(inputs.clone()) * labels.clone()).neg();
        let peak = neg_margins.clone().max();
        let stats = Tensor::cat(
            vec![
                peak.clone(),
                (neg_margins.clone() - peak.clone()).exp().sum(),
            ],
            0,
        );
        let stats: Vec<f64> = stats.into_data().iter::<f64>().collect();
        let (max_neg, sum_shifted) = (stats[0], stats[1]);
        log_loss = max_neg + sum_shifted.ln() - (n as f64).ln();
        if !log_loss.is_finite() {
            diverged = true;
            break;
        }
        if log_loss < log_target {
            break;
        }
        let separated = max_neg < 0.0;
        if rescaled_at.is_none()
            && config.time_rescaling
            && separated
            && log_loss < config.rescale_below.ln()
        {
            rescaled_at = Some(steps);
        }
        if separated && log_loss < next_record {
            let layers = weight_layers(&model);
            trajectory.push(TrajectoryPoint {
                step: steps,
                log10_inverse_loss: -log_loss / std::f64::consts::LN_10,
                gamma: k_margins(-max_neg, &layers, config.depth),
            });
            next_record = log_loss - std::f64::consts::LN_10 / 2.0;
        }
        // Rescaled: the gradient of L / L_now (a constant), i.e. step c * eta / L on L, computed
        // in the log domain so that nothing underflows.
        let (loss, lr) = match rescaled_at {
            Some(_) => (
                (neg_margins - peak.detach()).exp().sum(),
                config.rescale_c * method.lr / sum_shifted,
            ),
            None => (neg_margins.exp().mean(), method.lr),
        };
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(lr, model, grads);
        steps += 1;
    }

    let layers = weight_layers(&model);
    let outputs = model.valid().forward(inputs.inner()) * labels.inner();
    let q_min = outputs.min().into_scalar::<f64>();
    let q = layer_q(&layers, &optimizer_config);
    let paths: Vec<String> = layers.iter().map(|l| l.path.clone()).collect();
    let balance_drift = max_drift(&balance_rows(steps, &paths, &q, &initial_q));
    let (active_neurons, representation) = neurons(&layers);
    let log10_final_loss = log_loss / std::f64::consts::LN_10;
    let gamma = k_margins(q_min, &layers, config.depth);
    let margin_change = last_decade_change(&trajectory, -log10_final_loss, gamma);
    let settled =
        !diverged && margin_change.is_some_and(|c| c.iter().all(|&c| c < config.settle_tolerance));
    ToyRun {
        seed,
        problem_seed,
        steps,
        log10_final_loss,
        diverged,
        rescaled_at,
        gamma,
        margin_change,
        settled,
        q_margin: q_margin(
            q_min,
            q.iter().sum(),
            method.potential.alpha(),
            config.depth,
        ),
        active_neurons,
        balance_drift,
        trajectory,
        representation,
        first_layer: layers[0].weights.clone(),
    }
}

/// Relative change `|gamma_end - gamma_then| / |gamma_end|` per k from the last trajectory point
/// whose `log10(1/L)` is at least one below the final one; `None` without such a point.
pub fn last_decade_change(
    trajectory: &[TrajectoryPoint],
    final_log10_inverse_loss: f64,
    gamma: [f64; 3],
) -> Option<[f64; 3]> {
    let then = trajectory
        .iter()
        .rev()
        .find(|p| p.log10_inverse_loss <= final_log10_inverse_loss - 1.0)?;
    Some(std::array::from_fn(|k| {
        ((gamma[k] - then.gamma[k]) / gamma[k]).abs()
    }))
}

/// `q_min / ||theta||_k^L` for k = 1, 2, 3 over all parameters.
pub fn k_margins(q_min: f64, layers: &[LayerWeights], depth: usize) -> [f64; 3] {
    let all = || layers.iter().flat_map(|l| l.weights.iter());
    [1.0, 2.0, 3.0].map(|k: f64| {
        let norm = all().map(|w| w.abs().powf(k)).sum::<f64>().powf(1.0 / k);
        q_min / norm.powi(depth as i32)
    })
}

/// Active neurons of the last hidden layer, and the input-weight representation.
fn neurons(layers: &[LayerWeights]) -> (usize, Vec<[f64; 2]>) {
    let last = layers.last().expect("at least one layer");
    let hidden = last.dims[0];
    let incoming = &layers[layers.len() - 2]; // [d_in, hidden]: column j feeds neuron j
    let d_in = incoming.dims[0];
    let strength: Vec<f64> = (0..hidden)
        .map(|j| {
            let column = (0..d_in)
                .map(|i| incoming.weights[i * hidden + j].powi(2))
                .sum::<f64>()
                .sqrt();
            last.weights[j].abs() * column
        })
        .collect();
    let max = strength.iter().copied().fold(0.0, f64::max);
    let active = strength.iter().filter(|&&s| s > 0.01 * max).count();
    let first = &layers[0]; // [2, hidden]
    let representation = (0..hidden)
        .map(|j| {
            let scale = if layers.len() == 2 {
                last.weights[j]
            } else {
                let next = &layers[1]; // [hidden, hidden]: row j leaves neuron j
                (0..hidden)
                    .map(|k| next.weights[j * hidden + k].powi(2))
                    .sum::<f64>()
                    .sqrt()
            };
            [scale * first.weights[j], scale * first.weights[hidden + j]]
        })
        .collect();
    (active, representation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_change_is_taken_over_the_last_decade_of_the_loss() {
        let point = |x: f64, g: f64| TrajectoryPoint {
            step: 0,
            log10_inverse_loss: x,
            gamma: [g, 1.0, 1.0],
        };
        let trajectory = vec![point(10.0, 0.1), point(29.5, 1.0), point(30.2, 5.0)];
        let change = last_decade_change(&trajectory, 30.5, [1.1, 1.0, 0.5]).unwrap();
        assert!(
            (change[0] - 0.1 / 1.1).abs() < 1e-12,
            "{change:?}: from the point at 29.5"
        );
        assert_eq!(change[1], 0.0);
        assert_eq!(change[2], 1.0);
        assert_eq!(
            last_decade_change(&trajectory, 10.9, [1.0; 3]),
            None,
            "under a decade"
        );
    }
}
