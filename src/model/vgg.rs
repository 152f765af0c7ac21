//! Bias-free VGG-16 for CIFAR-10 (DESIGN §2): 13 conv3x3 layers with ReLU and 2x2 max pooling
//! after each block, one linear classifier, a bias only on the first conv, He-normal weights
//! drawn on the host from the run seed (the same network on every backend). Each convolution with
//! its ReLU and pool runs through [`conv3x3_relu`]: our fused kernels on `flex`, Burn's ops
//! elsewhere.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{SeedableRng, rngs::StdRng};

use super::init::he_normal;
use crate::conv::conv3x3_relu;

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

/// One conv layer's shape: `in_channels -> out_channels` on `side x side` images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvLayerShape {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Image side (CIFAR-10: 32, halved by every pool).
    pub side: usize,
}

/// The 13 conv layers' shapes of the VGG-16 at `width_divisor`, in order.
pub fn conv_layer_shapes(width_divisor: usize) -> Vec<ConvLayerShape> {
    let (mut shapes, mut in_channels, mut side) = (Vec::new(), 3, 32);
    for entry in VGG16_PLAN {
        match entry {
            Some(channels) => {
                let out_channels = (channels / width_divisor).max(1);
                shapes.push(ConvLayerShape {
                    in_channels,
                    out_channels,
                    side,
                });
                in_channels = out_channels;
            }
            None => side /= 2,
        }
    }
    shapes
}

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
            pool_after,
        }
    }

    /// Logits `[batch, 10]` for images `[batch, 3, 32, 32]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for (conv, &pool) in self.features.iter().zip(&self.pool_after) {
            let bias = conv.bias.as_ref().map(|bias| bias.val());
            x = conv3x3_relu(x, conv.weight.val(), bias, pool);
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

    /// Our convolution (forward, input and weight gradient) equals Burn's on every layer shape
    /// at widths 1, 8 and 16, for odd batch sizes and a batch of 1: alone, and fused with the
    /// ReLU and (where the plan has one) the max pool that follow it in the model.
    #[test]
    fn our_convolution_equals_burns_on_every_layer_shape() {
        use crate::conv::test_support::{Block, assert_block_matches_burn};
        let seed = crate::test_support::test_seed(17);
        let device = Device::flex().autodiff();
        device.seed(seed);
        let pooled = VGG16_PLAN
            .iter()
            .zip(VGG16_PLAN.iter().skip(1).chain([&None]))
            .filter(|(layer, _)| layer.is_some())
            .map(|(_, next)| next.is_none());
        for (k, batches) in [(1, &[1, 3][..]), (8, &[1, 5, 7]), (16, &[1, 2, 9])] {
            let mut layers: Vec<_> = conv_layer_shapes(k)
                .into_iter()
                .zip(pooled.clone())
                .collect();
            layers.dedup(); // repeated layers are adjacent
            for (shape, pool) in layers {
                let fused = if pool { Block::ReluPool } else { Block::Relu };
                for &batch in batches {
                    let dims = (batch, shape.in_channels, shape.out_channels, shape.side);
                    for block in [Block::Conv, fused] {
                        let context = format!("seed {seed}, width/{k}");
                        assert_block_matches_burn(block, dims, &device, &context);
                    }
                }
            }
        }
    }

    #[test]
    fn layer_shapes_follow_the_plan() {
        let shapes = conv_layer_shapes(8);
        assert_eq!(shapes.len(), 13);
        assert_eq!(
            (
                shapes[0].in_channels,
                shapes[0].out_channels,
                shapes[0].side
            ),
            (3, 8, 32)
        );
        assert_eq!(
            (
                shapes[12].in_channels,
                shapes[12].out_channels,
                shapes[12].side
            ),
            (64, 64, 2)
        );
        let model = Vgg::new(8, 0, &Device::flex());
        for (conv, shape) in model.features.iter().zip(&shapes) {
            assert_eq!(
                conv.weight.dims(),
                [shape.out_channels, shape.in_channels, 3, 3]
            );
        }
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
