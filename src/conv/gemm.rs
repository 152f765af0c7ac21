//! A safe wrapper of the `gemm` crate's matrix product (f32 for our convolution, f64 for the
//! toy's hand gradient): bounds checked once per call, single-threaded.

/// `dst(i, j) = sum_l lhs(i, l) * rhs(l, j)` (or `+=` with `accumulate`) for matrices given by
/// base slices and (row, column) strides, on the calling thread.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Copy + 'static + From<f32>>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    dst_strides: (usize, usize),
    lhs: &[T],
    lhs_strides: (usize, usize),
    rhs: &[T],
    rhs_strides: (usize, usize),
    accumulate: bool,
) {
    let last = |(rs, cs): (usize, usize), rows: usize, cols: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    assert!(
        m == 0
            || n == 0
            || k == 0
            || (last(dst_strides, m, n) < dst.len()
                && last(lhs_strides, m, k) < lhs.len()
                && last(rhs_strides, k, n) < rhs.len()),
        "gemm operands out of bounds"
    );
    // SAFETY: every element the GEMM touches lies inside the three slices (checked above); dst
    // does not alias lhs or rhs (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_strides.1 as isize,
            dst_strides.0 as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_strides.1 as isize,
            lhs_strides.0 as isize,
            rhs.as_ptr(),
            rhs_strides.1 as isize,
            rhs_strides.0 as isize,
            T::from(1.0),
            T::from(1.0),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
