//! `prune` and `report` on two short real training runs (generated CIFAR-format data).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use mirrorburn::backend::Backend;
use mirrorburn::config::TrainConfig;
use mirrorburn::diagnostics::PruneScope;
use mirrorburn::plot::PNG_SIZE;
use mirrorburn::report::write_report;
use mirrorburn::rundir::{RunDir, SummaryValue};
use mirrorburn::train::{CheckpointChoice, TrainOptions, prune_run, train};

fn short_run(root: &Path, data: &Path, potential: &str) -> PathBuf {
    let text = format!(
        "name = \"r\"\nepochs = 2\nbatch_size = 25\nlr = 0.05\n[model]\nwidth_divisor = 16\n\
         [data]\ndownload = false\n[optimizer]\npotential = {potential}\n[logging]\nmargin_images = 50\n"
    );
    let config = TrainConfig::from_toml(&text, "test", &[]).unwrap();
    let out = root.join(config.optimizer.potential.label());
    let options = TrainOptions {
        config,
        compute: Backend::Flex.resolve().unwrap(),
        out: out.clone(),
        resume: false,
        data_dir: Some(data.to_path_buf()),
    };
    train(&options).unwrap();
    out
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG", "{} is a PNG", path.display());
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn pruning_at_zero_sparsity_reproduces_the_evaluation_and_report_renders() {
    let root = temp_dir("report");
    let data = write_cifar_dir(&root.join("data"), 40, 40);
    let runs = [
        short_run(&root, &data, "{ kind = \"gd\" }"),
        short_run(&root, &data, "{ kind = \"hyperbolic\", lambda = 0.01 }"),
    ];
    for run in &runs {
        let rows = prune_run(
            run,
            CheckpointChoice::Last,
            &[0.0, 0.5, 0.9],
            PruneScope::Layer,
            &Backend::Flex.resolve().unwrap(),
            Some(&data),
        )
        .unwrap();
        let last = RunDir::new(run).read_metrics().unwrap().pop().unwrap();
        assert_eq!(
            rows[0].val_acc, last.val_acc,
            "sparsity 0 is the unpruned evaluation"
        );
        assert_eq!(
            rows[0].val_loss, last.val_loss,
            "sparsity 0 is the unpruned evaluation"
        );
        assert_eq!(rows[0].achieved, 0.0);
        for (row, want) in rows.iter().zip([0.0, 0.5, 0.9]) {
            for (layer, (_, achieved)) in row.per_layer.iter().enumerate() {
                let n = [108.0, 144.0][layer.min(1)]; // first conv 4x3x3x3; others are larger
                assert!(
                    (achieved - want).abs() <= 1.0 / n,
                    "layer {layer}: {achieved} vs {want}"
                );
            }
        }
        let csv = std::fs::read_to_string(run.join("pruning.csv")).unwrap();
        assert_eq!(csv.lines().count(), 4, "{csv}");
    }
    let out = root.join("report");
    let report = write_report(&runs, &out).unwrap();
    let text = std::fs::read_to_string(&report).unwrap();
    let figures = [
        "weights_first_layer",
        "weights_last_layer",
        "pruning",
        "margins_vs_epoch",
        "margins_vs_inverse_loss",
        "curves",
        "balance_drift",
    ];
    for name in figures {
        let png = out.join(format!("{name}.png"));
        assert_eq!(png_size(&png), PNG_SIZE, "{name}");
        assert!(
            std::fs::metadata(&png).unwrap().len() > 10_000,
            "{name}.png has content"
        );
        assert!(
            std::fs::metadata(out.join(format!("{name}.svg")))
                .unwrap()
                .len()
                > 1_000
        );
        assert!(
            text.contains(&format!("]({name}.png)")),
            "report.md embeds {name}.png"
        );
    }
    assert!(text.contains("| gd, lr 0.05 | 1 |"), "{text}");
    assert!(text.contains("primal step, fan_in scaling"), "{text}");
    assert!(text.contains("hyperbolic(lambda=0.01)"), "{text}");
    // The side-by-side tables come from the runs' files: one seed each, so std 0.
    let gd = RunDir::new(&runs[0]);
    let last = gd.read_metrics().unwrap().pop().unwrap();
    let fit_row = format!(
        "| gd, lr 0.05 | 1 | {:.2} ± 0.00 | {:.2} ± 0.00 |",
        100.0 * last.train_acc,
        100.0 * last.val_acc
    );
    assert!(text.contains(&fit_row), "{fit_row} in {text}");
    let pruned = gd.read_pruning().unwrap().unwrap();
    let at = |s: f64| pruned.iter().find(|r| r.sparsity == s).unwrap().val_acc;
    let prune_row = format!(
        "| gd, lr 0.05 | {:.2} ± 0.00 (1) | – (0) | {:.2} ± 0.00 (1) | – (0) |",
        100.0 * at(0.5),
        100.0 * at(0.9)
    );
    assert!(text.contains(&prune_row), "{prune_row} in {text}");
}

#[test]
fn tensorboard_events_hold_the_curves_and_weight_histograms() {
    let root = temp_dir("tensorboard");
    let data = write_cifar_dir(&root.join("data"), 40, 40);
    let run = short_run(
        &root,
        &data,
        "{ kind = \"p_homogeneous\", p = 10.0, lambda = 0.01 }",
    );
    let events = mirrorburn::rundir::read_events(&run).unwrap();
    let metrics = RunDir::new(&run).read_metrics().unwrap();
    for row in &metrics {
        let scalar = events
            .iter()
            .filter(|e| e.step == row.epoch as i64)
            .flat_map(|e| &e.values)
            .find_map(|v| match v {
                SummaryValue::Scalar { tag, value } if tag == "loss/train" => Some(*value),
                _ => None,
            });
        assert_eq!(scalar, Some(row.train_loss as f32), "epoch {}", row.epoch);
    }
    for epoch in 0..=2i64 {
        let histograms: Vec<(f64, f64)> = events
            .iter()
            .filter(|e| e.step == epoch)
            .flat_map(|e| &e.values)
            .filter_map(|v| match v {
                SummaryValue::Histogram { count, counts, .. } => {
                    Some((*count, counts.iter().sum()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            histograms.len(),
            14,
            "epoch {epoch}: one histogram per weight layer"
        );
        assert!(
            histograms.iter().all(|(count, summed)| count == summed),
            "epoch {epoch}"
        );
    }
}
