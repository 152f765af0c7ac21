//! Our convolution, alone and fused with ReLU and max pool, against Burn's ops outside VGG's
//! layer shapes (those are tested in `model::vgg`): odd sizes, a bias, a constant input, NaNs,
//! non-square images, no autodiff.

use burn::tensor::{Device, Distribution, Tensor};

use super::test_support::{Block, assert_block_matches_burn, assert_close, conv_and_grads, values};
use crate::test_support::test_seed;

#[test]
fn odd_channel_counts_and_tiny_images_match_burn() {
    let seed = test_seed(20);
    let device = Device::flex().autodiff();
    device.seed(seed);
    for dims in [(3, 1, 1, 1), (2, 5, 3, 2), (7, 3, 13, 3), (1, 9, 4, 5)] {
        for block in [Block::Conv, Block::Relu, Block::ReluPool] {
            if dims.3 >= 2 || !matches!(block, Block::ReluPool) {
                assert_block_matches_burn(block, dims, &device, &format!("seed {seed}"));
            }
        }
    }
}

/// Output, weight gradient and bias gradient of `block` with a bias, ours and Burn's, under the
/// loss `sum(out * r)` with `r` random of the output's shape (no input gradient: `x` is a
/// constant, as a network's images are).
fn with_bias(block: Block, x: &Tensor<4>, w: &Tensor<4>, b: &Tensor<1>) -> [[Vec<f32>; 3]; 2] {
    let (w, b) = (w.clone().require_grad(), b.clone().require_grad());
    let shape = block.ours(x.clone(), w.clone(), Some(b.clone())).dims();
    let r = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &x.device());
    [true, false].map(|ours| {
        let out = if ours {
            block.ours(x.clone(), w.clone(), Some(b.clone()))
        } else {
            block.burns(x.clone(), w.clone(), Some(b.clone()))
        };
        let grads = (out.clone() * r.clone()).sum().backward();
        [
            values(out.inner()),
            values(w.grad(&grads).expect("weight gradient")),
            values(b.grad(&grads).expect("bias gradient")),
        ]
    })
}

#[test]
fn the_bias_and_a_constant_input_behave_as_in_burn() {
    let seed = test_seed(18);
    let device = Device::flex().autodiff();
    device.seed(seed);
    let normal = Distribution::Normal(0.0, 1.0);
    // im2col + GEMM, and (on AVX-512 CPUs) the direct kernel: 17 wide, 9 in, 10 out channels.
    for ([batch, cin, h, w], cout) in [([4, 3, 8, 8], 6), ([2, 9, 18, 17], 10)] {
        let x = Tensor::<4>::random([batch, cin, h, w], normal, &device);
        let w = Tensor::<4>::random([cout, cin, 3, 3], normal, &device);
        let b = Tensor::<1>::random([cout], normal, &device);
        for block in [Block::Conv, Block::Relu, Block::ReluPool] {
            let [ours, burns] = with_bias(block, &x, &w, &b);
            for (part, (ours, burns)) in ["output", "weight gradient", "bias gradient"]
                .iter()
                .zip(ours.iter().zip(&burns))
            {
                let context = format!("seed {seed}: {:?} {block:?} {part}", x.dims());
                assert_close(ours, burns, &context);
            }
        }
    }
}

/// A NaN in the input reaches the same outputs and gradients as in Burn's ops: the ReLU keeps
/// it, the pool lets it win its window, and the gradient flows through it.
#[test]
fn a_nan_in_the_input_spreads_as_in_burn() {
    let seed = test_seed(21);
    let device = Device::flex().autodiff();
    device.seed(seed);
    let normal = Distribution::Normal(0.0, 1.0);
    let mut x = values(Tensor::<4>::random([3, 4, 6, 6], normal, &device));
    x[4 * 36 + 2 * 36 + 6 + 3] = f32::NAN; // image 1, channel 2, pixel (1, 3)
    let x = Tensor::<4>::from_data(burn::tensor::TensorData::new(x, [3, 4, 6, 6]), &device);
    let w = Tensor::<4>::random([5, 4, 3, 3], normal, &device);
    for block in [Block::Relu, Block::ReluPool] {
        let out_side = if matches!(block, Block::ReluPool) {
            3
        } else {
            6
        };
        let r = Tensor::<4>::random([3, 5, out_side, out_side], normal, &device);
        let ours = conv_and_grads(|x, w| block.ours(x, w, None), &x, &w, &r);
        let burns = conv_and_grads(|x, w| block.burns(x, w, None), &x, &w, &r);
        assert!(
            ours[0].iter().any(|v| v.is_nan()) && burns[0].iter().any(|v| v.is_nan()),
            "seed {seed}: {block:?}: the NaN reaches the output"
        );
        for (part, (ours, burns)) in ["output", "input gradient", "weight gradient"]
            .iter()
            .zip(ours.iter().zip(&burns))
        {
            assert_close(ours, burns, &format!("seed {seed}: {block:?} {part}"));
        }
    }
}

#[test]
fn without_autodiff_non_square_images_match_burn() {
    let seed = test_seed(19);
    let device = Device::flex();
    device.seed(seed);
    let normal = Distribution::Normal(0.0, 1.0);
    // The second shape takes the direct kernel on AVX-512 CPUs.
    for ([batch, cin, h, w], cout) in [([3, 5, 4, 6], 7), ([2, 8, 5, 19], 3)] {
        let x = Tensor::<4>::random([batch, cin, h, w], normal, &device);
        let w = Tensor::<4>::random([cout, cin, 3, 3], normal, &device);
        for block in [Block::Conv, Block::Relu, Block::ReluPool] {
            let ours = values(block.ours(x.clone(), w.clone(), None));
            let burns = values(block.burns(x.clone(), w.clone(), None));
            assert_close(
                &ours,
                &burns,
                &format!("seed {seed}: {:?} {block:?}", x.dims()),
            );
        }
    }
}

/// A NaN weight spreads as in Burn's ops on images small enough for the kernel that skips the
/// padding taps, which would drop the `0 * NaN` of a tap outside the image (Burn's forward pass
/// has it at all four pixels of a 2x2 image): our ops then take im2col + GEMM. The output and the
/// weight gradient equal Burn's; the input gradient does in the input channels the NaN weight
/// does not read, and is NaN wherever Burn's is in the one it does (Burn's backward pass drops
/// the padding's products, so it has fewer NaNs there than im2col + GEMM).
#[test]
fn a_nan_weight_spreads_as_in_burn_on_small_images() {
    let seed = test_seed(22);
    let device = Device::flex().autodiff();
    device.seed(seed);
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<4>::random([3, 4, 2, 2], normal, &device);
    let mut w = values(Tensor::<4>::random([5, 4, 3, 3], normal, &device));
    w[(2 * 4 + 1) * 9] = f32::NAN; // output channel 2, input channel 1, tap (0, 0)
    let w = Tensor::<4>::from_data(burn::tensor::TensorData::new(w, [5, 4, 3, 3]), &device);
    let r = Tensor::<4>::random([3, 5, 2, 2], normal, &device);
    let [out, dx, dw] = conv_and_grads(|x, w| Block::Conv.ours(x, w, None), &x, &w, &r);
    let [burn_out, burn_dx, burn_dw] =
        conv_and_grads(|x, w| Block::Conv.burns(x, w, None), &x, &w, &r);
    let nans = burn_out.iter().filter(|v| v.is_nan()).count();
    assert_eq!(
        nans,
        3 * 4,
        "seed {seed}: Burn's NaNs: all 4 pixels of channel 2"
    );
    assert_close(&out, &burn_out, &format!("seed {seed}: output"));
    assert_close(&dw, &burn_dw, &format!("seed {seed}: weight gradient"));
    // Per image and input channel, 4 pixels; the NaN weight reads input channel 1.
    for (plane, (ours, burns)) in dx.chunks_exact(4).zip(burn_dx.chunks_exact(4)).enumerate() {
        let context = format!(
            "seed {seed}: input gradient, image {}, channel {}",
            plane / 4,
            plane % 4
        );
        if plane % 4 != 1 {
            assert_close(ours, burns, &context);
        } else {
            assert!(
                burns.iter().any(|v| v.is_nan()),
                "{context}: Burn's has a NaN"
            );
            for (o, b) in ours.iter().zip(burns) {
                assert!(
                    !b.is_nan() || o.is_nan(),
                    "{context}: {o} where Burn's is NaN"
                );
            }
        }
    }
}
