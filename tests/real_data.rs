//! Proof on real data: a CPU-sized VGG trained on the shared CIFAR-10 copy with each potential
//! learns well above chance, and writes every output file.
//!
//! Threshold: validation accuracy >= 20% on 1,000 test images. Chance is 10%, and the binomial
//! standard deviation of a chance-level classifier on 1,000 images is about 0.95 points, so 20% is
//! more than ten standard deviations above chance; the three quick runs reach 25-35% here.

mod common;

use std::process::Command;

use common::*;
use mirrorburn::config::TrainConfig;
use mirrorburn::rundir::{CheckpointIndex, RunStatus, Summary};

fn train_on_shared_cifar(config: &str, label: &str) -> std::path::PathBuf {
    let data = shared_cifar();
    assert!(
        data.join("data_batch_1.bin").is_file(),
        "the shared CIFAR-10 copy is missing at {} (set MIRRORBURN_SHARED_DATA)",
        data.display()
    );
    let out = temp_dir(label).join("run");
    let output = Command::new(env!("CARGO_BIN_EXE_mirrorburn"))
        .args(["train", "--config", config, "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .args([
            "--set",
            "data.n_train=5000",
            "--set",
            "data.n_val=1000",
            "--set",
            "epochs=4",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{config}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

fn check_run(config: &str, label: &str) {
    let out = train_on_shared_cifar(config, label);
    let resolved = TrainConfig::load(&out.join("config.toml"), &[]).unwrap();
    assert_eq!(resolved.epochs, 4);

    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let rows: Vec<Vec<f64>> = metrics
        .lines()
        .skip(1)
        .map(|line| line.split(',').map(|v| v.parse::<f64>().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 4, "{metrics}");
    assert!(
        rows.iter()
            .all(|r| r.len() == 8 && r.iter().all(|v| v.is_finite()))
    );
    let (first, last) = (&rows[0], &rows[3]);
    assert!(
        last[1] < first[1],
        "{label}: train loss did not decrease: {metrics}"
    );
    assert!(
        last[4] >= 0.20,
        "{label}: validation accuracy {} below 20%: {metrics}",
        last[4]
    );

    let summary: Summary =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.final_val_acc, Some(last[4]));
    let index: CheckpointIndex =
        serde_json::from_slice(&std::fs::read(out.join("checkpoint.json")).unwrap()).unwrap();
    assert_eq!(index.latest.epoch, 4);
    assert_eq!(index.previous.as_ref().map(|c| c.epoch), Some(3));
    for file in [
        &index.latest.model.path,
        &index.latest.optimizer.path,
        "checkpoints/best-model.bpk",
    ] {
        assert!(out.join(file).is_file(), "{label}: {file} missing");
    }
    println!("{label}: {metrics}");
}

#[test]
fn gd_learns_cifar10() {
    check_run("configs/quick-gd.toml", "real-gd");
}

#[test]
fn hyperbolic_learns_cifar10() {
    check_run("configs/quick-hyperbolic.toml", "real-hyperbolic");
}

#[test]
fn p10_learns_cifar10() {
    check_run("configs/quick-p10.toml", "real-p10");
}
