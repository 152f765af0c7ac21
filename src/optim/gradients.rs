//! Synthetic gradients for a module: what the benchmark times the optimizer on, and what the
//! optimizer tests step with.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Tensor};

/// Gradients of the same shapes as `module`'s float parameters, drawn from N(0, scale^2), on the
/// module's (non-autodiff) device.
pub fn random_gradients<M: Module>(module: &M, scale: f64) -> GradientsParams {
    struct Draw {
        scale: f64,
        grads: GradientsParams,
    }
    impl ModuleVisitor for Draw {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let device = value.device().without_autodiff();
            let normal = Distribution::Normal(0.0, self.scale);
            let grad = Tensor::<D>::random(value.shape(), normal, &device);
            self.grads.register(param.id, grad);
        }
    }
    let mut draw = Draw {
        scale,
        grads: GradientsParams::new(),
    };
    module.visit(&mut draw);
    draw.grads
}
