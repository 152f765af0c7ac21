//! The sweep file and its expansion into runs: a base train config, fixed settings, a grid
//! crossed over every method, and per-method settings and sub-grids (so GD is not crossed with
//! lambda). Every setting is a dotted train-config key, applied like `--set`.
//!
//! ```toml
//! name = "table9"
//! base = "paper-gd.toml"            # a train config, relative to this file (or an inline table)
//! set = { epochs = 1000 }           # every run
//! [grid]                            # crossed over every method
//! lr = [0.1, 0.2]
//! seed = [1, 2, 3]
//! [[methods]]
//! name = "gd"
//! set = { "optimizer.potential" = { kind = "gd" } }
//! [[methods]]
//! name = "hyperbolic"
//! set = { "optimizer.potential" = { kind = "hyperbolic", lambda = 0.01 } }
//! grid = { "optimizer.potential.lambda" = [1e-5, 0.01, 0.1, 1.0] }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{ConfigError, TrainConfig};
use crate::rundir::md5_hex;

/// The sweep file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// Sweep name (default output `artifacts/sweeps/<name>`).
    pub name: String,
    /// The base train config: a path relative to the sweep file, or an inline table.
    pub base: toml::Value,
    /// Settings of every run.
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
    /// Values crossed over every method: dotted keys (quoted or as nested tables) to lists.
    #[serde(default)]
    pub grid: toml::Table,
    /// Which settings' runs `sweep` prunes when the runs are done. Default `best`.
    #[serde(default)]
    pub prune: PruneSelection,
    /// The methods compared.
    pub methods: Vec<MethodSpec>,
}

/// The settings whose completed runs a sweep prunes (layer-wise and global).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneSelection {
    /// Each method's best setting by mean validation accuracy (the default).
    #[default]
    Best,
    /// Every setting (a study comparing settings, e.g. lambda values).
    All,
}

/// One method of a sweep.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    /// Method name, the first part of its run names.
    pub name: String,
    /// Settings of this method's runs.
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
    /// Values crossed within this method only.
    #[serde(default)]
    pub grid: toml::Table,
}

/// One run of the expanded grid.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRun {
    /// Stable name derived from its settings, e.g. `hyperbolic-lambda0.01-lr0.1-seed42`.
    pub name: String,
    /// Its method.
    pub method: String,
    /// The grid values that name it, as (dotted key, value) pairs.
    pub point: Vec<(String, String)>,
    /// The fully resolved config (its `name` is the run name).
    pub config: TrainConfig,
    /// MD5 of the resolved config's TOML.
    pub config_md5: String,
}

/// A sweep: its name and runs in a fixed order.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// Sweep name.
    pub name: String,
    /// Every run, method by method.
    pub runs: Vec<SweepRun>,
    /// The settings pruned after the runs.
    pub prune: PruneSelection,
}

impl Sweep {
    /// Reads and expands a sweep file; `overrides` (`key=value`) apply to every run. Every run's
    /// config is validated (an unknown key is an error naming it).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let origin = path.display().to_string();
        let file: SweepFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        let base_text = match &file.base {
            toml::Value::String(relative) => {
                let base: PathBuf = path.parent().unwrap_or(Path::new(".")).join(relative);
                std::fs::read_to_string(&base).map_err(|source| ConfigError::Parse {
                    origin: origin.clone(),
                    message: format!(
                        "`base` = {relative:?}: cannot read {}: {source}",
                        base.display()
                    ),
                })?
            }
            toml::Value::Table(table) => toml::to_string(table).expect("a table serializes"),
            _ => {
                return Err(ConfigError::invalid(
                    "base",
                    "must be a train config path or an inline table",
                ));
            }
        };
        file.expand(&base_text, &origin, overrides)
    }
}

impl SweepFile {
    /// Every run: methods in file order, grid points in key order.
    pub fn expand(
        &self,
        base: &str,
        origin: &str,
        overrides: &[String],
    ) -> Result<Sweep, ConfigError> {
        if self.methods.is_empty() {
            return Err(ConfigError::invalid("methods", "give at least one method"));
        }
        let common = flatten_grid("grid", "", &self.grid)?;
        let mut runs = Vec::new();
        for method in &self.methods {
            let own = flatten_grid(&format!("methods[{}].grid", method.name), "", &method.grid)?;
            let mut axes: Vec<(&String, &Vec<toml::Value>)> = own.iter().collect();
            axes.extend(common.iter().filter(|(k, _)| !own.contains_key(*k)));
            if let Some((key, _)) = axes.iter().find(|(_, values)| values.is_empty()) {
                return Err(ConfigError::invalid(format!("grid.{key}"), "is empty"));
            }
            for point in cartesian(&axes) {
                let mut name = method.name.clone();
                for (key, value) in &point {
                    name.push('-');
                    name.push_str(key.rsplit('.').next().unwrap_or(key));
                    name.push_str(&label(value));
                }
                let mut sets: Vec<String> = Vec::new();
                for (key, value) in self.set.iter().chain(&method.set) {
                    sets.push(format!("{key}={value}"));
                }
                for (key, value) in &point {
                    sets.push(format!("{key}={value}"));
                }
                sets.extend(overrides.iter().cloned());
                sets.push(format!("name={}", toml::Value::String(name.clone())));
                let config = TrainConfig::from_toml(base, origin, &sets)
                    .map_err(|e| prefix_method(e, &method.name))?;
                let config_md5 = md5_hex(config.to_toml().as_bytes());
                runs.push(SweepRun {
                    point: point
                        .iter()
                        .map(|(k, v)| (k.to_string(), label(v)))
                        .collect(),
                    method: method.name.clone(),
                    name,
                    config,
                    config_md5,
                });
            }
        }
        if let Some(twice) = runs
            .iter()
            .enumerate()
            .find(|(i, r)| runs[..*i].iter().any(|o| o.name == r.name))
        {
            return Err(ConfigError::invalid(
                "methods",
                format!("two runs would both be named {}", twice.1.name),
            ));
        }
        Ok(Sweep {
            name: self.name.clone(),
            runs,
            prune: self.prune,
        })
    }
}

/// A grid table as dotted keys to value lists (nested tables are key paths).
fn flatten_grid(
    what: &str,
    prefix: &str,
    table: &toml::Table,
) -> Result<BTreeMap<String, Vec<toml::Value>>, ConfigError> {
    let mut axes = BTreeMap::new();
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Array(values) => {
                axes.insert(path, values.clone());
            }
            toml::Value::Table(nested) => axes.extend(flatten_grid(what, &path, nested)?),
            _ => {
                return Err(ConfigError::invalid(
                    format!("{what}.{path}"),
                    "must be a list of values",
                ));
            }
        }
    }
    Ok(axes)
}

fn prefix_method(error: ConfigError, method: &str) -> ConfigError {
    ConfigError::Invalid {
        key: format!("methods[{method}]"),
        message: error.to_string(),
    }
}

/// Every combination of one value per axis, in axis order.
fn cartesian<'a>(
    axes: &[(&'a String, &'a Vec<toml::Value>)],
) -> Vec<Vec<(&'a String, &'a toml::Value)>> {
    let mut points = vec![Vec::new()];
    for (key, values) in axes {
        points = points
            .into_iter()
            .flat_map(|point| {
                values.iter().map(move |value| {
                    let mut next = point.clone();
                    next.push((*key, value));
                    next
                })
            })
            .collect();
    }
    points
}

/// A value as it appears in a run name: numbers and strings plainly, anything else as compact
/// TOML with path-unsafe characters replaced.
fn label(value: &toml::Value) -> String {
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => format!("{f:?}"), // 1e-5, 0.01, 1.0
        other => other.to_string(),
    };
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "name = \"b\"\nepochs = 2\n";

    fn sweep(text: &str) -> Result<Sweep, ConfigError> {
        let file: SweepFile = toml::from_str(text).unwrap();
        file.expand(BASE, "test", &[])
    }

    #[test]
    fn methods_cross_the_common_grid_with_their_own() {
        let s = sweep(
            r#"
name = "t"
base = "unused"
set = { epochs = 3 }
[grid]
lr = [0.1, 0.2]
seed = [1, 2]
[[methods]]
name = "gd"
set = { "optimizer.potential" = { kind = "gd" } }
[[methods]]
name = "hyperbolic"
set = { "optimizer.potential" = { kind = "hyperbolic", lambda = 1.0 } }
grid = { "optimizer.potential.lambda" = [1e-5, 0.01] }
"#,
        )
        .unwrap();
        assert_eq!(s.runs.len(), 4 + 8);
        let names: Vec<&str> = s.runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names[0], "gd-lr0.1-seed1");
        assert!(
            names.contains(&"hyperbolic-lambda0.01-lr0.2-seed2"),
            "{names:?}"
        );
        assert!(
            names.contains(&"hyperbolic-lambda1e-5-lr0.1-seed1"),
            "{names:?}"
        );
        let run = s
            .runs
            .iter()
            .find(|r| r.name == "hyperbolic-lambda0.01-lr0.2-seed2")
            .unwrap();
        assert_eq!(run.config.lr, 0.2);
        assert_eq!(run.config.seed, 2);
        assert_eq!(run.config.epochs, 3);
        assert_eq!(run.config.name, run.name);
        assert_eq!(
            run.config.optimizer.potential,
            crate::optim::Potential::Hyperbolic { lambda: 0.01 }
        );
        assert_eq!(run.config_md5, md5_hex(run.config.to_toml().as_bytes()));
    }

    #[test]
    fn unknown_keys_and_empty_axes_are_named() {
        let unknown = sweep(
            "name = \"t\"\nbase = \"x\"\n[grid]\nmodel.widht = [1]\n[[methods]]\nname = \"gd\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(unknown.contains("model.widht"), "{unknown}");
        let empty =
            sweep("name = \"t\"\nbase = \"x\"\n[grid]\nlr = []\n[[methods]]\nname = \"gd\"\n")
                .unwrap_err()
                .to_string();
        assert!(empty.contains("grid.lr"), "{empty}");
    }

    #[test]
    fn prune_selects_the_best_settings_unless_the_file_says_all() {
        let file = |extra: &str| {
            format!("name = \"t\"\nbase = \"x\"\n{extra}[[methods]]\nname = \"gd\"\n")
        };
        assert_eq!(sweep(&file("")).unwrap().prune, PruneSelection::Best);
        assert_eq!(
            sweep(&file("prune = \"all\"\n")).unwrap().prune,
            PruneSelection::All
        );
        let wrong = toml::from_str::<SweepFile>(&file("prune = \"some\"\n")).unwrap_err();
        assert!(wrong.to_string().contains("some"), "{wrong}");
    }
}
