//! The balance quantities `Q_l(grad R_l(W_l))` of Lemma 3.1, per weight layer.

use burn::tensor::{DType, Device, Tensor, TensorData};

use super::format_number;
use super::snapshot::LayerWeights;
use crate::optim::{MirrorDescentConfig, MirrorMap, fan_in};

/// Column names of `balance.csv`.
pub const BALANCE_HEADER: &str = "epoch,layer,path,q,diff_to_next,drift_since_init";

/// `Q(grad R(theta))` of `values` (shape `dims`) for the map in use, summed, in f64.
pub fn conjugate_sum(map: MirrorMap, values: &[f64]) -> f64 {
    let device = Device::flex();
    let tensor: Tensor<1> = Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len()]),
        (&device, DType::F64),
    );
    map.conjugate_at_gradient(tensor).sum().into_scalar::<f64>()
}

/// `Q_l` of every layer under `config`'s potentials (each path gets its own potential; a layer's
/// bias adds its own term).
pub fn layer_q(layers: &[LayerWeights], config: &MirrorDescentConfig) -> Vec<f64> {
    let map_for = |path: &str, dims: &[usize]| {
        let potential = config.potential_for(path, dims.len());
        MirrorMap::new(potential, config.width_scaling, fan_in(dims))
    };
    layers
        .iter()
        .map(|layer| {
            let weights = conjugate_sum(map_for(&layer.path, &layer.dims), &layer.weights);
            let bias = layer.bias.as_ref().map_or(0.0, |(path, values)| {
                conjugate_sum(map_for(path, &[values.len()]), values)
            });
            weights + bias
        })
        .collect()
}

/// Rows of `balance.csv` for one epoch: `Q_l`, `Q_l - Q_{l+1}`, and the drift of that
/// difference since `initial` (the epoch-0 values).
pub fn balance_rows(
    epoch: usize,
    layers: &[LayerWeights],
    q: &[f64],
    initial: &[f64],
) -> Vec<String> {
    (0..q.len())
        .map(|l| {
            let (diff, drift) = if l + 1 < q.len() {
                let diff = q[l] - q[l + 1];
                let start = initial[l] - initial[l + 1];
                (format_number(diff), format_number(diff - start))
            } else {
                (String::new(), String::new())
            };
            let q_l = format_number(q[l]);
            format!("{epoch},{l},{},{q_l},{diff},{drift}", layers[l].path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Potential, WidthScaling};

    #[test]
    fn closed_form_q_equals_the_fenchel_young_definition() {
        let seed = rand::random::<u64>();
        let device = Device::flex();
        device.seed(seed);
        let values: Tensor<1> = Tensor::random(
            [4000],
            burn::tensor::Distribution::Normal(0.0, 0.7),
            (&device, DType::F64),
        );
        let potentials = crate::optim::tests::POTENTIALS;
        for potential in potentials {
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
}
