//! The process heap's settings for training on the CPU (glibc only): the activations and
//! gradients of a step (up to tens of MB each, allocated and freed every step) are kept in the
//! heap for the next step instead of being unmapped and mapped again.
//!
//! By default glibc serves an allocation over its mmap threshold (128 KiB, raised at run time
//! up to the size of freed blocks, at most 32 MiB) with a fresh `mmap`, and returns the heap's
//! free top to the system beyond twice that threshold: a full-width VGG step then faults in
//! and zeroes its 26 MB buffers page by page, every step. Measured on the project's 2-core
//! AVX-512 machine (`mirrorburn bench --parts step`, three alternated pairs): the full-width GD
//! step 142-158 -> 163-175 img/s with these settings, width/8 unchanged (4,500-5,450 both).
//! Setting only the trim threshold would freeze the mmap threshold at 128 KiB (the step fell
//! to 102-113 img/s): both are set together.

/// Blocks up to this size come from the heap: the ceiling of glibc's own dynamic threshold on
/// 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`), above VGG's largest buffer (26 MB at full
/// width, batch 100).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free memory at the heap's top beyond which glibc returns it to the system.
pub const TRIM_THRESHOLD: usize = 1 << 30;

/// Applies [`MMAP_THRESHOLD`] and [`TRIM_THRESHOLD`] to this process's heap; returns whether
/// the allocator took both (always `false` off glibc, where nothing is changed). Call it once
/// at the start of `main`, before other threads allocate.
pub fn keep_freed_buffers() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes the allocator's tuning parameters; it is called with
        // valid parameter codes and in-range values.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as i32) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as i32) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_both_settings() {
        assert!(super::keep_freed_buffers(), "mallopt refused a threshold");
    }
}
