//! The `mirrorburn` command line: parses arguments, resolves the backend to a device once, and
//! dispatches to the command modules.

use clap::{Parser, Subcommand};
use mirrorburn::backend::{Backend, DeviceChoice};
use mirrorburn::commands::{bench, compare, prune, recipe, report, sweep, toy, train};

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

/// `--backend` and `--device`, shared by the commands that compute.
#[derive(clap::Args)]
struct BackendArg {
    /// Compute backend.
    #[arg(long, value_enum, default_value = "flex")]
    backend: Backend,
    /// GPU adapter for `wgpu` and `cuda`: N or discrete:N (discrete GPU N; CUDA: GPU N),
    /// integrated:N, virtual:N, cpu (a software adapter such as lavapipe), default
    /// [default: the default GPU].
    #[arg(long)]
    device: Option<DeviceChoice>,
}

impl BackendArg {
    fn resolve(&self) -> anyhow::Result<mirrorburn::backend::BackendDevice> {
        Ok(self.backend.resolve_at(self.device)?)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Train a bias-free VGG-16 on CIFAR-10 with mirror descent, writing a run directory.
    Train {
        #[command(flatten)]
        args: train::TrainArgs,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// One-shot magnitude pruning curve of a trained run (writes pruning.csv and a report).
    Prune {
        #[command(flatten)]
        args: prune::PruneArgs,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Figures (PNG + SVG) and report.md comparing run directories.
    Report {
        #[command(flatten)]
        args: report::ReportArgs,
    },
    /// The main job: train several configs, prune them, and write a report (the same command
    /// continues an interrupted one).
    Compare {
        #[command(flatten)]
        args: compare::CompareArgs,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// A grid of training runs (Table 9) in parallel, resumable; then the table, pruning, report.
    /// Exits 3 when a run failed or was not run (a diverged run is a result).
    Sweep {
        #[command(flatten)]
        args: sweep::SweepArgs,
        /// Compute backend of every run.
        #[arg(long, value_enum, default_value = "flex")]
        backend: Backend,
    },
    /// The student-teacher experiment (paper §5, Appendix J.1-J.2).
    Toy {
        #[command(flatten)]
        args: toy::ToyArgs,
    },
    /// The paper's mirror-μP recipes (Table 10) and a config's expected first update per layer.
    Recipe {
        #[command(flatten)]
        args: recipe::RecipeArgs,
    },
    /// Benchmarks and checks: optimizer step, training step (img/s, device reads), data pipeline,
    /// convolution, toy step, shared-window throughput, agreement with flex, step accuracy.
    Bench {
        #[command(flatten)]
        args: bench::BenchArgs,
        #[command(flatten)]
        backend: BackendArg,
    },
}

fn main() {
    // A performance setting only: where the allocator refuses it, training is slower, not wrong.
    mirrorburn::heap::keep_freed_buffers();
    if let Err(error) = run(Cli::parse()) {
        eprintln!("error: {}", message(&error));
        let incomplete = error.downcast_ref::<sweep::SweepIncomplete>().is_some();
        std::process::exit(if incomplete {
            sweep::SweepIncomplete::EXIT_CODE
        } else {
            1
        });
    }
}

/// The error and its causes, each cause once: an error whose message already quotes its cause
/// (`cannot read config x: No such file ...`) does not repeat it.
fn message(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train { args, backend } => train::execute(&args, &backend.resolve()?),
        Command::Prune { args, backend } => prune::execute(&args, &backend.resolve()?),
        Command::Report { args } => report::execute(&args),
        Command::Compare { args, backend } => compare::execute(&args, &backend.resolve()?),
        Command::Sweep { args, backend } => sweep::execute_sweep(&args, backend),
        Command::Toy { args } => toy::execute(&args),
        Command::Recipe { args } => recipe::execute(&args),
        Command::Bench { args, backend } => bench::execute(&args, &backend.resolve()?),
    }
}
