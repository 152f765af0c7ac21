//! A model's parameters as a metric input: references to the device tensors, read once per metric.

use burn::module::Module;
use burn::tensor::{Tensor, TensorReadError};

use crate::diagnostics::{LayerWeights, group_layers};
use crate::optim::{NamedParam, param_tensors};

/// The parameters of a model at one step, by path, not yet copied to the host.
#[derive(Clone, Debug)]
pub struct ModelWeights {
    params: Vec<(NamedParam, Tensor<1>)>,
}

impl ModelWeights {
    /// The current parameters of `module` (references; no copy).
    pub fn of<M: Module>(module: &M) -> Self {
        Self {
            params: param_tensors(module),
        }
    }

    /// The same parameters detached from the autodiff graph, so a metric thread holds no tape.
    pub fn without_autodiff(self) -> Self {
        let params = self
            .params
            .into_iter()
            .map(|(param, tensor)| (param, tensor.without_autodiff()))
            .collect();
        Self { params }
    }

    /// The weight layers, copied to the host (see
    /// [`weight_layers`](crate::diagnostics::weight_layers) for how biases join them).
    pub fn layers(&self) -> Result<Vec<LayerWeights>, TensorReadError> {
        let params = self
            .params
            .iter()
            .map(|(param, tensor)| {
                Ok(NamedParam {
                    values: tensor.clone().try_into_vec_as::<f64>()?,
                    ..param.clone()
                })
            })
            .collect::<Result<Vec<_>, TensorReadError>>()?;
        Ok(group_layers(params))
    }
}
