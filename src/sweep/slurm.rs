//! `--emit slurm`: a job array with one task per run (each `mirrorburn train --resume-or-start`
//! on its resolved config; SIGTERM before the time limit so it checkpoints; requeued on
//! preemption), the task list that maps array index to run, and a dependent aggregation job.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::grid::Sweep;
use super::runner::{SweepError, SweepOptions, config_file, prepare, run_dir};
use crate::fsutil::write_atomic;

/// The files written by [`emit_slurm`].
#[derive(Clone, Debug)]
pub struct SlurmFiles {
    /// The job-array script.
    pub array: PathBuf,
    /// Tab-separated `name, config, run directory`, line `i + 1` for array index `i`.
    pub tasks: PathBuf,
    /// The aggregation job, to run after the array.
    pub aggregate: PathBuf,
    /// Submits both with the dependency.
    pub submit: PathBuf,
}

/// Seconds before the time limit at which Slurm sends SIGTERM (time to finish a batch and
/// checkpoint).
const SIGNAL_SECONDS: u32 = 300;

/// Writes the resolved configs and the Slurm scripts under `<out>/slurm/`; `sweep_file` and
/// `overrides` are passed on to the aggregation job. Paths are made absolute.
pub fn emit_slurm(
    sweep: &Sweep,
    options: &SweepOptions,
    sweep_file: &Path,
    overrides: &[String],
) -> Result<SlurmFiles, SweepError> {
    prepare(sweep, &options.out)?;
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let out = absolute(&options.out);
    let dir = out.join("slurm");
    let exe = absolute(&options.executable);
    let mut tasks = String::new();
    for run in &sweep.runs {
        let _ = writeln!(
            tasks,
            "{}\t{}\t{}",
            run.name,
            config_file(&out, run).display(),
            run_dir(&out, run).display()
        );
    }
    let mut common = format!("--backend {}", options.backend.name());
    if let Some(data) = &options.data_dir {
        let _ = write!(common, " --data-dir {}", quote(&absolute(data)));
    }
    let files = SlurmFiles {
        array: dir.join("sweep.sbatch"),
        tasks: dir.join("tasks.tsv"),
        aggregate: dir.join("aggregate.sbatch"),
        submit: dir.join("submit.sh"),
    };
    let array = format!(
        "#!/bin/bash\n\
         # One array task per run of sweep `{name}`; edit the resources to your cluster.\n\
         #SBATCH --job-name=mirrorburn-{name}\n\
         #SBATCH --array=0-{last}%{jobs}\n\
         #SBATCH --gres=gpu:1\n\
         #SBATCH --time=24:00:00\n\
         #SBATCH --signal=B:TERM@{SIGNAL_SECONDS}\n\
         #SBATCH --requeue\n\
         #SBATCH --output={logs}/%A_%a.out\n\
         set -euo pipefail\n\
         IFS=$'\\t' read -r name config run < <(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {tasks})\n\
         echo \"task $SLURM_ARRAY_TASK_ID: $name\"\n\
         # exec: the signal reaches mirrorburn, which checkpoints after the current batch.\n\
         exec {exe} train --config \"$config\" --out \"$run\" --resume-or-start {common}\n",
        name = sweep.name,
        last = sweep.runs.len() - 1,
        jobs = options.jobs.max(1),
        logs = quote(&dir.join("logs")),
        tasks = quote(&files.tasks),
        exe = quote(&exe),
    );
    let sets: String = overrides
        .iter()
        .map(|s| format!(" --set {}", shell_word(s)))
        .collect();
    let aggregate = format!(
        "#!/bin/bash\n\
         # Table, pruning curves and report of sweep `{name}` once its array has finished.\n\
         #SBATCH --job-name=mirrorburn-{name}-aggregate\n\
         #SBATCH --gres=gpu:1\n\
         #SBATCH --time=04:00:00\n\
         #SBATCH --output={logs}/aggregate_%j.out\n\
         set -euo pipefail\n\
         exec {exe} sweep --config {file} --out {out} --aggregate-only {common}{sets}\n",
        name = sweep.name,
        logs = quote(&dir.join("logs")),
        exe = quote(&exe),
        file = quote(&absolute(sweep_file)),
        out = quote(&out),
    );
    let submit = format!(
        "#!/bin/bash\n\
         # Submits the array, then the aggregation after it (whatever the tasks' outcome).\n\
         set -euo pipefail\n\
         mkdir -p {logs}\n\
         array=$(sbatch --parsable {array})\n\
         sbatch --dependency=afterany:\"${{array%%;*}}\" {aggregate}\n\
         echo \"submitted array $array and its aggregation\"\n",
        logs = quote(&dir.join("logs")),
        array = quote(&files.array),
        aggregate = quote(&files.aggregate),
    );
    for (path, text) in [
        (&files.tasks, tasks),
        (&files.array, array),
        (&files.aggregate, aggregate),
        (&files.submit, submit),
    ] {
        write_atomic(path, text.as_bytes())?;
    }
    Ok(files)
}

/// A path as a single-quoted shell word.
fn quote(path: &Path) -> String {
    shell_word(&path.display().to_string())
}

fn shell_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
