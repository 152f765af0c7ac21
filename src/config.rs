//! The typed TOML config of a training run, `--set key=value` overrides, and validation that names the
//! offending key. Unknown keys are found with `serde_ignored`, which reports their dotted path.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::Normalization;
use crate::optim::{LayerPotential, MirrorDescentConfig, Potential, StepForm, WidthScaling};

/// A whole training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Run name (the default run directory is `artifacts/runs/<name>`).
    pub name: String,
    /// Seed of the model initialisation and the data order. Default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Number of epochs.
    pub epochs: usize,
    /// Minibatch size. Default 100 (the paper's).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Learning rate (constant). Default 0.1 (the paper's).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// The network.
    #[serde(default)]
    pub model: ModelConfig,
    /// The data.
    #[serde(default)]
    pub data: DataConfig,
    /// The mirror-descent optimizer.
    #[serde(default)]
    pub optimizer: OptimizerSection,
    /// Logging and checkpoint cadence.
    #[serde(default)]
    pub logging: LoggingConfig,
}

/// The `[optimizer]` table: the fields of [`MirrorDescentConfig`], each optional with the same
/// defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OptimizerSection {
    /// Potential of every weight tensor no layer pattern claims (default `gd`).
    pub potential: Potential,
    /// `fan_in` (default) or `none`.
    pub width_scaling: WidthScaling,
    /// `primal` (default) or `dual`.
    pub step: StepForm,
    /// Per-layer potentials by parameter-path glob (last match wins).
    pub layers: Vec<LayerPotential>,
}

impl Default for OptimizerSection {
    fn default() -> Self {
        let defaults = MirrorDescentConfig::new();
        Self {
            potential: defaults.potential,
            width_scaling: defaults.width_scaling,
            step: defaults.step,
            layers: defaults.layers,
        }
    }
}

impl OptimizerSection {
    /// The optimizer config these settings describe.
    pub fn to_config(&self) -> MirrorDescentConfig {
        MirrorDescentConfig::new()
            .with_potential(self.potential)
            .with_width_scaling(self.width_scaling)
            .with_step(self.step)
            .with_layers(self.layers.clone())
    }
}

/// Model settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// Divide every VGG-16 channel count by this (1 = the paper's full width). Default 1.
    pub width_divisor: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self { width_divisor: 1 }
    }
}

/// Data settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    /// Data directory; `--data-dir` overrides it, and without either `$MIRRORBURN_DATA` or
    /// `data/` is used.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Training images to use (a fixed random subset); all 50,000 when absent.
    #[serde(default)]
    pub n_train: Option<usize>,
    /// Validation (test-batch) images to use; all 10,000 when absent.
    #[serde(default)]
    pub n_val: Option<usize>,
    /// Seed of the subset selection (kept apart from `seed`, so every seed sees the same data).
    #[serde(default)]
    pub subset_seed: u64,
    /// `standardize` (default) or `unit`.
    #[serde(default = "default_normalization")]
    pub normalization: Normalization,
    /// Random crop (4-pixel padding) and horizontal flip. Default off, as in the paper.
    #[serde(default)]
    pub augment: bool,
    /// Download the official archive when the data is missing. Default true.
    #[serde(default = "default_true")]
    pub download: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: None,
            n_train: None,
            n_val: None,
            subset_seed: 0,
            normalization: Normalization::Standardize,
            augment: false,
            download: true,
        }
    }
}

/// Cadence settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoggingConfig {
    /// Write a checkpoint every this many epochs (and always at the end). Default 1.
    pub checkpoint_every: usize,
    /// Record diagnostics (histograms, margins, balance) every this many epochs, at
    /// initialisation and at the end. Default 1.
    pub log_every: usize,
    /// Training images in the fixed margin subset. Default 1000.
    pub margin_images: usize,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: 1,
            log_every: 1,
            margin_images: 1000,
        }
    }
}

fn default_seed() -> u64 {
    42
}
fn default_batch_size() -> usize {
    100
}
fn default_lr() -> f64 {
    0.1
}
fn default_normalization() -> Normalization {
    Normalization::Standardize
}
fn default_true() -> bool {
    true
}

/// A config that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// TOML syntax or a value of the wrong type.
    #[error("config {origin}: {message}")]
    Parse {
        /// File or override.
        origin: String,
        /// The parser's message (names the key).
        message: String,
    },
    /// A key the config does not have.
    #[error(
        "config {origin}: unknown key `{key}` (check its spelling against the README's config reference)"
    )]
    UnknownKey {
        /// File or override.
        origin: String,
        /// Dotted key.
        key: String,
    },
    /// A value out of range.
    #[error("config: invalid `{key}`: {message}")]
    Invalid {
        /// Dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// An out-of-range value of `key`.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl TrainConfig {
    /// Reads `path`, applies `overrides` (`key=value`, dotted keys, TOML values; bare words are
    /// strings), then parses and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string(), overrides)
    }

    /// Parses TOML text with overrides; `origin` names the text in errors.
    pub fn from_toml(text: &str, origin: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        let parse_error = |origin: &str, message: String| ConfigError::Parse {
            origin: origin.to_string(),
            message,
        };
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| parse_error(origin, e.to_string()))?;
        for assignment in overrides {
            apply_override(&mut table, assignment)?;
        }
        let mut unknown = Vec::new();
        let config: TrainConfig = serde_ignored::deserialize(toml::Value::Table(table), |key| {
            unknown.push(key.to_string())
        })
        .map_err(|e| parse_error(origin, e.to_string()))?;
        if let Some(key) = unknown.into_iter().next() {
            return Err(ConfigError::UnknownKey {
                origin: origin.to_string(),
                key,
            });
        }
        config.validate().map_err(|error| match error {
            ConfigError::Invalid { key, message } => ConfigError::Parse {
                origin: origin.to_string(),
                message: format!("invalid `{key}`: {message}"),
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Checks every value's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) {
            return Err(ConfigError::invalid(
                "name",
                "must be a non-empty name without path separators",
            ));
        }
        if self.epochs == 0 {
            return Err(ConfigError::invalid("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(ConfigError::invalid("batch_size", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ConfigError::invalid("lr", "must be a finite number > 0"));
        }
        if !(1..=64).contains(&self.model.width_divisor) {
            return Err(ConfigError::invalid(
                "model.width_divisor",
                "must be between 1 and 64",
            ));
        }
        if self.data.n_train == Some(0) {
            return Err(ConfigError::invalid(
                "data.n_train",
                "must be at least 1 (or absent for all)",
            ));
        }
        if self.data.n_val == Some(0) {
            return Err(ConfigError::invalid(
                "data.n_val",
                "must be at least 1 (or absent for all)",
            ));
        }
        if self.logging.checkpoint_every == 0 {
            return Err(ConfigError::invalid(
                "logging.checkpoint_every",
                "must be at least 1",
            ));
        }
        if self.logging.log_every == 0 {
            return Err(ConfigError::invalid(
                "logging.log_every",
                "must be at least 1",
            ));
        }
        if self.logging.margin_images == 0 {
            return Err(ConfigError::invalid(
                "logging.margin_images",
                "must be at least 1",
            ));
        }
        self.optimizer
            .to_config()
            .validate()
            .map_err(|error| ConfigError::Invalid {
                key: "optimizer".to_string(),
                message: error.to_string(),
            })
    }

    /// The config as TOML (what a run directory records).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serializes")
    }

    /// The first dotted key whose value differs between `self` and `other` (in key order), with
    /// both values; `None` when the configs are equal.
    pub fn first_difference(&self, other: &TrainConfig) -> Option<(String, String, String)> {
        let as_value = |c: &TrainConfig| toml::Value::try_from(c).expect("a config serializes");
        first_difference("", &as_value(self), &as_value(other))
    }
}

/// The first dotted key below `prefix` where `a` and `b` differ, with both values as TOML.
fn first_difference(
    prefix: &str,
    a: &toml::Value,
    b: &toml::Value,
) -> Option<(String, String, String)> {
    let show = |v: Option<&toml::Value>| v.map_or("(absent)".to_string(), |v| v.to_string());
    match (a, b) {
        (toml::Value::Table(a), toml::Value::Table(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|key| {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => first_difference(&path, x, y),
                    (x, y) => Some((path, show(x), show(y))),
                }
            })
        }
        _ if a == b => None,
        _ => Some((prefix.to_string(), a.to_string(), b.to_string())),
    }
}

/// Sets `key=value` in `table`, creating intermediate tables.
fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), ConfigError> {
    let origin = format!("override `{assignment}`");
    let Some((key, raw)) = assignment.split_once('=') else {
        return Err(ConfigError::Parse {
            origin,
            message: "expected key=value".to_string(),
        });
    };
    let key = key.trim();
    let value = format!("v = {}", raw.trim())
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts
        .pop()
        .filter(|k| !k.is_empty())
        .ok_or(ConfigError::Parse {
            origin: origin.clone(),
            message: "empty key".to_string(),
        })?;
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry.as_table_mut().ok_or_else(|| ConfigError::Parse {
            origin: origin.clone(),
            message: format!("`{part}` is not a table"),
        })?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name = \"t\"\nepochs = 2\n";

    #[test]
    fn defaults_fill_a_minimal_config() {
        let config = TrainConfig::from_toml(MINIMAL, "test", &[]).unwrap();
        assert_eq!(config.batch_size, 100);
        assert_eq!(config.lr, 0.1);
        assert_eq!(config.optimizer.potential, Potential::Gd);
        assert_eq!(config.data.normalization, Normalization::Standardize);
        let again = TrainConfig::from_toml(&config.to_toml(), "again", &[]).unwrap();
        assert_eq!(config, again, "the resolved config round-trips");
    }

    #[test]
    fn overrides_set_nested_keys() {
        let overrides = [
            "optimizer.potential = { kind = \"p_homogeneous\", p = 10.0, lambda = 0.01 }".into(),
            "model.width_divisor=8".into(),
            "data.normalization=unit".into(),
        ];
        let config = TrainConfig::from_toml(MINIMAL, "test", &overrides).unwrap();
        assert_eq!(
            config.optimizer.potential,
            Potential::PHomogeneous {
                p: 10.0,
                lambda: 0.01
            }
        );
        assert_eq!(config.model.width_divisor, 8);
        assert_eq!(config.data.normalization, Normalization::Unit);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let cases: [(&str, &[&str], &str); 6] = [
            (MINIMAL, &["model.widht_divisor=2"], "model.widht_divisor"),
            ("name = \"t\"\nepochs = 2\nbogus = 1\n", &[], "bogus"),
            (MINIMAL, &["lr=-1"], "`lr`"),
            (MINIMAL, &["epochs=0"], "`epochs`"),
            (
                MINIMAL,
                &["optimizer.potential={ kind = \"hyperbolic\", lambda = 0.0 }"],
                "potential.lambda",
            ),
            (MINIMAL, &["batch_size=\"ten\""], "batch_size"),
        ];
        for (text, overrides, key) in cases {
            let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
            let error = TrainConfig::from_toml(text, "test", &overrides)
                .unwrap_err()
                .to_string();
            assert!(error.contains(key), "{error} should name {key}");
        }
    }

    #[test]
    fn the_first_differing_key_is_named_with_both_values() {
        let a = TrainConfig::from_toml(MINIMAL, "a", &[]).unwrap();
        assert_eq!(a.first_difference(&a.clone()), None);
        let b = TrainConfig::from_toml(MINIMAL, "b", &["optimizer.step=dual".into()]).unwrap();
        let (key, ours, theirs) = a.first_difference(&b).unwrap();
        assert_eq!(key, "optimizer.step");
        assert_eq!((ours.as_str(), theirs.as_str()), ("\"primal\"", "\"dual\""));
        let c = TrainConfig::from_toml(MINIMAL, "c", &["data.n_train=10".into()]).unwrap();
        assert_eq!(a.first_difference(&c).unwrap().0, "data.n_train");
    }
}
