//! Atomic file writes (a sibling temporary file, flushed, renamed into place, the directory
//! flushed) and appends that are undone when they fail.

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
    fs::File::create(tmp)?.write_all(bytes)?;
    commit(tmp, path)
}

/// Puts the finished file `tmp` in place as `path` durably: `tmp` flushed to the disk, renamed,
/// and the directory flushed, so that `path` holds the old or the new content after a power loss,
/// never an empty file, and a completed file does not vanish.
pub fn commit(tmp: &Path, path: &Path) -> std::io::Result<()> {
    fs::File::open(tmp)?.sync_all()?;
    fs::rename(tmp, path)?;
    sync_dir(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
}

/// Flushes `dir`'s entries (a rename or a new file) to the disk, so that a file that was written
/// is still there after a power loss. Filesystems that cannot sync a directory (EINVAL) order
/// their metadata themselves.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match fs::File::open(dir)?.sync_all() {
        Err(error) if error.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}

/// Appends `bytes` to `path` (created with its directory if needed) and flushes it. A failed
/// append (e.g. a full disk) is cut back to the file's old length, so no torn record stays.
pub fn append_all(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let append = || -> std::io::Result<()> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let created = !path.exists();
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let length = file.metadata()?.len();
        file.write_all(bytes)
            .and_then(|()| file.sync_data())
            .inspect_err(|_| {
                let _ = file.set_len(length);
            })?;
        if created { sync_dir(dir) } else { Ok(()) }
    };
    append().map_err(|error| WriteError {
        path: path.to_path_buf(),
        error,
    })
}
