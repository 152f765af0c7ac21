//! Learner diagnostics: weight histograms, margins, balance quantities, pruning.

mod balance;
mod histogram;
mod log;
mod margins;
mod prune;
mod snapshot;

pub use balance::{BALANCE_HEADER, balance_rows, conjugate_sum, layer_q};
pub use histogram::{Histogram, LayerHistogram, LayerSummary, layer_histogram, summarize};
pub use log::{DiagnosticsLog, MarginProbe, margin_probe};
pub use margins::{MARGINS_HEADER, Margins, class_margins, margins};
pub use prune::{PruneScope, prune_weights, with_weights, zero_fraction};
pub use snapshot::{LayerWeights, weight_layers};

/// A number for a CSV cell: plain notation for ordinary magnitudes, scientific notation (still
/// exact, shortest round-trip) for very small or large ones.
pub fn format_number(value: f64) -> String {
    if value != 0.0 && value.is_finite() && !(1e-4..1e6).contains(&value.abs()) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}
