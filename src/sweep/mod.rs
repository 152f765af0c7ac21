//! `mirrorburn sweep`: a grid of training runs (the paper's Table 9), run in parallel child
//! processes, resumable, then aggregated into a table, pruning curves and a report.

mod aggregate;
mod finish;
mod grid;
mod runner;
mod slurm;

pub use aggregate::{SettingRow, setting_rows, to_csv, to_markdown};
pub use finish::finish;
pub use grid::{MethodSpec, PruneSelection, Sweep, SweepFile, SweepRun};
pub use runner::{
    RunState, SweepError, SweepOptions, config_file, execute, prepare, run_dir, states,
};
pub use slurm::{SlurmFiles, emit_slurm};
