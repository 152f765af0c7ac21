//! `mirrorburn sweep`: train a grid of runs, then the table, pruning curves and report.

use std::path::PathBuf;

use crate::backend::Backend;
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
    /// Comma-separated GPU numbers, used round-robin by the jobs.
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<usize>,
    /// CIFAR-10 directory for every run.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Also rerun runs that failed or diverged.
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
    let unfinished = final_states
        .iter()
        .filter(|s| s.status != Some(crate::rundir::RunStatus::Completed))
        .count();
    println!(
        "wrote {}/table9.md; {unfinished} of {} runs not completed",
        out.display(),
        final_states.len()
    );
    Ok(())
}
