//! Per-layer weight histograms with fixed bins, and summary statistics.

use serde::{Deserialize, Serialize};

/// Bins of the signed histogram.
pub const SIGNED_BINS: usize = 64;
/// The signed histogram spans +-this many He standard deviations `sqrt(2 / fan_in)`.
pub const SIGNED_RANGE_STDS: f64 = 8.0;
/// Magnitude bins per decade.
pub const BINS_PER_DECADE: usize = 10;
/// Smallest and largest decade (log10) of the magnitude histogram.
pub const MAGNITUDE_DECADES: (i32, i32) = (-9, 1);

/// A histogram with fixed edges, plus counts below the first and above the last edge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `counts.len() + 1` increasing edges; bin `i` is `[edges[i], edges[i+1])`.
    pub edges: Vec<f64>,
    /// Counts per bin.
    pub counts: Vec<u64>,
    /// Values below `edges[0]` (for magnitudes: non-zero values below it).
    pub below: u64,
    /// Values at or above the last edge.
    pub above: u64,
}

impl Histogram {
    fn new(edges: Vec<f64>) -> Self {
        let bins = edges.len() - 1;
        Self {
            edges,
            counts: vec![0; bins],
            below: 0,
            above: 0,
        }
    }

    fn add(&mut self, value: f64) {
        let last = *self.edges.last().expect("edges");
        if value < self.edges[0] {
            self.below += 1;
        } else if value >= last || value.is_nan() {
            // NaN (a diverged run's weights) has no bin; it counts with the overflow.
            self.above += 1;
        } else {
            let bin = self.edges.partition_point(|&e| e <= value) - 1;
            self.counts[bin] += 1;
        }
    }

    /// Every value counted (bins plus both overflows).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.below + self.above
    }

    /// `(bin centre, count / total)` per bin, the centre geometric (for log-spaced bins).
    pub fn geometric_density(&self, total: u64) -> Vec<(f64, f64)> {
        let total = total.max(1) as f64;
        self.counts
            .iter()
            .enumerate()
            .map(|(b, &c)| ((self.edges[b] * self.edges[b + 1]).sqrt(), c as f64 / total))
            .collect()
    }
}

/// Summary statistics of a layer's weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerSummary {
    /// Mean of |w|.
    pub mean_abs: f64,
    /// Median of |w|.
    pub median_abs: f64,
    /// Fraction of weights with |w| < 1e-3 max |w|.
    pub frac_near_zero: f64,
    /// ||W||_1 / ||W||_2 (between 1 and sqrt(n); small means sparse).
    pub l1_over_l2: f64,
    /// max |w|.
    pub max_abs: f64,
}

/// Both histograms and the summary of one layer at one epoch: a line of `histograms.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerHistogram {
    /// Epoch (0 = initialisation).
    pub epoch: usize,
    /// Weight-layer index (0 = first conv).
    pub layer: usize,
    /// Parameter path of the weight.
    pub path: String,
    /// Number of weights.
    pub count: u64,
    /// Signed values, linear bins over +-8 He standard deviations of the layer.
    pub signed: Histogram,
    /// |w|, log-spaced bins 1e-9..10 (10 per decade); exact zeros counted apart.
    pub magnitude: Histogram,
    /// Exact zeros (not in `magnitude`).
    pub zeros: u64,
    /// Summary statistics.
    pub summary: LayerSummary,
}

/// Histograms and summary of a layer's weights. `fan_in` sets the signed range.
pub fn layer_histogram(
    epoch: usize,
    layer: usize,
    path: &str,
    fan_in: usize,
    weights: &[f64],
) -> LayerHistogram {
    let std = (2.0 / fan_in.max(1) as f64).sqrt();
    let half = SIGNED_RANGE_STDS * std;
    let signed_edges = (0..=SIGNED_BINS)
        .map(|i| -half + 2.0 * half * i as f64 / SIGNED_BINS as f64)
        .collect();
    let (lo, hi) = MAGNITUDE_DECADES;
    let steps = (hi - lo) as usize * BINS_PER_DECADE;
    let magnitude_edges = (0..=steps)
        .map(|i| 10f64.powf(lo as f64 + i as f64 / BINS_PER_DECADE as f64))
        .collect();
    let mut signed = Histogram::new(signed_edges);
    let mut magnitude = Histogram::new(magnitude_edges);
    let mut zeros = 0;
    for &w in weights {
        signed.add(w);
        if w == 0.0 {
            zeros += 1;
        } else {
            magnitude.add(w.abs());
        }
    }
    LayerHistogram {
        epoch,
        layer,
        path: path.to_string(),
        count: weights.len() as u64,
        signed,
        magnitude,
        zeros,
        summary: summarize(weights),
    }
}

/// Summary statistics of `weights`.
pub fn summarize(weights: &[f64]) -> LayerSummary {
    let n = weights.len().max(1) as f64;
    let mut magnitudes: Vec<f64> = weights.iter().map(|w| w.abs()).collect();
    magnitudes.sort_by(f64::total_cmp);
    let max_abs = magnitudes.last().copied().unwrap_or(0.0);
    let l1: f64 = magnitudes.iter().sum();
    let l2 = magnitudes.iter().map(|m| m * m).sum::<f64>().sqrt();
    let median_abs = match magnitudes.len() {
        0 => 0.0,
        len if len % 2 == 1 => magnitudes[len / 2],
        len => 0.5 * (magnitudes[len / 2 - 1] + magnitudes[len / 2]),
    };
    LayerSummary {
        mean_abs: l1 / n,
        median_abs,
        frac_near_zero: magnitudes.partition_point(|&m| m < 1e-3 * max_abs) as f64 / n,
        l1_over_l2: if l2 > 0.0 { l1 / l2 } else { 0.0 },
        max_abs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sum_to_the_parameter_count() {
        let seed = crate::test_support::test_seed(0x4157_0001);
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        use rand::RngExt;
        let mut weights: Vec<f64> = (0..5000).map(|_| rng.random_range(-0.5..0.5)).collect();
        weights.extend([0.0, 0.0, 1e-12, -1e-12, 50.0, -50.0, 1e-9, 0.3]);
        let h = layer_histogram(3, 1, "x.weight", 27, &weights);
        assert_eq!(h.signed.total(), weights.len() as u64, "seed {seed}");
        assert_eq!(
            h.magnitude.total() + h.zeros,
            weights.len() as u64,
            "seed {seed}"
        );
        assert_eq!(h.zeros, 2);
        assert_eq!(h.magnitude.below, 2, "1e-12 magnitudes fall below 1e-9");
        assert_eq!(h.signed.above, 1);
        assert_eq!(h.signed.below, 1);
    }

    #[test]
    fn summary_statistics_match_hand_values() {
        let s = summarize(&[0.0, -1.0, 2.0, -3.0, 1e-4]);
        assert_eq!(s.max_abs, 3.0);
        assert_eq!(s.median_abs, 1.0);
        assert!((s.mean_abs - (6.0001 / 5.0)).abs() < 1e-12);
        assert_eq!(s.frac_near_zero, 2.0 / 5.0, "0 and 1e-4 are below 3e-3");
        let l2 = (1.0f64 + 4.0 + 9.0 + 1e-8).sqrt();
        assert!((s.l1_over_l2 - 6.0001 / l2).abs() < 1e-12);
    }
}
