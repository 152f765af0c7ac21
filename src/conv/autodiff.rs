//! [`Conv3x3Backend`] with autodiff on `flex`: the forward kernel with its epilogue, recorded
//! with a backward step that routes the output gradient through the pool's maxima and the
//! ReLU's mask (the epilogue's gradient), then computes the input gradient (only when the input
//! needs one), the weight gradient and the bias gradient with our kernels.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;

use super::{Conv3x3Backend, Epilogue, conv_shape, flex_tensor, forward_tensor, host_f32, kernels};

/// What the backward step keeps of the forward pass.
#[derive(Clone, Debug)]
struct State {
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    /// The forward's output.
    out: FloatTensor<Flex>,
    /// When pooling, the window index of each output's maximum ([`kernels::Output::argmax`]).
    argmax: Vec<u8>,
    relu: bool,
    pool: bool,
}

impl State {
    /// Computes the gradients of the parents named by `parents` (`[x, weight, bias]`; `None`
    /// where no gradient is needed) from the output gradient `grad`, and registers them.
    fn backward(
        self,
        grad: FloatTensor<Flex>,
        parents: [Option<NodeId>; 3],
        grads: &mut Gradients,
    ) {
        let shape = conv_shape(&self.x, &self.weight);
        let epilogue = Epilogue {
            bias: None,
            relu: self.relu,
            pool: self.pool,
        };
        let (grad, out) = (host_f32(&grad), host_f32(&self.out));
        let sums = kernels::epilogue_grad(&grad, &out, &self.argmax, &shape, epilogue);
        let [x, weight, bias] = parents;
        if let Some(id) = x {
            let values = kernels::input_grad(&sums, &host_f32(&self.weight), &shape);
            let dims = [shape.batch, shape.in_channels, shape.height, shape.width];
            grads.register::<Flex>(id, flex_tensor(values, dims));
        }
        if let Some(id) = weight {
            let values = kernels::weight_grad(&host_f32(&self.x), &sums, &shape);
            let dims = [shape.out_channels, shape.in_channels, 3, 3];
            grads.register::<Flex>(id, flex_tensor(values, dims));
        }
        if let Some(id) = bias {
            let values = kernels::bias_grad(&sums, &shape);
            grads.register::<Flex>(id, flex_tensor(values, [shape.out_channels]));
        }
    }
}

/// The backward step of a convolution without bias; parents `[x, weight]`.
#[derive(Debug)]
struct Conv3x3Backward;

/// The backward step of a convolution with bias; parents `[x, weight, bias]`.
#[derive(Debug)]
struct Conv3x3BiasBackward;

impl Backward<Flex, 2> for Conv3x3Backward {
    type State = State;

    fn backward(self, ops: Ops<State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let [x, weight] = ops.parents.map(|node| node.map(|node| node.id));
        ops.state.backward(grad, [x, weight, None], grads);
    }
}

impl Backward<Flex, 3> for Conv3x3BiasBackward {
    type State = State;

    fn backward(self, ops: Ops<State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let parents = ops.parents.map(|node| node.map(|node| node.id));
        ops.state.backward(grad, parents, grads);
    }
}

/// Runs the forward kernel and, for a tracked operation, keeps the [`State`].
fn forward(
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    bias: Option<FloatTensor<Flex>>,
    relu: bool,
    pool: bool,
) -> (FloatTensor<Flex>, State) {
    let (out, output) = forward_tensor(&x, &weight, bias.as_ref(), relu, pool);
    let state = State {
        x,
        weight,
        out: out.clone(),
        argmax: output.argmax,
        relu,
        pool,
    };
    (out, state)
}

impl<C: CheckpointStrategy> Conv3x3Backend for Autodiff<Flex, C> {
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        relu: bool,
        pool: bool,
    ) -> FloatTensor<Self> {
        match Conv3x3Backward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                let (out, state) = forward(x, weight, None, relu, pool);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                prep.finish(Flex::conv3x3(x, weight, relu, pool))
            }
        }
    }

    fn conv3x3_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        relu: bool,
        pool: bool,
    ) -> FloatTensor<Self> {
        match Conv3x3BiasBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                let (out, state) = forward(x, weight, Some(bias.into_primitive()), relu, pool);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                prep.finish(Flex::conv3x3_bias(
                    x,
                    weight,
                    bias.into_primitive(),
                    relu,
                    pool,
                ))
            }
        }
    }
}
