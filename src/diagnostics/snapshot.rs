//! A host copy of a model's weights, grouped into weight layers: the one device-to-host copy a
//! diagnostics step makes.

use burn::module::Module;

use crate::optim::{NamedParam, is_weight, named_params};

/// One weight layer: its weight tensor and, for the first VGG conv, its bias.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    /// Path of the weight, e.g. `features.0.weight`.
    pub path: String,
    /// Shape of the weight.
    pub dims: Vec<usize>,
    /// Weight values, row-major.
    pub weights: Vec<f64>,
    /// Path and values of the layer's bias, if it has one.
    pub bias: Option<(String, Vec<f64>)>,
}

impl LayerWeights {
    /// Frobenius norm of the layer, bias included.
    pub fn frobenius_norm(&self) -> f64 {
        let bias = self.bias.iter().flat_map(|(_, b)| b.iter());
        self.weights
            .iter()
            .chain(bias)
            .map(|w| w * w)
            .sum::<f64>()
            .sqrt()
    }
}

/// The weight layers of `module` in visiting order. Weights (see [`is_weight`]) start a layer; a
/// bias joins the weight layer that shares its module path (`features.0.bias` belongs to
/// `features.0.weight`).
pub fn weight_layers<M: Module>(module: &M) -> Vec<LayerWeights> {
    group_layers(named_params(module, true))
}

/// Groups parameters (in visiting order, with their values) into weight layers, as
/// [`weight_layers`] does.
pub fn group_layers(params: Vec<NamedParam>) -> Vec<LayerWeights> {
    let mut layers: Vec<LayerWeights> = Vec::new();
    let mut biases = Vec::new();
    for param in params {
        if is_weight(param.dims.len()) {
            layers.push(LayerWeights {
                path: param.path,
                dims: param.dims,
                weights: param.values,
                bias: None,
            });
        } else {
            biases.push((param.path, param.values));
        }
    }
    let module_of = |path: &str| path.rsplit_once('.').map_or("", |(p, _)| p).to_string();
    for (path, values) in biases {
        let prefix = module_of(&path);
        if let Some(layer) = layers.iter_mut().find(|l| module_of(&l.path) == prefix) {
            layer.bias = Some((path, values));
        }
    }
    layers
}
