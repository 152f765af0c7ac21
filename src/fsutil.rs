//! Atomic file writes (a sibling temporary file, flushed, renamed into place) and appends that
//! are undone when they fail.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file that could not be written. Its message is complete (file, OS error and errno), so the
/// I/O error is deliberately not a `source`: error chains would print it twice.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {error} (check free disk space, quota and permissions)")]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// The I/O failure (e.g. `No space left on device (os error 28)`).
    pub error: std::io::Error,
}

/// Writes `bytes` to `path` atomically: readers see the old file or the new one, never a part.
/// On failure the temporary file is removed, so a full disk keeps no partial files.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    write_via(&tmp, dir, path, bytes).map_err(|error| {
        let _ = fs::remove_file(&tmp);
        WriteError {
            path: path.to_path_buf(),
            error,
        }
    })
}

fn write_via(tmp: &Path, dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut file = fs::File::create(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(tmp, path)
}

/// Appends `bytes` to `path` (created with its directory if needed) and flushes it. A failed
/// append (e.g. a full disk) is cut back to the file's old length, so no torn record stays.
pub fn append_all(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let append = || -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let length = file.metadata()?.len();
        file.write_all(bytes)
            .and_then(|()| file.sync_data())
            .inspect_err(|_| {
                let _ = file.set_len(length);
            })
    };
    append().map_err(|error| WriteError {
        path: path.to_path_buf(),
        error,
    })
}
