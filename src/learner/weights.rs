//! A model's parameters as a metric input: references to the device tensors, read once per metric.

use std::sync::{Arc, Mutex};

use burn::module::Module;
use burn::tensor::{Tensor, TensorReadError};

use crate::diagnostics::{LayerWeights, group_layers};
use crate::optim::{NamedParam, param_tensors};

/// The parameters of a model at one step, by path, not yet copied to the host. Clones share one
/// host copy: every metric of a batch reads the weights, the first one copies them.
#[derive(Clone, Debug)]
pub struct ModelWeights {
    params: Vec<(NamedParam, Tensor<1>)>,
    host: Arc<Mutex<Option<Arc<Vec<LayerWeights>>>>>,
}

impl ModelWeights {
    /// The current parameters of `module` (references; no copy).
    pub fn of<M: Module>(module: &M) -> Self {
        Self {
            params: param_tensors(module),
            host: Arc::default(),
        }
    }

    /// The same parameters detached from the autodiff graph, so a metric thread holds no tape.
    pub fn without_autodiff(self) -> Self {
        let params = self
            .params
            .into_iter()
            .map(|(param, tensor)| (param, tensor.without_autodiff()))
            .collect();
        Self {
            params,
            host: Arc::default(),
        }
    }

    /// The weight layers, copied to the host once for all clones (see
    /// [`weight_layers`](crate::diagnostics::weight_layers) for how biases join them).
    pub fn layers(&self) -> Result<Arc<Vec<LayerWeights>>, TensorReadError> {
        let mut host = self
            .host
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(layers) = host.as_ref() {
            return Ok(Arc::clone(layers));
        }
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
        let layers = Arc::new(group_layers(params));
        *host = Some(Arc::clone(&layers));
        Ok(layers)
    }
}
