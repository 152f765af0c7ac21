//! `mirrorburn bench`: the optimizer step alone, the whole training step, and the data pipeline
//! alone, on the chosen backend (or every compiled one).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use burn::module::Module;

use crate::backend::{Backend, BackendDevice};
use crate::bench::{
    F32_BOUNDS, TF32_BOUNDS, agreement_rows, agreement_table, conv_rows, conv_table, op_rows,
    op_table, optimizer_rows, optimizer_table, pipeline_row, pipeline_table, step_accuracy_rows,
    step_accuracy_table, step_rows, step_table, toy_step_rows, toy_step_table, window_row,
    window_table,
};
use crate::fsutil::write_atomic;
use crate::model::Vgg;
use crate::toy::ToyConfig;

/// One part of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchPart {
    /// One optimizer step over the whole VGG-16 (Burn's SGD vs every potential and step form).
    Optimizer,
    /// The training step (forward, backward, mirror step) at every `--step-widths` divisor (the
    /// agreement check uses the first).
    Step,
    /// The data loader alone.
    Data,
    /// One training step on each backend against the same step on `flex` (with
    /// `--every-backend`: every compiled one), element by element; exits non-zero outside the
    /// bounds (f32 bounds on flex, TF32-admitting ones on GPU backends).
    Agreement,
    /// The mirror step alone (every potential x scaling x step form, relative updates 1e-7 to
    /// 1e-2) on the backend's f32 tensor path against the f64 host step, per element; exits
    /// non-zero outside the bounds.
    StepAccuracy,
    /// Our 3x3 convolution against Burn flex's, per VGG-16 layer shape at every
    /// `--step-widths` divisor: forward, input gradient, weight gradient (on `flex` only).
    Conv,
    /// The training step per op at every `--step-widths` divisor: each conv block (convolution,
    /// bias, ReLU, max pool), the classifier with the loss, the mirror step, the whole step;
    /// forward and backward milliseconds and cores busy.
    Ops,
    /// The student-teacher toy's step, hand-derived f64 against Burn's autodiff, per depth and
    /// method of `configs/toy-{2,3}layer.toml` (on the CPU; `--backend` does not apply).
    Toy,
    /// GD training steps at the first `--step-widths` divisor inside the window `--start-at`
    /// .. `--start-at + --seconds`, shared by processes started together (K trainings on one
    /// GPU): images/s inside the window.
    Window,
}

/// `mirrorburn bench` arguments.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Which parts to run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "optimizer,step,data")]
    pub parts: Vec<BenchPart>,
    /// Width divisor of the optimizer benchmark's VGG-16 (1 = full VGG-16, ~14.7 M weights).
    #[arg(long, default_value_t = 1)]
    pub width_divisor: usize,
    /// Width divisors of the training-step benchmark (comma-separated; 1 = full width).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8])]
    pub step_widths: Vec<usize>,
    /// Batch size of the training step and the data pipeline.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Timed repetitions of each measurement (after one warm-up).
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
    /// Run on every backend compiled into this binary instead of `--backend`.
    #[arg(long)]
    pub every_backend: bool,
    /// Also write the tables to this Markdown file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start of the `window` part's measurement, in seconds since the Unix epoch (default: as
    /// soon as warmed up).
    #[arg(long)]
    pub start_at: Option<f64>,
    /// Length of the `window` part's measurement, in seconds.
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
}

/// Runs the chosen parts on `compute` (or every compiled backend) and prints (and optionally
/// writes) the tables.
pub fn execute(args: &BenchArgs, compute: &BackendDevice) -> anyhow::Result<()> {
    anyhow::ensure!(args.repeats >= 1, "--repeats must be at least 1");
    anyhow::ensure!(
        args.width_divisor >= 1 && args.step_widths.iter().all(|&w| w >= 1),
        "width divisors must be at least 1"
    );
    anyhow::ensure!(args.batch_size >= 1, "--batch-size must be at least 1");
    let computes = if args.every_backend {
        Backend::compiled()
            .into_iter()
            .map(|b| b.resolve().map_err(anyhow::Error::from))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        vec![compute.clone()]
    };
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds.is_finite(),
        "--seconds must be a positive number"
    );
    let mut tables = String::new();
    let mut disagreements = Vec::new();
    for compute in &computes {
        let name = compute.backend.name();
        let device = &compute.device;
        for part in &args.parts {
            let table = match part {
                BenchPart::Optimizer => {
                    let autodiff = device.clone().autodiff();
                    let params = Vgg::new(args.width_divisor, 0, &autodiff).num_params();
                    let rows = optimizer_rows(args.width_divisor, args.repeats, &autodiff);
                    format!("({name}) {}", optimizer_table(&rows, params))
                }
                BenchPart::Step => step_table(
                    &step_rows(&args.step_widths, args.batch_size, args.repeats, device),
                    name,
                ),
                BenchPart::Agreement => {
                    let width = args.step_widths[0];
                    let rows =
                        agreement_rows(std::slice::from_ref(compute), width, args.batch_size);
                    let bounds = if compute.backend == Backend::Flex {
                        F32_BOUNDS
                    } else {
                        TF32_BOUNDS
                    };
                    for row in &rows {
                        if let Err(why) = row.difference.check(&bounds) {
                            disagreements.push(format!("{} {}: {why}", row.backend, row.optimizer));
                        }
                    }
                    agreement_table(&rows, width, args.batch_size, &bounds)
                }
                BenchPart::StepAccuracy => {
                    let rows = step_accuracy_rows(device, 4000, 0x57E9);
                    for row in &rows {
                        if let Some(why) = &row.failure {
                            disagreements.push(format!(
                                "{name} mirror step {} {:?} {}: {why}",
                                row.potential,
                                row.scaling,
                                row.form.name()
                            ));
                        }
                    }
                    step_accuracy_table(&rows, name)
                }
                BenchPart::Window => window_table(
                    &window_row(
                        args.step_widths[0],
                        args.batch_size,
                        args.start_at,
                        args.seconds,
                        device,
                    ),
                    name,
                ),
                BenchPart::Conv if compute.backend != Backend::Flex => continue,
                BenchPart::Conv => args
                    .step_widths
                    .iter()
                    .map(|&k| {
                        conv_table(
                            &conv_rows(k, args.batch_size, args.repeats),
                            k,
                            args.batch_size,
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                BenchPart::Ops => args
                    .step_widths
                    .iter()
                    .map(|&k| {
                        let rows = op_rows(k, args.batch_size, args.repeats, device);
                        op_table(&rows, k, args.batch_size, name)
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                BenchPart::Toy if compute.backend != Backend::Flex => continue,
                BenchPart::Toy => {
                    let configs = ["configs/toy-2layer.toml", "configs/toy-3layer.toml"]
                        .map(|path| ToyConfig::load(std::path::Path::new(path)))
                        .into_iter()
                        .collect::<Result<Vec<_>, _>>()
                        .context("the toy benchmark reads configs/toy-{2,3}layer.toml; run it from the repository root")?;
                    let steps = 2000;
                    toy_step_table(&toy_step_rows(&configs, steps, args.repeats), steps)
                }
                BenchPart::Data => pipeline_table(
                    &pipeline_row(20 * args.batch_size, args.batch_size, args.repeats, device),
                    name,
                ),
            };
            println!("{table}");
            let _ = writeln!(tables, "{table}");
        }
    }
    if let Some(path) = &args.out {
        write_atomic(path, tables.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    anyhow::ensure!(
        disagreements.is_empty(),
        "the agreement check failed (outside the bounds: a backend's training step against flex, \
         or its mirror step against the f64 host step):\n  {}",
        disagreements.join("\n  ")
    );
    Ok(())
}
