//! The training loop: one readable loop over epochs with named steps (train, validate, record,
//! checkpoint), exact resume, and divergence handling.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::DataLoader;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Int, Tensor};

use super::config::TrainConfig;
use super::run_dir::{BEST_MODEL, EpochMetrics, RunDir, RunStatus, Summary};
use crate::backend::Backend;
use crate::data::{self, CifarBatch, CifarBatcher, CifarDataset};
use crate::diagnostics::{DiagnosticsLog, margin_probe};
use crate::model::Vgg;

/// What to run and where.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The experiment.
    pub config: TrainConfig,
    /// Compute backend.
    pub backend: Backend,
    /// Run directory.
    pub out: PathBuf,
    /// Continue from the run directory's checkpoint.
    pub resume: bool,
    /// `--data-dir`, overriding the config's.
    pub data_dir: Option<PathBuf>,
}

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad input before training started (data, backend, config, run directory).
    #[error(transparent)]
    Setup(#[from] anyhow::Error),
    /// A non-finite loss.
    #[error(
        "training diverged in epoch {epoch} (non-finite {what} loss); the run is marked `diverged` and the checkpoint of epoch {kept} is kept — lower `lr` and start a new run"
    )]
    Diverged {
        /// The epoch.
        epoch: usize,
        /// `train` or `validation`.
        what: &'static str,
        /// Epoch of the last good checkpoint (0: none).
        kept: usize,
    },
}

/// The burn version mirrorburn is built against.
pub const BURN_VERSION: &str = "0.22.1";

/// Seed of epoch `epoch`'s data order (and augmentation), from the run seed.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// Trains (or resumes) a run and returns its final summary. An error after the run started marks
/// it `failed` in `summary.json` (its checkpoint stays resumable); divergence marks it `diverged`.
pub fn train(options: &TrainOptions) -> Result<Summary, TrainError> {
    let result = train_run(options);
    if let Err(TrainError::Setup(error)) = &result {
        let run = RunDir::new(&options.out);
        if let Some(mut summary) = run.summary().filter(|s| s.status == RunStatus::Running) {
            summary.status = RunStatus::Failed;
            summary.error = Some(format!("{error:#}"));
            let _ = run.write_summary(&summary);
        }
    }
    result
}

fn train_run(options: &TrainOptions) -> Result<Summary, TrainError> {
    let config = &options.config;
    let run = RunDir::new(&options.out);
    let resumed = prepare_run_dir(&run, options)?;

    let cifar = load_data(options)?;
    let train_split = Arc::new(cifar.train);
    let val_split = Arc::new(cifar.test);
    let batcher = CifarBatcher::new(config.data.normalization, &train_split);
    let train_set = CifarDataset::subset(train_split, config.data.n_train, config.data.subset_seed);
    let val_set = CifarDataset::subset(val_split, config.data.n_val, config.data.subset_seed);

    let device = options
        .backend
        .device()
        .map_err(anyhow::Error::from)?
        .autodiff();
    device.seed(config.seed);
    let mut model = Vgg::new(config.model.width_divisor, &device);
    let optimizer_config = config.optimizer.to_config();
    let mut optimizer = optimizer_config
        .init_for(&model)
        .map_err(|e| anyhow::anyhow!("config: invalid `optimizer`: {e}"))?;
    let diagnostics = DiagnosticsLog::new(run.root());
    let probe = margin_probe(&train_set, &batcher, config.logging.margin_images, &device)?;
    let mut rows = Vec::new();
    let mut initial_q = None;
    if let Some(checkpoint) = &resumed {
        (model, optimizer) = load_checkpoint(&run, checkpoint, model, optimizer)?;
        rows = run.metrics();
        rows.retain(|row| row.epoch <= checkpoint.epoch);
        io(diagnostics.truncate_after(checkpoint.epoch), "diagnostics")?;
        initial_q = diagnostics.initial_q();
    } else {
        io(diagnostics.truncate_after(0), "diagnostics")?;
        diagnostics.record(0, &model, &optimizer_config, &probe, &mut initial_q)?;
    }
    let start_epoch = resumed.as_ref().map_or(0, |c| c.epoch);

    let mut summary = Summary {
        name: config.name.clone(),
        status: RunStatus::Running,
        epochs_completed: start_epoch,
        epochs_planned: config.epochs,
        best_val_acc: None,
        best_epoch: None,
        final_val_acc: rows.last().map(|r| r.val_acc),
        error: None,
        backend: options.backend.name().to_string(),
        mirrorburn_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: BURN_VERSION.to_string(),
    };
    for row in &rows {
        note_best(&mut summary, row);
    }
    io(run.write_metrics(&rows), "metrics.csv")?;
    io(run.write_summary(&summary), "summary.json")?;

    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let interactive = std::io::stderr().is_terminal();
    let mut last_checkpoint = start_epoch;
    for epoch in start_epoch + 1..=config.epochs {
        let started = Instant::now();
        let seed = epoch_seed(config.seed, epoch);
        let epoch_set = if config.data.augment {
            train_set.augmented(seed)
        } else {
            train_set.clone()
        };
        let loader = data::loader(
            epoch_set,
            batcher.clone(),
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
        let mut tally = Tally::default();
        for batch in loader.iter() {
            let batch = batch.map_err(|e| anyhow::anyhow!("reading a training batch: {e}"))?;
            let logits = model.forward(batch.images);
            let loss = loss_fn.forward(logits.clone(), batch.targets.clone());
            tally.add(loss.clone().detach(), logits.detach(), batch.targets);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(config.lr, model, grads);
            bar.inc(1);
            // On a terminal, show the running loss and accuracy every 10 batches (one small read).
            if interactive && bar.position().is_multiple_of(10) {
                let rate = tally.seen as f64 / started.elapsed().as_secs_f64();
                let (loss, acc) = tally.clone().finish();
                bar.set_message(format!(
                    "loss {loss:.4} acc {:.2}% {rate:.0} img/s",
                    100.0 * acc
                ));
            }
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let seen = tally.seen;
        let (train_loss, train_acc) = tally.finish();
        bar.finish_and_clear();
        if !train_loss.is_finite() {
            return Err(diverge(&run, &mut summary, epoch, "train", last_checkpoint));
        }

        let (val_loss, val_acc) = evaluate(
            &model.valid(),
            &val_set,
            &batcher,
            config.batch_size,
            &device,
        )?;
        if !val_loss.is_finite() {
            return Err(diverge(
                &run,
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
            wall_s: started.elapsed().as_secs_f64(),
            images_per_s: seen as f64 / train_seconds,
        };
        println!(
            "epoch {epoch}/{}  train loss {train_loss:.4} acc {:.2}%  val loss {val_loss:.4} acc {:.2}%  {:.0} img/s",
            config.epochs,
            100.0 * train_acc,
            100.0 * val_acc,
            row.images_per_s
        );
        let improved = note_best(&mut summary, &row);
        rows.push(row);
        summary.epochs_completed = epoch;
        summary.final_val_acc = Some(val_acc);

        // Metrics and diagnostics first, checkpoint last: a resume keeps only rows up to its
        // checkpoint, so a kill between the writes loses nothing.
        io(run.write_metrics(&rows), "metrics.csv")?;
        io(run.write_summary(&summary), "summary.json")?;
        if epoch % config.logging.log_every == 0 || epoch == config.epochs {
            diagnostics.record(epoch, &model, &optimizer_config, &probe, &mut initial_q)?;
        }
        let checkpoint_due = epoch % config.logging.checkpoint_every == 0 || epoch == config.epochs;
        let weights = if improved || checkpoint_due {
            model_bytes(&model)?
        } else {
            Vec::new()
        };
        if improved {
            io(run.write(BEST_MODEL, &weights), BEST_MODEL)?;
        }
        if checkpoint_due {
            let optimizer_bytes = optimizer
                .into_bytes()
                .map_err(|e| anyhow::anyhow!("serializing the optimizer: {e:?}"))?;
            io(
                run.write_checkpoint(epoch, &weights, &optimizer_bytes),
                "checkpoint",
            )?;
            last_checkpoint = epoch;
        }
    }
    summary.status = RunStatus::Completed;
    io(run.write_summary(&summary), "summary.json")?;
    Ok(summary)
}

/// Checks the run directory and writes the resolved config; returns the checkpoint to resume.
fn prepare_run_dir(
    run: &RunDir,
    options: &TrainOptions,
) -> Result<Option<super::run_dir::Checkpoint>, TrainError> {
    let config_text = options.config.to_toml();
    let existing = run.summary();
    if existing.is_some() && !options.resume {
        return Err(anyhow::anyhow!(
            "{} already holds a run; pass --resume to continue it or --out to start a new one",
            run.root().display()
        )
        .into());
    }
    let checkpoint = if options.resume {
        run.checkpoint()
    } else {
        None
    };
    if checkpoint.is_some() {
        let stored = std::fs::read_to_string(run.path("config.toml")).unwrap_or_default();
        let stored =
            TrainConfig::from_toml(&stored, "config.toml", &[]).map_err(anyhow::Error::from)?;
        let mut comparable = options.config.clone();
        comparable.epochs = stored.epochs;
        if stored != comparable {
            return Err(anyhow::anyhow!(
                "--resume: the config differs from the one in {}/config.toml (only `epochs` may change when resuming)",
                run.root().display()
            )
            .into());
        }
    }
    io(
        run.write("config.toml", config_text.as_bytes()),
        "config.toml",
    )?;
    Ok(checkpoint)
}

fn load_data(options: &TrainOptions) -> Result<data::Cifar10, TrainError> {
    let cli_dir = options
        .data_dir
        .as_deref()
        .or(options.config.data.dir.as_deref());
    let dir = data::data_dir(cli_dir);
    Ok(data::load(&dir, options.config.data.download).map_err(anyhow::Error::from)?)
}

fn load_checkpoint(
    run: &RunDir,
    checkpoint: &super::run_dir::Checkpoint,
    model: Vgg,
    optimizer: ModuleOptimizer,
) -> Result<(Vgg, ModuleOptimizer), TrainError> {
    let model = load_model(&run.path(&checkpoint.model), model)?;
    let bytes = std::fs::read(run.path(&checkpoint.optimizer))
        .map_err(|e| anyhow::anyhow!("reading checkpoint file {}: {e}", checkpoint.optimizer))?;
    let optimizer = optimizer
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("checkpoint {}: {e:?}", checkpoint.optimizer))?;
    Ok((model, optimizer))
}

/// Loads the weights of a model record file into `model`.
pub fn load_model(path: &std::path::Path, model: Vgg) -> anyhow::Result<Vgg> {
    let context = || format!("loading model record {}", path.display());
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", context()))?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", context()))?;
    model.try_load_record(record).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e:?} (was the run trained with another width?)",
            context()
        )
    })
}

/// The model's record as burnpack bytes.
pub fn model_bytes(model: &Vgg) -> Result<Vec<u8>, TrainError> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("serializing the model: {e:?}"))?;
    Ok(bytes.to_vec())
}

/// Mean cross-entropy and accuracy of `model` (in validation mode) on `dataset`.
pub fn evaluate(
    model: &Vgg,
    dataset: &CifarDataset,
    batcher: &CifarBatcher,
    batch_size: usize,
    device: &Device,
) -> anyhow::Result<(f64, f64)> {
    let device = device.clone().without_autodiff();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let loader: Arc<dyn DataLoader<CifarBatch>> =
        data::loader(dataset.clone(), batcher.clone(), batch_size, None, &device);
    let mut tally = Tally::default();
    for batch in loader.iter() {
        let batch = batch.map_err(|e| anyhow::anyhow!("reading a validation batch: {e}"))?;
        let logits = model.forward(batch.images);
        let loss = loss_fn.forward(logits.clone(), batch.targets.clone());
        tally.add(loss, logits, batch.targets);
    }
    Ok(tally.finish())
}

/// Loss and hit counts summed on the device over an epoch, read back once at the end (and, on a
/// terminal, every 10 batches for the progress bar).
#[derive(Default, Clone)]
struct Tally {
    loss_sum: Option<Tensor<1>>,
    hits: Option<Tensor<1, Int>>,
    seen: usize,
}

impl Tally {
    /// Adds one batch: its mean loss, logits and targets.
    fn add(&mut self, mean_loss: Tensor<1>, logits: Tensor<2>, targets: Tensor<1, Int>) {
        let n = targets.dims()[0];
        let hits = logits
            .argmax(1)
            .squeeze_dim::<1>(1)
            .equal(targets)
            .int()
            .sum();
        let loss = mean_loss.mul_scalar(n as f64);
        self.loss_sum = Some(match self.loss_sum.take() {
            None => loss,
            Some(total) => total + loss,
        });
        self.hits = Some(match self.hits.take() {
            None => hits,
            Some(total) => total + hits,
        });
        self.seen += n;
    }

    /// Mean loss and accuracy.
    fn finish(self) -> (f64, f64) {
        let seen = self.seen.max(1) as f64;
        let loss = self.loss_sum.map_or(0.0, |t| t.into_scalar::<f64>());
        let hits = self.hits.map_or(0, |t| t.into_scalar::<i64>());
        (loss / seen, hits as f64 / seen)
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
    let _ = run.write_summary(summary);
    error
}

fn io(result: std::io::Result<()>, what: &str) -> Result<(), TrainError> {
    result.map_err(|e| anyhow::anyhow!("writing {what}: {e}").into())
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
