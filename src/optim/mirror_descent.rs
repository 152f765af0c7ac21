//! The layerwise mirror-descent optimizer: a Burn [`Optimizer`] built from a
//! [`MirrorDescentConfig`], usable on any Burn module like Burn's own SGD.

use burn::config::Config;
use burn::module::{Module, ParamGroup};
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::mirror_map::MirrorMap;
use super::params::{glob_to_regex, is_weight, named_params, param_paths};
use super::potential::{Potential, StepForm, WidthScaling, fan_in};

/// A per-layer potential: every parameter whose path matches `pattern` uses `potential`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerPotential {
    /// Glob over parameter paths such as `features.0.weight`; `*` matches any run of characters
    /// (`features.0.*`, `classifier.*`).
    pub pattern: String,
    /// The potential for matching parameters, biases included.
    pub potential: Potential,
}

/// Configuration of [`MirrorDescent`].
///
/// ```
/// use mirrorburn::optim::{MirrorDescentConfig, Potential};
/// let optimizer = MirrorDescentConfig::new()
///     .with_potential(Potential::Hyperbolic { lambda: 0.1 })
///     .init()
///     .expect("valid settings");
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct MirrorDescentConfig {
    /// Potential of every weight tensor (rank >= 2) no layer pattern claims. Default: `gd`.
    #[config(default = "Potential::Gd")]
    pub potential: Potential,
    /// Width rescaling of the inverse metric. Default: `fan_in`.
    #[config(default = "WidthScaling::FanIn")]
    pub width_scaling: WidthScaling,
    /// Discretisation: `primal` (inverse metric) or `dual` (exact mirror step). Default: `primal`.
    #[config(default = "StepForm::Primal")]
    pub step: StepForm,
    /// Per-layer potentials by parameter-path glob; when several match, the last wins. Bias
    /// vectors not matched here use GD. Default: none.
    #[config(default = "Vec::new()")]
    pub layers: Vec<LayerPotential>,
}

/// A setting that [`MirrorDescentConfig`] rejects, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MirrorDescentError {
    /// A numeric field is out of range or not finite.
    #[error("invalid `{field}` = {value}: {requirement}")]
    InvalidValue {
        /// Path of the offending field, e.g. `potential.lambda` or `layers[1].potential.p`.
        field: String,
        /// The rejected value.
        value: f64,
        /// What the value must satisfy.
        requirement: &'static str,
    },
    /// A layer pattern is empty or matches no parameter of the module.
    #[error(
        "`layers[{index}].pattern` = {pattern:?} matches no parameter; known parameters: {known}"
    )]
    UnmatchedPattern {
        /// Index into `layers`.
        index: usize,
        /// The glob.
        pattern: String,
        /// The module's parameter paths, comma-separated.
        known: String,
    },
    /// A parameter's map cannot be represented in f32 arithmetic.
    #[error(
        "`{potential}` at fan-in {fan_in} (parameter {path}) cannot be computed in f32: {problem}"
    )]
    Unrepresentable {
        /// The parameter.
        path: String,
        /// The potential's label.
        potential: String,
        /// Its fan-in.
        fan_in: usize,
        /// Which constants leave the range.
        problem: String,
    },
}

impl MirrorDescentConfig {
    /// Checks every numeric setting: `lambda > 0`, `p >= 2`, all finite.
    pub fn validate(&self) -> Result<(), MirrorDescentError> {
        check_potential("potential", &self.potential)?;
        for (index, layer) in self.layers.iter().enumerate() {
            check_potential(&format!("layers[{index}].potential"), &layer.potential)?;
        }
        Ok(())
    }

    /// Validates the settings and builds the whole-module optimizer. Patterns are not checked
    /// against a module here; use [`init_for`](Self::init_for) to also reject unmatched ones.
    pub fn init(&self) -> Result<ModuleOptimizer, MirrorDescentError> {
        self.validate()?;
        let mut optimizer = ModuleOptimizer::from(MirrorDescent {
            weights: self.potential,
            biases: Potential::Gd,
            scaling: self.width_scaling,
            step: self.step,
        });
        for layer in &self.layers {
            let group = ParamGroup::from_regex(glob_to_regex(&layer.pattern))
                .expect("an escaped glob is a valid regex");
            let per_layer = MirrorDescent {
                weights: layer.potential,
                biases: layer.potential,
                scaling: self.width_scaling,
                step: self.step,
            };
            optimizer = optimizer.with_group(group, per_layer, None);
        }
        Ok(optimizer)
    }

    /// Like [`init`](Self::init), and also rejects a layer pattern that matches no parameter of
    /// `module`, and a potential that f32 arithmetic cannot represent at some parameter's fan-in.
    pub fn init_for<M: Module>(&self, module: &M) -> Result<ModuleOptimizer, MirrorDescentError> {
        self.validate()?;
        for (path, dims) in param_dims(module) {
            let potential = self.potential_for(&path, dims.len());
            let map = MirrorMap::new(potential, self.width_scaling, fan_in(&dims));
            if let Some(problem) = map.f32_problem() {
                return Err(MirrorDescentError::Unrepresentable {
                    path,
                    potential: potential.label(),
                    fan_in: fan_in(&dims),
                    problem,
                });
            }
        }
        let paths = param_paths(module);
        for (index, layer) in self.layers.iter().enumerate() {
            let regex = regex::Regex::new(&glob_to_regex(&layer.pattern))
                .expect("an escaped glob is a valid regex");
            if layer.pattern.is_empty() || !paths.iter().any(|path| regex.is_match(path)) {
                return Err(MirrorDescentError::UnmatchedPattern {
                    index,
                    pattern: layer.pattern.clone(),
                    known: paths.join(", "),
                });
            }
        }
        self.init()
    }

    /// One line per float parameter of `module`: its path, shape, the fan-in the width scaling
    /// uses (see [`fan_in`] for the layout it assumes), and the potential it is stepped with.
    pub fn describe<M: Module>(&self, module: &M) -> String {
        param_dims(module)
            .into_iter()
            .map(|(path, dims)| {
                let potential = self.potential_for(&path, dims.len());
                format!(
                    "{path} {dims:?}: fan-in {}, {}, {} scaling, {} step\n",
                    fan_in(&dims),
                    potential.label(),
                    match self.width_scaling {
                        WidthScaling::FanIn => "fan_in",
                        WidthScaling::None => "no",
                    },
                    self.step.name()
                )
            })
            .collect()
    }

    /// The mirror map a parameter with this path and shape is stepped with.
    pub fn map_for(&self, path: &str, dims: &[usize]) -> MirrorMap {
        let potential = self.potential_for(path, dims.len());
        MirrorMap::new(potential, self.width_scaling, fan_in(dims))
    }

    /// The potential a parameter with this path and rank is stepped with.
    pub fn potential_for(&self, path: &str, rank: usize) -> Potential {
        let claimed = self.layers.iter().rev().find(|layer| {
            regex::Regex::new(&glob_to_regex(&layer.pattern))
                .map(|regex| regex.is_match(path))
                .unwrap_or(false)
        });
        match claimed {
            Some(layer) => layer.potential,
            None if is_weight(rank) => self.potential,
            None => Potential::Gd,
        }
    }
}

fn param_dims<M: Module>(module: &M) -> Vec<(String, Vec<usize>)> {
    named_params(module, false)
        .into_iter()
        .map(|p| (p.path, p.dims))
        .collect()
}

fn check_potential(field: &str, potential: &Potential) -> Result<(), MirrorDescentError> {
    let invalid = |name: &str, value: f64, requirement| MirrorDescentError::InvalidValue {
        field: format!("{field}.{name}"),
        value,
        requirement,
    };
    let check_lambda = |lambda: f64| {
        if lambda.is_finite() && lambda > 0.0 {
            Ok(())
        } else {
            Err(invalid(
                "lambda",
                lambda,
                "lambda must be a finite number > 0",
            ))
        }
    };
    match *potential {
        Potential::Gd => Ok(()),
        Potential::Hyperbolic { lambda } => check_lambda(lambda),
        Potential::PHomogeneous { p, lambda } => {
            if !(p.is_finite() && p >= 2.0) {
                return Err(invalid("p", p, "p must be a finite number >= 2"));
            }
            check_lambda(lambda)
        }
    }
}

/// The per-tensor mirror-descent step (stateless). Weight tensors (rank >= 2) use `weights`,
/// vectors and scalars use `biases` (see [`is_weight`]).
#[derive(Clone, Debug)]
pub struct MirrorDescent {
    /// Potential for tensors of rank >= 2.
    pub weights: Potential,
    /// Potential for tensors of rank <= 1 (biases).
    pub biases: Potential,
    /// Width rescaling.
    pub scaling: WidthScaling,
    /// Primal or dual step.
    pub step: StepForm,
}

impl MirrorDescent {
    /// The mirror map this optimizer applies to a tensor of the given shape.
    pub fn map_for(&self, dims: &[usize]) -> MirrorMap {
        let potential = if is_weight(dims.len()) {
            self.weights
        } else {
            self.biases
        };
        MirrorMap::new(potential, self.scaling, fan_in(dims))
    }
}

impl Optimizer for MirrorDescent {
    type State<const D: usize> = ();

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        _state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let map = self.map_for(&tensor.dims());
        let updated = match self.step {
            StepForm::Primal => map.primal_step(tensor, grad, lr),
            StepForm::Dual => map.dual_step(tensor, grad, lr),
        };
        (updated, None)
    }

    fn to_device<const D: usize>(state: Self::State<D>, _device: &Device) -> Self::State<D> {
        state
    }
}
