//! The training loop: one readable loop over epochs with named steps (train, validate, record,
//! checkpoint), exact resume, and divergence handling.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::ModuleOptimizer;
use burn::tensor::Bytes;

use super::datasets::run_datasets;
use super::error::TrainError;
use super::evaluate::{Tally, evaluate};
use super::model_io::{load_model, model_bytes};
use super::record::{margin_probe, record_diagnostics};
use super::step::train_step;
use super::stop::stop_requested;
use crate::backend::BackendDevice;
use crate::config::TrainConfig;
use crate::data;
use crate::model::Vgg;
use crate::optim::dual_fallbacks;
use crate::rundir::{
    EpochMetrics, EpochProgress, EventWriter, LoadedCheckpoint, RunDir, RunDirError, RunStatus,
    Summary, SummaryValue, md5_hex,
};

/// What to run and where.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The experiment.
    pub config: TrainConfig,
    /// Compute backend and device.
    pub compute: BackendDevice,
    /// Run directory.
    pub out: PathBuf,
    /// Continue from the run directory's checkpoint.
    pub resume: bool,
    /// `--data-dir`, overriding the config's.
    pub data_dir: Option<PathBuf>,
}

/// Batches between two reads of the running loss for the terminal's progress bar (on a GPU each
/// read waits for the queued steps).
const BAR_READ_EVERY: u64 = 50;

/// The burn version mirrorburn is built against.
pub const BURN_VERSION: &str = "0.22.1";

/// Seed of epoch `epoch`'s data order (and augmentation), from the run seed.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// Trains (or resumes) a run and returns its final summary. The run directory is locked for the
/// whole run. An error after the run started marks it `failed` in `summary.json` (its checkpoint
/// stays resumable); divergence marks it `diverged`.
pub fn train(options: &TrainOptions) -> Result<Summary, TrainError> {
    let run = RunDir::new(&options.out);
    let _lock = run.lock()?;
    let resumed = prepare_run_dir(&run, options)?;
    let result = train_run(&run, options, resumed);
    if let Err(error) = &result
        && !matches!(
            error,
            TrainError::Diverged { .. } | TrainError::Interrupted { .. }
        )
        && let Ok(Some(mut summary)) = run.read_summary()
        && summary.status == RunStatus::Running
    {
        summary.status = RunStatus::Failed;
        summary.error = Some(error.to_string());
        if let Err(summary_error) = run.write_summary(&summary) {
            // A full disk fails this write too: name it without repeating the OS message.
            let why = match &summary_error {
                RunDirError::Write(write) => write.error.kind().to_string(),
                other => other.to_string(),
            };
            eprintln!(
                "note: summary.json could not be updated to `failed` either ({why}); it still \
                 says `running`, and --resume continues from the last checkpoint"
            );
        }
    }
    result
}

fn train_run(
    run: &RunDir,
    options: &TrainOptions,
    resumed: Option<LoadedCheckpoint>,
) -> Result<Summary, TrainError> {
    let config = &options.config;
    let sets = run_datasets(config, options.data_dir.as_deref())?;
    let device = options.compute.device.clone().autodiff();
    let mut model = Vgg::new(config.model.width_divisor, config.seed, &device);
    let optimizer_config = config.optimizer.to_config();
    let mut optimizer = optimizer_config.init_for(&model)?;
    print!(
        "optimizer, per parameter:\n{}",
        optimizer_config.describe(&model)
    );
    let probe = margin_probe(
        &sets.train,
        &sets.batcher,
        config.logging.margin_images,
        &device,
    )?;
    let events = EventWriter::create(run.root())?;
    let mut rows = Vec::new();
    let mut initial_q = None;
    let start_epoch = resumed.as_ref().map_or(0, |c| c.epoch);
    let resumed_partial = resumed.as_ref().and_then(|c| c.partial);
    if let Some(checkpoint) = resumed {
        (model, optimizer) = restore(checkpoint, model, optimizer)?;
        rows = run.read_metrics()?;
        rows.retain(|row| row.epoch <= start_epoch);
        run.truncate_diagnostics_after(start_epoch)?;
        if run.remove_pruning()? {
            println!(
                "removed pruning.csv: it described the weights of epoch {start_epoch} or earlier \
                 (prune again after training; a sweep does it itself)"
            );
        }
        let initial: Vec<f64> = run
            .read_balance()?
            .into_iter()
            .filter(|row| row.epoch == 0)
            .map(|row| row.q)
            .collect();
        initial_q = (!initial.is_empty()).then_some(initial);
    } else {
        run.clear_results()?;
        record_diagnostics(
            run,
            &events,
            0,
            &model,
            &optimizer_config,
            &probe,
            &mut initial_q,
        )?;
    }

    let mut summary = Summary {
        name: config.name.clone(),
        status: RunStatus::Running,
        epochs_completed: start_epoch,
        epochs_planned: config.epochs,
        best_val_acc: None,
        best_epoch: None,
        final_val_acc: rows.last().map(|r| r.val_acc),
        error: None,
        backend: options.compute.backend.name().to_string(),
        mirrorburn_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: BURN_VERSION.to_string(),
        config_md5: Some(md5_hex(config.to_toml().as_bytes())),
    };
    for row in &rows {
        note_best(&mut summary, row);
    }
    run.write_metrics(&rows)?;
    run.write_summary(&summary)?;

    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let interactive = std::io::stderr().is_terminal();
    let mut last_checkpoint = start_epoch;
    let mut partial = resumed_partial;
    for epoch in start_epoch + 1..=config.epochs {
        let started = Instant::now();
        // After a graceful stop, the epoch continues where it stopped: the same data order,
        // the batches already trained skipped, the tally restored.
        let progress = partial.take();
        let skip = progress.map_or(0, |p| p.batches);
        let earlier_seconds = progress.map_or(0.0, |p| p.seconds);
        let seed = epoch_seed(config.seed, epoch);
        let epoch_set = if config.data.augment {
            sets.train.augmented(seed)
        } else {
            sets.train.clone()
        };
        let loader = data::loader(
            epoch_set,
            sets.batcher.clone(),
            config.batch_size,
            Some(seed),
            &device,
        );

        // Train: accumulate loss and hits on the device, read them once per epoch.
        let bar = progress_bar(
            interactive,
            loader.num_items().div_ceil(config.batch_size),
            epoch,
            config.epochs,
        );
        let mut tally = progress.map_or_else(Tally::default, |p| {
            Tally::resume(p.loss_sum, p.hits, p.seen, &device)
        });
        bar.inc(skip as u64);
        for (index, batch) in loader.iter().enumerate().skip(skip) {
            let batch = batch.map_err(|e| TrainError::Batch {
                split: "training",
                message: e.to_string(),
            })?;
            model = train_step(
                model,
                &mut optimizer,
                &loss_fn,
                batch,
                &mut tally,
                config.lr,
            );
            bar.inc(1);
            if stop_requested() {
                bar.finish_and_clear();
                let (loss_sum, hits) = tally.totals();
                let progress = EpochProgress {
                    batches: index + 1,
                    seen: tally.seen,
                    loss_sum,
                    hits,
                    seconds: earlier_seconds + started.elapsed().as_secs_f64(),
                };
                return Err(interrupt(
                    run,
                    &mut summary,
                    &model,
                    optimizer,
                    epoch - 1,
                    progress,
                ));
            }
            // On a terminal, show the running loss and accuracy every BAR_READ_EVERY batches: a
            // log point (two small reads); between them a step reads nothing from the device.
            if interactive && bar.position().is_multiple_of(BAR_READ_EVERY) {
                let rate = tally.seen as f64 / started.elapsed().as_secs_f64();
                let (loss, acc) = tally.clone().finish();
                bar.set_message(format!(
                    "loss {loss:.4} acc {:.2}% {rate:.0} img/s",
                    100.0 * acc
                ));
            }
        }
        let train_seconds = earlier_seconds + started.elapsed().as_secs_f64();
        let seen = tally.seen;
        let (train_loss, train_acc) = tally.finish();
        bar.finish_and_clear();
        // A log point: the exact steps that fell back this epoch were counted on the device;
        // reading them prints the warning (once per process) if there were any.
        dual_fallbacks();
        if !train_loss.is_finite() {
            return Err(diverge(run, &mut summary, epoch, "train", last_checkpoint));
        }

        let (val_loss, val_acc) = evaluate(
            &model.valid(),
            &sets.val,
            &sets.batcher,
            config.batch_size,
            &device,
        )?;
        if !val_loss.is_finite() {
            return Err(diverge(
                run,
                &mut summary,
                epoch,
                "validation",
                last_checkpoint,
            ));
        }
        let row = EpochMetrics {
            epoch,
            train_loss,
            train_acc,
            val_loss,
            val_acc,
            lr: config.lr,
            wall_s: earlier_seconds + started.elapsed().as_secs_f64(),
            images_per_s: seen as f64 / train_seconds,
        };
        println!(
            "epoch {epoch}/{}  train loss {train_loss:.4} acc {:.2}%  val loss {val_loss:.4} acc {:.2}%  {:.0} img/s",
            config.epochs,
            100.0 * train_acc,
            100.0 * val_acc,
            row.images_per_s
        );
        let scalars = [
            ("loss/train", train_loss),
            ("loss/validation", val_loss),
            ("accuracy/train", train_acc),
            ("accuracy/validation", val_acc),
        ];
        events.write(
            epoch as i64,
            &scalars.map(|(tag, value)| SummaryValue::Scalar {
                tag: tag.into(),
                value: value as f32,
            }),
        )?;
        let improved = note_best(&mut summary, &row);
        rows.push(row);
        summary.epochs_completed = epoch;
        summary.final_val_acc = Some(val_acc);

        // Metrics and diagnostics first, checkpoint last: a resume keeps only rows up to its
        // checkpoint, so a kill between the writes loses nothing.
        run.write_metrics(&rows)?;
        run.write_summary(&summary)?;
        if epoch % config.logging.log_every == 0 || epoch == config.epochs {
            record_diagnostics(
                run,
                &events,
                epoch,
                &model,
                &optimizer_config,
                &probe,
                &mut initial_q,
            )?;
        }
        let checkpoint_due = epoch % config.logging.checkpoint_every == 0 || epoch == config.epochs;
        let weights = if improved || checkpoint_due {
            model_bytes(&model)?
        } else {
            Vec::new()
        };
        if improved {
            run.write_best_model(&weights)?;
        }
        if checkpoint_due {
            let optimizer_bytes = optimizer.into_bytes().map_err(|e| TrainError::Record {
                what: "serializing the optimizer".into(),
                message: format!("{e:?}"),
            })?;
            run.write_checkpoint(epoch, None, &weights, &optimizer_bytes)?;
            last_checkpoint = epoch;
        }
    }
    summary.status = RunStatus::Completed;
    run.write_summary(&summary)?;
    Ok(summary)
}

/// Checks the run directory against the options and records the resolved config; returns the
/// checkpoint to resume from (`None`: start from scratch). Unreadable state is an error, never
/// a silent fresh start.
fn prepare_run_dir(
    run: &RunDir,
    options: &TrainOptions,
) -> Result<Option<LoadedCheckpoint>, TrainError> {
    run.read_summary()?;
    run.read_checkpoints()?;
    if !options.resume && run.holds_a_run() {
        return Err(TrainError::RunExists {
            dir: run.root().to_path_buf(),
        });
    }
    let checkpoint = if options.resume {
        run.load_checkpoint()?
    } else {
        None
    };
    if let Some(loaded) = &checkpoint {
        if let Some((key, stored, requested)) = run.config_difference(&options.config)? {
            return Err(TrainError::ConfigChanged {
                dir: run.root().to_path_buf(),
                key,
                stored,
                requested,
            });
        }
        if let Some(reason) = &loaded.fell_back {
            eprintln!("warning: {reason}");
        }
    }
    run.write_config(&options.config)?;
    Ok(checkpoint)
}

fn restore(
    checkpoint: LoadedCheckpoint,
    model: Vgg,
    optimizer: ModuleOptimizer,
) -> Result<(Vgg, ModuleOptimizer), TrainError> {
    let origin = format!("of the epoch-{} checkpoint", checkpoint.epoch);
    let model = load_model(checkpoint.model, model, &origin)?;
    let optimizer = optimizer
        .from_bytes(Bytes::from_bytes_vec(checkpoint.optimizer))
        .map_err(|e| TrainError::Record {
            what: format!("loading the optimizer record {origin}"),
            message: format!("{e:?}"),
        })?;
    Ok((model, optimizer))
}

/// Writes a mid-epoch checkpoint after `completed` epochs plus `progress`, marks the run
/// `interrupted`, and returns the error that says how to continue.
fn interrupt(
    run: &RunDir,
    summary: &mut Summary,
    model: &Vgg,
    optimizer: ModuleOptimizer,
    completed: usize,
    progress: EpochProgress,
) -> TrainError {
    let written = model_bytes(model).and_then(|weights| {
        let optimizer_bytes = optimizer.into_bytes().map_err(|e| TrainError::Record {
            what: "serializing the optimizer".into(),
            message: format!("{e:?}"),
        })?;
        run.write_checkpoint(completed, Some(progress), &weights, &optimizer_bytes)?;
        summary.status = RunStatus::Interrupted;
        run.write_summary(summary)?;
        Ok(())
    });
    match written {
        Ok(()) => TrainError::Interrupted {
            epoch: completed + 1,
            batches: progress.batches,
        },
        Err(error) => error,
    }
}

fn note_best(summary: &mut Summary, row: &EpochMetrics) -> bool {
    let better = summary.best_val_acc.is_none_or(|best| row.val_acc > best);
    if better {
        summary.best_val_acc = Some(row.val_acc);
        summary.best_epoch = Some(row.epoch);
    }
    better
}

/// Marks the run `diverged` in `summary.json` and returns the error that says so; when the
/// summary cannot be written, the error says that instead (the status is still `running`).
fn diverge(
    run: &RunDir,
    summary: &mut Summary,
    epoch: usize,
    what: &'static str,
    kept: usize,
) -> TrainError {
    let error = TrainError::Diverged { epoch, what, kept };
    summary.status = RunStatus::Diverged;
    summary.error = Some(error.to_string());
    match run.write_summary(summary) {
        Ok(()) => error,
        Err(source) => TrainError::DivergedUnrecorded {
            epoch,
            what,
            source,
        },
    }
}

fn progress_bar(
    interactive: bool,
    batches: usize,
    epoch: usize,
    epochs: usize,
) -> indicatif::ProgressBar {
    if !interactive {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(batches as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "epoch {epoch}/{epochs} {{bar:30}} {{pos}}/{{len}} batches {{msg}} eta {{eta}}"
        ))
        .expect("static template"),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            name: "run".into(),
            status: RunStatus::Running,
            epochs_completed: 2,
            epochs_planned: 5,
            best_val_acc: None,
            best_epoch: None,
            final_val_acc: None,
            error: None,
            backend: "flex".into(),
            mirrorburn_version: String::new(),
            burn_version: String::new(),
            config_md5: None,
        }
    }

    /// Divergence is recorded in `summary.json`; when that write fails, the error says so
    /// instead of leaving `running` behind without a word.
    #[test]
    fn a_divergence_that_summary_json_cannot_record_is_reported() {
        let root = std::env::temp_dir().join(format!("mirrorburn-diverge-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let recorded = diverge(&RunDir::new(&root), &mut summary(), 3, "train", 2);
        assert!(
            matches!(
                recorded,
                TrainError::Diverged {
                    epoch: 3,
                    kept: 2,
                    ..
                }
            ),
            "{recorded}"
        );
        let stored = RunDir::new(&root).read_summary().unwrap().unwrap();
        assert_eq!(stored.status, RunStatus::Diverged);
        // A run directory below a regular file cannot be written.
        let blocked = RunDir::new(root.join("summary.json").join("run"));
        let unrecorded = diverge(&blocked, &mut summary(), 3, "train", 2);
        let message = unrecorded.to_string();
        assert!(
            matches!(unrecorded, TrainError::DivergedUnrecorded { epoch: 3, .. })
                && message.contains("could not be marked `diverged`"),
            "{message}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
