//! Bias-free VGG-16 for CIFAR-10 (DESIGN §2): 13 conv3x3 layers with ReLU and 2x2 max pooling
//! after each block, one linear classifier, a bias only on the first conv, He-normal weights
//! drawn on the host from the run seed (the same network on every backend).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{SeedableRng, rngs::StdRng};

use super::init::he_normal;

/// Output channels of the 13 conv layers at full width; `None` marks a 2x2 max pool.
const VGG16_PLAN: [Option<usize>; 18] = [
    Some(64),
    Some(64),
    None,
    Some(128),
    Some(128),
    None,
    Some(256),
    Some(256),
    Some(256),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
];

/// Number of CIFAR-10 classes.
pub const NUM_CLASSES: usize = 10;

/// The bias-free VGG-16. Parameter paths are `features.N.weight` (N = 0..12, conv order),
/// `features.0.bias`, and `classifier.weight`.
#[derive(Module, Debug)]
pub struct Vgg {
    /// The 13 conv layers, in order.
    pub features: Vec<Conv2d>,
    /// The 512/k -> 10 linear layer, without bias.
    pub classifier: Linear,
    pool: MaxPool2d,
    /// For each conv layer, whether a max pool follows it.
    pool_after: Vec<bool>,
}

/// A He-normal weight of `shape` and fan-in `fan_in`, drawn from `rng` and uploaded to `device`.
fn host_weights<const D: usize>(
    rng: &mut StdRng,
    shape: [usize; D],
    fan_in: usize,
    device: &Device,
) -> Param<Tensor<D>> {
    let values = he_normal(rng, shape.iter().product(), fan_in);
    Param::from_data(TensorData::new(values, shape), device)
}

impl Vgg {
    /// A VGG-16 with every channel count divided by `width_divisor` (at least 1 channel), its
    /// weights He-normal (N(0, 2 / fan-in)) drawn on the host from `seed`, layer by layer in
    /// order, then uploaded to `device`. The first conv's bias starts at zero.
    pub fn new(width_divisor: usize, seed: u64, device: &Device) -> Self {
        assert!(width_divisor >= 1, "width_divisor must be >= 1");
        let mut rng = StdRng::seed_from_u64(seed);
        let mut features = Vec::new();
        let mut pool_after = Vec::new();
        let mut in_channels = 3;
        for entry in VGG16_PLAN {
            match entry {
                Some(channels) => {
                    let out_channels = (channels / width_divisor).max(1);
                    let mut conv = Conv2dConfig::new([in_channels, out_channels], [3, 3])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .with_bias(features.is_empty())
                        .with_initializer(Initializer::Zeros)
                        .init(device);
                    let shape = [out_channels, in_channels, 3, 3];
                    conv.weight = host_weights(&mut rng, shape, in_channels * 9, device);
                    features.push(conv);
                    pool_after.push(false);
                    in_channels = out_channels;
                }
                None => *pool_after.last_mut().expect("plan starts with a conv") = true,
            }
        }
        let mut classifier = LinearConfig::new(in_channels, NUM_CLASSES)
            .with_bias(false)
            .with_initializer(Initializer::Zeros)
            .init(device);
        classifier.weight = host_weights(&mut rng, [in_channels, NUM_CLASSES], in_channels, device);
        Self {
            features,
            classifier,
            pool: MaxPool2dConfig::new([2, 2]).init(),
            pool_after,
        }
    }

    /// Logits `[batch, 10]` for images `[batch, 3, 32, 32]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for (conv, &pool) in self.features.iter().zip(&self.pool_after) {
            x = relu(conv.forward(x));
            if pool {
                x = self.pool.forward(x);
            }
        }
        let [batch, channels, _, _] = x.dims();
        self.classifier.forward(x.reshape([batch, channels]))
    }

    /// Number of weight layers `L` (the homogeneity degree): 14.
    pub fn depth(&self) -> usize {
        self.features.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::param_paths;

    #[test]
    fn full_width_has_vgg16_shapes_and_paths() {
        let device = Device::flex();
        let model = Vgg::new(1, 0, &device);
        assert_eq!(model.features.len(), 13);
        assert_eq!(model.depth(), 14);
        let paths = param_paths(&model);
        assert_eq!(paths[0], "features.0.weight");
        assert_eq!(paths[1], "features.0.bias");
        assert_eq!(paths.last().unwrap(), "classifier.weight");
        assert_eq!(paths.len(), 15, "13 conv weights + 1 bias + classifier");
        // sum of c_in * c_out * 9 over the 13 convs, + 512 * 10, + the 64-entry first bias.
        assert_eq!(model.num_params(), 14_715_648);
    }

    #[test]
    fn initial_weights_depend_on_the_run_seed_only() {
        let seed = crate::test_support::test_seed(11);
        let values = |device_seed: u64, seed: u64| -> Vec<Vec<f64>> {
            let device = Device::flex();
            device.seed(device_seed);
            crate::optim::named_params(&Vgg::new(16, seed, &device), true)
                .into_iter()
                .map(|p| p.values)
                .collect()
        };
        let first = values(1, seed);
        assert_eq!(
            first,
            values(2, seed),
            "seed {seed}: the device RNG must not matter"
        );
        assert_ne!(
            first,
            values(1, seed + 1),
            "seed {seed}: another seed, other weights"
        );
        assert!(
            first[1].iter().all(|&b| b == 0.0),
            "the first bias starts at zero"
        );
        // features.12 at width/16: 32 * 32 * 9 weights of variance 2 / (32 * 9).
        let last_conv = &first[13];
        let variance = last_conv.iter().map(|w| w * w).sum::<f64>() / last_conv.len() as f64;
        let expected = 2.0 / (32.0 * 9.0);
        assert!(
            (variance / expected - 1.0).abs() < 0.1,
            "seed {seed}: variance {variance} vs He {expected}"
        );
    }

    #[test]
    fn every_parameter_gets_a_gradient() {
        let device = Device::flex().autodiff();
        let model = Vgg::new(16, 0, &device);
        let images = Tensor::<4>::ones([2, 3, 32, 32], &device);
        let grads = model.forward(images).sum().backward();
        let grads = burn::optim::GradientsParams::from_grads(grads, &model);
        assert_eq!(
            grads.len(),
            param_paths(&model).len(),
            "the first bias trains too"
        );
    }

    #[test]
    fn reduced_width_forward_gives_logits() {
        let device = Device::flex();
        let model = Vgg::new(16, 0, &device);
        let images = Tensor::<4>::zeros([2, 3, 32, 32], &device);
        assert_eq!(model.forward(images).dims(), [2, NUM_CLASSES]);
        assert_eq!(model.features[12].weight.dims(), [32, 32, 3, 3]);
    }
}
