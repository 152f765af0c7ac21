//! `mirrorburn train`: one run from a config into a run directory.

use std::path::PathBuf;

use crate::backend::BackendDevice;
use crate::config::TrainConfig;
use crate::train::{TrainOptions, install_stop_handlers, train};

/// `mirrorburn train` arguments.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Experiment config (TOML), e.g. configs/quick-hyperbolic.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Override a config key, e.g. --set lr=0.05 --set model.width_divisor=4 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run directory [default: artifacts/runs/<name>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its last intact checkpoint (start it if it has none).
    #[arg(long, visible_alias = "resume-or-start")]
    pub resume: bool,
    /// CIFAR-10 directory [default: the config's data.dir, else $MIRRORBURN_DATA, else data/].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Trains the run and prints where its results are.
pub fn execute(args: &TrainArgs, compute: &BackendDevice) -> anyhow::Result<()> {
    let config = TrainConfig::load(&args.config, &args.overrides)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("artifacts/runs").join(&config.name));
    let options = TrainOptions {
        config,
        compute: compute.clone(),
        out: out.clone(),
        resume: args.resume,
        data_dir: args.data_dir.clone(),
    };
    install_stop_handlers()?;
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
