//! After the runs: the result table (`table9.md`, `table9.csv`), pruning curves (layer-wise and
//! global) of each method's best setting (of every setting with `prune = "all"`), and the
//! report of those runs.

use std::path::{Path, PathBuf};

use super::aggregate::{setting_rows, to_csv, to_markdown};
use super::grid::{PruneSelection, Sweep};
use super::runner::{RunState, SweepError, run_dir};
use crate::backend::BackendDevice;
use crate::diagnostics::PruneScope;
use crate::fsutil::write_atomic;
use crate::report::write_report;
use crate::rundir::{RunDir, RunStatus};
use crate::train::{CheckpointChoice, DEFAULT_SPARSITIES, prune_run};

/// Writes the tables, prunes the best (or all) settings' completed runs (a scope already in a run's
/// `pruning.csv` is kept) and writes `report/`; returns the table's Markdown.
pub fn finish(
    sweep: &Sweep,
    out: &Path,
    states: &[RunState],
    compute: &BackendDevice,
    data_dir: Option<&Path>,
) -> Result<String, SweepError> {
    let rows = setting_rows(sweep, out, states)?;
    let table = to_markdown(sweep, &rows);
    write_atomic(&out.join("table9.md"), table.as_bytes())?;
    write_atomic(&out.join("table9.csv"), to_csv(&rows).as_bytes())?;
    let chosen: Vec<PathBuf> = rows
        .iter()
        .filter(|row| row.best || sweep.prune == PruneSelection::All)
        .flat_map(|row| &row.runs)
        .filter_map(|name| sweep.runs.iter().find(|r| r.name == *name))
        .map(|run| run_dir(out, run))
        .filter(|dir| {
            RunDir::new(dir)
                .read_summary()
                .ok()
                .flatten()
                .is_some_and(|s| s.status == RunStatus::Completed)
        })
        .collect();
    for dir in &chosen {
        let existing = RunDir::new(dir).read_pruning()?.unwrap_or_default();
        for scope in [PruneScope::Layer, PruneScope::Global] {
            if existing.iter().any(|row| row.scope == scope) {
                continue;
            }
            println!("== pruning {} ({scope:?})", dir.display());
            prune_run(
                dir,
                CheckpointChoice::Last,
                &DEFAULT_SPARSITIES,
                scope,
                compute,
                data_dir,
            )?;
        }
    }
    if !chosen.is_empty() {
        let report = write_report(&chosen, &out.join("report"))?;
        println!("report: {}", report.display());
    }
    Ok(table)
}
