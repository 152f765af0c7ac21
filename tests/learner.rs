//! Mirror descent inside burn-train's `Learner` (examples/learner.rs): every potential trains a
//! model that is not ours, checkpoints and resumes through the Learner, and reports our
//! diagnostics as metrics whose logged values equal the diagnostics computed directly.

mod common;
#[path = "../examples/learner.rs"]
mod example;

use std::collections::HashMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use burn::train::LearnerSummary;
use mirrorburn::diagnostics::{class_margins, norm_product, summarize, weight_layers};

use example::{CLASSES, INPUTS, Mlp};

/// Per-epoch values of every metric of `split` ("train" or "valid") in a Learner directory.
fn logged(dir: &std::path::Path, split: &str) -> HashMap<String, Vec<f64>> {
    let summary = LearnerSummary::new(dir, &example::metric_names()).expect("a summary");
    let metrics = match split {
        "train" => summary.metrics.train,
        _ => summary.metrics.valid,
    };
    metrics
        .into_iter()
        .map(|m| (m.name, m.entries.iter().map(|e| e.value).collect()))
        .collect()
}

/// The product-norm margin of `model` over the validation set, computed directly.
fn validation_margin(model: &Mlp, seed: u64) -> f64 {
    let points = example::points(256, seed + 1);
    let xs: Vec<f32> = points.iter().flat_map(|p| p.x).collect();
    let labels: Vec<usize> = points.iter().map(|p| p.label).collect();
    let device = Device::flex();
    let model = model.clone().fork(&device);
    let inputs = Tensor::from_data(TensorData::new(xs, [points.len(), INPUTS]), &device);
    let logits: Vec<f64> = model.forward(inputs).into_data().iter::<f64>().collect();
    let q_min = class_margins(&logits, &labels, CLASSES)
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    q_min / norm_product(&weight_layers(&model))
}

fn weights(model: &Mlp) -> Vec<f64> {
    weight_layers(model)
        .into_iter()
        .flat_map(|layer| layer.weights.into_iter().chain(layer.bias.unwrap().1))
        .collect()
}

#[test]
fn every_potential_trains_checkpoints_and_resumes_in_the_learner() {
    let seed = common::test_seed(1);
    let device = Device::flex().autodiff();
    for (name, potential, lr) in example::potentials() {
        let context = format!("{name} (seed {seed})");
        let stopped = common::temp_dir(&format!("learner-{name}"));
        let first = example::train(
            &stopped,
            example::learner(potential, lr, seed, &device),
            3,
            None,
            seed,
            None,
        );
        assert!(first.error.is_none(), "{context}: {:?}", first.error);
        let resumed = example::train(
            &stopped,
            example::learner(potential, lr, seed, &device),
            6,
            Some(3),
            seed,
            None,
        );
        assert!(resumed.error.is_none(), "{context}: {:?}", resumed.error);
        let straight = common::temp_dir(&format!("learner-{name}-straight"));
        let whole = example::train(
            &straight,
            example::learner(potential, lr, seed, &device),
            6,
            None,
            seed,
            None,
        );

        // The resumed run continued from the checkpoint (not from a fresh model) and learned.
        let train = logged(&stopped, "train");
        let valid = logged(&stopped, "valid");
        let loss = &valid["Loss"];
        assert_eq!(loss.len(), 6, "{context}: six epochs logged, got {loss:?}");
        assert!(
            loss[5] < 0.5 * loss[0],
            "{context}: validation loss must fall: {loss:?}"
        );
        assert!(
            valid["Accuracy"][5] > 90.0,
            "{context}: accuracy {:?}",
            valid["Accuracy"]
        );
        assert_eq!(
            weights(&resumed.model),
            weights(&whole.model),
            "{context}: stopped at epoch 3 and resumed to 6 must equal 6 epochs without a stop"
        );

        // Our metrics are the diagnostics of the final model: exactly in validation (the
        // epoch's final weights), within one update in training (each batch reports the weights
        // before its update).
        let model = resumed.model.clone();
        let first_layer = summarize(&weight_layers(&model)[0].weights);
        assert_eq!(
            valid["Weights near zero (layer 0)"][5], first_layer.frac_near_zero,
            "{context}"
        );
        let l1_l2 = valid["Weight l1-to-l2 ratio (layer 0)"][5];
        assert!(
            (l1_l2 - first_layer.l1_over_l2).abs() <= 1e-12 * first_layer.l1_over_l2,
            "{context}: logged {l1_l2} vs {}",
            first_layer.l1_over_l2
        );
        let trained = train["Weight l1-to-l2 ratio (layer 0)"][5];
        assert!(
            (trained - l1_l2).abs() <= 1e-2 * l1_l2,
            "{context}: the last training batch's {trained} vs the final {l1_l2}"
        );
        let margin = valid["Product-norm margin"][5];
        let direct = validation_margin(&model, seed);
        assert!(
            (margin - direct).abs() <= 1e-5 * direct.abs(),
            "{context}: logged margin {margin} vs direct {direct}"
        );
    }
}
