//! Finished runs on disk (`<out>/runs/<method>-c<c>-seed<seed>.json`), so that an interrupted
//! `mirrorburn toy` resumes where it stopped: a stored run is reused only when everything that
//! determines it (the config with this method, seed and `c`) is unchanged.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::config::{ToyConfig, ToyMethod};
use super::experiment::ToyRun;
use crate::fsutil::{WriteError, write_atomic};

/// A directory of finished runs.
pub struct RunCache {
    dir: PathBuf,
}

/// One stored run with the settings that produced it.
#[derive(Serialize, Deserialize)]
struct StoredRun {
    settings: serde_json::Value,
    run: ToyRun,
}

impl RunCache {
    /// Runs stored in `dir` (created on the first store).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The stored run of `method` on `seed` at `c`, if there is one made with the same
    /// settings. An unreadable or stale file is ignored (the run is made again and replaces it).
    pub fn load(
        &self,
        config: &ToyConfig,
        method: &ToyMethod,
        seed: u64,
        c: f64,
    ) -> Option<ToyRun> {
        let text = std::fs::read_to_string(self.path(method, seed, c)).ok()?;
        let stored: StoredRun = serde_json::from_str(&text).ok()?;
        (stored.settings == settings(config, method, seed, c)).then_some(stored.run)
    }

    /// Stores a finished run atomically.
    pub fn store(
        &self,
        config: &ToyConfig,
        method: &ToyMethod,
        run: &ToyRun,
    ) -> Result<(), WriteError> {
        let path = self.path(method, run.seed, run.rescale_c);
        let stored = StoredRun {
            settings: settings(config, method, run.seed, run.rescale_c),
            run: run.clone(),
        };
        let json = serde_json::to_vec(&stored).expect("runs serialise");
        std::fs::create_dir_all(&self.dir).map_err(|error| WriteError {
            path: self.dir.clone(),
            error,
        })?;
        write_atomic(&path, &json)
    }

    fn path(&self, method: &ToyMethod, seed: u64, c: f64) -> PathBuf {
        self.dir
            .join(format!("{}-c{c}-seed{seed}.json", method.name))
    }
}

/// Everything that determines one run: the config reduced to this method, seed and `c` (its
/// name and paper table, which only label the outputs, left out).
fn settings(config: &ToyConfig, method: &ToyMethod, seed: u64, c: f64) -> serde_json::Value {
    let mut one = config.clone();
    one.name.clear();
    one.paper_table = None;
    one.seeds = vec![seed];
    one.rescale_c = vec![c];
    one.methods = vec![ToyMethod {
        rescale_c: None,
        ..method.clone()
    }];
    serde_json::to_value(one).expect("configs serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_reused_only_with_the_settings_that_made_it() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/toy-2layer.toml");
        let mut config = ToyConfig::load(&path).unwrap();
        config.max_steps = 50;
        let method = config.methods[1].clone();
        let problem = config.problem_for(0).unwrap();
        let run = super::super::experiment::run(&config, &method, 0, 0.1, &problem);
        let dir = std::env::temp_dir().join(format!("mirrorburn-cache-{}", std::process::id()));
        let cache = RunCache::new(dir.clone());
        assert!(
            cache.load(&config, &method, 0, 0.1).is_none(),
            "nothing stored yet"
        );
        cache.store(&config, &method, &run).unwrap();
        assert_eq!(cache.load(&config, &method, 0, 0.1), Some(run.clone()));
        let mut renamed = config.clone();
        renamed.name = "another name".into();
        renamed.seeds = vec![0, 7];
        assert_eq!(
            cache.load(&renamed, &method, 0, 0.1),
            Some(run),
            "labels do not matter"
        );
        let mut longer = config.clone();
        longer.max_steps = 51;
        assert!(
            cache.load(&longer, &method, 0, 0.1).is_none(),
            "max_steps changed"
        );
        let faster = ToyMethod {
            lr: method.lr * 2.0,
            ..method.clone()
        };
        assert!(cache.load(&config, &faster, 0, 0.1).is_none(), "lr changed");
        assert!(
            cache.load(&config, &method, 1, 0.1).is_none(),
            "another seed"
        );
        std::fs::write(
            dir.join(
                std::fs::read_dir(&dir)
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .file_name(),
            ),
            "{",
        )
        .unwrap();
        assert!(
            cache.load(&config, &method, 0, 0.1).is_none(),
            "a corrupt file is ignored"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
