//! One student-teacher run: data on the unit circle labelled by a 3-neuron ReLU teacher, a
//! mean-field-initialised bias-free ReLU student, full-batch exponential loss in f64, mirror
//! descent with time rescaling, and the measurements of Tables 2-8.
//!
//! The loss is the mean `L = (1/N) sum_i exp(-y_i f(x_i))`. (With the sum, the paper's GD step
//! 0.1 multiplies the first gradient by N = 200 and jumps to L < 1e-100 in one step.)

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::{SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use super::config::{GradientPath, ToyConfig, ToyMethod};
use super::gradient::Forward;
use super::problem::Problem;
use crate::device_read::read_f64;
use crate::diagnostics::{LayerWeights, balance_rows, layer_q, max_drift, q_margin, weight_layers};
use crate::model::{BiasFreeMlp, standard_normal};
use crate::optim::{MirrorDescentConfig, MirrorMap, StepForm};

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
    /// The rescaled step's constant `c`.
    #[serde(default)]
    pub rescale_c: f64,
    /// Seed of the teacher and data this run trained on.
    pub problem_seed: u64,
    /// Teachers that problem seed drew and rejected (a class under the minimum) before its own.
    #[serde(default)]
    pub problem_redraws: usize,
    /// Points of the problem labelled -1 and +1.
    #[serde(default)]
    pub class_counts: [usize; 2],
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
    /// The teacher's neurons `a_j w_j` (unit length), for comparison with the representation.
    #[serde(default)]
    pub teacher: Vec<[f64; 2]>,
    /// Flattened first-layer weights.
    pub first_layer: Vec<f64>,
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

/// How often [`run_unless_stopped`] asks whether to stop (a 2-layer step takes ~15 µs, a
/// 3-layer one ~330 µs: well under a second between checks).
pub const STOP_CHECK_STEPS: usize = 1024;

/// Trains one method on one seed with rescaling constant `c`, on `problem` (the problem of
/// [`ToyConfig::problem_seed_for`] this seed).
pub fn run(config: &ToyConfig, method: &ToyMethod, seed: u64, c: f64, problem: &Problem) -> ToyRun {
    run_unless_stopped(config, method, seed, c, problem, &|| false).expect("never asked to stop")
}

/// [`run`], abandoned (`None`) as soon as `stop` returns true; it is asked every
/// [`STOP_CHECK_STEPS`] steps.
pub fn run_unless_stopped(
    config: &ToyConfig,
    method: &ToyMethod,
    seed: u64,
    c: f64,
    problem: &Problem,
    stop: &dyn Fn() -> bool,
) -> Option<ToyRun> {
    let optimizer_config = method.optimizer();
    let mut student = Student::new(config, &optimizer_config, seed, problem);
    let initial_q = layer_q(&student.layers(), &optimizer_config);

    let n = problem.labels.len();
    let log_target = config.loss_target.ln();
    let (mut rescaled_at, mut diverged, mut steps) = (None, false, 0);
    let mut log_loss = f64::INFINITY;
    let mut trajectory = Vec::new();
    let mut next_record = f64::INFINITY;
    while steps < config.max_steps {
        if steps % STOP_CHECK_STEPS == 0 && stop() {
            return None;
        }
        let pass = student.forward();
        // -y_i f(x_i), its maximum and sum_i exp(-y_i f(x_i) - max): the loss in the log domain.
        let neg_margins: Vec<f64> = pass
            .outputs()
            .iter()
            .zip(&problem.labels)
            .map(|(f, y)| -f * y)
            .collect();
        let max_neg = neg_margins
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let shifted: Vec<f64> = neg_margins.iter().map(|v| (v - max_neg).exp()).collect();
        let sum_shifted: f64 = shifted.iter().sum();
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
            trajectory.push(TrajectoryPoint {
                step: steps,
                log10_inverse_loss: -log_loss / std::f64::consts::LN_10,
                gamma: k_margins(-max_neg, &student.layers(), config.depth),
            });
            next_record = log_loss - std::f64::consts::LN_10 / 2.0;
        }
        // The objective's gradient is sum_i c_i grad f(x_i) with c_i = dObjective / df_i.
        // Rescaled: the objective is L / L_now up to a constant, i.e. the step c * eta / L on L,
        // computed in the log domain so that nothing underflows: sum_i exp(-y_i f_i - max)
        // at rate c * eta / sum_shifted. Otherwise the mean loss at rate eta.
        let (scale, lr) = match rescaled_at {
            Some(_) => (1.0, c * method.lr / sum_shifted),
            None => ((max_neg).exp() / n as f64, method.lr),
        };
        let cotangent: Vec<f64> = shifted
            .iter()
            .zip(&problem.labels)
            .map(|(e, y)| -y * scale * e)
            .collect();
        student.step(pass, cotangent, lr);
        steps += 1;
    }

    let layers = student.layers();
    let q_min = Forward::new(&layers, &problem.inputs)
        .outputs()
        .iter()
        .zip(&problem.labels)
        .map(|(f, y)| f * y)
        .fold(f64::INFINITY, f64::min);
    let q = layer_q(&layers, &optimizer_config);
    let paths: Vec<String> = layers.iter().map(|l| l.path.clone()).collect();
    let balance_drift = max_drift(&balance_rows(steps, &paths, &q, &initial_q));
    let (active_neurons, representation) = neurons(&layers);
    let log10_final_loss = log_loss / std::f64::consts::LN_10;
    let gamma = k_margins(q_min, &layers, config.depth);
    let margin_change = last_decade_change(&trajectory, -log10_final_loss, gamma);
    let settled =
        !diverged && margin_change.is_some_and(|c| c.iter().all(|&c| c < config.settle_tolerance));
    Some(ToyRun {
        seed,
        rescale_c: c,
        problem_seed: config.problem_seed_for(seed),
        problem_redraws: problem.redraws,
        class_counts: problem.class_counts,
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
        teacher: problem.teacher.clone(),
        first_layer: layers[0].weights.clone(),
    })
}

/// The student being trained.
enum Student {
    /// Host weights, the hand-derived gradient and the optimizer's maps applied to f64 slices
    /// ([`MirrorMap::step_host`]): no tensor operation per step.
    Hand {
        layers: Vec<LayerWeights>,
        maps: Vec<MirrorMap>,
        step: StepForm,
        forward: Forward,
        grads: Vec<Vec<f64>>,
    },
    /// The reference: a Burn model, Burn's autodiff and our Burn optimizer.
    Autodiff(Box<AutodiffStudent>),
}

/// The reference path's state.
struct AutodiffStudent {
    model: BiasFreeMlp,
    optimizer: ModuleOptimizer,
    inputs: Tensor<2>,
}

/// One step's forward pass: its outputs, and for the autodiff path the graph for backward.
enum Pass {
    Hand(Vec<f64>),
    Autodiff(Box<Tensor<1>>),
}

impl Pass {
    fn outputs(&self) -> Vec<f64> {
        match self {
            Pass::Hand(outputs) => outputs.clone(),
            Pass::Autodiff(outputs) => read_f64(*outputs.clone()),
        }
    }
}

impl Student {
    /// The mean-field-initialised student of `seed` on the config's gradient path.
    fn new(
        config: &ToyConfig,
        optimizer_config: &MirrorDescentConfig,
        seed: u64,
        problem: &Problem,
    ) -> Self {
        let device = match config.gradient {
            GradientPath::Hand => Device::flex(),
            GradientPath::Autodiff => Device::flex().autodiff(),
        };
        let weights = student_weights(seed, config.depth, config.hidden)
            .into_iter()
            .map(|(values, shape)| f64_tensor(values, shape, &device))
            .collect();
        let model = BiasFreeMlp::from_weights(weights);
        match config.gradient {
            GradientPath::Hand => {
                let layers = weight_layers(&model);
                let maps = layers
                    .iter()
                    .map(|l| optimizer_config.map_for(&l.path, &l.dims))
                    .collect();
                Student::Hand {
                    forward: Forward::new(&layers, &problem.inputs),
                    layers,
                    maps,
                    step: optimizer_config.step,
                    grads: Vec::new(),
                }
            }
            GradientPath::Autodiff => {
                let n = problem.labels.len();
                Student::Autodiff(Box::new(AutodiffStudent {
                    model,
                    optimizer: optimizer_config.init().expect("validated config"),
                    inputs: f64_tensor(problem.inputs.clone(), [n, 2], &device),
                }))
            }
        }
    }

    /// The forward pass of the current weights.
    fn forward(&mut self) -> Pass {
        match self {
            Student::Hand {
                layers, forward, ..
            } => {
                forward.update(layers);
                Pass::Hand(forward.outputs().to_vec())
            }
            Student::Autodiff(student) => {
                Pass::Autodiff(Box::new(student.model.forward(student.inputs.clone())))
            }
        }
    }

    /// One optimizer step at rate `lr` on the gradient of `sum_i cotangent_i f(x_i)`, from the
    /// current weights' forward `pass`.
    fn step(&mut self, pass: Pass, cotangent: Vec<f64>, lr: f64) {
        match (self, pass) {
            (
                Student::Hand {
                    layers,
                    maps,
                    step,
                    forward,
                    grads,
                },
                Pass::Hand(_),
            ) => {
                forward.gradient(layers, &cotangent, grads);
                for ((layer, map), grad) in layers.iter_mut().zip(maps.iter()).zip(grads.iter()) {
                    map.step_host(*step, &mut layer.weights, grad, lr);
                }
            }
            (Student::Autodiff(student), Pass::Autodiff(outputs)) => {
                let n = cotangent.len();
                let cotangent = f64_tensor(cotangent, [n], &outputs.device());
                let objective = (*outputs * cotangent).sum();
                let grads = GradientsParams::from_grads(objective.backward(), &student.model);
                student.model = student.optimizer.step(lr, student.model.clone(), grads);
            }
            _ => unreachable!("a pass of the student's own path"),
        }
    }

    /// The weights on the host.
    fn layers(&self) -> Vec<LayerWeights> {
        match self {
            Student::Hand { layers, .. } => layers.clone(),
            Student::Autodiff(student) => weight_layers(&student.model),
        }
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

#[cfg(test)]
mod run_tests {
    use super::*;

    fn config(file: &str) -> ToyConfig {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join(file);
        ToyConfig::load(&path).unwrap()
    }

    #[test]
    fn hand_and_autodiff_gradients_train_the_same_run() {
        let seed = crate::test_support::test_seed(3);
        for file in ["toy-2layer.toml", "toy-3layer.toml"] {
            let mut config = config(file);
            config.max_steps = 300;
            config.rescale_below = 0.5; // reach the rescaled phase within the steps
            let problem = config.problem_for(seed).unwrap();
            for method in &config.methods {
                let mut reference = config.clone();
                reference.gradient = GradientPath::Autodiff;
                let hand = run(&config, method, seed, 0.1, &problem);
                let autodiff = run(&reference, method, seed, 0.1, &problem);
                assert_eq!(
                    hand.steps, autodiff.steps,
                    "{file} {} seed {seed}",
                    method.name
                );
                let scale = autodiff
                    .first_layer
                    .iter()
                    .fold(0.0f64, |m, v| m.max(v.abs()));
                for (a, b) in hand.first_layer.iter().zip(&autodiff.first_layer) {
                    assert!(
                        (a - b).abs() <= 1e-9 * scale,
                        "{file} {} seed {seed}: {a} vs {b}",
                        method.name
                    );
                }
                assert!(
                    (hand.log10_final_loss - autodiff.log10_final_loss).abs() < 1e-9,
                    "{file} {} seed {seed}",
                    method.name
                );
            }
        }
    }
}
