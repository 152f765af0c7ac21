//! Exact (dual) steps that could not be represented and fell back to the primal step: counted
//! over the process, and reported on stderr the first time it happens.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static FALLBACKS: AtomicU64 = AtomicU64::new(0);
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Records `count` elements whose exact step fell back to the primal step.
pub(super) fn note_fallbacks(count: u64) {
    if count == 0 {
        return;
    }
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

/// Elements, over the whole process so far, whose exact step fell back to the primal step.
pub fn dual_fallbacks() -> u64 {
    FALLBACKS.load(Ordering::Relaxed)
}
