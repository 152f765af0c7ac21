//! Round trips of every run-directory file through its writer and reader, and the failure modes:
//! corrupt files are errors naming them, damaged checkpoints fall back, torn appends are dropped.

use std::path::PathBuf;

use super::*;
use crate::config::TrainConfig;
use crate::diagnostics::{BalanceRow, Margins, PruneScope, balance_rows, layer_histogram};

fn temp_run(label: &str) -> RunDir {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("mirrorburn-rundir-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    RunDir::new(dir)
}

fn margins_at(epoch: usize) -> Margins {
    Margins {
        epoch,
        q_min: -1.5 + epoch as f64,
        product_norm_margin: 1.25e-9 * epoch as f64,
        l2_margin: 0.5,
        q_margin: 3e7,
        soft_margin: -0.125,
        frac_positive: 0.75,
    }
}

fn balance_at(epoch: usize) -> Vec<BalanceRow> {
    let paths = vec![
        "features.0.weight".to_string(),
        "classifier.weight".to_string(),
    ];
    balance_rows(epoch, &paths, &[2.0 + epoch as f64, 1.0], &[2.0, 1.0])
}

fn summary() -> Summary {
    Summary {
        name: "t".into(),
        status: RunStatus::Running,
        epochs_completed: 2,
        epochs_planned: 5,
        best_val_acc: Some(0.25),
        best_epoch: Some(1),
        final_val_acc: Some(0.2),
        error: None,
        backend: "flex".into(),
        mirrorburn_version: "0".into(),
        burn_version: "0.22.1".into(),
        config_md5: Some(md5_hex(b"name = \"t\"")),
    }
}

#[test]
fn config_summary_and_metrics_round_trip() {
    let run = temp_run("basic");
    let config = TrainConfig::from_toml("name = \"t\"\nepochs = 3\nlr = 0.05\n", "t", &[]).unwrap();
    run.write_config(&config).unwrap();
    assert_eq!(run.read_config().unwrap(), config);
    assert_eq!(run.read_summary().unwrap(), None);
    run.write_summary(&summary()).unwrap();
    assert_eq!(run.read_summary().unwrap(), Some(summary()));
    let rows: Vec<EpochMetrics> = (1..=3)
        .map(|epoch| EpochMetrics {
            epoch,
            train_loss: 2.5 / epoch as f64,
            train_acc: 0.1 * epoch as f64,
            val_loss: 2.0,
            val_acc: 1.0 / 3.0,
            lr: 0.05,
            wall_s: 1.5,
            images_per_s: 812.5,
        })
        .collect();
    run.write_metrics(&rows).unwrap();
    assert_eq!(run.read_metrics().unwrap(), rows);
}

#[test]
fn columns_are_read_by_header_name() {
    let run = temp_run("columns");
    // The same metrics with the columns in another order.
    std::fs::create_dir_all(run.root()).unwrap();
    std::fs::write(
        run.path(METRICS_FILE),
        "val_acc,epoch,train_loss,train_acc,val_loss,lr,wall_s,images_per_s\n0.5,7,1,0.25,2,0.1,3,4\n",
    )
    .unwrap();
    let row = &run.read_metrics().unwrap()[0];
    assert_eq!((row.epoch, row.val_acc, row.train_acc), (7, 0.5, 0.25));
}

#[test]
fn unreadable_state_is_an_error_naming_the_file() {
    let run = temp_run("corrupt");
    run.write_summary(&summary()).unwrap();
    std::fs::write(run.path(SUMMARY_FILE), "{ not json").unwrap();
    let error = run.read_summary().unwrap_err().to_string();
    assert!(
        error.contains(SUMMARY_FILE) && error.contains("unreadable"),
        "{error}"
    );
    std::fs::write(run.path(CHECKPOINT_FILE), "").unwrap();
    let error = run.read_checkpoints().unwrap_err().to_string();
    assert!(error.contains(CHECKPOINT_FILE), "{error}");
    std::fs::write(run.path(METRICS_FILE), "epoch,x\n1,2\n").unwrap();
    let error = run.read_metrics().unwrap_err().to_string();
    assert!(
        error.contains(METRICS_FILE) && error.contains("missing field `train_loss`"),
        "{error}"
    );
}

#[test]
fn diagnostics_round_trip_truncate_and_drop_a_torn_line() {
    let run = temp_run("diagnostics");
    let histogram = |epoch| layer_histogram(epoch, 0, "features.0.weight", 27, &[0.0, -0.1, 0.3]);
    for epoch in 0..3 {
        run.append_diagnostics(&[histogram(epoch)], &margins_at(epoch), &balance_at(epoch))
            .unwrap();
    }
    assert_eq!(
        run.read_margins().unwrap(),
        (0..3).map(margins_at).collect::<Vec<_>>()
    );
    assert_eq!(
        run.read_balance().unwrap(),
        (0..3).flat_map(balance_at).collect::<Vec<_>>()
    );
    assert_eq!(
        run.read_histograms().unwrap(),
        (0..3).map(histogram).collect::<Vec<_>>()
    );

    // A crash mid-append leaves a torn last line: readers drop it.
    for file in [MARGINS_FILE, BALANCE_FILE, HISTOGRAMS_FILE] {
        let mut text = std::fs::read_to_string(run.path(file)).unwrap();
        text.push_str("3,0.5");
        std::fs::write(run.path(file), text).unwrap();
    }
    assert_eq!(run.read_margins().unwrap().len(), 3);
    assert_eq!(run.read_histograms().unwrap().len(), 3);

    run.truncate_diagnostics_after(1).unwrap();
    assert_eq!(
        run.read_margins().unwrap(),
        vec![margins_at(0), margins_at(1)]
    );
    assert_eq!(run.read_balance().unwrap().len(), 4);
    assert_eq!(
        run.read_histograms().unwrap(),
        vec![histogram(0), histogram(1)]
    );

    run.clear_results().unwrap();
    assert!(run.read_margins().unwrap().is_empty());
    assert!(!run.path(HISTOGRAMS_FILE).exists());
}

#[test]
fn pruning_rows_round_trip_with_their_layer_columns() {
    let run = temp_run("pruning");
    let rows: Vec<PruneRow> = [0.0, 0.5]
        .into_iter()
        .map(|s| PruneRow {
            sparsity: s,
            scope: PruneScope::Global,
            achieved: s * 0.999,
            val_loss: 2.25,
            val_acc: 0.5 - s / 4.0,
            per_layer: vec![
                ("features.0.weight".into(), s / 2.0),
                ("classifier.weight".into(), s),
            ],
        })
        .collect();
    assert_eq!(run.read_pruning().unwrap(), None);
    run.write_pruning(&rows).unwrap();
    assert_eq!(run.read_pruning().unwrap(), Some(rows));
}

#[test]
fn checkpoints_keep_the_previous_one_and_fall_back_to_it() {
    let run = temp_run("checkpoints");
    for epoch in 1..=3u8 {
        run.write_checkpoint(epoch as usize, None, &[epoch; 100], &[epoch; 7])
            .unwrap();
    }
    let index = run.read_checkpoints().unwrap().unwrap();
    assert_eq!(index.latest.epoch, 3);
    assert_eq!(index.previous.as_ref().unwrap().epoch, 2);
    assert_eq!(
        (index.latest.model.bytes, index.latest.model.md5.clone()),
        (100, md5_hex(&[3; 100]))
    );
    assert!(
        !run.path("checkpoints/model-epoch00001.bpk").exists(),
        "the oldest is removed"
    );
    let loaded = run.load_checkpoint().unwrap().unwrap();
    assert_eq!(
        (loaded.epoch, loaded.model, loaded.fell_back),
        (3, vec![3; 100], None)
    );

    // A damaged latest model: resume falls back to epoch 2 and says why.
    std::fs::write(run.path(&index.latest.model.path), [9u8; 100]).unwrap();
    let loaded = run.load_checkpoint().unwrap().unwrap();
    assert_eq!((loaded.epoch, loaded.optimizer), (2, vec![2; 7]));
    let reason = loaded.fell_back.unwrap();
    assert!(
        reason.contains("epoch 3") && reason.contains("MD5"),
        "{reason}"
    );

    // The next checkpoint replaces the damaged one and keeps the intact epoch 2 as previous.
    run.write_checkpoint(4, None, &[4; 100], &[4; 7]).unwrap();
    let index = run.read_checkpoints().unwrap().unwrap();
    assert_eq!(index.previous.unwrap().epoch, 2);

    // Both damaged (a truncated file): no intact checkpoint, an error naming the directory.
    std::fs::write(run.path("checkpoints/model-epoch00004.bpk"), [4u8; 3]).unwrap();
    std::fs::remove_file(run.path("checkpoints/optimizer-epoch00002.bpk")).unwrap();
    let error = run.load_checkpoint().unwrap_err().to_string();
    assert!(
        error.contains("no intact checkpoint") && error.contains("3 bytes, expected 100"),
        "{error}"
    );
}
