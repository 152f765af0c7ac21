//! Running every method on every seed, the results' schema (`results.json`) and their table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::cache::RunCache;
use super::config::ToyConfig;
use super::experiment::{ToyRun, run_unless_stopped};
use super::problem::ProblemError;
use crate::diagnostics::MeanStd;

/// One method's runs at one rescaling constant `c`, and their summaries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// Method name.
    pub name: String,
    /// The potential.
    pub potential: crate::optim::Potential,
    /// Base step size.
    pub lr: f64,
    /// Step form.
    pub step: crate::optim::StepForm,
    /// The rescaled step's constant `c` of these runs.
    #[serde(default)]
    pub rescale_c: f64,
    /// One run per seed.
    pub runs: Vec<ToyRun>,
    /// Summaries of the non-diverged runs, settled ones and unsettled ones apart (a group is
    /// absent when it has no run): a table never averages the two silently.
    pub groups: Vec<RunGroup>,
}

/// Mean and spread of the measures over runs of one settledness.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunGroup {
    /// Whether these runs' margins settled (see [`ToyRun::settled`]).
    pub settled: bool,
    /// Their init seeds.
    pub seeds: Vec<u64>,
    /// Measure name -> mean ± std over these runs.
    pub summary: BTreeMap<String, MeanStd>,
}

impl MethodResult {
    /// The group the paper comparison uses: the settled runs if any, else the unsettled ones.
    pub fn headline(&self) -> Option<&RunGroup> {
        self.groups
            .iter()
            .find(|g| g.settled)
            .or_else(|| self.groups.first())
    }
}

/// The measures summarised over a group of runs.
fn summarize(runs: &[&ToyRun]) -> BTreeMap<String, MeanStd> {
    let measure =
        |f: &dyn Fn(&ToyRun) -> f64| MeanStd::of(&runs.iter().map(|r| f(r)).collect::<Vec<_>>());
    let mut summary = BTreeMap::new();
    summary.insert("gamma_1".to_string(), measure(&|r| r.gamma[0]));
    summary.insert("gamma_2".to_string(), measure(&|r| r.gamma[1]));
    summary.insert("gamma_3".to_string(), measure(&|r| r.gamma[2]));
    summary.insert("q_margin".to_string(), measure(&|r| r.q_margin));
    summary.insert(
        "active_neurons".to_string(),
        measure(&|r| r.active_neurons as f64),
    );
    summary.insert("balance_drift".to_string(), measure(&|r| r.balance_drift));
    summary
}

/// The settled and unsettled groups of the non-diverged runs, settled first.
pub(crate) fn groups(runs: &[ToyRun]) -> Vec<RunGroup> {
    [true, false]
        .into_iter()
        .filter_map(|settled| {
            let members: Vec<&ToyRun> = runs
                .iter()
                .filter(|r| !r.diverged && r.settled == settled)
                .collect();
            (!members.is_empty()).then(|| RunGroup {
                settled,
                seeds: members.iter().map(|r| r.seed).collect(),
                summary: summarize(&members),
            })
        })
        .collect()
}

/// The whole experiment's results (`results.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToyResults {
    /// The config that produced them.
    pub config: ToyConfig,
    /// Per method.
    pub methods: Vec<MethodResult>,
}

/// Why [`run_all`] returned no results.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// A seed's teacher and data could not be drawn.
    #[error(transparent)]
    Problem(#[from] ProblemError),
    /// A stop was requested (SIGTERM or SIGINT to `mirrorburn toy`).
    #[error(
        "stopped by a signal with {finished} of {total} runs finished (each stored as it ended); \
         run the same command again to continue"
    )]
    Stopped {
        /// Runs finished (and stored, with a cache).
        finished: usize,
        /// Runs in the study.
        total: usize,
    },
}

/// Runs every method on every seed at each of its rescaling constants (in parallel on every core),
/// printing one line per run as it ends. `methods` holds one entry per method and `c`, in the
/// config's order, `c` decreasing. With a `cache`, runs stored there with the same settings are
/// reused and every new run is stored as it ends, so an interrupted call resumes. When `stop`
/// returns true (it is asked between jobs and every few hundred milliseconds inside one), the runs in
/// progress are abandoned and [`StudyError::Stopped`] says how many were finished.
pub fn run_all(
    config: &ToyConfig,
    cache: Option<&RunCache>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<ToyResults, StudyError> {
    let problems = config
        .seeds
        .iter()
        .map(|&seed| config.problem_for(seed))
        .collect::<Result<Vec<_>, _>>()?;
    // Every (method, c, seed) is one job, started in order of decreasing expected length (steps
    // grow like 1/c) so that no long run starts last; the results keep the config's order.
    let jobs: Vec<(usize, f64, usize)> = config
        .methods
        .iter()
        .enumerate()
        .flat_map(|(m, method)| {
            config
                .rescale_cs(method)
                .into_iter()
                .flat_map(move |c| (0..config.seeds.len()).map(move |s| (m, c, s)))
        })
        .collect();
    let mut longest_first: Vec<usize> = (0..jobs.len()).collect();
    longest_first.sort_by(|&a, &b| jobs[a].1.total_cmp(&jobs[b].1));
    let run_job = |job: usize| {
        let (m, c, s) = jobs[job];
        let method = &config.methods[m];
        let seed = config.seeds[s];
        let cached = cache.and_then(|cache| cache.load(config, method, seed, c));
        let reused = cached.is_some();
        let r = match cached {
            Some(r) => r,
            None => run_unless_stopped(config, method, seed, c, &problems[s], stop)?,
        };
        if let (Some(cache), false) = (cache, reused)
            && let Err(error) = cache.store(config, method, &r)
        {
            eprintln!("warning: {error}; an interrupted study would run it again");
        }
        println!(
            "{} c {c} seed {}: {} steps, log10 L {:.1}{}, gamma = [{:.3e}, {:.3e}, {:.3e}], active {}{}{}",
            method.name,
            r.seed,
            r.steps,
            r.log10_final_loss,
            if r.diverged { " DIVERGED" } else { "" },
            r.gamma[0],
            r.gamma[1],
            r.gamma[2],
            r.active_neurons,
            if r.settled {
                ""
            } else {
                ", margins not settled"
            },
            if reused { " (stored run)" } else { "" }
        );
        Some((job, r))
    };
    // One worker per core takes the next job of the list until it is empty (longest-first
    // greedy scheduling); rayon's splitting of a parallel iterator would not keep that order.
    let next = AtomicUsize::new(0);
    let finished = Mutex::new(Vec::with_capacity(jobs.len()));
    rayon::scope(|scope| {
        for _ in 0..rayon::current_num_threads() {
            scope.spawn(|_| {
                while let Some(&job) = longest_first.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let Some(done) = run_job(job) else { break };
                    finished.lock().expect("no worker panicked").push(done);
                }
            });
        }
    });
    let mut finished = finished.into_inner().expect("no worker panicked");
    if finished.len() < jobs.len() {
        return Err(StudyError::Stopped {
            finished: finished.len(),
            total: jobs.len(),
        });
    }
    finished.sort_by_key(|&(job, _)| job);
    let runs = finished.into_iter().map(|(_, r)| r);
    let mut methods: Vec<MethodResult> = Vec::new();
    for (&(m, c, _), r) in jobs.iter().zip(runs) {
        let method = &config.methods[m];
        match methods.last_mut() {
            Some(last) if last.name == method.name && last.rescale_c == c => last.runs.push(r),
            _ => methods.push(MethodResult {
                name: method.name.clone(),
                potential: method.potential,
                lr: method.lr,
                step: method.step,
                rescale_c: c,
                groups: Vec::new(),
                runs: vec![r],
            }),
        }
    }
    for method in &mut methods {
        method.groups = groups(&method.runs);
    }
    Ok(ToyResults {
        config: config.clone(),
        methods,
    })
}

/// The results as Markdown: the summary table (mean ± std, settled and unsettled runs in
/// separate rows), then one row per run with the loss reached and the last change of each
/// margin.
pub fn table(results: &ToyResults) -> String {
    let config = &results.config;
    let protocol = if config.problem_per_seed {
        "each seed draws its own teacher and data".to_string()
    } else {
        format!(
            "one teacher and data set (problem seed {}), seeds vary the student's initialisation",
            config.problem_seed
        )
    };
    let mut md = format!(
        "# {} ({}-layer student, {} seeds)\n\nProtocol: {protocol}. A run's margins are *settled* when each L_k margin changed by less than {} (relative) over the last decade of the loss; settled and unsettled runs are summarised apart.\n\n| method | step | lr | c | runs | L1 margin | L2 margin | L3 margin | Q-margin | active neurons | balance drift |\n|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|\n",
        config.name,
        config.depth,
        config.seeds.len(),
        config.settle_tolerance,
    );
    for m in &results.methods {
        let total = m.runs.len();
        let diverged = m.runs.iter().filter(|r| r.diverged).count();
        if diverged == total {
            let _ = writeln!(
                md,
                "| {} ({}) | {} | {} | {} | all {total} diverged | | | | | | |",
                m.name,
                m.potential.label(),
                m.step.name(),
                m.lr,
                m.rescale_c
            );
        }
        for group in &m.groups {
            let cell = |key: &str| {
                let v = group.summary[key];
                format!("{:.3e} ± {:.2e}", v.mean, v.std)
            };
            let active = group.summary["active_neurons"];
            let state = if group.settled {
                "settled"
            } else {
                "**not settled**"
            };
            let diverged_note = if diverged > 0 {
                format!(" ({diverged} diverged)")
            } else {
                String::new()
            };
            let _ = writeln!(
                md,
                "| {} ({}) | {} | {} | {} | {state} {}/{total}{diverged_note} | {} | {} | {} | {} | {:.1} ± {:.1} | {} |",
                m.name,
                m.potential.label(),
                m.step.name(),
                m.lr,
                m.rescale_c,
                group.seeds.len(),
                cell("gamma_1"),
                cell("gamma_2"),
                cell("gamma_3"),
                cell("q_margin"),
                active.mean,
                active.std,
                cell("balance_drift"),
            );
        }
    }
    md.push_str(&problem_table(results));
    md.push_str("\n## Runs\n\n| method | c | seed | steps | log10 L | rescaled at | change of L1, L2, L3 margin over the last decade of L | settled | active neurons |\n|---|---:|---:|---:|---:|---:|---|---|---:|\n");
    for m in &results.methods {
        for r in &m.runs {
            let change = match r.margin_change {
                Some(c) => format!("{:.1e}, {:.1e}, {:.1e}", c[0], c[1], c[2]),
                None => "separated < 1 decade".to_string(),
            };
            let rescaled = r.rescaled_at.map_or("-".to_string(), |s| s.to_string());
            let settled = if r.diverged {
                "diverged"
            } else if r.settled {
                "yes"
            } else {
                "**no**"
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.1} | {rescaled} | {change} | {settled} | {} |",
                m.name, m.rescale_c, r.seed, r.steps, r.log10_final_loss, r.active_neurons
            );
        }
    }
    md
}

/// The problems the runs trained on: seed, class counts and teacher redraws.
fn problem_table(results: &ToyResults) -> String {
    let mut md = format!(
        "\n## Problems\n\nEach class must hold at least {} of the {} points; a teacher that labels fewer is redrawn from the same stream.\n\n| problem seed | points -1 | points +1 | teachers redrawn |\n|---:|---:|---:|---:|\n",
        results.config.min_class_fraction, results.config.points
    );
    let mut seen = Vec::new();
    for r in results.methods.iter().flat_map(|m| &m.runs) {
        if !seen.contains(&r.problem_seed) {
            seen.push(r.problem_seed);
            let [negative, positive] = r.class_counts;
            let _ = writeln!(
                md,
                "| {} | {negative} | {positive} | {} |",
                r.problem_seed, r.problem_redraws
            );
        }
    }
    md
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::toy::ToyConfig;

    /// A real 2-seed, 5-step experiment of `configs/<file>`.
    pub(crate) fn tiny_results(file: &str) -> ToyResults {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join(file);
        let mut config = ToyConfig::load(&path).unwrap();
        config.seeds = vec![0, 1, 2];
        config.max_steps = 5;
        run_all(&config, None, &|| false).unwrap()
    }

    #[test]
    fn settled_and_unsettled_runs_are_summarised_apart() {
        let mut results = tiny_results("toy-2layer.toml");
        let method = &mut results.methods[0];
        assert!(
            method.runs.iter().all(|r| !r.settled),
            "5 steps settle nothing"
        );
        assert_eq!(method.groups.len(), 1);
        method.runs[1].settled = true;
        method.runs[1].gamma = [1.0, 2.0, 3.0];
        method.groups = groups(&method.runs);
        let [settled, unsettled] = &method.groups[..] else {
            panic!("two groups expected: {:?}", method.groups)
        };
        assert!(settled.settled && !unsettled.settled);
        assert_eq!(
            (settled.seeds.clone(), unsettled.seeds.clone()),
            (vec![1], vec![0, 2])
        );
        assert_eq!(
            settled.summary["gamma_2"].mean, 2.0,
            "the settled run alone"
        );
        assert_eq!(method.headline(), Some(settled));
        let md = table(&results);
        assert!(md.contains("| settled 1/3 |"), "{md}");
        assert!(md.contains("| **not settled** 2/3 |"), "{md}");
    }
}
