//! The wgpu backend, exercised (CI runs it on Mesa's software Vulkan, lavapipe): one training
//! step equals flex's, a tiny run writes a complete run directory, and checkpoints move between
//! wgpu and flex. Compiled only with `--features wgpu`.
#![cfg(feature = "wgpu")]

mod common;

use std::path::Path;
use std::process::Command;

use burn::tensor::Device;
use common::*;
use mirrorburn::backend::Backend;
use mirrorburn::bench::{agreement_optimizers, compare, one_step};
use mirrorburn::model::Vgg;
use mirrorburn::optim::named_params;
use mirrorburn::rundir::{RunStatus, Summary};

/// Relative tolerance of a wgpu step against the flex step, for the loss and the logits (f32
/// convolutions summed in another order).
const FORWARD_TOLERANCE: f64 = 1e-4;
/// Relative tolerance of the update (backward and mirror step) of every tensor.
const UPDATE_TOLERANCE: f64 = 1e-3;

fn wgpu() -> Device {
    Backend::Wgpu.device().expect("compiled with wgpu")
}

#[test]
fn initial_weights_are_the_same_on_wgpu_and_flex() {
    let values = |device: &Device| -> Vec<Vec<f64>> {
        named_params(&Vgg::new(16, 5, device), true)
            .into_iter()
            .map(|p| p.values)
            .collect()
    };
    assert_eq!(values(&Device::flex()), values(&wgpu()));
}

#[test]
fn a_training_step_on_wgpu_equals_the_flex_step_for_every_potential_and_step_form() {
    for config in agreement_optimizers() {
        let flex = one_step(&Device::flex(), 16, 1, &config, 20, 0.05);
        let gpu = one_step(&wgpu(), 16, 1, &config, 20, 0.05);
        let (loss, logits, update) = compare(&flex, &gpu);
        let what = format!("{} {}", config.potential.label(), config.step.name());
        assert!(loss < FORWARD_TOLERANCE, "{what}: loss differs by {loss:e}");
        assert!(
            logits < FORWARD_TOLERANCE,
            "{what}: logits differ by {logits:e}"
        );
        assert!(
            update < UPDATE_TOLERANCE,
            "{what}: update differs by {update:e}"
        );
    }
}

fn train(root: &Path, out: &str, backend: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mirrorburn"))
        .args(["train", "--config"])
        .arg(root.join("config.toml"))
        .arg("--data-dir")
        .arg(root.join("data"))
        .arg("--out")
        .arg(root.join(out))
        .args(["--backend", backend])
        .args(extra)
        .output()
        .unwrap()
}

fn summary(dir: &Path) -> Summary {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

fn train_losses(dir: &Path) -> Vec<f64> {
    mirrorburn::rundir::RunDir::new(dir)
        .read_metrics()
        .unwrap()
        .iter()
        .map(|m| m.train_loss)
        .collect()
}

#[test]
fn a_tiny_run_on_wgpu_writes_a_complete_run_directory_and_checkpoints_move_between_backends() {
    let root = workspace("wgpu", 20, 20, &tiny_config("wgpu-test", 3, 1));

    let output = train(&root, "wgpu", "wgpu", &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let dir = root.join("wgpu");
    for file in [
        "config.toml",
        "summary.json",
        "metrics.csv",
        "margins.csv",
        "balance.csv",
        "histograms.jsonl",
        "checkpoint.json",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    assert_eq!(summary(&dir).status, RunStatus::Completed);

    // The same epoch on flex from the same seed: same weights and data, nearly the same loss.
    assert!(train(&root, "flex", "flex", &[]).status.success());
    let (gpu, cpu) = (train_losses(&dir), train_losses(&root.join("flex")));
    assert!(
        (gpu[0] - cpu[0]).abs() < 1e-3 * cpu[0],
        "epoch 1: wgpu {gpu:?} vs flex {cpu:?}"
    );

    // wgpu -> flex and flex -> wgpu: a second epoch resumed on the other backend.
    for (dir, other) in [("wgpu", "flex"), ("flex", "wgpu")] {
        let output = train(&root, dir, other, &["--resume", "--set", "epochs=2"]);
        assert!(
            output.status.success(),
            "{dir} resumed on {other}: {}",
            stderr(&output)
        );
        let losses = train_losses(&root.join(dir));
        assert_eq!(losses.len(), 2, "{dir} resumed on {other}: {losses:?}");
        assert_eq!(summary(&root.join(dir)).epochs_completed, 2);
    }
    let (a, b) = (
        train_losses(&root.join("wgpu")),
        train_losses(&root.join("flex")),
    );
    assert!((a[1] - b[1]).abs() < 1e-3 * b[1], "epoch 2: {a:?} vs {b:?}");
}
