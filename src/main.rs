//! The `mirrorburn` command line.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::module::Module;
use clap::{Parser, Subcommand};
use mirrorburn::backend::Backend;
use mirrorburn::train::{TrainConfig, TrainOptions, train};
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
