//! Width-rescaled, layerwise mirror descent for Burn.

mod fallback;
mod fused_cpu;
mod gradients;
mod mirror_descent;
mod mirror_map;
mod params;
mod potential;

pub use fallback::dual_fallbacks;
pub use gradients::random_gradients;
pub use mirror_descent::{LayerPotential, MirrorDescent, MirrorDescentConfig, MirrorDescentError};
pub use mirror_map::{MirrorMap, ScaledP};
pub use params::{NamedParam, glob_to_regex, is_weight, named_params, param_paths};
pub use potential::{Potential, StepForm, WidthScaling, fan_in};

#[cfg(test)]
mod tests;
