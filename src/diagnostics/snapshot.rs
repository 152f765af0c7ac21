//! A host copy of a model's weights, grouped into weight layers: the one device-to-host copy a
//! diagnostics step makes.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

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

/// The weight layers of `module` in visiting order. Tensors of rank >= 2 start a layer; a vector
/// is the bias of the weight layer that shares its module path (`features.0.bias` belongs to
/// `features.0.weight`).
pub fn weight_layers<M: Module>(module: &M) -> Vec<LayerWeights> {
    let mut collector = Collector::default();
    module.visit(&mut collector);
    let mut layers: Vec<LayerWeights> = Vec::new();
    let mut biases = Vec::new();
    for (path, dims, values) in collector.params {
        if dims.len() >= 2 {
            layers.push(LayerWeights {
                path,
                dims,
                weights: values,
                bias: None,
            });
        } else {
            biases.push((path, values));
        }
    }
    for (path, values) in biases {
        let prefix = path.rsplit_once('.').map_or("", |(p, _)| p);
        if let Some(layer) = layers
            .iter_mut()
            .find(|l| l.path.rsplit_once('.').map_or("", |(p, _)| p) == prefix)
        {
            layer.bias = Some((path, values));
        }
    }
    layers
}

#[derive(Default)]
struct Collector {
    stack: Vec<String>,
    params: Vec<(String, Vec<usize>, Vec<f64>)>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let dims = tensor.dims().to_vec();
        let values = tensor.into_data().iter::<f64>().collect();
        self.params.push((self.stack.join("."), dims, values));
    }
}
