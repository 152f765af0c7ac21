//! Graceful stop: SIGTERM or SIGINT (Slurm's warning before a time limit or preemption, Ctrl-C)
//! asks the training loop to stop after the current batch and checkpoint; a later signal ends
//! the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

static STOP: AtomicBool = AtomicBool::new(false);

/// Signals this close to the first one are the same request. `timeout` sends its signal twice
/// within microseconds (to the process, then to its process group), and when the first one was
/// handled before the second arrived, the second ended the run without its checkpoint.
const SAME_REQUEST: Duration = Duration::from_millis(500);

/// Makes SIGTERM and SIGINT request a graceful stop; a signal half a second or more after the first
/// exits with status 1 at once.
pub fn install_stop_handlers() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("stop-signals".into())
        .spawn(move || {
            let mut first: Option<Instant> = None;
            for _ in signals.forever() {
                match first {
                    None => {
                        first = Some(Instant::now());
                        STOP.store(true, Ordering::Relaxed);
                    }
                    Some(at) if at.elapsed() >= SAME_REQUEST => signal_hook::low_level::exit(1),
                    Some(_) => {}
                }
            }
        })?;
    Ok(())
}

/// Whether a graceful stop was requested.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}
