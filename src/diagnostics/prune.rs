//! One-shot magnitude pruning without retraining: zero the smallest-|w| weights per layer (or
//! over all layers), then evaluate.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::optim::is_weight;

/// Which weights compete for pruning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum PruneScope {
    /// Each layer loses the same fraction of its weights.
    Layer,
    /// One threshold over all weight layers.
    Global,
}

/// Zeros exactly `round(sparsity * n)` weights of smallest magnitude, per layer or over all
/// `layers` jointly (ties broken by position, so counts are exact). Returns the pruned copies.
pub fn prune_weights(layers: &[Vec<f32>], sparsity: f64, scope: PruneScope) -> Vec<Vec<f32>> {
    let mut pruned = layers.to_vec();
    let order = |entries: &mut Vec<(f32, usize, usize)>| {
        entries.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    };
    let count = |n: usize| ((sparsity * n as f64).round() as usize).min(n);
    match scope {
        PruneScope::Layer => {
            for (index, layer) in layers.iter().enumerate() {
                let mut entries: Vec<_> = layer
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (w.abs(), index, i))
                    .collect();
                order(&mut entries);
                for &(_, l, i) in &entries[..count(layer.len())] {
                    pruned[l][i] = 0.0;
                }
            }
        }
        PruneScope::Global => {
            let mut entries: Vec<_> = layers
                .iter()
                .enumerate()
                .flat_map(|(l, layer)| layer.iter().enumerate().map(move |(i, w)| (w.abs(), l, i)))
                .collect();
            order(&mut entries);
            let total = entries.len();
            for &(_, l, i) in &entries[..count(total)] {
                pruned[l][i] = 0.0;
            }
        }
    }
    pruned
}

/// Fraction of exact zeros.
pub fn zero_fraction(values: &[f32]) -> f64 {
    values.iter().filter(|v| **v == 0.0).count() as f64 / values.len().max(1) as f64
}

/// `module` with its weight tensors (see [`is_weight`], visiting order) replaced by `values`;
/// biases and parameter ids are kept.
pub fn with_weights<M: Module>(module: M, values: Vec<Vec<f32>>) -> M {
    struct Replace(std::vec::IntoIter<Vec<f32>>);
    impl ModuleMapper for Replace {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if !is_weight(D) {
                return param;
            }
            let values = self.0.next().expect("one value vector per weight tensor");
            param.map(|tensor| {
                let shape = tensor.shape();
                Tensor::from_data(TensorData::new(values, shape), &tensor.device())
            })
        }
    }
    module.map(&mut Replace(values.into_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::test_seed;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    fn random_layers(seed: u64) -> Vec<Vec<f32>> {
        let mut rng = StdRng::seed_from_u64(seed);
        [37usize, 500, 1, 4096]
            .iter()
            .map(|&n| (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect())
            .collect()
    }

    #[test]
    fn layerwise_pruning_hits_the_requested_sparsity_within_one_weight() {
        let seed = test_seed(0x9B0E_0001);
        let layers = random_layers(seed);
        for sparsity in [0.0, 0.1, 0.333, 0.5, 0.9, 0.99, 1.0] {
            let pruned = prune_weights(&layers, sparsity, PruneScope::Layer);
            for (before, after) in layers.iter().zip(&pruned) {
                let n = before.len() as f64;
                let zeros = zero_fraction(after) * n;
                assert!(
                    (zeros - sparsity * n).abs() <= 1.0,
                    "seed {seed} s {sparsity}: {zeros} of {n}"
                );
                // The survivors are the largest magnitudes.
                let kept_min = after
                    .iter()
                    .filter(|v| **v != 0.0)
                    .map(|v| v.abs())
                    .fold(f32::INFINITY, f32::min);
                let cut_max = before
                    .iter()
                    .zip(after)
                    .filter(|(_, a)| **a == 0.0)
                    .map(|(b, _)| b.abs())
                    .fold(0.0f32, f32::max);
                assert!(cut_max <= kept_min, "seed {seed}");
            }
        }
    }

    #[test]
    fn global_pruning_uses_one_threshold() {
        let seed = test_seed(0x9B0E_0001);
        let mut layers = random_layers(seed);
        layers[0].iter_mut().for_each(|v| *v *= 1e-5); // a layer of tiny weights goes first
        let pruned = prune_weights(&layers, 0.01, PruneScope::Global);
        let total: usize = layers.iter().map(Vec::len).sum();
        let zeros: usize = pruned.iter().flatten().filter(|v| **v == 0.0).count();
        assert_eq!(zeros, (0.01 * total as f64).round() as usize, "seed {seed}");
        assert_eq!(
            zero_fraction(&pruned[0]),
            1.0,
            "seed {seed}: the tiny layer is pruned first"
        );
    }

    #[test]
    fn sparsity_zero_changes_nothing() {
        let layers = random_layers(test_seed(0x9B0E_0002));
        assert_eq!(prune_weights(&layers, 0.0, PruneScope::Layer), layers);
        assert_eq!(prune_weights(&layers, 0.0, PruneScope::Global), layers);
    }
}
