//! Width-rescaled, layerwise mirror descent for Burn: a Burn optimizer (`ModuleOptimizer`) built
//! from a [`MirrorDescentConfig`], usable on any Burn module wherever Burn's SGD is, burn-train's
//! `Learner` included.
//!
//! # The science
//!
//! Mirror descent replaces the Euclidean geometry of gradient descent with the geometry of a
//! strictly convex potential `R`. Jacobs and Montúfar, *Implicit Bias of Mirror Flow in Homogeneous
//! Neural Networks: Sparse and Dense Feature Learning*, show that on homogeneous networks
//! (ReLU, no biases) the flow converges in direction to a max-margin solution whose margin is
//! measured by the potential's horizon function: gradient descent's is the L2 margin, the
//! hyperbolic entropy's an L1-like one (sparse features), the p-homogeneous potentials' an
//! Lp margin (dense features for large p); and a non-homogeneous potential can converge
//! exponentially slowly. This module implements the potentials of its Table 1 and the VGG
//! experiment's layerwise, width-rescaled maps (its Appendix J.3; the formulas we settled on are in
//! the project's `DESIGN.md` §1).
//!
//! # Potentials
//!
//! A separable potential acts elementwise through its inverse metric `m(theta) = 1 / R''(theta)`.
//! With [`WidthScaling::FanIn`] (the default), a parameter of fan-in `w` is measured as
//! `u = sqrt(w) theta` (order 1 under He initialisation) and:
//!
//! | [`Potential`] | `m(theta)` | homogeneity |
//! |---|---|---|
//! | `Gd` | `1` | 2 |
//! | `Hyperbolic { lambda }` | `sqrt(u^2 + lambda) / sqrt(1 + lambda)` | 1 |
//! | `PHomogeneous { p, lambda }` | `lambda / (abs(u)^(p-2) + lambda)` | p |
//!
//! Both normalisations make the average step at initialisation comparable to GD's, and both tend
//! to GD as `lambda` grows (the paper's Lemma 4.10); small `lambda` is far from GD. With
//! [`WidthScaling::None`] the maps are Table 1's, unnormalised: `sqrt(theta^2 + lambda)` and
//! `1 / ((p - 1) abs(theta)^(p-2) + lambda)`. [`MirrorMap`] is the resolved map of one tensor.
//!
//! # Step forms
//!
//! - [`StepForm::Primal`] (default): `theta <- theta - lr m(theta) grad`, the inverse-metric step.
//! - [`StepForm::Dual`]: the exact mirror step, solving `grad R(theta') = grad R(theta) - lr grad`
//!   (closed form for the hyperbolic entropy, a safeguarded Newton solve for p-homogeneous). Where
//!   the result is not representable the element takes the primal step; such fallbacks are
//!   counted by [`dual_fallbacks`].
//!
//! For small `lr` the two agree to `O(lr^2)` per step. The optimizer keeps no state: its record is
//! empty, so checkpoints and resumes through Burn's records (or burn-train's checkpointers) are
//! exact.
//!
//! # Which parameter gets which potential
//!
//! [`is_weight`]: tensors of rank >= 2 are weights and use the config's `potential`; vectors and
//! scalars (biases) use GD. [`LayerPotential`] entries override this by a glob over parameter
//! paths (`features.0.*`, `classifier.weight`; `*` matches any run of characters, everything else
//! literally; the last matching entry wins, biases included). Paths are the module's field names
//! joined by dots, as [`param_paths`] lists them.
//! [`MirrorDescentConfig::init_for`] rejects a pattern that matches no parameter;
//! [`MirrorDescentConfig::describe`] prints one line per parameter (path, shape, fan-in,
//! potential, scaling, step form):
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use mirrorburn::model::BiasFreeMlp;
//! use mirrorburn::optim::{LayerPotential, MirrorDescentConfig, Potential};
//!
//! let device = Device::flex();
//! let model = BiasFreeMlp::from_weights(vec![
//!     Tensor::zeros([16, 64], &device), // Burn's linear layout [d_in, d_out]
//!     Tensor::zeros([64, 1], &device),
//! ]);
//! let config = MirrorDescentConfig::new()
//!     .with_potential(Potential::Hyperbolic { lambda: 1e-3 })
//!     .with_layers(vec![LayerPotential { pattern: "layers.1".into(), potential: Potential::Gd }]);
//! assert_eq!(
//!     config.describe(&model),
//!     "layers.0 [16, 64]: fan-in 16, hyperbolic(lambda=0.001), fan_in scaling, primal step\n\
//!      layers.1 [64, 1]: fan-in 64, gd, fan_in scaling, primal step\n"
//! );
//! ```
//!
//! # Layout assumption
//!
//! The width rescaling needs each weight's fan-in, read from its shape by [`fan_in`] in Burn's
//! layouts: linear weights `[d_in, d_out]` (fan-in `dims[0]`), conv weights
//! `[c_out, c_in / groups, k...]` (the product of all but the first dimension). A rank-2 weight
//! stored `[out, in]` (PyTorch's layout) would get the wrong fan-in; check with `describe`.
//!
//! # f32 limits
//!
//! On the `flex` CPU backend both step forms of f32 tensors run as one fused pass; elsewhere they
//! are Burn tensor operations. The p-homogeneous maps are evaluated in a rescaled variable so their
//! constants stay in f32's range `1e-38..3e38` for the usual `p` and fan-ins; where they cannot
//! (very large `p` at large fan-in, or a tiny `lambda`), and where a hyperbolic offset
//! `lambda / fan-in` would be subnormal in f32 (GPUs flush it to zero), `init_for` returns
//! [`MirrorDescentError::Unrepresentable`] naming the parameter instead of training with
//! infinities. Invalid settings (`lambda <= 0`, `p < 2`, non-finite values) are rejected by
//! [`MirrorDescentConfig::validate`], naming the field.

mod fallback;
mod fused_cpu;
mod gradients;
mod host_step;
mod mirror_descent;
mod mirror_map;
mod params;
mod potential;
mod recipe;

pub use fallback::dual_fallbacks;
pub use gradients::random_gradients;
pub use mirror_descent::{LayerPotential, MirrorDescent, MirrorDescentConfig, MirrorDescentError};
pub use mirror_map::{MirrorMap, ScaledP};
pub use params::{NamedParam, glob_to_regex, is_weight, named_params, param_paths, param_tensors};
pub use potential::{CHECKED_POTENTIALS, Potential, StepForm, WidthScaling, fan_in};
pub use recipe::{Recipe, RecipePotential, expected_inverse_metric, inverse_metric_at, table10};

#[cfg(test)]
mod tests;
