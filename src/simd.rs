//! Hot loops compiled for AVX2 when the CPU has it, without giving up portable binaries or
//! reproducible results.

#[cfg(test)]
use std::sync::atomic::{AtomicBool, Ordering};

/// Makes [`with_avx2`] run the x86-64 baseline code, so that a test can compare the two builds'
/// bits (other tests running meanwhile merely take the baseline code, which gives the same bits).
#[cfg(test)]
pub(crate) static BASELINE_ONLY: AtomicBool = AtomicBool::new(false);

/// Runs `f`, compiled for AVX2 when the CPU has it: the same IEEE operations on twice the lanes of
/// the x86-64 baseline (no fused multiply-add is introduced, so the results are bit-identical on
/// every CPU). Only code inlined into `f` is compiled for AVX2: mark the closure and what it calls
/// `#[inline(always)]`.
#[inline(always)]
pub(crate) fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(target_arch = "x86_64", test))]
    if BASELINE_ONLY.load(Ordering::Relaxed) {
        return f();
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2.
        return unsafe { avx2(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
