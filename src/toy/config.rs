//! Config of the student-teacher experiment (`mirrorburn toy`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::paper::{PAPER_TABLE_IDS, paper_table};
use super::problem::{Problem, ProblemError, problem};
use crate::config::ConfigError;
use crate::optim::{MirrorDescentConfig, Potential, StepForm, WidthScaling};

/// One optimizer of the comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToyMethod {
    /// Name in tables and figures, e.g. `hyperbolic`.
    pub name: String,
    /// The potential (applied with `width_scaling = none`, the Table 1 maps).
    pub potential: Potential,
    /// Base step size eta.
    pub lr: f64,
    /// Step form: `primal` (the paper's, default) or `dual` (the exact mirror step).
    #[serde(default)]
    pub step: StepForm,
    /// This method's rescaling constants `c`, overriding the experiment's. Default: those.
    #[serde(default, deserialize_with = "optional_one_or_many")]
    pub rescale_c: Option<Vec<f64>>,
}

/// How a run computes the loss gradient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradientPath {
    /// Derived by hand in plain f64 (the default; many times faster).
    #[default]
    Hand,
    /// Burn's autodiff on f64 tensors (the reference the hand gradient is tested against).
    Autodiff,
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToyConfig {
    /// Experiment name (default output `artifacts/toy/<name>`).
    pub name: String,
    /// Initialisation seeds: each draws the student's initial weights.
    pub seeds: Vec<u64>,
    /// Seed of the problem (teacher and data), shared by every init seed (the paper's
    /// protocol: Table 2's spread is the student initialisation's alone). Default 0.
    #[serde(default)]
    pub problem_seed: u64,
    /// Redraw teacher and data from each init seed instead (`problem_seed` is then unused).
    /// Default false.
    #[serde(default)]
    pub problem_per_seed: bool,
    /// Student depth: 2 or 3 weight layers.
    pub depth: usize,
    /// Student hidden width. Default 100.
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    /// Training points on the unit circle. Default 200.
    #[serde(default = "default_points")]
    pub points: usize,
    /// Teacher neurons. Default 3.
    #[serde(default = "default_teacher")]
    pub teacher_neurons: usize,
    /// Each class must hold at least this fraction of the points; the teacher is redrawn until
    /// it does (0 to 0.5). Default 0.1.
    #[serde(default = "default_min_class_fraction")]
    pub min_class_fraction: f64,
    /// Gradient computation: `hand` (default) or `autodiff` (Burn's, the reference).
    #[serde(default)]
    pub gradient: GradientPath,
    /// Step cap per run.
    pub max_steps: usize,
    /// Stop once the training loss is below this. Default 1e-50.
    #[serde(default = "default_target")]
    pub loss_target: f64,
    /// Switch to the rescaled step `c * eta / L` once the data is separated and `L` is below
    /// `rescale_below`. Default true.
    #[serde(default = "default_true")]
    pub time_rescaling: bool,
    /// Loss below which time rescaling starts. Default 0.1.
    #[serde(default = "default_rescale_below")]
    pub rescale_below: f64,
    /// The constant `c` of the rescaled step, or a list of them: every method runs every seed
    /// at every `c` (the rescaled step's flow limit is `c -> 0`). Default 0.1.
    #[serde(default = "default_rescale_c", deserialize_with = "one_or_many")]
    pub rescale_c: Vec<f64>,
    /// A run's margins count as settled when each normalised margin changed by less than
    /// this (relative) over the last decade of the loss. Default 0.01.
    #[serde(default = "default_settle_tolerance")]
    pub settle_tolerance: f64,
    /// The paper's table these runs reproduce (`2`, `3`, `4`, `6`, `7` or `8`): `tables.md`
    /// then sets the paper's values next to ours. Default none.
    #[serde(default)]
    pub paper_table: Option<String>,
    /// The optimizers.
    pub methods: Vec<ToyMethod>,
}

fn default_hidden() -> usize {
    100
}
fn default_points() -> usize {
    200
}
fn default_teacher() -> usize {
    3
}
fn default_min_class_fraction() -> f64 {
    0.1
}
fn default_target() -> f64 {
    1e-50
}
fn default_true() -> bool {
    true
}
fn default_rescale_below() -> f64 {
    0.1
}
fn default_rescale_c() -> Vec<f64> {
    vec![0.1]
}

/// A number or a list of numbers, as a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(f64),
    Many(Vec<f64>),
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(value) => vec![value],
        OneOrMany::Many(values) => values,
    })
}

fn optional_one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<f64>>, D::Error> {
    one_or_many(deserializer).map(Some)
}
fn default_settle_tolerance() -> f64 {
    0.01
}

impl ToyConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: ToyConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            origin: path.display().to_string(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.seeds.is_empty() {
            return Err(ConfigError::invalid("seeds", "give at least one seed"));
        }
        if !(2..=3).contains(&self.depth) {
            return Err(ConfigError::invalid("depth", "must be 2 or 3"));
        }
        if self.hidden == 0 || self.points == 0 || self.teacher_neurons == 0 {
            return Err(ConfigError::invalid(
                "hidden/points/teacher_neurons",
                "must be at least 1",
            ));
        }
        if !(0.0..=0.5).contains(&self.min_class_fraction) {
            return Err(ConfigError::invalid(
                "min_class_fraction",
                "must be between 0 and 0.5 (each class's share of the points)",
            ));
        }
        if self.max_steps == 0 {
            return Err(ConfigError::invalid("max_steps", "must be at least 1"));
        }
        if self.methods.is_empty() {
            return Err(ConfigError::invalid("methods", "give at least one method"));
        }
        for (i, method) in self.methods.iter().enumerate() {
            if !(method.lr.is_finite() && method.lr > 0.0) {
                return Err(ConfigError::invalid(
                    format!("methods[{i}].lr"),
                    "must be a finite number > 0",
                ));
            }
            method
                .optimizer()
                .validate()
                .map_err(|e| ConfigError::Invalid {
                    key: format!("methods[{i}]"),
                    message: e.to_string(),
                })?;
        }
        if !(self.rescale_below > 0.0 && self.loss_target > 0.0) {
            return Err(ConfigError::invalid(
                "rescale_below/loss_target",
                "must be > 0",
            ));
        }
        let lists = std::iter::once(("rescale_c".to_string(), &self.rescale_c)).chain(
            self.methods.iter().enumerate().filter_map(|(i, m)| {
                m.rescale_c
                    .as_ref()
                    .map(|c| (format!("methods[{i}].rescale_c"), c))
            }),
        );
        for (key, list) in lists {
            if list.is_empty() || !list.iter().all(|c| c.is_finite() && *c > 0.0) {
                return Err(ConfigError::invalid(
                    key,
                    "must be a number > 0 or a non-empty list of them, e.g. [0.1, 0.01, 0.001]",
                ));
            }
        }
        if !(self.settle_tolerance > 0.0 && self.settle_tolerance.is_finite()) {
            return Err(ConfigError::invalid(
                "settle_tolerance",
                "must be a finite number > 0, e.g. 0.01",
            ));
        }
        if let Some(id) = &self.paper_table
            && paper_table(id).is_none()
        {
            return Err(ConfigError::invalid(
                "paper_table",
                format!(
                    "the paper has no student-teacher table `{id}`; use one of {PAPER_TABLE_IDS:?}"
                ),
            ));
        }
        Ok(())
    }
}

impl ToyMethod {
    /// The optimizer config: this potential on every tensor, Table 1 maps, this step form.
    pub fn optimizer(&self) -> MirrorDescentConfig {
        MirrorDescentConfig::new()
            .with_potential(self.potential)
            .with_width_scaling(WidthScaling::None)
            .with_step(self.step)
    }
}

impl ToyConfig {
    /// The seed of the teacher and data that init seed `seed` trains on.
    pub fn problem_seed_for(&self, seed: u64) -> u64 {
        if self.problem_per_seed {
            seed
        } else {
            self.problem_seed
        }
    }

    /// The rescaling constants `method` runs at, largest first.
    pub fn rescale_cs(&self, method: &ToyMethod) -> Vec<f64> {
        let mut cs = method
            .rescale_c
            .clone()
            .unwrap_or_else(|| self.rescale_c.clone());
        cs.sort_by(|a, b| b.total_cmp(a));
        cs.dedup();
        cs
    }

    /// The teacher and data that init seed `seed` trains on.
    pub fn problem_for(&self, seed: u64) -> Result<Problem, ProblemError> {
        problem(
            self.problem_seed_for(seed),
            self.points,
            self.teacher_neurons,
            self.min_class_fraction,
        )
    }
}
