//! Bias-free ReLU multilayer perceptrons with a scalar output, for the student-teacher
//! experiments and small exact tests: `f(x) = W_L^T relu(... relu(W_1^T x))`.

use burn::module::{Module, Param};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// A bias-free ReLU network. Weights use Burn's linear layout `[d_in, d_out]`, so parameter
/// paths are `layers.0`, `layers.1`, ... and the last layer has `d_out = 1`.
#[derive(Module, Debug)]
pub struct BiasFreeMlp {
    /// Layer weights, input side first.
    pub layers: Vec<Param<Tensor<2>>>,
}

impl BiasFreeMlp {
    /// A network with the given weights (any float dtype; f64 for the exact experiments).
    pub fn from_weights(weights: Vec<Tensor<2>>) -> Self {
        assert!(!weights.is_empty(), "a network needs at least one layer");
        Self {
            layers: weights.into_iter().map(Param::from_tensor).collect(),
        }
    }

    /// Scalar outputs `[n]` for inputs `[n, d]`.
    pub fn forward(&self, inputs: Tensor<2>) -> Tensor<1> {
        let last = self.layers.len() - 1;
        let mut x = inputs;
        for (index, weight) in self.layers.iter().enumerate() {
            x = x.matmul(weight.val());
            if index < last {
                x = relu(x);
            }
        }
        let [n, _] = x.dims();
        x.reshape([n])
    }
}
