//! The student's outputs and the gradient of `sum_i c_i f(x_i)` (any per-point cotangents `c`,
//! e.g. the exponential loss's) for a bias-free ReLU network, derived by hand in plain f64.
//!
//! The toy trains 300 to 10,300 parameters on 200 points for up to millions of steps; through
//! Burn's autodiff each step is dozens of tiny tensor operations whose fixed cost dominates. This
//! is the same math as plain loops; `run` keeps the autodiff path as the reference
//! (`gradient = "autodiff"`), and a test holds the two together to 1e-12.
//!
//! The 2-layer student (the flow-limit study's millions of steps) has loops of its own: its
//! products are thin (inner dimension 2, an output of width 1), where a GEMM's packing and dispatch
//! cost more than the arithmetic; they are compiled for AVX2 where the CPU has it
//! ([`run_on`]). Deeper students go through the `gemm` crate ([`conv::gemm`](crate::conv::gemm)),
//! which their `width x width` layers need.

use crate::conv::gemm::gemm;
use crate::diagnostics::LayerWeights;
use crate::simd::{Isa, run_on};

/// A forward pass kept for the backward pass, its buffers reused by every step of a training loop.
pub struct Forward {
    kernel: Kernel,
    /// What the 2-layer loops are compiled for.
    isa: Isa,
}

/// How the passes are computed.
enum Kernel {
    /// Any depth, layer by layer through GEMMs: the inputs, each hidden layer after its ReLU, and
    /// the outputs `[n]` (no ReLU), and the backward pass's two buffers.
    Layers {
        activations: Vec<Vec<f64>>,
        deltas: [Vec<f64>; 2],
    },
    /// Two layers on 2-D inputs (the toy's 2-layer student), neuron by neuron over all points:
    /// the inputs' two columns and the outputs, both zero-padded to whole chunks of [`LANES`]
    /// points (a zero point adds exactly zero to every sum). A hidden activation costs two
    /// multiplications, so the backward pass recomputes it instead of storing it, and each
    /// neuron's forward and backward pass is one vectorised loop over the points.
    Planar {
        columns: [Vec<f64>; 2],
        outputs: Vec<f64>,
        n: usize,
    },
}

impl Forward {
    /// Runs `f(x) = W_L^T relu(... relu(W_1^T x))` on `inputs` (`[n, d_in]`, row-major); each
    /// layer's weights are in Burn's linear layout `[d_in, d_out]`.
    pub fn new(layers: &[LayerWeights], inputs: &[f64]) -> Self {
        Self::new_on(Isa::detected(), layers, inputs)
    }

    /// [`Forward::new`] with the 2-layer loops compiled for `isa`.
    fn new_on(isa: Isa, layers: &[LayerWeights], inputs: &[f64]) -> Self {
        let d_in = layers[0].dims[0];
        let n = inputs.len() / d_in;
        let kernel = if layers.len() == 2 && d_in == 2 {
            let column = |k: usize| padded(inputs.iter().skip(k).step_by(2).copied());
            Kernel::Planar {
                columns: [column(0), column(1)],
                outputs: padded(std::iter::repeat_n(0.0, n)),
                n,
            }
        } else {
            let mut activations = vec![inputs.to_vec()];
            activations.extend(layers.iter().map(|l| vec![0.0; n * l.dims[1]]));
            Kernel::Layers {
                activations,
                deltas: [Vec::new(), Vec::new()],
            }
        };
        let mut forward = Self { kernel, isa };
        forward.update(layers);
        forward
    }

    /// Runs the network again with new weights of the same shapes on the same inputs.
    pub fn update(&mut self, layers: &[LayerWeights]) {
        match &mut self.kernel {
            Kernel::Layers { activations, .. } => layers_forward(layers, activations),
            Kernel::Planar {
                columns, outputs, ..
            } => run_on(
                self.isa,
                #[inline(always)]
                || planar_forward(layers, columns, outputs),
            ),
        }
    }

    /// `f(x_i)` per point.
    pub fn outputs(&self) -> &[f64] {
        match &self.kernel {
            Kernel::Layers { activations, .. } => activations.last().expect("outputs"),
            Kernel::Planar { outputs, n, .. } => &outputs[..*n],
        }
    }

    /// The gradient of `sum_i cotangent_i f(x_i)` with respect to each layer's weights, in the
    /// layers' layout, written into `grads` (resized to fit). ReLU's derivative at 0 is taken as
    /// 0, as Burn's is.
    pub fn gradient(
        &mut self,
        layers: &[LayerWeights],
        cotangent: &[f64],
        grads: &mut Vec<Vec<f64>>,
    ) {
        grads.resize(layers.len(), Vec::new());
        for (grad, layer) in grads.iter_mut().zip(layers) {
            grad.clear();
            grad.resize(layer.weights.len(), 0.0);
        }
        match &mut self.kernel {
            Kernel::Layers {
                activations,
                deltas,
            } => layers_backward(layers, activations, deltas, cotangent, grads),
            Kernel::Planar { columns, .. } => run_on(
                self.isa,
                #[inline(always)]
                || planar_backward(layers, columns, cotangent, grads),
            ),
        }
    }
}

/// The forward pass of [`Kernel::Layers`].
fn layers_forward(layers: &[LayerWeights], activations: &mut [Vec<f64>]) {
    for (index, layer) in layers.iter().enumerate() {
        let (done, rest) = activations.split_at_mut(index + 1);
        let z = &mut rest[0];
        let [d_in, d_out] = shape(layer);
        let n = z.len() / d_out;
        // z = a [n, d_in] x W [d_in, d_out], row-major.
        let (rows_out, rows_in, rows_w) = ((d_out, 1), (d_in, 1), (d_out, 1));
        gemm(
            (n, d_out, d_in),
            z,
            rows_out,
            &done[index],
            rows_in,
            &layer.weights,
            rows_w,
            false,
        );
        if index + 1 < layers.len() {
            z.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

/// The backward pass of [`Kernel::Layers`] into `grads` (overwritten), with two reused buffers.
fn layers_backward(
    layers: &[LayerWeights],
    activations: &[Vec<f64>],
    [delta, previous]: &mut [Vec<f64>; 2],
    cotangent: &[f64],
    grads: &mut [Vec<f64>],
) {
    let n = cotangent.len();
    delta.clear();
    delta.extend_from_slice(cotangent); // d/dz of the current layer, [n, d_out]
    for (index, layer) in layers.iter().enumerate().rev() {
        let [d_in, d_out] = shape(layer);
        let input = &activations[index];
        // grad W = input^T delta: [d_in, d_out].
        let (input_t, delta_rows) = ((1, d_in), (d_out, 1));
        gemm(
            (d_in, d_out, n),
            &mut grads[index],
            (d_out, 1),
            input,
            input_t,
            delta,
            delta_rows,
            false,
        );
        if index > 0 {
            // delta_prev = (delta W^T) where the ReLU that produced `input` was active, else 0.
            previous.resize(n * d_in, 0.0);
            let (weights_t, rows) = ((1, d_out), (d_in, 1));
            gemm(
                (n, d_in, d_out),
                previous,
                rows,
                delta,
                delta_rows,
                &layer.weights,
                weights_t,
                false,
            );
            for (p, &a) in previous.iter_mut().zip(input) {
                *p = where_active(a, *p);
            }
            std::mem::swap(delta, previous);
        }
    }
}

/// Points per vectorised chunk of [`Kernel::Planar`]'s loops: four AVX2 registers of
/// independent sums, enough to hide the latency of the additions.
const LANES: usize = 16;

/// The forward pass of [`Kernel::Planar`]: `f(x_i) = sum_j a_j relu(w_j . x_i)`, [`LANES`] points
/// at a time, summed over the neurons in registers.
#[inline(always)]
fn planar_forward(layers: &[LayerWeights], [x0, x1]: &[Vec<f64>; 2], outputs: &mut [f64]) {
    let (first, output) = (&layers[0].weights, &layers[1].weights);
    let hidden = output.len();
    let neurons = || output.iter().zip(&first[..hidden]).zip(&first[hidden..]);
    let chunks = outputs
        .chunks_exact_mut(LANES)
        .zip(x0.chunks_exact(LANES))
        .zip(x1.chunks_exact(LANES));
    for ((f, x0), x1) in chunks {
        let mut sums = [0.0; LANES];
        for ((&a, &w0), &w1) in neurons() {
            for lane in 0..LANES {
                sums[lane] += a * (w0 * x0[lane] + w1 * x1[lane]).max(0.0);
            }
        }
        f.copy_from_slice(&sums);
    }
}

/// The backward pass of [`Kernel::Planar`] into zeroed `grads`: per neuron `j`,
/// `d/da_j = sum_i c_i relu(z_ij)` and `d/dw_j = a_j sum_i c_i [z_ij > 0] x_i`, each sum over the
/// points in [`LANES`] interleaved partial sums.
#[inline(always)]
fn planar_backward(
    layers: &[LayerWeights],
    [x0, x1]: &[Vec<f64>; 2],
    cotangent: &[f64],
    grads: &mut [Vec<f64>],
) {
    let (first, output) = (&layers[0].weights, &layers[1].weights);
    let hidden = output.len();
    let (first_grad, output_grad) = grads.split_at_mut(1);
    let cotangent = padded(cotangent.iter().copied());
    for (j, &a) in output.iter().enumerate() {
        let (w0, w1) = (first[j], first[hidden + j]);
        // Partial sums of d/da_j, d/dw_j0 / a_j and d/dw_j1 / a_j per lane.
        let mut sums = [[0.0; LANES]; 3];
        let chunks = cotangent
            .chunks_exact(LANES)
            .zip(x0.chunks_exact(LANES))
            .zip(x1.chunks_exact(LANES));
        for ((c, x0), x1) in chunks {
            for lane in 0..LANES {
                let z = w0 * x0[lane] + w1 * x1[lane];
                let active_c = where_active(z, c[lane]);
                sums[0][lane] += c[lane] * z.max(0.0);
                sums[1][lane] += active_c * x0[lane];
                sums[2][lane] += active_c * x1[lane];
            }
        }
        let total = |s: [f64; LANES]| s.iter().sum::<f64>();
        output_grad[0][j] = total(sums[0]);
        first_grad[0][j] = a * total(sums[1]);
        first_grad[0][hidden + j] = a * total(sums[2]);
    }
}

/// `values` zero-padded to a whole number of chunks of [`LANES`].
fn padded(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut values: Vec<f64> = values.collect();
    values.resize(values.len().div_ceil(LANES) * LANES, 0.0);
    values
}

/// `value` where `activation > 0` (the ReLU was active), else 0: a branch-free mask, since the
/// activity pattern is unpredictable.
#[inline(always)]
fn where_active(activation: f64, value: f64) -> f64 {
    let active = 0u64.wrapping_sub((activation > 0.0) as u64);
    f64::from_bits(value.to_bits() & active)
}

/// `[d_in, d_out]` of a linear layer.
fn shape(layer: &LayerWeights) -> [usize; 2] {
    [layer.dims[0], layer.dims[1]]
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

    /// Random weights of the given shapes, `n` random 2-D inputs and cotangents.
    fn random_pass(
        rng: &mut StdRng,
        shapes: &[[usize; 2]],
        n: usize,
    ) -> (Vec<LayerWeights>, Vec<f64>, Vec<f64>) {
        let layers = shapes
            .iter()
            .enumerate()
            .map(|(index, &shape)| LayerWeights {
                path: format!("layers.{index}"),
                dims: shape.to_vec(),
                weights: (0..shape[0] * shape[1])
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect(),
                bias: None,
            })
            .collect();
        let inputs = (0..2 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let cotangent = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
        (layers, inputs, cotangent)
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
            let (layers, inputs, cotangent) = random_pass(&mut rng, &shapes, n);

            let mut forward = Forward::new(&layers, &inputs);
            let mut hand = Vec::new();
            forward.gradient(&layers, &cotangent, &mut hand);

            let model = BiasFreeMlp::from_weights(
                layers
                    .iter()
                    .map(|l| tensor(l.weights.clone(), shape(l), &device))
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

    /// The 2-layer loops built for AVX2 give the baseline build's bits (each build chosen per
    /// call); on a CPU without AVX2 it says so instead of comparing the baseline with itself.
    #[test]
    fn the_avx2_loops_give_the_baseline_bits() {
        use crate::simd::Isa;
        if Isa::detected() != Isa::Avx2 {
            println!("not run: this CPU has no AVX2");
            return;
        }
        let seed = crate::test_support::test_seed(0xA52);
        let mut rng = StdRng::seed_from_u64(seed);
        // The 2-layer student's own loops (deeper ones go through the gemm crate).
        let (layers, inputs, cotangent) = random_pass(&mut rng, &[[2, 23], [23, 1]], 37);
        let run = |isa| {
            let mut forward = Forward::new_on(isa, &layers, &inputs);
            let mut grads = Vec::new();
            forward.gradient(&layers, &cotangent, &mut grads);
            let mut bits: Vec<u64> = forward.outputs().iter().map(|v| v.to_bits()).collect();
            bits.extend(grads.iter().flatten().map(|v| v.to_bits()));
            bits
        };
        assert_eq!(run(Isa::Avx2), run(Isa::Baseline), "seed {seed}");
    }
}
