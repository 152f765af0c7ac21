//! A classification step's output that also carries the model's weights, adapted to burn-train's
//! loss and accuracy metrics and to ours.

use burn::module::Module;
use burn::tensor::{Int, Tensor};
use burn::train::ClassificationOutput;
use burn::train::metric::{AccuracyInput, Adaptor, ItemLazy, LossInput};

use super::weights::ModelWeights;

/// burn-train's [`ClassificationOutput`] and the weights of the model that produced it.
pub struct DiagnosticOutput {
    /// Loss, logits `[batch, classes]` and class indices `[batch]`.
    pub classification: ClassificationOutput,
    /// The model's parameters at this step.
    pub weights: ModelWeights,
}

impl DiagnosticOutput {
    /// The output of a step of `model`.
    pub fn new<M: Module>(classification: ClassificationOutput, model: &M) -> Self {
        Self {
            classification,
            weights: ModelWeights::of(model),
        }
    }
}

/// The input of [`ProductNormMarginMetric`](super::ProductNormMarginMetric).
#[derive(Clone, Debug)]
pub struct MarginInput {
    /// Logits `[batch, classes]`.
    pub logits: Tensor<2>,
    /// Class indices `[batch]`.
    pub targets: Tensor<1, Int>,
    /// The model's parameters when the logits were computed.
    pub weights: ModelWeights,
}

impl ItemLazy for DiagnosticOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        Ok(Self {
            classification: self.classification.sync()?,
            weights: self.weights.without_autodiff(),
        })
    }
}

impl Adaptor<AccuracyInput> for DiagnosticOutput {
    fn adapt(&self) -> AccuracyInput {
        self.classification.adapt()
    }
}

impl Adaptor<LossInput> for DiagnosticOutput {
    fn adapt(&self) -> LossInput {
        self.classification.adapt()
    }
}

impl Adaptor<ModelWeights> for DiagnosticOutput {
    fn adapt(&self) -> ModelWeights {
        self.weights.clone()
    }
}

impl Adaptor<MarginInput> for DiagnosticOutput {
    fn adapt(&self) -> MarginInput {
        MarginInput {
            logits: self.classification.output.clone(),
            targets: self.classification.targets.clone(),
            weights: self.weights.clone(),
        }
    }
}
