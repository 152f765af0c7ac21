//! How close one implementation's numbers are to a reference's, element by element, in a way that
//! cannot miss a NaN: every comparison of two backends or two implementations (the agreement
//! check, the convolution tests, the GPU test suite) goes through [`Closeness`].
//!
//! A non-finite value where the reference is finite (or a different non-finite value) is a
//! mismatch that no tolerance accepts. Finite differences are measured two ways: the worst
//! `|a - b|` relative to the reference's largest magnitude (its *peak*), and the worst
//! `|a - b| / |reference|` over the elements that are not near zero (at least [`NEAR_ZERO`] of
//! the peak), where a relative bound means something.

/// Elements smaller than this fraction of the reference's peak are "near zero": they count
/// towards the peak-relative difference but not the per-element relative one.
pub const NEAR_ZERO: f64 = 1e-3;

/// Bounds for [`Closeness::check`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Largest accepted `max |a - b| / max |reference|`.
    pub peak: f64,
    /// Largest accepted `|a - b| / |reference|` of an element that is not near zero.
    pub element: f64,
}

/// Element-by-element differences of `other` from `reference` (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct Closeness {
    /// Number of elements compared.
    pub len: usize,
    /// Largest finite magnitude of the reference.
    pub peak: f64,
    /// The first element where one side is non-finite and the other is not the same value
    /// (index, reference, other).
    pub non_finite: Option<(usize, f64, f64)>,
    /// Largest `|a - b|` beyond the element's slack, with its index.
    pub worst_abs: (usize, f64),
    /// Largest `|a - b| / |reference|` (beyond the slack) over elements not near zero, with its
    /// index.
    pub worst_element: (usize, f64),
}

impl Closeness {
    /// Compares `other` with `reference` (same length; panics otherwise).
    pub fn between(reference: &[f64], other: &[f64]) -> Self {
        Self::with_slack(reference, other, |_| 0.0)
    }

    /// Like [`between`](Self::between), with an absolute allowance per element that is
    /// subtracted from its difference first (e.g. the rounding of a result to f32 when an
    /// update is recovered as `new - old`).
    pub fn with_slack(reference: &[f64], other: &[f64], slack: impl Fn(usize) -> f64) -> Self {
        assert_eq!(
            reference.len(),
            other.len(),
            "compared sequences differ in length"
        );
        let peak = reference
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| if v.abs() > m { v.abs() } else { m });
        let mut out = Self {
            len: reference.len(),
            peak,
            non_finite: None,
            worst_abs: (0, 0.0),
            worst_element: (0, 0.0),
        };
        for (i, (&r, &o)) in reference.iter().zip(other).enumerate() {
            if !(r.is_finite() && o.is_finite()) {
                // Equal infinities, or NaN against NaN, agree; anything else is a mismatch.
                let same = r == o || (r.is_nan() && o.is_nan());
                if !same && out.non_finite.is_none() {
                    out.non_finite = Some((i, r, o));
                }
                continue;
            }
            let difference = ((r - o).abs() - slack(i)).max(0.0);
            if difference > out.worst_abs.1 {
                out.worst_abs = (i, difference);
            }
            if r.abs() >= NEAR_ZERO * peak && r != 0.0 {
                let relative = difference / r.abs();
                if relative > out.worst_element.1 {
                    out.worst_element = (i, relative);
                }
            }
        }
        out
    }

    /// Compares two f32 sequences (as f64).
    pub fn between_f32(reference: &[f32], other: &[f32]) -> Self {
        let widen = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        Self::between(&widen(reference), &widen(other))
    }

    /// `max |a - b| / max |reference|`; infinite on a non-finite mismatch, and on any difference
    /// from an all-zero reference.
    pub fn peak_relative(&self) -> f64 {
        if self.non_finite.is_some() {
            f64::INFINITY
        } else if self.worst_abs.1 == 0.0 {
            0.0
        } else if self.peak == 0.0 {
            f64::INFINITY
        } else {
            self.worst_abs.1 / self.peak
        }
    }

    /// The largest `|a - b|` (beyond the slack); infinite on a non-finite mismatch.
    pub fn max_abs_difference(&self) -> f64 {
        if self.non_finite.is_some() {
            f64::INFINITY
        } else {
            self.worst_abs.1
        }
    }

    /// The worst per-element relative difference; infinite on a non-finite mismatch.
    pub fn element_relative(&self) -> f64 {
        if self.non_finite.is_some() {
            f64::INFINITY
        } else {
            self.worst_element.1
        }
    }

    /// `Ok` when within `tolerance`, else a message naming the worst element.
    pub fn check(&self, tolerance: Tolerance) -> Result<(), String> {
        if let Some((i, r, o)) = self.non_finite {
            return Err(format!("element {i}: {o} where the reference has {r}"));
        }
        if self.peak_relative() > tolerance.peak {
            return Err(format!(
                "element {}: difference {:e} is {:e} of the peak {:e} (bound {:e})",
                self.worst_abs.0,
                self.worst_abs.1,
                self.peak_relative(),
                self.peak,
                tolerance.peak
            ));
        }
        if self.element_relative() > tolerance.element {
            return Err(format!(
                "element {}: relative difference {:e} (bound {:e})",
                self.worst_element.0, self.worst_element.1, tolerance.element
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIGHT: Tolerance = Tolerance {
        peak: 1e-6,
        element: 1e-6,
    };

    fn reference() -> Vec<f64> {
        (0..1000).map(|i| ((i as f64) * 0.37).sin()).collect()
    }

    #[test]
    fn equal_sequences_are_close_and_nan_against_nan_agrees() {
        let mut r = reference();
        r[5] = f64::NAN;
        r[6] = f64::INFINITY;
        let c = Closeness::between(&r, &r.clone());
        assert_eq!(c.check(TIGHT), Ok(()));
        assert_eq!(c.peak_relative(), 0.0);
    }

    /// One planted NaN, infinity or 1-ulp (of f32) error in one element: which measure sees it.
    #[test]
    fn a_planted_nan_inf_or_ulp_error_is_caught_by_the_right_measure() {
        let r = reference();
        let i = 417;
        let plant = |value: f64| {
            let mut o = r.clone();
            o[i] = value;
            Closeness::between(&r, &o)
        };
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let c = plant(bad);
            assert_eq!(c.non_finite.map(|n| n.0), Some(i), "{bad}");
            assert_eq!(c.peak_relative(), f64::INFINITY);
            assert_eq!(c.max_abs_difference(), f64::INFINITY);
            assert!(
                c.check(Tolerance {
                    peak: 1e300,
                    element: 1e300
                })
                .is_err()
            );
        }
        // One f32 ulp off in one element: a relative error of ~1e-7 of that element.
        let ulp = (r[i] as f32).abs() * f32::EPSILON;
        let c = plant(r[i] + ulp as f64);
        assert_eq!(c.non_finite, None);
        assert_eq!(c.worst_abs.0, i);
        assert_eq!(c.worst_element.0, i);
        assert!(c.check(TIGHT).is_ok(), "1 ulp is within 1e-6");
        assert!(
            c.check(Tolerance {
                peak: 1e-9,
                element: 1e-9
            })
            .is_err()
        );
    }

    /// A wrong small element hides in the peak-relative measure and shows in the per-element one.
    #[test]
    fn a_relative_error_in_a_small_element_shows_only_per_element() {
        let mut r = reference();
        r[3] = 2e-3; // small but not near zero (peak ~1)
        let mut o = r.clone();
        o[3] *= 1.0 + 1e-3;
        let c = Closeness::between(&r, &o);
        assert!(c.peak_relative() < 1e-5);
        assert!((c.element_relative() - 1e-3).abs() < 1e-9);
        // Below NEAR_ZERO of the peak an element has no relative bound.
        r[3] = 1e-4;
        o[3] = 2e-4;
        assert_eq!(Closeness::between(&r, &o).element_relative(), 0.0);
    }

    #[test]
    fn slack_absorbs_rounding_and_nothing_more() {
        let r = vec![1.0, 2.0];
        let o = vec![1.0 + 1e-7, 2.0 + 3e-7];
        let c = Closeness::with_slack(&r, &o, |_| 2e-7);
        assert_eq!(c.worst_abs.0, 1);
        assert!((c.worst_abs.1 - 1e-7).abs() < 1e-15);
    }

    #[test]
    fn any_difference_from_an_all_zero_reference_is_infinite() {
        let c = Closeness::between(&[0.0, 0.0], &[0.0, 1e-30]);
        assert_eq!(c.peak_relative(), f64::INFINITY);
        assert_eq!(Closeness::between(&[0.0], &[0.0]).peak_relative(), 0.0);
    }
}
