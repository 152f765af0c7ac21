//! The math of the learner diagnostics, one definition each: weight histograms, margins, balance
//! quantities, magnitude pruning, and mean ± std over seeds.

mod balance;
mod histogram;
mod margins;
mod prune;
mod snapshot;
mod stats;

pub use balance::{BalanceRow, balance_rows, conjugate_sum, layer_q, max_drift};
pub use histogram::{Histogram, LayerHistogram, LayerSummary, layer_histogram, summarize};
pub use margins::{Margins, class_margins, margins, norm_product, q_margin};
pub use prune::{PruneScope, prune_weights, with_weights, zero_fraction};
pub use snapshot::{LayerWeights, group_layers, weight_layers};
pub use stats::MeanStd;
