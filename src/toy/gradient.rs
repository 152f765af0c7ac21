//! The student's outputs and the gradient of `sum_i c_i f(x_i)` (any per-point cotangents `c`,
//! e.g. the exponential loss's) for a bias-free ReLU network, derived by hand in plain f64.
//!
//! The toy trains 300 to 10,300 parameters on 200 points for up to millions of steps; through
//! Burn's autodiff each step is dozens of tiny tensor operations whose fixed cost dominates. This
//! is the same math as one matrix loop per layer and direction; `run` keeps the autodiff path as
//! the reference (`gradient = "autodiff"`), and a test holds the two together to 1e-12.

use crate::conv::gemm::gemm;

/// One layer's weights in Burn's linear layout `[d_in, d_out]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// `d_in * d_out` values.
    pub weights: Vec<f64>,
    /// `[d_in, d_out]`.
    pub shape: [usize; 2],
}

/// The activations of a forward pass: the inputs, each hidden layer after its ReLU, and the
/// outputs (`[n]`, no ReLU).
pub struct Forward {
    activations: Vec<Vec<f64>>,
    n: usize,
}

impl Forward {
    /// Runs `f(x) = W_L^T relu(... relu(W_1^T x))` on `inputs` (`[n, d_in]`, row-major).
    pub fn new(layers: &[Layer], inputs: &[f64]) -> Self {
        let n = inputs.len() / layers[0].shape[0];
        let mut activations = vec![inputs.to_vec()];
        for (index, layer) in layers.iter().enumerate() {
            let mut z = matmul(activations.last().expect("inputs"), n, layer);
            if index + 1 < layers.len() {
                z.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            activations.push(z);
        }
        Self { activations, n }
    }

    /// `f(x_i)` per point.
    pub fn outputs(&self) -> &[f64] {
        self.activations.last().expect("outputs")
    }

    /// The gradient of `sum_i cotangent_i f(x_i)` with respect to each layer's weights, in the
    /// layers' layout. ReLU's derivative at 0 is taken as 0, as Burn's is.
    pub fn gradient(&self, layers: &[Layer], cotangent: &[f64]) -> Vec<Vec<f64>> {
        let n = self.n;
        let mut delta = cotangent.to_vec(); // d/dz of the current layer, [n, d_out]
        let mut grads = vec![Vec::new(); layers.len()];
        for (index, layer) in layers.iter().enumerate().rev() {
            let [d_in, d_out] = layer.shape;
            let input = &self.activations[index];
            // grad W = input^T delta: [d_in, d_out].
            let mut grad = vec![0.0; d_in * d_out];
            let (input_t, delta_rm) = ((1, d_in), (d_out, 1));
            gemm(
                (d_in, d_out, n),
                &mut grad,
                (d_out, 1),
                input,
                input_t,
                &delta,
                delta_rm,
                false,
            );
            grads[index] = grad;
            if index > 0 {
                // delta_prev = (delta W^T) masked by the ReLU that produced `input`.
                let mut previous = vec![0.0; n * d_in];
                let weights_t = (1, d_out);
                let (product, rows) = ((n, d_in, d_out), (d_in, 1));
                gemm(
                    product,
                    &mut previous,
                    rows,
                    &delta,
                    delta_rm,
                    &layer.weights,
                    weights_t,
                    false,
                );
                for (p, &a) in previous.iter_mut().zip(input) {
                    if a <= 0.0 {
                        *p = 0.0;
                    }
                }
                delta = previous;
            }
        }
        grads
    }
}

/// `a [n, d_in] x W [d_in, d_out]`, row-major.
fn matmul(a: &[f64], n: usize, layer: &Layer) -> Vec<f64> {
    let [d_in, d_out] = layer.shape;
    let mut out = vec![0.0; n * d_out];
    let strides = ((d_out, 1), (d_in, 1), (d_out, 1));
    gemm(
        (n, d_out, d_in),
        &mut out,
        strides.0,
        a,
        strides.1,
        &layer.weights,
        strides.2,
        false,
    );
    out
}

#[cfg(test)]
mod tests {
    use burn::optim::GradientsParams;
    use burn::tensor::{DType, Device, Tensor, TensorData};
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    use super::*;
    use crate::model::BiasFreeMlp;

    fn tensor<const D: usize>(values: Vec<f64>, shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values, shape), (device, DType::F64))
    }

    #[test]
    fn the_hand_gradient_equals_burns_autodiff() {
        let seed = crate::test_support::test_seed(0x70E_6AD);
        let mut rng = StdRng::seed_from_u64(seed);
        let device = Device::flex().autodiff();
        for depth in [2, 3] {
            let hidden = 17;
            let n = 40;
            let mut shapes = vec![[2, hidden]];
            shapes.extend((2..depth).map(|_| [hidden, hidden]));
            shapes.push([hidden, 1]);
            let layers: Vec<Layer> = shapes
                .iter()
                .map(|&shape| Layer {
                    weights: (0..shape[0] * shape[1])
                        .map(|_| rng.random_range(-1.0..1.0))
                        .collect(),
                    shape,
                })
                .collect();
            let inputs: Vec<f64> = (0..2 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let cotangent: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();

            let forward = Forward::new(&layers, &inputs);
            let hand = forward.gradient(&layers, &cotangent);

            let model = BiasFreeMlp::from_weights(
                layers
                    .iter()
                    .map(|l| tensor(l.weights.clone(), l.shape, &device))
                    .collect(),
            );
            let outputs = model.forward(tensor(inputs.clone(), [n, 2], &device));
            let burn_outputs: Vec<f64> = outputs.clone().into_data().iter::<f64>().collect();
            let objective = (outputs * tensor(cotangent.clone(), [n], &device)).sum();
            let grads = GradientsParams::from_grads(objective.backward(), &model);
            for (a, b) in forward.outputs().iter().zip(&burn_outputs) {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    "seed {seed}: {a} vs {b}"
                );
            }
            for (index, param) in model.layers.iter().enumerate() {
                let burn: Vec<f64> = grads
                    .get::<2>(param.id)
                    .expect("a gradient")
                    .into_data()
                    .iter::<f64>()
                    .collect();
                let scale = burn.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                for (a, b) in hand[index].iter().zip(&burn) {
                    assert!(
                        (a - b).abs() <= 1e-12 * scale,
                        "seed {seed}, depth {depth}, layer {index}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
