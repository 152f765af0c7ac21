//! Margins of a multiclass network on a fixed training subset (DESIGN §1 "Diagnostics").

use serde::{Deserialize, Serialize};

use super::snapshot::LayerWeights;

/// The margins at one epoch: a row of `margins.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Margins {
    /// Epoch (0 = initialisation).
    pub epoch: usize,
    /// `min_i q_i` with `q_i = f_{y_i}(x_i) - max_{j != y_i} f_j(x_i)`.
    pub q_min: f64,
    /// `q_min / prod_l ||W_l||_F` (the first layer's norm includes its bias).
    pub product_norm_margin: f64,
    /// `q_min / ||theta||_2^L`.
    pub l2_margin: f64,
    /// `q_min / (alpha Q(grad R(theta)))^(L / alpha)`: `Q` summed over layers, each with its
    /// own potential; `alpha` of the default potential (with per-layer potentials of other
    /// homogeneity this is a convention, DESIGN §1).
    pub q_margin: f64,
    /// `log(1 / L_exp) / prod_l ||W_l||_F` with `L_exp = sum_i exp(-q_i)`.
    pub soft_margin: f64,
    /// Fraction of points with `q_i > 0` (correctly classified).
    pub frac_positive: f64,
}

/// The Q-margin (Definition 4.1): `q_min / (alpha Q(grad R(theta)))^(depth / alpha)`, with
/// `q_total` the summed `Q(grad R(theta))` and `alpha` the potential's homogeneity.
pub fn q_margin(q_min: f64, q_total: f64, alpha: f64, depth: usize) -> f64 {
    q_min / (alpha * q_total).powf(depth as f64 / alpha)
}

/// Per-point margins `q_i` from row-major logits `[n, classes]` and class indices.
pub fn class_margins<L: Copy + Into<usize>>(
    logits: &[f64],
    labels: &[L],
    classes: usize,
) -> Vec<f64> {
    logits
        .chunks_exact(classes)
        .zip(labels)
        .map(|(row, &label)| {
            let label: usize = label.into();
            let best_other = row
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != label)
                .map(|(_, &v)| v)
                .fold(f64::NEG_INFINITY, f64::max);
            row[label] - best_other
        })
        .collect()
}

/// `prod_l ||W_l||_F`, the first layer's norm including its bias: the normaliser of the
/// product-norm margin.
pub fn norm_product(layers: &[LayerWeights]) -> f64 {
    layers.iter().map(LayerWeights::frobenius_norm).product()
}

/// All margins from the per-point `q`, the layers (`L = layers.len()`), the total
/// `Q(grad R(theta))` and the potential's homogeneity `alpha`.
pub fn margins(
    epoch: usize,
    q: &[f64],
    layers: &[LayerWeights],
    q_total: f64,
    alpha: f64,
) -> Margins {
    let depth = layers.len() as f64;
    let q_min = q.iter().copied().fold(f64::INFINITY, f64::min);
    let norms: Vec<f64> = layers.iter().map(LayerWeights::frobenius_norm).collect();
    let product = norm_product(layers);
    let theta_norm = norms.iter().map(|n| n * n).sum::<f64>().sqrt();
    // log(1 / sum exp(-q)) = -logsumexp(-q), computed stably.
    let shift = q.iter().map(|v| -v).fold(f64::NEG_INFINITY, f64::max);
    let log_loss = shift + q.iter().map(|v| (-v - shift).exp()).sum::<f64>().ln();
    Margins {
        epoch,
        q_min,
        product_norm_margin: q_min / product,
        l2_margin: q_min / theta_norm.powf(depth),
        q_margin: q_margin(q_min, q_total, alpha, layers.len()),
        soft_margin: -log_loss / product,
        frac_positive: q.iter().filter(|&&v| v > 0.0).count() as f64 / q.len().max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(weights: Vec<f64>) -> LayerWeights {
        LayerWeights {
            path: "w".into(),
            dims: vec![weights.len(), 1],
            weights,
            bias: None,
        }
    }

    #[test]
    fn margins_of_a_hand_computed_network() {
        // Two points, three classes. Point 0 (label 0): logits 3, 1, 2 -> q = 1.
        // Point 1 (label 2): logits 4, 0, 1 -> q = -3.
        let logits = [3.0, 1.0, 2.0, 4.0, 0.0, 1.0];
        let q = class_margins(&logits, &[0u8, 2], 3);
        assert_eq!(q, vec![1.0, -3.0]);
        // Layers with norms 2 (entries 2, 0) and 5 (entries 3, 4): product 10, ||theta|| = sqrt(29).
        let layers = [layer(vec![2.0, 0.0]), layer(vec![3.0, 4.0])];
        let m = margins(7, &q, &layers, 14.5, 2.0);
        assert_eq!(m.q_min, -3.0);
        assert_eq!(m.product_norm_margin, -0.3);
        assert!((m.l2_margin - (-3.0 / 29.0)).abs() < 1e-15);
        // GD: alpha Q = 2 * 14.5 = 29 = ||theta||^2, so the Q-margin equals the L2 margin.
        assert!((m.q_margin - m.l2_margin).abs() < 1e-15);
        let want_soft = -((-1.0f64).exp() + 3.0f64.exp()).ln() / 10.0;
        assert!((m.soft_margin - want_soft).abs() < 1e-15);
        assert_eq!(m.frac_positive, 0.5);
    }

    #[test]
    fn the_bias_enters_the_first_layer_norm() {
        let mut first = layer(vec![3.0]);
        first.bias = Some(("b".into(), vec![4.0]));
        assert_eq!(first.frobenius_norm(), 5.0);
    }
}
