//! Graceful stop: SIGTERM or SIGINT (Slurm's warning before a time limit or preemption, Ctrl-C)
//! asks the training loop to stop after the current batch and checkpoint; a second signal ends
//! the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use signal_hook::consts::{SIGINT, SIGTERM};

static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Makes SIGTERM and SIGINT request a graceful stop (and a second one exit with status 1).
pub fn install_stop_handlers() -> std::io::Result<()> {
    for signal in [SIGTERM, SIGINT] {
        // Registered first, so a signal that arrives after the flag is set exits right away.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&STOP))?;
        signal_hook::flag::register(signal, Arc::clone(&STOP))?;
    }
    Ok(())
}

/// Whether a graceful stop was requested.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}
