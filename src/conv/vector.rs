//! The SIMD vectors the [`super::direct`] and [`super::small`] kernels are written in: AVX-512's
//! 16 lanes and AVX2's 8.
//!
//! A kernel's tile is an `#[inline(always)]` function generic over [`Vector`]; a wrapper per
//! instruction set with the matching `#[target_feature]` compiles it for that set (the
//! intrinsics, inlined into the wrapper, become single instructions). Written on `std::arch`
//! because a tile's accumulators must stay in registers, which the autovectorizer does not
//! promise, and a portable SIMD crate would add a layer that guarantees no more.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m256, __m512, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps,
    _mm256_storeu_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
    _mm512_storeu_ps,
};

/// The instruction set the kernels run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F: 16 lanes, 32 registers (with the `avx512` feature).
    Avx512,
    /// AVX2 with FMA: 8 lanes, 16 registers.
    Avx2,
}

impl Isa {
    /// Every instruction set the kernels are written for, widest first.
    pub const ALL: [Isa; 2] = [Isa::Avx512, Isa::Avx2];

    /// Whether this CPU has the instruction set (regardless of the `avx512` feature).
    pub fn on_this_cpu(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        match self {
            Isa::Avx512 => std::is_x86_feature_detected!("avx512f"),
            Isa::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }
}

/// The instruction set of this CPU's kernels, detected once: AVX-512F where present and the
/// `avx512` feature is on, else AVX2 + FMA; `None` on CPUs with neither (and off x86-64), where
/// im2col + GEMM does all the work.
pub fn detected() -> Option<Isa> {
    #[cfg(target_arch = "x86_64")]
    {
        static ISA: std::sync::OnceLock<Option<Isa>> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            Isa::ALL
                .into_iter()
                .filter(|&isa| cfg!(feature = "avx512") || isa != Isa::Avx512)
                .find(|isa| isa.on_this_cpu())
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// One SIMD vector of `f32` lanes. Every method needs the vector's instruction set on this CPU
/// (see [`Isa`]), and is meant to be inlined into a function compiled for it.
pub trait Vector: Copy {
    /// Lanes per vector.
    const LANES: usize;
    /// All lanes zero.
    ///
    /// # Safety
    /// The vector's instruction set must be present.
    unsafe fn zero() -> Self;
    /// `LANES` values from `from`, not necessarily aligned.
    ///
    /// # Safety
    /// The instruction set must be present, and `from` valid for reading `LANES` values.
    unsafe fn load(from: *const f32) -> Self;
    /// Writes the lanes to `to`, not necessarily aligned.
    ///
    /// # Safety
    /// The instruction set must be present, and `to` valid for writing `LANES` values.
    unsafe fn store(self, to: *mut f32);
    /// `value` in every lane.
    ///
    /// # Safety
    /// The vector's instruction set must be present.
    unsafe fn splat(value: f32) -> Self;
    /// `self * factor + addend`, rounded once (a fused multiply-add).
    ///
    /// # Safety
    /// The vector's instruction set must be present.
    unsafe fn mul_add(self, factor: Self, addend: Self) -> Self;
}

#[cfg(target_arch = "x86_64")]
impl Vector for __m512 {
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY (here and below): AVX-512F is present, by the trait's contract.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(from: *const f32) -> Self {
        unsafe { _mm512_loadu_ps(from) }
    }
    #[inline(always)]
    unsafe fn store(self, to: *mut f32) {
        unsafe { _mm512_storeu_ps(to, self) }
    }
    #[inline(always)]
    unsafe fn splat(value: f32) -> Self {
        unsafe { _mm512_set1_ps(value) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, factor: Self, addend: Self) -> Self {
        unsafe { _mm512_fmadd_ps(self, factor, addend) }
    }
}

#[cfg(target_arch = "x86_64")]
impl Vector for __m256 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY (here and below): AVX2 and FMA are present, by the trait's contract.
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(from: *const f32) -> Self {
        unsafe { _mm256_loadu_ps(from) }
    }
    #[inline(always)]
    unsafe fn store(self, to: *mut f32) {
        unsafe { _mm256_storeu_ps(to, self) }
    }
    #[inline(always)]
    unsafe fn splat(value: f32) -> Self {
        unsafe { _mm256_set1_ps(value) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, factor: Self, addend: Self) -> Self {
        unsafe { _mm256_fmadd_ps(self, factor, addend) }
    }
}
