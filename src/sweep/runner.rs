//! Running a sweep: one child `mirrorburn train` process per run (its log in the run directory),
//! `jobs` at a time, round-robin over the GPUs; completed runs are skipped, interrupted ones
//! resumed from their checkpoints, failed and diverged ones retried only when asked. A stop request (SIGTERM
//! or SIGINT to the sweep) is passed on to the children, which checkpoint and exit.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::grid::{Sweep, SweepRun};
use crate::backend::{Backend, DeviceChoice};
use crate::fsutil::write_atomic;
use crate::rundir::{RunDir, RunDirError, RunStatus};
use crate::train::stop_requested;

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Output directory: `configs/`, `runs/`, the tables and `report/`.
    pub out: PathBuf,
    /// Trainings at once.
    pub jobs: usize,
    /// Compute backend of every run.
    pub backend: Backend,
    /// GPU adapters, used round-robin (empty: the default device).
    pub devices: Vec<DeviceChoice>,
    /// `--data-dir` for every run.
    pub data_dir: Option<PathBuf>,
    /// Also rerun runs that failed or diverged.
    pub retry_failed: bool,
    /// The `mirrorburn` executable the children run.
    pub executable: PathBuf,
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A run directory holds a run of another config.
    #[error(
        "{dir} holds a run whose config differs at `{key}` (stored {stored}, the sweep asks for \
         {requested}); the sweep will not reuse it: restore the sweep file, or use another --out"
    )]
    ConfigChanged {
        /// The run directory.
        dir: PathBuf,
        /// The first differing key.
        key: String,
        /// Stored value.
        stored: String,
        /// Requested value.
        requested: String,
    },
    /// A run-directory file cannot be read or written.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// A result file cannot be written.
    #[error(transparent)]
    Write(#[from] crate::fsutil::WriteError),
    /// Pruning a chosen run failed.
    #[error(transparent)]
    Prune(#[from] crate::train::TrainError),
    /// The report cannot be written.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// A child process could not be started or waited for.
    #[error("running `{command}`: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The sweep was stopped by a signal; the children checkpointed.
    #[error(
        "sweep interrupted: {running} running trainings were asked to checkpoint and stop; run the \
         same command again to resume"
    )]
    Interrupted {
        /// Children that were running.
        running: usize,
    },
}

/// Where a run of the sweep stands, from its run directory.
#[derive(Clone, Debug, PartialEq)]
pub struct RunState {
    /// The run.
    pub name: String,
    /// Its status (`None`: never started).
    pub status: Option<RunStatus>,
    /// What stopped it, for failed and diverged runs.
    pub error: Option<String>,
}

/// The run directory of `run` in a sweep written to `out`.
pub fn run_dir(out: &Path, run: &SweepRun) -> PathBuf {
    out.join("runs").join(&run.name)
}

/// The resolved config file of `run`, which its child process trains.
pub fn config_file(out: &Path, run: &SweepRun) -> PathBuf {
    out.join("configs").join(format!("{}.toml", run.name))
}

/// Writes every run's resolved config, and checks that no run directory holds another config
/// (only `epochs` may differ: a run extends by resuming).
pub fn prepare(sweep: &Sweep, out: &Path) -> Result<(), SweepError> {
    for run in &sweep.runs {
        let dir = run_dir(out, run);
        let stored = RunDir::new(&dir);
        if stored.path(crate::rundir::CONFIG_FILE).exists()
            && let Some((key, stored, requested)) = stored.config_difference(&run.config)?
        {
            return Err(SweepError::ConfigChanged {
                dir,
                key,
                stored,
                requested,
            });
        }
        write_atomic(&config_file(out, run), run.config.to_toml().as_bytes())?;
    }
    Ok(())
}

/// The state of every run. A run whose training process stopped before writing `summary.json`
/// (its data could not be found, say) is failed, with the last line of its `train.log` as the
/// error.
pub fn states(sweep: &Sweep, out: &Path) -> Result<Vec<RunState>, SweepError> {
    sweep
        .runs
        .iter()
        .map(|run| {
            let dir = run_dir(out, run);
            let Some(summary) = RunDir::new(&dir).read_summary()? else {
                let error = stopped_before_summary(&dir);
                return Ok(RunState {
                    name: run.name.clone(),
                    status: error.as_ref().map(|_| RunStatus::Failed),
                    error,
                });
            };
            Ok(RunState {
                name: run.name.clone(),
                // A completed run whose config now asks for more epochs resumes to them.
                status: Some(
                    if summary.status == RunStatus::Completed
                        && summary.epochs_completed < run.config.epochs
                    {
                        RunStatus::Interrupted
                    } else {
                        summary.status
                    },
                ),
                error: summary.error,
            })
        })
        .collect()
}

/// Why a run without `summary.json` stopped, if its training process ran (a `train.log` with
/// an error line): the trainer writes the summary before its first batch, so only an error
/// before that leaves a log and no summary.
fn stopped_before_summary(dir: &Path) -> Option<String> {
    let log = dir.join("train.log");
    let text = fs::read_to_string(&log).ok()?;
    let last = text.lines().rev().find(|line| !line.trim().is_empty())?;
    Some(format!(
        "stopped before writing summary.json: {} (see {})",
        last.trim(),
        log.display()
    ))
}

/// Trains every run that still needs it and returns the final states.
pub fn execute(sweep: &Sweep, options: &SweepOptions) -> Result<Vec<RunState>, SweepError> {
    prepare(sweep, &options.out)?;
    let before = states(sweep, &options.out)?;
    let mut to_train = Vec::new();
    for (run, state) in sweep.runs.iter().zip(&before) {
        match state.status {
            Some(RunStatus::Completed) => continue,
            Some(RunStatus::Failed) if !options.retry_failed => continue,
            Some(RunStatus::Diverged) if !options.retry_failed => continue,
            Some(RunStatus::Diverged) => {
                let kept = set_aside_diverged(&options.out, run)?;
                println!(
                    "{}: diverged before; its directory is kept as {}, and the run starts over",
                    run.name,
                    kept.display()
                );
            }
            _ => {}
        }
        to_train.push(run);
    }
    let mut queue = to_train.into_iter();
    println!(
        "sweep {}: {} runs, {} to train (completed runs are kept; failed and diverged ones are \
         rerun only with --retry-failed: failed ones resume, diverged ones start over)",
        sweep.name,
        sweep.runs.len(),
        queue.len()
    );
    let mut slots: Vec<Option<(Child, &SweepRun)>> =
        (0..options.jobs.max(1)).map(|_| None).collect();
    loop {
        if stop_requested() {
            let running = stop_children(&mut slots);
            return Err(SweepError::Interrupted { running });
        }
        if let Err(error) = tend_slots(&mut slots, &mut queue, options) {
            // Children left running would keep writing run directories after the sweep exits.
            let running = stop_children(&mut slots);
            eprintln!(
                "sweep: {error}; {running} running trainings were asked to checkpoint and stop"
            );
            return Err(error);
        }
        if slots.iter().all(Option::is_none) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    states(sweep, &options.out)
}

/// One pass over the job slots: reports the children that ended and starts queued runs in the
/// free slots.
fn tend_slots<'a>(
    slots: &mut [Option<(Child, &'a SweepRun)>],
    queue: &mut impl Iterator<Item = &'a SweepRun>,
    options: &SweepOptions,
) -> Result<(), SweepError> {
    for (slot, entry) in slots.iter_mut().enumerate() {
        if let Some((child, run)) = entry {
            let waited = child.try_wait().map_err(|source| SweepError::Spawn {
                command: format!("train {}", run.name),
                source,
            })?;
            if let Some(status) = waited {
                let outcome = if status.success() {
                    "completed".into()
                } else {
                    format!("stopped ({status})")
                };
                println!("{}: {outcome}", run.name);
                *entry = None;
            }
        }
        if entry.is_none()
            && let Some(run) = queue.next()
        {
            let device = (!options.devices.is_empty())
                .then(|| options.devices[slot % options.devices.len()]);
            let child = spawn(run, options, device)?;
            println!(
                "{}: started{}",
                run.name,
                device.map_or(String::new(), |d| format!(" on device {d}"))
            );
            *entry = Some((child, run));
        }
    }
    Ok(())
}

/// Asks every running child to checkpoint and stop (SIGTERM), waits for them, and returns how
/// many there were.
fn stop_children(slots: &mut [Option<(Child, &SweepRun)>]) -> usize {
    let running: Vec<(Child, &SweepRun)> = slots.iter_mut().filter_map(Option::take).collect();
    for (child, _) in &running {
        terminate(child);
    }
    let count = running.len();
    for (mut child, _) in running {
        let _ = child.wait();
    }
    count
}

/// Moves the directory of a diverged `run` to the first free `runs/<name>.diverged-<k>`, so that
/// `--retry-failed` trains it again from the start: resuming would replay the same steps from
/// the last checkpoint into the same divergence. Its evidence (log, metrics, summary) is kept.
fn set_aside_diverged(out: &Path, run: &SweepRun) -> Result<PathBuf, SweepError> {
    let dir = run_dir(out, run);
    // Refused while another process (a second sweep on the same --out) holds the run.
    let _lock = RunDir::new(&dir).lock()?;
    let kept = (1..)
        .map(|k| dir.with_file_name(format!("{}.diverged-{k}", run.name)))
        .find(|candidate| !candidate.exists())
        .expect("some suffix is free");
    fs::rename(&dir, &kept).map_err(|source| SweepError::Spawn {
        command: format!("move {} to {}", dir.display(), kept.display()),
        source,
    })?;
    Ok(kept)
}

/// Starts `mirrorburn train` for `run` in its own process group (a terminal's Ctrl-C reaches
/// only the sweep, which passes on one SIGTERM), logging to `train.log` in its run directory.
fn spawn(
    run: &SweepRun,
    options: &SweepOptions,
    device: Option<DeviceChoice>,
) -> Result<Child, SweepError> {
    let dir = run_dir(&options.out, run);
    let log_path = dir.join("train.log");
    let spawn_error = |source| SweepError::Spawn {
        command: format!("train {}", run.name),
        source,
    };
    fs::create_dir_all(&dir).map_err(spawn_error)?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(spawn_error)?;
    let mut command = Command::new(&options.executable);
    command
        .arg("train")
        .arg("--config")
        .arg(config_file(&options.out, run))
        .arg("--out")
        .arg(&dir)
        .arg("--resume-or-start")
        .args(["--backend", options.backend.name()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(spawn_error)?)
        .stderr(log);
    if let Some(device) = device {
        command.args(["--device", &device.to_string()]);
    }
    if let Some(data) = &options.data_dir {
        command.arg("--data-dir").arg(data);
    }
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command.spawn().map_err(spawn_error)
}

/// Asks a child to checkpoint and stop (SIGTERM).
fn terminate(child: &Child) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}
