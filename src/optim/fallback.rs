//! Exact (dual) steps that could not be represented and fell back to the primal step: counted
//! over the process, and reported on stderr the first time it happens.
//!
//! The tensor path (GPUs) counts on the device: each step adds its count to a per-device tensor
//! without reading it, so a training step never waits for the host. [`dual_fallbacks`] reads
//! those counts (one read per device), which the trainer does once per epoch.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use burn::tensor::{Device, Int, Tensor};

use crate::device_read::read_scalar;

static FALLBACKS: AtomicU64 = AtomicU64::new(0);
static REPORTED: AtomicBool = AtomicBool::new(false);
/// Counts not yet read, one tensor per device.
static PENDING: Mutex<Vec<(Device, Tensor<1, Int>)>> = Mutex::new(Vec::new());

#[cfg(test)]
thread_local! {
    /// The fallbacks noted on this thread: a count that tests running in parallel cannot move.
    static ON_THIS_THREAD: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The fallbacks noted on this thread so far (the host path notes them on the calling thread).
#[cfg(test)]
pub(super) fn fallbacks_on_this_thread() -> u64 {
    ON_THIS_THREAD.get()
}

/// Records `count` elements whose exact step fell back to the primal step.
pub(super) fn note_fallbacks(count: u64) {
    if count == 0 {
        return;
    }
    #[cfg(test)]
    ON_THIS_THREAD.set(ON_THIS_THREAD.get() + count);
    let total = FALLBACKS.fetch_add(count, Ordering::Relaxed) + count;
    if !REPORTED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "warning: the exact (dual) mirror step is not representable for {total} weight(s) \
             (a non-finite result, e.g. a weight far outside the potential's scale); those take \
             the primal step instead. Further fallbacks are counted silently \
             (mirrorburn::optim::dual_fallbacks)."
        );
    }
}

/// Adds a one-element count that lives on a device, without reading it.
pub(super) fn note_fallbacks_on_device(count: Tensor<1, Int>) {
    let device = count.device();
    let mut pending = PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match pending.iter_mut().find(|(d, _)| *d == device) {
        Some((_, total)) => *total = total.clone() + count,
        None => pending.push((device, count)),
    }
}

/// Elements, over the whole process so far, whose exact step fell back to the primal step.
/// Reads the counts still on devices (one read each), so call it at log points, not per step.
pub fn dual_fallbacks() -> u64 {
    let pending = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|p| p.into_inner()));
    for (_, count) in pending {
        note_fallbacks(read_scalar::<i64, 1, Int>(count) as u64);
    }
    FALLBACKS.load(Ordering::Relaxed)
}
