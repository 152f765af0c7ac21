//! Width-rescaled, layerwise mirror descent for Burn.

mod fused_cpu;
mod mirror_descent;
mod param_paths;
mod potential;

pub use mirror_descent::{LayerPotential, MirrorDescent, MirrorDescentConfig, MirrorDescentError};
pub use param_paths::{glob_to_regex, param_paths};
pub use potential::{MirrorMap, Potential, StepForm, WidthScaling, fan_in};

#[cfg(test)]
pub(crate) mod tests;
