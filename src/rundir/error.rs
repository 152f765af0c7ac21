//! What can go wrong with a run directory, naming the file and the fix.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::fsutil::WriteError;

/// A run-directory file that cannot be read, written or trusted.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// A file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// A file cannot be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A file exists but its content is not what mirrorburn wrote. Never treated as absent, so
    /// nothing that depends on it is overwritten.
    #[error(
        "{path} is unreadable ({reason}); mirrorburn will not overwrite or restart a run it cannot \
         read: repair or remove the file (or train into a new --out)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `config.toml` is missing or invalid.
    #[error("{path}: {source} (is this a mirrorburn run directory?)")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        source: ConfigError,
    },
    /// Another process (on this machine or another node) holds the run directory's lock.
    #[error(
        "{dir} is in use by {holder} (lock file {lock}); wait for it to finish, stop it, or use \
         another --out. The lock is the operating system's: it is released when that process \
         ends, on whatever node it runs"
    )]
    Locked {
        /// The run directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// Who holds it, as the holder wrote it: `host <name> pid <pid> started <unix seconds>`.
        holder: String,
    },
    /// The filesystem cannot lock files.
    #[error(
        "cannot lock {lock} ({source}): this filesystem does not support file locks, so two \
         processes could write one run directory. Use a local disk or a network filesystem \
         with locking (NFSv4, or Lustre mounted with `flock`) for --out"
    )]
    LockUnsupported {
        /// The lock file.
        lock: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Neither the latest nor the previous checkpoint is intact.
    #[error(
        "{dir}: no intact checkpoint to resume from ({reason}); start a new run with another --out"
    )]
    NoIntactCheckpoint {
        /// The run directory.
        dir: PathBuf,
        /// What was found.
        reason: String,
    },
}
