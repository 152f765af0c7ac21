//! `mirrorburn prune`: the pruning curve of a trained run, then its one-run report.

use std::path::PathBuf;

use crate::backend::BackendDevice;
use crate::diagnostics::PruneScope;
use crate::report::write_report;
use crate::rundir::PRUNING_FILE;
use crate::train::{CheckpointChoice, DEFAULT_SPARSITIES, install_stop_handlers, prune_run};

/// `mirrorburn prune` arguments.
#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// The run directory.
    #[arg(long)]
    pub run: PathBuf,
    /// Which weights to prune: the end of training (`last`, as `compare` does) or the best
    /// validation accuracy.
    #[arg(long, value_enum, default_value = "last")]
    pub checkpoint: CheckpointChoice,
    /// Comma-separated sparsities in [0, 1].
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_SPARSITIES)]
    pub sparsities: Vec<f64>,
    /// Prune each layer to the sparsity, or use one global threshold.
    #[arg(long, value_enum, default_value = "layer")]
    pub scope: PruneScope,
    /// CIFAR-10 directory [default: the run config's data.dir, else $MIRRORBURN_DATA, else data/].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Prunes the run and writes its report. SIGTERM or SIGINT stops it between sparsities without
/// writing a partial curve.
pub fn execute(args: &PruneArgs, compute: &BackendDevice) -> anyhow::Result<()> {
    install_stop_handlers()?;
    prune_run(
        &args.run,
        args.checkpoint,
        &args.sparsities,
        args.scope,
        compute,
        args.data_dir.as_deref(),
    )?;
    let report = write_report(std::slice::from_ref(&args.run), &args.run.join("report"))?;
    println!(
        "wrote {} and {}",
        args.run.join(PRUNING_FILE).display(),
        report.display()
    );
    Ok(())
}
