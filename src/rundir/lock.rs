//! `run.lock`: one process at a time per run directory, across the nodes of a cluster.
//!
//! The lock is the operating system's advisory lock on the open file (`flock`, through
//! [`std::fs::File::try_lock`]), held for the life of the process: the kernel (or the network
//! filesystem's lock manager) releases it when the process exits or dies, so there is no stale
//! state to guess about. The file's text (host name, PID and start time of the holder) only says
//! who holds it. The file itself is never removed: removing it could let two processes lock two
//! different files of the same name.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::error::RunDirError;

/// File name of the lock.
pub const LOCK_FILE: &str = "run.lock";

/// Holds a run directory's lock until dropped (or the process ends).
#[derive(Debug)]
pub struct RunLock {
    /// The open lock file; closing it releases the lock.
    _file: fs::File,
}

impl RunLock {
    /// Takes the lock of `dir` (created if needed), or says who holds it. A filesystem that does
    /// not support locking is an error, not an unlocked run.
    pub fn acquire(dir: &Path) -> Result<Self, RunDirError> {
        let path = dir.join(LOCK_FILE);
        // Opening, locking and stamping the lock file all write to the run directory.
        let io_error = |error| {
            RunDirError::Write(crate::fsutil::WriteError {
                path: path.clone(),
                error,
            })
        };
        fs::create_dir_all(dir).map_err(io_error)?;
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(RunDirError::Locked {
                    dir: dir.to_path_buf(),
                    holder: holder_of(&path),
                    lock: path,
                });
            }
            Err(fs::TryLockError::Error(source)) => {
                return Err(RunDirError::LockUnsupported { lock: path, source });
            }
        }
        file.set_len(0)
            .and_then(|()| file.write_all(holder_text().as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(io_error)?;
        Ok(Self { _file: file })
    }
}

/// Who holds the lock file at `path`, as its text says. A holder that has just taken the lock
/// writes its text a moment later, so an empty file is read again for up to 200 ms.
fn holder_of(path: &Path) -> String {
    for _ in 0..20 {
        let text = fs::read_to_string(path).unwrap_or_default();
        if !text.trim().is_empty() {
            return text.trim().to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    "another process (it has not written who it is)".to_string()
}

/// Who this process is: `host <name> pid <pid> started <unix seconds>`.
fn holder_text() -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("host {host} pid {} started {started}\n", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_lock_decides_not_the_file_text() {
        let dir = std::env::temp_dir().join(format!("mirrorburn-lock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        // Text naming another host and a PID that exists nowhere does not block.
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(LOCK_FILE),
            "host elsewhere pid 2147483646 started 0\n",
        )
        .unwrap();
        let lock = RunLock::acquire(&dir).unwrap();
        let text = fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        // While held (another open file description, as another process has), it is refused
        // whatever the file says, naming the holder.
        fs::write(
            dir.join(LOCK_FILE),
            "host node-b pid 2147483646 started 0\n",
        )
        .unwrap();
        let error = RunLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            error.contains("in use by host node-b pid 2147483646"),
            "{error}"
        );
        drop(lock);
        assert!(RunLock::acquire(&dir).is_ok(), "dropping releases the lock");
        let _ = fs::remove_dir_all(&dir);
    }
}
