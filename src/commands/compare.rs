//! `mirrorburn compare`, the main job: train several configs, prune each, and write one report.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::backend::BackendDevice;
use crate::config::TrainConfig;
use crate::diagnostics::PruneScope;
use crate::report::write_report;
use crate::rundir::{RunDir, RunStatus};
use crate::train::{
    CheckpointChoice, DEFAULT_SPARSITIES, TrainError, TrainOptions, install_stop_handlers,
    prune_run, stop_requested, train,
};

/// `mirrorburn compare` arguments.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Configs to compare.
    #[arg(long, num_args = 1.., default_values = ["configs/quick-gd.toml", "configs/quick-hyperbolic.toml", "configs/quick-p10.toml"])]
    pub configs: Vec<PathBuf>,
    /// Output directory (runs/ and report/ inside).
    #[arg(long, default_value = "artifacts/compare")]
    pub out: PathBuf,
    /// Override a key of every config (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// CIFAR-10 directory [default: the config's data.dir, else $MIRRORBURN_DATA, else data/].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Trains each config into `out/runs/<name>` (resuming unfinished runs, reusing finished ones
/// whose stored config is the one asked for), prunes each at the end of training, and writes
/// `out/report/report.md`. SIGTERM or SIGINT checkpoints the training in progress (or abandons
/// the pruning curve in progress) and exits non-zero; the same command continues exactly.
pub fn execute(args: &CompareArgs, compute: &BackendDevice) -> anyhow::Result<()> {
    install_stop_handlers()?;
    let mut run_dirs = Vec::new();
    for path in &args.configs {
        stop_point("before the next run")?;
        let config = TrainConfig::load(path, &args.overrides)?;
        let run_dir = args.out.join("runs").join(&config.name);
        if completed(&run_dir, &config)? {
            println!(
                "{}: already completed in {}",
                config.name,
                run_dir.display()
            );
        } else {
            println!("== training {} ({})", config.name, path.display());
            let options = TrainOptions {
                resume: RunDir::new(&run_dir).read_checkpoints()?.is_some(),
                config,
                compute: compute.clone(),
                out: run_dir.clone(),
                data_dir: args.data_dir.clone(),
            };
            let name = options.config.name.clone();
            match train(&options) {
                Err(TrainError::Interrupted { epoch, batches }) => bail!(
                    "compare interrupted while training {name} (epoch {epoch}, {batches} batches \
                     in): a checkpoint was written and the run is marked `interrupted`; run the \
                     same compare command again to continue exactly"
                ),
                other => other?,
            };
        }
        println!("== pruning {}", run_dir.display());
        prune_run(
            &run_dir,
            CheckpointChoice::Last,
            &DEFAULT_SPARSITIES,
            PruneScope::Layer,
            compute,
            args.data_dir.as_deref(),
        )?;
        run_dirs.push(run_dir);
    }
    stop_point("before the report")?;
    let report = write_report(&run_dirs, &args.out.join("report"))?;
    println!("report: {}", report.display());
    Ok(())
}

/// Whether `run_dir` holds this config's run, completed for all its epochs. A run there under a
/// different config (other than in `epochs`) is an error naming the first differing key.
fn completed(run_dir: &Path, config: &TrainConfig) -> anyhow::Result<bool> {
    let run = RunDir::new(run_dir);
    let Some(summary) = run.read_summary()? else {
        return Ok(false);
    };
    if let Some((key, was, now)) = run.config_difference(config)? {
        bail!(
            "{} holds a run of another config (`{key}` is {was} there, {now} now); \
             use another --out or remove that run",
            run_dir.display()
        );
    }
    Ok(summary.status == RunStatus::Completed && summary.epochs_completed == config.epochs)
}

/// An error when a stop was requested (between the steps of the comparison).
fn stop_point(when: &str) -> anyhow::Result<()> {
    if stop_requested() {
        bail!(
            "compare interrupted {when}: every finished run is kept; run the same compare \
             command again to continue"
        );
    }
    Ok(())
}
