//! Our convolution against Burn's outside VGG's layer shapes (those are tested in
//! `model::vgg`): a bias, a constant input, non-square images, no autodiff.

use burn::tensor::{Device, Distribution, Tensor};

use super::test_support::{assert_close, assert_conv_matches_burn, values};
use super::{conv3x3, conv3x3_options};
use crate::test_support::test_seed;

#[test]
fn odd_channel_counts_and_tiny_images_match_burn() {
    let seed = test_seed(20);
    let device = Device::flex().autodiff();
    device.seed(seed);
    for dims in [(3, 1, 1, 1), (2, 5, 3, 2), (7, 3, 13, 3), (1, 9, 4, 5)] {
        assert_conv_matches_burn(dims, &device, &format!("seed {seed}"));
    }
}

#[test]
fn the_bias_and_a_constant_input_behave_as_in_burn() {
    let seed = test_seed(18);
    let device = Device::flex().autodiff();
    device.seed(seed);
    let normal = Distribution::Normal(0.0, 1.0);
    // A constant input (no gradient), as the first layer of a network sees its images.
    let x = Tensor::<4>::random([4, 3, 8, 8], normal, &device);
    let w = Tensor::<4>::random([6, 3, 3, 3], normal, &device).require_grad();
    let b = Tensor::<1>::random([6], normal, &device).require_grad();
    let r = Tensor::<4>::random([4, 6, 8, 8], normal, &device);
    let run = |ours: bool| {
        let out = if ours {
            conv3x3(x.clone(), w.clone(), Some(b.clone()))
        } else {
            burn::tensor::module::conv2d(x.clone(), w.clone(), Some(b.clone()), conv3x3_options())
        };
        let grads = (out.clone() * r.clone()).sum().backward();
        [
            values(out.inner()),
            values(w.grad(&grads).expect("weight gradient")),
            values(b.grad(&grads).expect("bias gradient")),
        ]
    };
    for (part, (ours, burns)) in ["output", "weight gradient", "bias gradient"]
        .iter()
        .zip(run(true).iter().zip(&run(false)))
    {
        assert_close(ours, burns, &format!("seed {seed}: {part}"));
    }
}

#[test]
fn without_autodiff_non_square_images_match_burn() {
    let seed = test_seed(19);
    let device = Device::flex();
    device.seed(seed);
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<4>::random([3, 5, 4, 6], normal, &device);
    let w = Tensor::<4>::random([7, 5, 3, 3], normal, &device);
    let ours = values(conv3x3(x.clone(), w.clone(), None));
    let burns = values(burn::tensor::module::conv2d(x, w, None, conv3x3_options()));
    assert_close(&ours, &burns, &format!("seed {seed}"));
}
