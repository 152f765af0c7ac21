//! Config of the student-teacher experiment (`mirrorburn toy`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::optim::{MirrorDescentConfig, Potential, WidthScaling};

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
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToyConfig {
    /// Experiment name (default output `artifacts/toy/<name>`).
    pub name: String,
    /// Seeds; each draws its own data, teacher and student initialisation.
    pub seeds: Vec<u64>,
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
    /// The constant `c` of the rescaled step. Default 0.1.
    #[serde(default = "default_rescale_c")]
    pub rescale_c: f64,
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
fn default_target() -> f64 {
    1e-50
}
fn default_true() -> bool {
    true
}
fn default_rescale_below() -> f64 {
    0.1
}
fn default_rescale_c() -> f64 {
    0.1
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
        if !(self.rescale_c > 0.0 && self.rescale_below > 0.0 && self.loss_target > 0.0) {
            return Err(ConfigError::invalid(
                "rescale_c/rescale_below/loss_target",
                "must be > 0",
            ));
        }
        Ok(())
    }
}

impl ToyMethod {
    /// The optimizer config: this potential on every tensor, Table 1 maps.
    pub fn optimizer(&self) -> MirrorDescentConfig {
        MirrorDescentConfig::new()
            .with_potential(self.potential)
            .with_width_scaling(WidthScaling::None)
    }
}
