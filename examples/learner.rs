//! Mirror descent inside burn-train's `Learner`: a two-layer MLP (Burn's `Linear` layers, not a
//! mirrorburn model) trained on a generated four-class problem with every potential, with our
//! weight-sparsity and product-norm-margin metrics next to loss and accuracy, checkpointed and
//! resumed by the Learner's own mechanisms.
//!
//! ```sh
//! cargo run --release --example learner            # artifacts/learner-example/<potential>/
//! cargo run --release --example learner -- DIR     # into DIR/<potential>/
//! ```
//!
//! Each potential trains 3 epochs, then a second `launch` resumes from the epoch-3 checkpoint to
//! epoch 6, as a stopped job would. The per-epoch metrics are in `<dir>/<potential>/train/` and
//! `valid/` (burn-train's file logger), the checkpoints in `<dir>/<potential>/checkpoint/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::logger::FileMetricLogger;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{
    ClassificationOutput, InferenceStep, Learner, LearningResult, SupervisedTraining, TrainOutput,
    TrainStep,
};
use mirrorburn::learner::{DiagnosticOutput, ProductNormMarginMetric, WeightSparsityMetric};
use mirrorburn::optim::{MirrorDescentConfig, Potential};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Input dimension, hidden width and classes of the problem.
pub const INPUTS: usize = 16;
const HIDDEN: usize = 64;
/// Number of classes.
pub const CLASSES: usize = 4;

/// The model: `Linear(16 -> 64) -> ReLU -> Linear(64 -> 4)`, with biases.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Linear,
    activation: Relu,
    output: Linear,
}

impl Mlp {
    /// A freshly initialised model (Burn's default initialisation, seeded through the device).
    pub fn new(device: &Device) -> Self {
        Self {
            hidden: LinearConfig::new(INPUTS, HIDDEN).init(device),
            activation: Relu::new(),
            output: LinearConfig::new(HIDDEN, CLASSES).init(device),
        }
    }

    /// Logits `[batch, CLASSES]`.
    pub fn forward(&self, inputs: Tensor<2>) -> Tensor<2> {
        self.output
            .forward(self.activation.forward(self.hidden.forward(inputs)))
    }

    fn classify(&self, batch: Batch) -> ClassificationOutput {
        let logits = self.forward(batch.inputs);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl TrainStep for Mlp {
    type Input = Batch;
    type Output = DiagnosticOutput;

    fn step(&self, batch: Batch) -> TrainOutput<DiagnosticOutput> {
        let output = self.classify(batch);
        let grads = output.loss.backward();
        TrainOutput::new(self, grads, DiagnosticOutput::new(output, self))
    }
}

impl InferenceStep for Mlp {
    type Input = Batch;
    type Output = DiagnosticOutput;

    fn step(&self, batch: Batch) -> DiagnosticOutput {
        DiagnosticOutput::new(self.classify(batch), self)
    }
}

/// One labelled point.
#[derive(Clone, Debug)]
pub struct Point {
    /// Coordinates.
    pub x: [f32; INPUTS],
    /// Class index.
    pub label: usize,
}

/// A batch of points on a device.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `[batch, INPUTS]`.
    pub inputs: Tensor<2>,
    /// `[batch]`.
    pub targets: Tensor<1, Int>,
}

struct PointBatcher;

impl Batcher<Point, Batch> for PointBatcher {
    fn batch(&self, points: Vec<Point>, device: &Device) -> Batch {
        let n = points.len();
        let xs: Vec<f32> = points.iter().flat_map(|p| p.x).collect();
        let labels: Vec<i64> = points.iter().map(|p| p.label as i64).collect();
        Batch {
            inputs: Tensor::from_data(TensorData::new(xs, [n, INPUTS]), device),
            targets: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}

/// `n` points of a four-class problem: class `c` is a Gaussian blob (standard deviation 0.7)
/// around a random corner of the unit hypercube; classes take turns, so they are balanced.
pub fn points(n: usize, seed: u64) -> Vec<Point> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut centre_rng = StdRng::seed_from_u64(0x6d62_6c65);
    let centres: Vec<[f32; INPUTS]> = (0..CLASSES)
        .map(|_| std::array::from_fn(|_| if centre_rng.random() { 1.0 } else { -1.0 }))
        .collect();
    (0..n)
        .map(|i| {
            let label = i % CLASSES;
            // Sum of 12 uniforms minus 6: mean 0, variance 1.
            let x = std::array::from_fn(|d| {
                let normal = (0..12).map(|_| rng.random::<f32>()).sum::<f32>() - 6.0;
                centres[label][d] + 0.7 * normal
            });
            Point { x, label }
        })
        .collect()
}

/// The training (512 points, reshuffled every epoch when `shuffle` gives a seed) and validation
/// (256 points) loaders of the problem drawn from `seed`.
pub fn loaders(
    seed: u64,
    shuffle: Option<u64>,
) -> (Arc<dyn DataLoader<Batch>>, Arc<dyn DataLoader<Batch>>) {
    let mut train = DataLoaderBuilder::new(PointBatcher).batch_size(32);
    if let Some(shuffle) = shuffle {
        train = train.shuffle(shuffle);
    }
    let train = train.build(InMemDataset::new(points(512, seed)));
    let valid = DataLoaderBuilder::new(PointBatcher)
        .batch_size(64)
        .build(InMemDataset::new(points(256, seed + 1)));
    (train, valid)
}

/// The potentials this example trains, with a learning rate each.
pub fn potentials() -> Vec<(&'static str, Potential, f64)> {
    vec![
        ("gd", Potential::Gd, 0.1),
        ("hyperbolic", Potential::Hyperbolic { lambda: 1e-3 }, 0.1),
        (
            "p3",
            Potential::PHomogeneous {
                p: 3.0,
                lambda: 0.1,
            },
            0.1,
        ),
        (
            "p10",
            Potential::PHomogeneous {
                p: 10.0,
                lambda: 0.01,
            },
            0.1,
        ),
    ]
}

/// The names under which the metrics appear in the dashboard and in `<dir>/train|valid/`.
pub fn metric_names() -> Vec<String> {
    use burn::train::metric::Metric;
    vec![
        LossMetric::new().name().to_string(),
        AccuracyMetric::new().name().to_string(),
        WeightSparsityMetric::near_zero(0).name().to_string(),
        WeightSparsityMetric::l1_over_l2(0).name().to_string(),
        ProductNormMarginMetric::new().name().to_string(),
    ]
}

/// A learner for `potential`: a fresh model (weights from `seed`) and our optimizer.
pub fn learner(potential: Potential, lr: f64, seed: u64, device: &Device) -> Learner<Mlp> {
    device.seed(seed);
    let model = Mlp::new(device);
    let optimizer = MirrorDescentConfig::new()
        .with_potential(potential)
        .init_for(&model)
        .expect("valid mirror-descent settings");
    Learner::new(model, optimizer, ConstantLr::new(lr))
}

/// Trains to `epochs` in `dir` with burn-train's `SupervisedTraining` on the problem drawn from
/// `seed`, resuming from the checkpoint of epoch `resume_from` when given (as a restarted job
/// would).
///
/// A resume restores the model, optimizer and scheduler records exactly; with `shuffle`, the
/// resumed run's batch order differs from an uninterrupted run's, because burn's `DataLoader`
/// keeps its shuffling RNG in memory and restarts it. Without shuffling, resumed and
/// uninterrupted runs are identical (tests/learner.rs).
pub fn train(
    dir: &Path,
    learner: Learner<Mlp>,
    epochs: usize,
    resume_from: Option<usize>,
    seed: u64,
    shuffle: Option<u64>,
) -> LearningResult<Mlp> {
    let (train, valid) = loaders(seed, shuffle);
    let mut training = SupervisedTraining::new(dir, train, valid)
        .num_epochs(epochs)
        .with_default_checkpointers()
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(epochs))
        .with_metric_logger(FileMetricLogger::new(dir))
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_train_numeric(AccuracyMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        // In training each batch reports the weights it was computed with (before its update);
        // in validation the weights at the end of the epoch.
        .metric_train_numeric(WeightSparsityMetric::near_zero(0))
        .metric_valid_numeric(WeightSparsityMetric::near_zero(0))
        .metric_train_numeric(WeightSparsityMetric::l1_over_l2(0))
        .metric_valid_numeric(WeightSparsityMetric::l1_over_l2(0))
        .metric_valid_numeric(ProductNormMarginMetric::new())
        .with_application_logger(None);
    if let Some(epoch) = resume_from {
        training = training.checkpoint(epoch);
    }
    training.launch(learner)
}

#[allow(
    dead_code,
    reason = "the integration test includes this file without its main"
)]
fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("artifacts/learner-example"));
    let device = Device::flex().autodiff();
    let seed = 1;
    for (name, potential, lr) in potentials() {
        let dir = root.join(name);
        println!("== {name}: {potential:?}, lr {lr} -> {}", dir.display());
        let learner = || learner(potential, lr, seed, &device);
        let first = train(&dir, learner(), 3, None, seed, Some(seed));
        assert!(first.error.is_none(), "training failed: {:?}", first.error);
        // A second launch, as a restarted job: it loads the model, optimizer and scheduler
        // records of epoch 3 and continues to epoch 6.
        let resumed = train(&dir, learner(), 6, Some(3), seed, Some(seed));
        assert!(
            resumed.error.is_none(),
            "training failed: {:?}",
            resumed.error
        );
    }
}
