//! `run.lock`: one process at a time per run directory. The lock file holds the owner's PID; a
//! lock whose process is gone is stale and taken over.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::RunDirError;

/// File name of the lock.
pub const LOCK_FILE: &str = "run.lock";

/// Holds a run directory's lock until dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `dir` (created if needed), or says which live process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, RunDirError> {
        let path = dir.join(LOCK_FILE);
        let read_error = |source| RunDirError::Read {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(read_error)?;
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let pid = std::process::id();
                    file.write_all(format!("{pid}\n").as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(read_error)?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = fs::read_to_string(&path).unwrap_or_default();
                    match text.trim().parse::<u32>() {
                        Ok(pid) if pid != std::process::id() && process_alive(pid) => {
                            return Err(RunDirError::Locked {
                                dir: dir.to_path_buf(),
                                lock: path,
                                pid,
                            });
                        }
                        _ => {
                            eprintln!(
                                "note: removing the stale lock {} (its process is gone)",
                                path.display()
                            );
                            let _ = fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(read_error(e)),
            }
        }
        Err(RunDirError::Read {
            path: path.clone(),
            source: std::io::Error::other("another process keeps recreating the lock"),
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether a process with this PID exists.
#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence without sending anything; EPERM means it exists but is not ours.
    let result = unsafe { libc::kill(pid, 0) };
    let exists = result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // A killed process whose parent has not reaped it yet (a zombie) is gone for our purposes.
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit(')')
                .next()?
                .split_whitespace()
                .next()
                .map(|s| s == "Z")
        })
        .unwrap_or(false);
    exists && !zombie
}

/// Whether a process with this PID exists (assumed on platforms without a check).
#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mirrorburn-lock-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_live_owner_blocks_and_a_stale_lock_is_taken_over() {
        let dir = temp("live");
        // PID 1 always exists: a lock naming it is held by a live process.
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(LOCK_FILE), "1\n").unwrap();
        let error = RunLock::acquire(&dir).unwrap_err().to_string();
        assert!(error.contains("in use by process 1"), "{error}");

        // A PID beyond the kernel's maximum never exists.
        fs::write(dir.join(LOCK_FILE), "2147483646\n").unwrap();
        let lock = RunLock::acquire(&dir).unwrap();
        let owner = fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
        assert_eq!(owner.trim(), std::process::id().to_string());
        drop(lock);
        assert!(!dir.join(LOCK_FILE).exists(), "dropping releases the lock");
    }
}
