//! A test hook for crash safety: `MIRRORBURN_CRASH_AT=<step>@<epoch>` makes the process kill
//! itself with SIGKILL right after that step of writing the checkpoint of that epoch, so tests
//! can crash a run at every point of a checkpoint deterministically (not by timing). Unset, it
//! does nothing.

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const CRASH_VARIABLE: &str = "MIRRORBURN_CRASH_AT";

/// The steps of writing a checkpoint, in order: model file written, optimizer file written, both
/// read back and verified, `checkpoint.json` renamed into place, dropped checkpoint removed.
pub const CHECKPOINT_STEPS: [&str; 5] = ["model", "optimizer", "verified", "index", "cleanup"];

/// Kills this process if [`CRASH_VARIABLE`] names `step` of the checkpoint of `epoch`.
pub fn crash_point(step: &str, epoch: usize) {
    static POINT: OnceLock<Option<(String, usize)>> = OnceLock::new();
    let point = POINT.get_or_init(|| {
        let text = std::env::var(CRASH_VARIABLE).ok()?;
        let (step, epoch) = text.split_once('@')?;
        Some((step.to_string(), epoch.parse().ok()?))
    });
    if point
        .as_ref()
        .is_some_and(|(s, e)| s == step && *e == epoch)
    {
        eprintln!("{CRASH_VARIABLE}: killing this process after `{step}` of epoch {epoch}");
        kill_self();
    }
}

#[cfg(unix)]
fn kill_self() {
    // SAFETY: sends SIGKILL to this process; nothing after it runs.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

#[cfg(not(unix))]
fn kill_self() {
    std::process::abort();
}
