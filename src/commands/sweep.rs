//! `mirrorburn sweep`: train a grid of runs, then the table, pruning curves and report.

use std::path::PathBuf;

use crate::backend::{Backend, DeviceChoice};
use crate::rundir::RunStatus;
use crate::sweep::{Sweep, SweepOptions, emit_slurm, execute, finish, prepare, states};
use crate::train::install_stop_handlers;

/// `mirrorburn sweep` arguments.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// Sweep file, e.g. configs/table9-cpu.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Override a key of every run (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Output directory [default: artifacts/sweeps/<name>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Trainings at once (one child process each).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Comma-separated GPU adapters (as `--device`: N, discrete:N, integrated:N, virtual:N,
    /// cpu, default), used round-robin by the jobs.
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<DeviceChoice>,
    /// CIFAR-10 directory for every run.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Also rerun runs that failed (they resume from their last checkpoint) or diverged (they
    /// start over; the diverged directory is kept as runs/<name>.diverged-<k>).
    #[arg(long)]
    pub retry_failed: bool,
    /// Train nothing: aggregate whatever has completed.
    #[arg(long)]
    pub aggregate_only: bool,
    /// Write a cluster job instead of training here (`slurm`: a job array, one task per run,
    /// and a dependent aggregation job, under <out>/slurm/).
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
}

/// What `--emit` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// Slurm job-array scripts.
    Slurm,
}

/// Runs (or resumes) the sweep and writes its table, pruning curves and report.
pub fn execute_sweep(args: &SweepArgs, backend: Backend) -> anyhow::Result<()> {
    let sweep = Sweep::load(&args.config, &args.overrides)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("artifacts/sweeps").join(&sweep.name));
    let options = SweepOptions {
        out: out.clone(),
        jobs: args.jobs,
        backend,
        devices: args.devices.clone(),
        data_dir: args.data_dir.clone(),
        retry_failed: args.retry_failed,
        executable: std::env::current_exe()?,
    };
    if args.emit == Some(Emit::Slurm) {
        let files = emit_slurm(&sweep, &options, &args.config, &args.overrides)?;
        println!(
            "wrote {} ({} array tasks, task list {}) and {}; submit with: bash {}",
            files.array.display(),
            sweep.runs.len(),
            files.tasks.display(),
            files.aggregate.display(),
            files.submit.display()
        );
        return Ok(());
    }
    let final_states = if args.aggregate_only {
        prepare(&sweep, &out)?;
        states(&sweep, &out)?
    } else {
        install_stop_handlers()?;
        execute(&sweep, &options).map_err(|e| {
            anyhow::anyhow!(
                "{e}\nresume with: mirrorburn sweep --config {} --out {} (same options)",
                args.config.display(),
                out.display()
            )
        })?
    };
    let compute = backend.resolve_at(args.devices.first().copied())?;
    let table = finish(
        &sweep,
        &out,
        &final_states,
        &compute,
        args.data_dir.as_deref(),
    )?;
    print!("{table}");
    let count = |wanted: fn(Option<RunStatus>) -> bool| {
        final_states.iter().filter(|s| wanted(s.status)).count()
    };
    let failed = count(|s| s == Some(RunStatus::Failed));
    let diverged = count(|s| s == Some(RunStatus::Diverged));
    let not_run = count(|s| {
        !matches!(
            s,
            Some(RunStatus::Completed | RunStatus::Diverged | RunStatus::Failed)
        )
    });
    println!(
        "wrote {}/table9.md: {} of {} runs completed, {diverged} diverged, {failed} failed, \
         {not_run} not run",
        out.display(),
        final_states.len() - failed - diverged - not_run,
        final_states.len()
    );
    for state in final_states
        .iter()
        .filter(|s| s.status == Some(RunStatus::Failed))
    {
        eprintln!(
            "failed: {}: {}",
            state.name,
            state.error.as_deref().unwrap_or("no error recorded")
        );
    }
    if failed + not_run > 0 {
        return Err(SweepIncomplete { failed, not_run }.into());
    }
    Ok(())
}

/// A sweep that wrote its table while some runs failed or were not run: `mirrorburn` exits with
/// [`SweepIncomplete::EXIT_CODE`] (a diverged run is a result, not a failure).
#[derive(Debug, thiserror::Error)]
#[error(
    "{failed} run(s) failed and {not_run} were not run (the table counts them); rerun the same \
     command to resume unfinished runs, with --retry-failed to rerun failed ones"
)]
pub struct SweepIncomplete {
    /// Runs that failed.
    pub failed: usize,
    /// Runs neither completed, diverged nor failed (never started, or interrupted).
    pub not_run: usize,
}

impl SweepIncomplete {
    /// The process exit status of an incomplete sweep (1 is any other error).
    pub const EXIT_CODE: i32 = 3;
}
