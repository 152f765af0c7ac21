//! One training step, the unit the epoch loop repeats: forward, cross-entropy, the loss and hit
//! counts added on the device, backward, mirror step. It reads nothing back to the host, so on a
//! GPU the steps of an epoch queue up without a stall; the tally is read at log points.

use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{GradientsParams, ModuleOptimizer};

use super::evaluate::Tally;
use crate::data::CifarBatch;
use crate::model::Vgg;

/// Trains `model` on one batch at step size `lr` and adds the batch to `tally` (on the device).
pub fn train_step(
    model: Vgg,
    optimizer: &mut ModuleOptimizer,
    loss_fn: &CrossEntropyLoss,
    batch: CifarBatch,
    tally: &mut Tally,
    lr: f64,
) -> Vgg {
    let logits = model.forward(batch.images);
    let loss = loss_fn.forward(logits.clone(), batch.targets.clone());
    tally.add(loss.clone().detach(), logits.detach(), batch.targets);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    optimizer.step(lr, model, grads)
}
