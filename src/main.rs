//! The `mirrorburn` command line.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::module::Module;
use clap::{Parser, Subcommand};
use mirrorburn::backend::Backend;
use mirrorburn::diagnostics::PruneScope;
use mirrorburn::pruning::{CheckpointChoice, DEFAULT_SPARSITIES, prune_run};
use mirrorburn::report::write_report;
use mirrorburn::toy::{self, ToyConfig};
use mirrorburn::train::{RunDir, RunStatus, TrainConfig, TrainOptions, train};
use mirrorburn::{bench, fsutil, model::Vgg};

#[derive(Parser)]
#[command(
    name = "mirrorburn",
    version,
    about = "Mirror-descent training and implicit-bias diagnostics on Burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a bias-free VGG-16 on CIFAR-10 with mirror descent, writing a run directory.
    Train {
        /// Experiment config (TOML), e.g. configs/quick-hyperbolic.toml.
        #[arg(long)]
        config: PathBuf,
        /// Compute backend.
        #[arg(long, value_enum, default_value = "flex")]
        backend: Backend,
        /// Override a config key, e.g. --set lr=0.05 --set model.width_divisor=4 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Run directory [default: artifacts/runs/<name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue the run in --out from its last checkpoint.
        #[arg(long)]
        resume: bool,
        /// CIFAR-10 directory [default: $MIRRORBURN_DATA, else data/].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// One-shot magnitude pruning curve of a trained run (writes pruning.csv and a figure).
    Prune {
        /// The run directory.
        #[arg(long)]
        run: PathBuf,
        /// Which weights to prune.
        #[arg(long, value_enum, default_value = "best")]
        checkpoint: CheckpointChoice,
        /// Comma-separated sparsities in [0, 1].
        #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_SPARSITIES)]
        sparsities: Vec<f64>,
        /// Prune each layer to the sparsity, or use one global threshold.
        #[arg(long, value_enum, default_value = "layer")]
        scope: PruneScope,
        /// Compute backend.
        #[arg(long, value_enum, default_value = "flex")]
        backend: Backend,
        /// CIFAR-10 directory [default: the run's, else $MIRRORBURN_DATA, else data/].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Figures (PNG + SVG) and report.md comparing run directories.
    Report {
        /// Run directories (runs differing only in seed are one method).
        #[arg(long, num_args = 1.., required = true)]
        runs: Vec<PathBuf>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// The main job: train several configs, prune them, and write a report.
    Compare {
        /// Configs to compare.
        #[arg(long, num_args = 1.., default_values = ["configs/quick-gd.toml", "configs/quick-hyperbolic.toml", "configs/quick-p10.toml"])]
        configs: Vec<PathBuf>,
        /// Output directory (runs/ and report/ inside).
        #[arg(long, default_value = "artifacts/compare")]
        out: PathBuf,
        /// Compute backend.
        #[arg(long, value_enum, default_value = "flex")]
        backend: Backend,
        /// Override a key of every config (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// CIFAR-10 directory [default: $MIRRORBURN_DATA, else data/].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The student-teacher experiment (paper §5, Appendix J.1-J.2).
    Toy {
        /// Experiment config, e.g. configs/toy-2layer.toml.
        #[arg(long)]
        config: PathBuf,
        /// Output directory [default: artifacts/toy/<name>].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Time one optimizer step over the VGG-16 parameter set (SGD vs the mirror maps).
    Bench {
        /// Compute backend.
        #[arg(long, value_enum, default_value = "flex")]
        backend: Backend,
        /// Divide every VGG channel count by this (1 = full VGG-16, ~14.7 M weights).
        #[arg(long, default_value_t = 1)]
        width_divisor: usize,
        /// Timed steps per optimizer.
        #[arg(long, default_value_t = 10)]
        repeats: usize,
        /// Also write the table to this Markdown file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() {
    if let Err(error) = run(Cli::parse()) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// Trains each config into `out/runs/<name>` (resuming unfinished runs, reusing finished ones),
/// prunes each, and writes `out/report/report.md`.
fn compare(
    configs: &[PathBuf],
    out: &std::path::Path,
    backend: Backend,
    overrides: &[String],
    data_dir: Option<PathBuf>,
) -> Result<()> {
    let mut run_dirs = Vec::new();
    for path in configs {
        let config = TrainConfig::load(path, overrides)?;
        let run_dir = out.join("runs").join(&config.name);
        let done = RunDir::new(&run_dir).summary().is_some_and(|s| {
            s.status == RunStatus::Completed && s.epochs_completed == config.epochs
        });
        if done {
            println!(
                "{}: already completed in {}",
                config.name,
                run_dir.display()
            );
        } else {
            println!("== training {} ({})", config.name, path.display());
            let options = TrainOptions {
                resume: run_dir.join("checkpoint.json").exists(),
                config,
                backend,
                out: run_dir.clone(),
                data_dir: data_dir.clone(),
            };
            train(&options)?;
        }
        println!("== pruning {}", run_dir.display());
        prune_run(
            &run_dir,
            CheckpointChoice::Last,
            &DEFAULT_SPARSITIES,
            PruneScope::Layer,
            backend,
            data_dir.as_deref(),
        )?;
        run_dirs.push(run_dir);
    }
    let report = write_report(&run_dirs, &out.join("report"))?;
    println!("report: {}", report.display());
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train {
            config,
            backend,
            overrides,
            out,
            resume,
            data_dir,
        } => {
            let config = TrainConfig::load(&config, &overrides)?;
            let out = out.unwrap_or_else(|| PathBuf::from("artifacts/runs").join(&config.name));
            let options = TrainOptions {
                config,
                backend,
                out: out.clone(),
                resume,
                data_dir,
            };
            let summary = train(&options)?;
            println!(
                "{}: completed {} epochs, best val acc {:.2}% (epoch {}), results in {}",
                summary.name,
                summary.epochs_completed,
                100.0 * summary.best_val_acc.unwrap_or(0.0),
                summary.best_epoch.unwrap_or(0),
                out.display()
            );
            Ok(())
        }
        Command::Prune {
            run,
            checkpoint,
            sparsities,
            scope,
            backend,
            data_dir,
        } => {
            prune_run(
                &run,
                checkpoint,
                &sparsities,
                scope,
                backend,
                data_dir.as_deref(),
            )?;
            let report = write_report(std::slice::from_ref(&run), &run.join("report"))?;
            println!(
                "wrote {} and {}",
                run.join("pruning.csv").display(),
                report.display()
            );
            Ok(())
        }
        Command::Report { runs, out } => {
            let report = write_report(&runs, &out)?;
            println!("wrote {}", report.display());
            Ok(())
        }
        Command::Compare {
            configs,
            out,
            backend,
            overrides,
            data_dir,
        } => compare(&configs, &out, backend, &overrides, data_dir),
        Command::Toy { config, out } => {
            let config = ToyConfig::load(&config)?;
            let out = out.unwrap_or_else(|| PathBuf::from("artifacts/toy").join(&config.name));
            let started = std::time::Instant::now();
            let results = toy::run_all(&config);
            toy::write_outputs(&results, &out)?;
            print!("{}", toy::table(&results));
            println!(
                "wrote {} in {:.0} s",
                out.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Bench {
            backend,
            width_divisor,
            repeats,
            out,
        } => {
            anyhow::ensure!(repeats >= 1, "--repeats must be at least 1");
            anyhow::ensure!(width_divisor >= 1, "--width-divisor must be at least 1");
            let device = backend.device()?.autodiff();
            let params = Vgg::new(width_divisor, &device).num_params();
            let rows = bench::run(width_divisor, repeats, &device);
            let table = bench::to_markdown(&rows, params);
            print!("{table}");
            if let Some(path) = out {
                fsutil::write_atomic(&path, table.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
    }
}
