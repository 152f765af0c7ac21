//! [`RunDir`]: the one place that reads and writes the files of a run directory. Every write is
//! atomic, except the diagnostics appends (one write per log step, torn lines dropped on read);
//! a file that exists but cannot be parsed is an error naming it, never treated as absent.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::checkpoint::{Checkpoint, CheckpointIndex, EpochProgress, LoadedCheckpoint, StoredFile};
use super::crash::crash_point;
use super::csv::{CsvRecord, parse_records, render_records};
use super::error::RunDirError;
use super::lock::RunLock;
use super::metrics::EpochMetrics;
use super::pruning::{self, PruneRow};
use super::summary::Summary;
use crate::config::TrainConfig;
use crate::diagnostics::{BalanceRow, LayerHistogram, Margins};
use crate::fsutil::write_atomic;

/// The resolved config of the run.
pub const CONFIG_FILE: &str = "config.toml";
/// Where the run stands.
pub const SUMMARY_FILE: &str = "summary.json";
/// The latest and previous checkpoints.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";
/// One row per epoch.
pub const METRICS_FILE: &str = "metrics.csv";
/// Per-layer weight histograms, one JSON object per line.
pub const HISTOGRAMS_FILE: &str = "histograms.jsonl";
/// Margins per log step.
pub const MARGINS_FILE: &str = "margins.csv";
/// Balance quantities per log step and layer.
pub const BALANCE_FILE: &str = "balance.csv";
/// Accuracy vs sparsity.
pub const PRUNING_FILE: &str = "pruning.csv";
/// The weights with the best validation accuracy.
pub const BEST_MODEL_FILE: &str = "checkpoints/best-model.bpk";

/// A run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run directory at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the run directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Takes the run directory's lock for this process (released when the guard drops).
    pub fn lock(&self) -> Result<RunLock, RunDirError> {
        RunLock::acquire(&self.root)
    }

    /// Whether anything of a run is here (a summary, a checkpoint or metrics).
    pub fn holds_a_run(&self) -> bool {
        [SUMMARY_FILE, CHECKPOINT_FILE, METRICS_FILE]
            .iter()
            .any(|f| self.path(f).exists())
    }

    /// The text of `relative`, or `None` if it does not exist.
    fn read_text(&self, relative: &str) -> Result<Option<String>, RunDirError> {
        let path = self.path(relative);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(RunDirError::Read { path, source }),
        }
    }

    fn read_json<T: DeserializeOwned>(&self, relative: &str) -> Result<Option<T>, RunDirError> {
        let Some(text) = self.read_text(relative)? else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| RunDirError::Corrupt {
                path: self.path(relative),
                reason: e.to_string(),
            })
    }

    fn write_json<T: Serialize>(&self, relative: &str, value: &T) -> Result<(), RunDirError> {
        let mut bytes = serde_json::to_vec_pretty(value).expect("plain data serializes");
        bytes.push(b'\n');
        Ok(write_atomic(&self.path(relative), &bytes)?)
    }

    // --- config.toml

    /// The run's resolved config.
    pub fn read_config(&self) -> Result<TrainConfig, RunDirError> {
        let path = self.path(CONFIG_FILE);
        TrainConfig::load(&path, &[]).map_err(|source| RunDirError::Config { path, source })
    }

    /// How the stored config differs from `config` other than in `epochs` (a run extends by
    /// resuming): the first differing dotted key with the stored and the requested value, or
    /// `None` when they agree.
    pub fn config_difference(
        &self,
        config: &TrainConfig,
    ) -> Result<Option<(String, String, String)>, RunDirError> {
        let stored = self.read_config()?;
        let mut comparable = config.clone();
        comparable.epochs = stored.epochs;
        Ok(stored.first_difference(&comparable))
    }

    /// Records the resolved config.
    pub fn write_config(&self, config: &TrainConfig) -> Result<(), RunDirError> {
        Ok(write_atomic(
            &self.path(CONFIG_FILE),
            config.to_toml().as_bytes(),
        )?)
    }

    // --- summary.json

    /// The summary, `None` if there is none yet.
    pub fn read_summary(&self) -> Result<Option<Summary>, RunDirError> {
        self.read_json(SUMMARY_FILE)
    }

    /// Writes the summary.
    pub fn write_summary(&self, summary: &Summary) -> Result<(), RunDirError> {
        self.write_json(SUMMARY_FILE, summary)
    }

    // --- checkpoints

    /// `checkpoint.json`, `None` if no checkpoint was written yet.
    pub fn read_checkpoints(&self) -> Result<Option<CheckpointIndex>, RunDirError> {
        self.read_json(CHECKPOINT_FILE)
    }

    /// Writes model and optimizer records for `epoch` (plus `partial` progress into the next
    /// epoch, for a mid-epoch checkpoint), reads them back to verify size and MD5, then makes them
    /// the latest checkpoint in `checkpoint.json` (the old latest, if intact, becomes the
    /// previous), then removes the files no longer referenced. A crash or a bad write at any
    /// point leaves an intact checkpoint behind.
    pub fn write_checkpoint(
        &self,
        epoch: usize,
        partial: Option<EpochProgress>,
        model: &[u8],
        optimizer: &[u8],
    ) -> Result<(), RunDirError> {
        let old = self.read_checkpoints()?;
        let tag = match partial {
            Some(progress) => format!("epoch{epoch:05}-batch{:06}", progress.batches),
            None => format!("epoch{epoch:05}"),
        };
        let next = Checkpoint {
            epoch,
            partial,
            model: StoredFile::of(format!("checkpoints/model-{tag}.bpk"), model),
            optimizer: StoredFile::of(format!("checkpoints/optimizer-{tag}.bpk"), optimizer),
        };
        for (file, bytes, step) in [
            (&next.model, model, "model"),
            (&next.optimizer, optimizer, "optimizer"),
        ] {
            write_atomic(&self.path(&file.path), bytes)?;
            crash_point(step, epoch);
        }
        next.load(&self.root)
            .map_err(|reason| RunDirError::Corrupt {
                path: self.path(&next.model.path),
                reason: format!("checkpoint failed verification after writing: {reason}"),
            })?;
        crash_point("verified", epoch);
        // The old latest becomes the previous only if it is intact (a resume may have fallen
        // back past it) and is not the files just rewritten; otherwise the old previous stays.
        let same_files = |c: &Checkpoint| c.model.path == next.model.path;
        let previous = match old {
            Some(old) if !same_files(&old.latest) && old.latest.load(&self.root).is_ok() => {
                Some(old.latest)
            }
            Some(old) => old.previous.filter(|p| !same_files(p)),
            None => None,
        };
        let index = CheckpointIndex {
            latest: next,
            previous,
        };
        self.write_json(CHECKPOINT_FILE, &index)?;
        crash_point("index", epoch);
        self.remove_unreferenced_checkpoints(&index);
        crash_point("cleanup", epoch);
        Ok(())
    }

    /// Removes every model and optimizer record under `checkpoints/` that `index` does not name
    /// (also those a crash left behind before it could remove them); best-effort.
    fn remove_unreferenced_checkpoints(&self, index: &CheckpointIndex) {
        let kept: Vec<&str> = [Some(&index.latest), index.previous.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|c| [c.model.path.as_str(), c.optimizer.path.as_str()])
            .collect();
        let Ok(entries) = fs::read_dir(self.path("checkpoints")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let record = (name.starts_with("model-") || name.starts_with("optimizer-"))
                && name.ends_with(".bpk");
            if record && !kept.contains(&format!("checkpoints/{name}").as_str()) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// The newest intact checkpoint: the latest, or the previous one when the latest's files
    /// fail verification (then `fell_back` says why). `None` if none was ever written.
    pub fn load_checkpoint(&self) -> Result<Option<LoadedCheckpoint>, RunDirError> {
        let Some(index) = self.read_checkpoints()? else {
            return Ok(None);
        };
        let latest_problem = match index.latest.load(&self.root) {
            Ok(loaded) => return Ok(Some(loaded)),
            Err(problem) => problem,
        };
        let no_intact = |reason: String| RunDirError::NoIntactCheckpoint {
            dir: self.root.clone(),
            reason,
        };
        let Some(previous) = &index.previous else {
            return Err(no_intact(format!(
                "the checkpoint of epoch {} is damaged: {latest_problem}; there is no earlier one",
                index.latest.epoch
            )));
        };
        let mut loaded = previous.load(&self.root).map_err(|problem| {
            no_intact(format!(
                "epoch {}: {latest_problem}; epoch {}: {problem}",
                index.latest.epoch, previous.epoch
            ))
        })?;
        loaded.fell_back = Some(format!(
            "the checkpoint of epoch {} is damaged ({latest_problem}); using the one of epoch {}",
            index.latest.epoch, previous.epoch
        ));
        Ok(Some(loaded))
    }

    /// Writes the record of the best model so far.
    pub fn write_best_model(&self, model: &[u8]) -> Result<(), RunDirError> {
        Ok(write_atomic(&self.path(BEST_MODEL_FILE), model)?)
    }

    /// The record file of the model at the latest intact checkpoint (see
    /// [`load_checkpoint`](Self::load_checkpoint)) as bytes, with its epoch.
    pub fn last_model(&self) -> Result<Option<(usize, Vec<u8>)>, RunDirError> {
        Ok(self.load_checkpoint()?.map(|c| (c.epoch, c.model)))
    }

    /// The record of the best model, if one was written.
    pub fn best_model(&self) -> Result<Option<Vec<u8>>, RunDirError> {
        let path = self.path(BEST_MODEL_FILE);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(RunDirError::Read { path, source }),
        }
    }

    // --- metrics.csv

    /// The rows of `metrics.csv` (none if absent).
    pub fn read_metrics(&self) -> Result<Vec<EpochMetrics>, RunDirError> {
        self.read_records(METRICS_FILE)
    }

    /// Rewrites `metrics.csv` with `rows`.
    pub fn write_metrics(&self, rows: &[EpochMetrics]) -> Result<(), RunDirError> {
        self.write_records(METRICS_FILE, rows)
    }

    // --- diagnostics: margins.csv, balance.csv, histograms.jsonl

    /// The rows of `margins.csv`.
    pub fn read_margins(&self) -> Result<Vec<Margins>, RunDirError> {
        self.read_records(MARGINS_FILE)
    }

    /// The rows of `balance.csv`.
    pub fn read_balance(&self) -> Result<Vec<BalanceRow>, RunDirError> {
        self.read_records(BALANCE_FILE)
    }

    /// Every line of `histograms.jsonl`.
    pub fn read_histograms(&self) -> Result<Vec<LayerHistogram>, RunDirError> {
        let Some(text) = self.read_text(HISTOGRAMS_FILE)? else {
            return Ok(Vec::new());
        };
        let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        complete
            .lines()
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| RunDirError::Corrupt {
                    path: self.path(HISTOGRAMS_FILE),
                    reason: format!("line {}: {e}", i + 1),
                })
            })
            .collect()
    }

    /// Appends one log step's diagnostics: the histograms, the margins row and the balance rows.
    pub fn append_diagnostics(
        &self,
        histograms: &[LayerHistogram],
        margins: &Margins,
        balance: &[BalanceRow],
    ) -> Result<(), RunDirError> {
        let mut lines = String::new();
        for h in histograms {
            lines.push_str(&serde_json::to_string(h).expect("plain data serializes"));
            lines.push('\n');
        }
        crate::fsutil::append_all(&self.path(HISTOGRAMS_FILE), lines.as_bytes())?;
        self.append_records(MARGINS_FILE, std::slice::from_ref(margins))?;
        self.append_records(BALANCE_FILE, balance)
    }

    /// Drops every diagnostics row past `epoch` (and any torn line), e.g. before resuming from a
    /// checkpoint of that epoch.
    pub fn truncate_diagnostics_after(&self, epoch: usize) -> Result<(), RunDirError> {
        self.truncate_records::<Margins>(MARGINS_FILE, epoch)?;
        self.truncate_records::<BalanceRow>(BALANCE_FILE, epoch)?;
        let mut lines = String::new();
        for h in self
            .read_histograms()?
            .into_iter()
            .filter(|h| h.epoch <= epoch)
        {
            lines.push_str(&serde_json::to_string(&h).expect("plain data serializes"));
            lines.push('\n');
        }
        Ok(write_atomic(&self.path(HISTOGRAMS_FILE), lines.as_bytes())?)
    }

    /// Removes every file of an earlier run's results (metrics, diagnostics, pruning), for a
    /// fresh start in this directory.
    pub fn clear_results(&self) -> Result<(), RunDirError> {
        for file in [
            METRICS_FILE,
            MARGINS_FILE,
            BALANCE_FILE,
            HISTOGRAMS_FILE,
            PRUNING_FILE,
        ] {
            self.remove(file)?;
        }
        Ok(())
    }

    /// Removes `relative` if present; whether it was.
    fn remove(&self, relative: &str) -> Result<bool, RunDirError> {
        let path = self.path(relative);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(RunDirError::Read { path, source: e }),
        }
    }

    // --- pruning.csv

    /// The rows of `pruning.csv`, `None` if the run was not pruned.
    pub fn read_pruning(&self) -> Result<Option<Vec<PruneRow>>, RunDirError> {
        let Some(text) = self.read_text(PRUNING_FILE)? else {
            return Ok(None);
        };
        pruning::parse(&self.path(PRUNING_FILE), &text).map(Some)
    }

    /// Removes `pruning.csv` (it describes weights that further training replaces); whether there
    /// was one.
    pub fn remove_pruning(&self) -> Result<bool, RunDirError> {
        self.remove(PRUNING_FILE)
    }

    /// Writes `pruning.csv`.
    pub fn write_pruning(&self, rows: &[PruneRow]) -> Result<(), RunDirError> {
        Ok(write_atomic(
            &self.path(PRUNING_FILE),
            pruning::to_text(rows).as_bytes(),
        )?)
    }

    // --- CSV plumbing

    fn read_records<T: CsvRecord>(&self, relative: &str) -> Result<Vec<T>, RunDirError> {
        match self.read_text(relative)? {
            Some(text) => parse_records(&self.path(relative), &text),
            None => Ok(Vec::new()),
        }
    }

    fn write_records<T: CsvRecord>(&self, relative: &str, rows: &[T]) -> Result<(), RunDirError> {
        let text = render_records(rows, true);
        Ok(write_atomic(&self.path(relative), text.as_bytes())?)
    }

    fn truncate_records<T: CsvRecord>(
        &self,
        relative: &str,
        epoch: usize,
    ) -> Result<(), RunDirError> {
        let rows: Vec<T> = self.read_records(relative)?;
        let kept: Vec<T> = rows.into_iter().filter(|r| r.epoch() <= epoch).collect();
        self.write_records(relative, &kept)
    }

    fn append_records<T: CsvRecord>(&self, relative: &str, rows: &[T]) -> Result<(), RunDirError> {
        let path = self.path(relative);
        let text = render_records(rows, !path.exists());
        Ok(crate::fsutil::append_all(&path, text.as_bytes())?)
    }
}
