//! Our diagnostics as burn-train metrics (feature `learner`), so a model trained with
//! burn-train's `Learner` and [`MirrorDescentConfig`](crate::optim::MirrorDescentConfig) shows its
//! weight sparsity and product-norm margin next to loss and accuracy, in the dashboard and in the
//! metric logs.
//!
//! - [`WeightSparsityMetric`]: of one weight layer, the fraction of weights near zero
//!   (`|w| < 1e-3 max |w|`) or the ratio `||w||_1 / ||w||_2`
//!   ([`summarize`](crate::diagnostics::summarize)); the epoch's value is the one at its last batch.
//! - [`ProductNormMarginMetric`]: `min_i q_i / prod_l ||W_l||_F` with
//!   `q_i = f_{y_i}(x_i) - max_{j != y_i} f_j(x_i)` ([`norm_product`](crate::diagnostics::norm_product));
//!   the epoch's value is the minimum over its batches, so on the validation set (fixed weights)
//!   it is the margin of the whole set.
//!
//! Their inputs come from a step's output: return a [`DiagnosticOutput`] (burn-train's
//! `ClassificationOutput` plus the model's weights) from `TrainStep::step` and
//! `InferenceStep::step`, or implement `Adaptor<ModelWeights>` / `Adaptor<MarginInput>` for
//! your own output type. The weights are references to the step's tensors; each metric copies
//! them to the host once per batch, in burn-train's metric thread. `examples/learner.rs` trains
//! a small MLP this way with every potential.

mod metrics;
mod output;
mod weights;

pub use metrics::{ProductNormMarginMetric, SparsityStatistic, WeightSparsityMetric};
pub use output::{DiagnosticOutput, MarginInput};
pub use weights::ModelWeights;
