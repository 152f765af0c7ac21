//! [`Conv3x3Backend`] with autodiff on `flex`: the forward kernel, recorded with a backward step
//! that computes the input gradient (only when the input needs one) and the weight gradient with
//! our kernels.

use burn::backend::Flex;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;

use super::{Conv3x3Backend, conv_shape, flex_tensor, host_f32, kernels};

/// The backward step of one convolution; its state is the forward's input and weights.
#[derive(Debug)]
struct Conv3x3Backward;

impl Backward<Flex, 2> for Conv3x3Backward {
    type State = (FloatTensor<Flex>, FloatTensor<Flex>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight) = ops.state;
        let shape = conv_shape(&x, &weight);
        let grad_values = host_f32(&grad);
        if let Some(node) = node_x {
            let values = kernels::input_grad(&grad_values, &host_f32(&weight), &shape);
            let dims = [shape.batch, shape.in_channels, shape.height, shape.width];
            grads.register::<Flex>(node.id, flex_tensor(values, dims));
        }
        if let Some(node) = node_weight {
            let values = kernels::weight_grad(&host_f32(&x), &grad_values, &shape);
            let dims = [shape.out_channels, shape.in_channels, 3, 3];
            grads.register::<Flex>(node.id, flex_tensor(values, dims));
        }
    }
}

impl<C: CheckpointStrategy> Conv3x3Backend for Autodiff<Flex, C> {
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        match Conv3x3Backward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                let out = Flex::conv3x3(x.clone(), weight.clone());
                prep.finish((x, weight), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::conv3x3(x.into_primitive(), weight.into_primitive()))
            }
        }
    }
}
