//! `checkpoint.json`: the latest checkpoint and the one before it, each file with its size and
//! MD5, so a torn or corrupted checkpoint is detected and the previous one used instead.

use std::path::Path;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// A file of a checkpoint, relative to the run directory, with what it must contain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredFile {
    /// Path relative to the run directory.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Hex MD5 of the content.
    pub md5: String,
}

impl StoredFile {
    /// The record of `content` stored at `path`.
    pub fn of(path: String, content: &[u8]) -> Self {
        Self {
            path,
            bytes: content.len() as u64,
            md5: md5_hex(content),
        }
    }

    /// Reads the file under `root` and checks its size and MD5; returns its bytes, or what is
    /// wrong with it.
    pub fn read_verified(&self, root: &Path) -> Result<Vec<u8>, String> {
        let path = root.join(&self.path);
        let content = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if content.len() as u64 != self.bytes {
            return Err(format!(
                "{}: {} bytes, expected {}",
                path.display(),
                content.len(),
                self.bytes
            ));
        }
        if md5_hex(&content) != self.md5 {
            return Err(format!(
                "{}: MD5 differs from the recorded one",
                path.display()
            ));
        }
        Ok(content)
    }
}

/// Progress into an epoch that a checkpoint was taken in the middle of (a graceful stop).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochProgress {
    /// Batches of the epoch already trained.
    pub batches: usize,
    /// Images of the epoch already trained.
    pub seen: usize,
    /// Their summed training loss, exactly as accumulated on the device (f32).
    pub loss_sum: f32,
    /// Their correct predictions.
    pub hits: i64,
    /// Seconds the epoch had run.
    pub seconds: f64,
}

/// One checkpoint: model and optimizer records after `epoch` epochs (and, for a graceful stop,
/// `partial` progress into the next one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Epochs completed when it was taken.
    pub epoch: usize,
    /// Progress into epoch `epoch + 1`, if it was taken mid-epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<EpochProgress>,
    /// The model record.
    pub model: StoredFile,
    /// The optimizer record.
    pub optimizer: StoredFile,
}

/// The content of `checkpoint.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointIndex {
    /// The newest complete, verified checkpoint.
    pub latest: Checkpoint,
    /// The one before it, kept until a newer one is verified.
    pub previous: Option<Checkpoint>,
}

/// A checkpoint's verified bytes, ready to load.
#[derive(Clone, Debug)]
pub struct LoadedCheckpoint {
    /// Its epoch.
    pub epoch: usize,
    /// Progress into the next epoch, for a mid-epoch checkpoint.
    pub partial: Option<EpochProgress>,
    /// Model record bytes.
    pub model: Vec<u8>,
    /// Optimizer record bytes.
    pub optimizer: Vec<u8>,
    /// Set when the latest checkpoint was damaged and this is the previous one: what was wrong.
    pub fell_back: Option<String>,
}

impl Checkpoint {
    /// Reads and verifies both files under `root`.
    pub fn load(&self, root: &Path) -> Result<LoadedCheckpoint, String> {
        Ok(LoadedCheckpoint {
            epoch: self.epoch,
            partial: self.partial,
            model: self.model.read_verified(root)?,
            optimizer: self.optimizer.read_verified(root)?,
            fell_back: None,
        })
    }
}

/// Hex MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
