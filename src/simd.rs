//! Hot loops compiled for AVX2 when the CPU has it, without giving up portable binaries or
//! reproducible results.

/// The instruction set a hot loop is compiled for: the same IEEE operations either way (no fused
/// multiply-add is introduced), so the results are bit-identical.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// The x86-64 baseline (SSE2), or plain code on other architectures.
    Baseline,
    /// AVX2: twice the lanes of the baseline.
    Avx2,
}

impl Isa {
    /// AVX2 when this CPU has it, else the baseline.
    pub(crate) fn detected() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            return Isa::Avx2;
        }
        Isa::Baseline
    }
}

/// Runs `f` compiled for `isa`. Only code inlined into `f` is compiled for it: mark the closure
/// and what it calls `#[inline(always)]`.
///
/// # Panics
/// For [`Isa::Avx2`] on a CPU without AVX2 (ask [`Isa::detected`] first).
#[inline(always)]
pub(crate) fn run_on<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        assert!(
            std::is_x86_feature_detected!("avx2"),
            "AVX2 code asked for on a CPU without AVX2"
        );
        // SAFETY: the CPU supports AVX2.
        return unsafe { avx2(f) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    assert!(isa == Isa::Baseline, "AVX2 code asked for on a non-x86 CPU");
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
