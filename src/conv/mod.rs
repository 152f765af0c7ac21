//! Our own 3x3 convolution (stride 1, padding 1, no dilation or groups) for the `flex` CPU
//! backend, the one VGG-16 uses in all 13 layers.
//!
//! Burn's flex convolution runs one small GEMM per image (forward), a col2im scatter (input
//! gradient) and one GEMM per input channel (weight gradient); on our VGG it made a training
//! step 2-3x slower than PyTorch's. [`kernels`] computes the same three products as large GEMMs
//! with the batch folded into the column dimension. The operation is registered with Burn through
//! its backend-extension mechanism (`#[backend_extension]`): [`Conv3x3Backend`] is implemented
//! for `Flex` (the kernels) and for `Autodiff<Flex>` (the forward kernel, and a backward step
//! that calls the gradient kernels). [`conv3x3`] uses it for f32 tensors on `flex` and Burn's
//! `conv2d` everywhere else (GPU backends, other dtypes), so a model calls one function.
//!
//! [`conv3x3_relu`] is a VGG block: the convolution with its bias, ReLU and 2x2 max pool fused
//! into the kernel's epilogue (one pass over the GEMM's result, which it already copies into
//! NCHW order; the window index of each maximum is kept), and their gradient into the backward
//! step's prologue (the output gradient sent to each window's maximum where the output is
//! positive). Burn's separate ops cost a full-width step ~25% (they allocated a mask, an index
//! tensor and the pre-pool activations per layer); `MIRRORBURN_CONV=burn` runs Burn's
//! `conv2d`, `relu` and `max_pool2d` instead, for comparisons.

mod autodiff;
pub mod direct;
pub mod gemm;
pub mod kernels;
pub mod small;
mod vector;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{DType, Device, Tensor, TensorData};

use kernels::{ConvShape, Epilogue};

/// A backend that runs the 3x3, stride-1, padding-1 convolution itself, with VGG's bias, ReLU
/// and 2x2 max pool fused into it.
#[backend_extension(Flex, Autodiff)]
pub trait Conv3x3Backend: Backend {
    /// The convolution of `x` (`[batch, in, height, width]`, f32) with `weight`
    /// (`[out, in, 3, 3]`, f32), padding 1, stride 1, then ReLU if `relu`, then a 2x2 max pool
    /// (stride 2) if `pool`: `[batch, out, height, width]`, or `[batch, out, height / 2,
    /// width / 2]` when pooling.
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        relu: bool,
        pool: bool,
    ) -> FloatTensor<Self>;

    /// [`Conv3x3Backend::conv3x3`] with `bias` (`[out]`) added before the ReLU.
    fn conv3x3_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        relu: bool,
        pool: bool,
    ) -> FloatTensor<Self>;
}

impl Conv3x3Backend for Flex {
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        relu: bool,
        pool: bool,
    ) -> FloatTensor<Self> {
        forward_tensor(&x, &weight, None, relu, pool).0
    }

    fn conv3x3_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        relu: bool,
        pool: bool,
    ) -> FloatTensor<Self> {
        forward_tensor(&x, &weight, Some(&bias), relu, pool).0
    }
}

/// [`kernels::forward_with`] on flex tensors, with the epilogue `bias`, `relu`, `pool`: the
/// output tensor and the kernel's output (whose `argmax` the backward step needs).
fn forward_tensor(
    x: &FloatTensor<Flex>,
    weight: &FloatTensor<Flex>,
    bias: Option<&FloatTensor<Flex>>,
    relu: bool,
    pool: bool,
) -> (FloatTensor<Flex>, kernels::Output) {
    let shape = conv_shape(x, weight);
    let bias = bias.map(host_f32);
    let epilogue = Epilogue {
        bias: bias.as_deref(),
        relu,
        pool,
    };
    let mut output = kernels::forward_with(&host_f32(x), &host_f32(weight), &shape, epilogue);
    let (height, width) = if pool {
        (shape.height / 2, shape.width / 2)
    } else {
        (shape.height, shape.width)
    };
    let values = std::mem::take(&mut output.values);
    let tensor = flex_tensor(values, [shape.batch, shape.out_channels, height, width]);
    (tensor, output)
}

/// The options of the convolution [`conv3x3`] computes, for Burn's `conv2d`.
pub fn conv3x3_options() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}

/// The 3x3, stride-1, padding-1 convolution of `x` (`[batch, in, height, width]`) with `weight`
/// (`[out, in, 3, 3]`) plus an optional `bias` (`[out]`). On `flex` (with or without autodiff)
/// with f32 tensors it runs [`Conv3x3Backend`]; elsewhere Burn's `conv2d`, with the same result
/// up to f32 rounding.
pub fn conv3x3(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
    let [_, in_channels, kh, kw] = weight.dims();
    assert!(
        kh == 3 && kw == 3 && x.dims()[1] == in_channels,
        "conv3x3: weight {:?} does not fit input {:?}",
        weight.dims(),
        x.dims()
    );
    if !uses_our_kernels(&x, &weight) {
        return burn::tensor::module::conv2d(x, weight, bias, conv3x3_options());
    }
    fused(x, weight, bias, false, false)
}

/// A VGG block's convolution: ReLU of [`conv3x3`], then, if `pool`, a 2x2 max pool with stride
/// 2. On `flex` with f32 tensors all of it runs in our kernels, the ReLU and the pool in the
/// convolution's epilogue (forward) and prologue (backward), with no intermediate tensors;
/// elsewhere Burn's `conv2d`, `relu` and `max_pool2d`.
pub fn conv3x3_relu(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    pool: bool,
) -> Tensor<4> {
    if uses_our_kernels(&x, &weight) {
        return fused(x, weight, bias, true, pool);
    }
    let out = burn::tensor::activation::relu(conv3x3(x, weight, bias));
    if pool {
        burn::tensor::module::max_pool2d(out, MaxPoolOptions::new([2, 2]))
    } else {
        out
    }
}

/// [`Conv3x3Backend::conv3x3`] on tensors.
fn fused(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    relu: bool,
    pool: bool,
) -> Tensor<4> {
    let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
    Tensor::<4>::from_dispatch(match bias {
        None => <Dispatch as Conv3x3Backend>::conv3x3(x, weight, relu, pool),
        Some(bias) => {
            <Dispatch as Conv3x3Backend>::conv3x3_bias(x, weight, bias.into_dispatch(), relu, pool)
        }
    })
}

/// The environment variable that, set to `burn`, makes [`conv3x3`] and [`conv3x3_relu`] use
/// Burn's ops on `flex` too (read once per process; for comparisons with Burn's).
pub const CONV_VARIABLE: &str = "MIRRORBURN_CONV";

/// Whether [`conv3x3`] runs our kernels for these tensors: f32 on the `flex` device, unless
/// [`CONV_VARIABLE`] is `burn`.
pub fn uses_our_kernels(x: &Tensor<4>, weight: &Tensor<4>) -> bool {
    static BURN_CONV: OnceLock<bool> = OnceLock::new();
    let burn_conv = *BURN_CONV.get_or_init(|| {
        std::env::var(CONV_VARIABLE).is_ok_and(|value| value.eq_ignore_ascii_case("burn"))
    });
    !burn_conv
        && x.device().inner() == Device::flex()
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
}

/// The dimensions of a convolution of `x` with `weight`.
fn conv_shape(x: &FloatTensor<Flex>, weight: &FloatTensor<Flex>) -> ConvShape {
    let (x_dims, w_dims) = (x.layout().shape(), weight.layout().shape());
    assert!(
        x_dims.num_dims() == 4 && w_dims.num_dims() == 4 && w_dims[2] == 3 && w_dims[3] == 3,
        "conv3x3 needs [batch, in, h, w] and [out, in, 3, 3]"
    );
    assert_eq!(x_dims[1], w_dims[1], "conv3x3: input channels");
    ConvShape {
        batch: x_dims[0],
        in_channels: x_dims[1],
        out_channels: w_dims[0],
        height: x_dims[2],
        width: x_dims[3],
    }
}

/// The f32 values of a flex tensor in row-major order (copied only when it is not contiguous).
fn host_f32(tensor: &FloatTensor<Flex>) -> std::borrow::Cow<'_, [f32]> {
    assert_eq!(tensor.dtype(), DType::F32, "conv3x3 runs on f32 tensors");
    match tensor.as_slice::<f32>() {
        Some(values) => values.into(),
        None => tensor
            .to_contiguous()
            .as_slice::<f32>()
            .expect("contiguous")
            .to_vec()
            .into(),
    }
}

/// A flex tensor of `shape` holding `values`.
fn flex_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FloatTensor<Flex> {
    FloatTensor::<Flex>::from_data(TensorData::new(values, shape))
}
