//! The balance quantities `Q_l(grad R_l(W_l))` of Lemma 3.1, per weight layer.

use burn::tensor::{DType, Device, Float, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::snapshot::LayerWeights;
use crate::device_read::read_scalar;
use crate::optim::{MirrorDescentConfig, MirrorMap};

/// `Q(grad R(theta))` of `values` (shape `dims`) for the map in use, summed, in f64.
pub fn conjugate_sum(map: MirrorMap, values: &[f64]) -> f64 {
    let device = Device::flex();
    let tensor: Tensor<1> = Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len()]),
        (&device, DType::F64),
    );
    read_scalar::<f64, 1, Float>(map.conjugate_at_gradient(tensor).sum())
}

/// `Q_l` of every layer under `config`'s potentials (each path gets its own potential; a layer's
/// bias adds its own term).
pub fn layer_q(layers: &[LayerWeights], config: &MirrorDescentConfig) -> Vec<f64> {
    layers
        .iter()
        .map(|layer| {
            let weights = conjugate_sum(config.map_for(&layer.path, &layer.dims), &layer.weights);
            let bias = layer.bias.as_ref().map_or(0.0, |(path, values)| {
                conjugate_sum(config.map_for(path, &[values.len()]), values)
            });
            weights + bias
        })
        .collect()
}

/// The balance of one layer at one epoch: a row of `balance.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BalanceRow {
    /// Epoch (0 = initialisation).
    pub epoch: usize,
    /// Weight-layer index.
    pub layer: usize,
    /// Parameter path of the layer's weight.
    pub path: String,
    /// `Q_l(grad R_l(W_l))`.
    pub q: f64,
    /// `Q_l - Q_{l+1}` (none for the last layer).
    pub diff_to_next: Option<f64>,
    /// `(Q_l - Q_{l+1}) - (Q_l - Q_{l+1})` at initialisation: the discretisation drift of the
    /// quantity Lemma 3.1 conserves (none for the last layer).
    pub drift_since_init: Option<f64>,
}

/// The balance rows of one epoch from the per-layer `q`, the initial `initial` and the layers'
/// paths.
pub fn balance_rows(epoch: usize, paths: &[String], q: &[f64], initial: &[f64]) -> Vec<BalanceRow> {
    (0..q.len())
        .map(|l| {
            let next = (l + 1 < q.len()).then(|| {
                let diff = q[l] - q[l + 1];
                (diff, diff - (initial[l] - initial[l + 1]))
            });
            BalanceRow {
                epoch,
                layer: l,
                path: paths[l].clone(),
                q: q[l],
                diff_to_next: next.map(|(diff, _)| diff),
                drift_since_init: next.map(|(_, drift)| drift),
            }
        })
        .collect()
}

/// The largest |drift| among `rows` (0 when none has one).
pub fn max_drift(rows: &[BalanceRow]) -> f64 {
    rows.iter()
        .filter_map(|row| row.drift_since_init)
        .fold(0.0, |max, drift| max.max(drift.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Potential, WidthScaling};
    use crate::test_support::{POTENTIALS, test_seed};

    #[test]
    fn closed_form_q_equals_the_fenchel_young_definition() {
        let seed = test_seed(0xBA1A_0001);
        let device = Device::flex();
        device.seed(seed);
        let values: Tensor<1> = Tensor::random(
            [4000],
            burn::tensor::Distribution::Normal(0.0, 0.7),
            (&device, DType::F64),
        );
        for potential in POTENTIALS {
            for scaling in [WidthScaling::FanIn, WidthScaling::None] {
                let map = MirrorMap::new(potential, scaling, 64);
                let closed = map
                    .conjugate_at_gradient(values.clone())
                    .sum()
                    .into_scalar::<f64>();
                let inner = (values.clone() * map.gradient(values.clone())).sum();
                let definition = (inner - map.potential(values.clone()).sum()).into_scalar::<f64>();
                assert!(
                    (closed - definition).abs() <= 1e-9 * closed.abs(),
                    "seed {seed} {potential:?} {scaling:?}: {closed} vs {definition}"
                );
            }
        }
        // Independently of MirrorMap: the Table 1 closed forms in plain f64.
        let host: Vec<f64> = values.into_data().iter::<f64>().collect();
        let lambda = 0.1;
        let hyperbolic = MirrorMap::new(Potential::Hyperbolic { lambda }, WidthScaling::None, 1);
        let table1: f64 = host.iter().map(|t| (t * t + lambda).sqrt()).sum();
        let ours = conjugate_sum(hyperbolic, &host);
        assert!((ours - table1).abs() <= 1e-9 * table1, "seed {seed}");
        let (p, q) = (3.0, 1.5);
        let homogeneous = MirrorMap::new(
            Potential::PHomogeneous { p, lambda: 1.0 },
            WidthScaling::None,
            1,
        );
        let table1: f64 = host.iter().map(|t| t.abs().powf(p) / q + t * t / 2.0).sum();
        let ours = conjugate_sum(homogeneous, &host);
        assert!((ours - table1).abs() <= 1e-9 * table1, "seed {seed}");
    }

    #[test]
    fn drift_is_measured_against_the_initial_differences() {
        let paths: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let rows = balance_rows(5, &paths, &[3.0, 2.0, 4.0], &[1.0, 1.5, 1.0]);
        assert_eq!(rows[0].diff_to_next, Some(1.0));
        assert_eq!(rows[0].drift_since_init, Some(1.0 - (-0.5)));
        assert_eq!(rows[1].drift_since_init, Some(-2.0 - 0.5));
        assert_eq!(rows[2].diff_to_next, None);
        assert_eq!(
            (rows[2].epoch, rows[2].layer, rows[2].path.as_str()),
            (5, 2, "c")
        );
        assert_eq!(max_drift(&rows), 2.5);
    }
}
