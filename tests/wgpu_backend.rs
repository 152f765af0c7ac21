//! The wgpu backend, exercised (CI runs it on Mesa's software Vulkan, lavapipe): one training
//! step equals flex's element by element, the tensor-path mirror step equals the f64 host step
//! per element at f32 precision, a training step reads nothing back from the device, a tiny run
//! writes a complete run directory, and checkpoints move between wgpu and flex. Compiled only
//! with `--features wgpu`.
#![cfg(feature = "wgpu")]

mod common;

use std::path::Path;
use std::process::Command;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Device;
use common::*;
use mirrorburn::backend::{Backend, BackendUnavailable, DeviceChoice};
use mirrorburn::bench::{
    F32_BOUNDS, agreement_optimizers, compare, one_step, step_accuracy_rows, step_accuracy_table,
    synthetic_batch,
};
use mirrorburn::device_read::device_reads;
use mirrorburn::model::Vgg;
use mirrorburn::optim::{dual_fallbacks, named_params};
use mirrorburn::rundir::{RunStatus, Summary};
use mirrorburn::train::{Tally, train_step};

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
        let what = format!("{} {}", config.potential.label(), config.step.name());
        let difference = compare(&flex, &gpu);
        eprintln!(
            "{what}: loss {:.1e}, logits {:.1e} / {:.1e}, updates {:.1e} / {:.1e}",
            difference.loss,
            difference.logits.peak_relative(),
            difference.logits.element_relative(),
            difference.worst_update_peak(),
            difference.worst_update_element()
        );
        if let Err(why) = difference.check(&F32_BOUNDS) {
            panic!("{what}: {why}");
        }
    }
}

/// The mirror step alone, f32 on wgpu against the f64 host step, per element (bounds:
/// `STEP_TOLERANCE`: 1e-5 of the largest update, 1e-4 per element, after 4 ulps of the new
/// weight). Prints the worst differences (`--nocapture`).
#[test]
fn the_tensor_step_on_wgpu_equals_the_f64_host_step_per_element() {
    let seed = test_seed(0x57E9);
    let rows = step_accuracy_rows(&wgpu(), 4000, seed);
    eprintln!("{}", step_accuracy_table(&rows, "wgpu"));
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            row.failure.as_ref().map(|why| {
                format!(
                    "{} {:?} {}: {why}",
                    row.potential,
                    row.scaling,
                    row.form.name()
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
}

/// Between two log points a training step reads nothing back from the device, for every
/// potential and step form; at a log point the tally and the fallback counts are a few reads.
#[test]
fn a_training_step_on_wgpu_reads_nothing_from_the_device_between_log_points() {
    let device = wgpu().autodiff();
    let batch = synthetic_batch(8, 1, &device);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    for config in agreement_optimizers() {
        let what = format!("{} {}", config.potential.label(), config.step.name());
        let mut model = Vgg::new(16, 3, &device);
        let mut optimizer = config.init_for(&model).expect("valid settings");
        let mut tally = Tally::default();
        let before = device_reads();
        for _ in 0..3 {
            model = train_step(
                model,
                &mut optimizer,
                &loss_fn,
                batch.clone(),
                &mut tally,
                0.01,
            );
        }
        assert_eq!(device_reads() - before, 0, "{what}: reads in 3 steps");
        let (loss, _) = tally.finish();
        dual_fallbacks();
        let at_log_point = device_reads() - before;
        assert!(loss.is_finite(), "{what}: loss {loss}");
        assert!(
            (2..=3).contains(&at_log_point),
            "{what}: {at_log_point} reads at the log point (tally 2, fallbacks at most 1)"
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

/// `--device` reaches every adapter kind wgpu offers (lavapipe, in CI, is a `cpu` adapter, which
/// `--device 0` could not select), and an adapter the machine lacks is an error listing those it
/// has, each of which then computes.
#[test]
fn every_listed_adapter_computes_and_a_missing_one_is_an_error_listing_them() {
    let error = Backend::Wgpu
        .device_at(Some(DeviceChoice::Virtual(15)))
        .unwrap_err();
    let message = error.to_string();
    let BackendUnavailable::NoSuchAdapter { available, .. } = &error else {
        panic!("{message}");
    };
    assert!(message.contains("no adapter `virtual:15`"), "{message}");
    assert_ne!(available, "none", "{message}");
    for listed in available.split(", ") {
        let choice: DeviceChoice = listed.parse().unwrap();
        let device = Backend::Wgpu.device_at(Some(choice)).unwrap();
        let sum = burn::tensor::Tensor::<1>::ones([4], &device)
            .sum()
            .into_scalar::<f32>();
        assert_eq!(sum, 4.0, "{listed}");
    }
}
