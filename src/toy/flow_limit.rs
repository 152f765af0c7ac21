//! The flow limit of the rescaled step: the paper's claims are about mirror *flow*, our runs are
//! discrete with a late-phase step `c * eta / L`. Each method runs at a list of `c`; a method's
//! margins are converged in `c` when the last refinement of `c` changed every margin of every
//! seed by less than [`CONVERGED_BELOW`]. Tables here are generated from the results.

use std::fmt::Write as _;

use super::results::{MethodResult, ToyResults};
use crate::optim::Potential;

/// Relative margin change under which the last refinement of `c` counts as converged.
pub const CONVERGED_BELOW: f64 = 1e-3;

/// A method at its smallest `c`.
pub struct FlowLimit<'a> {
    /// The runs at the smallest `c`.
    pub runs: &'a MethodResult,
    /// The runs at the next larger `c`, if the method ran at more than one.
    pub previous: Option<&'a MethodResult>,
    /// Largest relative change of any `L_k` margin of any seed between the two (runs that
    /// diverged at either `c` are left out); `None` with a single `c`.
    pub change: Option<f64>,
}

impl FlowLimit<'_> {
    /// Whether the margins are converged in `c`.
    pub fn converged(&self) -> bool {
        self.change.is_some_and(|change| change < CONVERGED_BELOW)
    }

    /// "c = 0.001, converged (last change 2.1e-5)" and the like.
    pub fn describe(&self) -> String {
        match self.change {
            None => format!("c = {} only", self.runs.rescale_c),
            Some(change) => format!(
                "c = {}, {} (change from c = {}: {change:.1e})",
                self.runs.rescale_c,
                if self.converged() {
                    "converged"
                } else {
                    "**not converged**"
                },
                self.previous.map_or(f64::NAN, |p| p.rescale_c)
            ),
        }
    }
}

/// The flow limit of each method, in the config's order.
pub fn flow_limits(results: &ToyResults) -> Vec<FlowLimit<'_>> {
    let mut names: Vec<&str> = Vec::new();
    for m in &results.methods {
        if !names.contains(&m.name.as_str()) {
            names.push(&m.name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            // Entries of one method are in decreasing c.
            let entries: Vec<&MethodResult> =
                results.methods.iter().filter(|m| m.name == name).collect();
            let runs = entries[entries.len() - 1];
            let previous = entries.len().checked_sub(2).map(|i| entries[i]);
            FlowLimit {
                runs,
                previous,
                change: previous.map(|previous| largest_change(previous, runs)),
            }
        })
        .collect()
}

/// The flow limit of the method called `name`.
pub fn flow_limit<'a>(results: &'a ToyResults, name: &str) -> Option<FlowLimit<'a>> {
    flow_limits(results)
        .into_iter()
        .find(|f| f.runs.name == name)
}

fn largest_change(from: &MethodResult, to: &MethodResult) -> f64 {
    let mut largest = 0.0f64;
    for run in to.runs.iter().filter(|r| !r.diverged) {
        if let Some(before) = from.runs.iter().find(|b| b.seed == run.seed && !b.diverged) {
            for k in 0..3 {
                let change = ((run.gamma[k] - before.gamma[k]) / run.gamma[k]).abs();
                largest = largest.max(if change.is_nan() {
                    f64::INFINITY
                } else {
                    change
                });
            }
        }
    }
    largest
}

/// The `L_k` margin a potential maximises in the flow limit (the paper's §4): hyperbolic L1,
/// GD L2, p-homogeneous Lp; `None` for p outside 1..=3 (we measure k = 1, 2, 3).
pub fn own_margin(potential: Potential) -> Option<usize> {
    match potential {
        Potential::Hyperbolic { .. } => Some(1),
        Potential::Gd => Some(2),
        Potential::PHomogeneous { p: 3.0, .. } => Some(3),
        Potential::PHomogeneous { .. } => None,
    }
}

/// The convergence table (each method's mean margins at every `c`, the change between its two
/// smallest `c`, its flow-limit row) and which method has the largest margin of each kind at the
/// flow limit, seed by seed. Empty when every method ran at a single `c`.
pub fn flow_limit_tables(results: &ToyResults) -> String {
    let limits = flow_limits(results);
    if limits.iter().all(|l| l.previous.is_none()) {
        return String::new();
    }
    let mut md = format!(
        "## Flow limit (c -> 0)\n\nThe late-phase step is `c * eta / L`. Mean margins over the non-diverged seeds at each `c`; a method is *converged* when its last refinement of `c` changed every margin of every seed by less than {CONVERGED_BELOW:.0e} (relative). The side-by-side comparison uses each method's flow-limit row.\n\n| method | c | runs | L1 margin | L2 margin | L3 margin | active neurons |\n|---|---:|---|---:|---:|---:|---:|\n"
    );
    for limit in &limits {
        let name = &limit.runs.name;
        for m in results.methods.iter().filter(|m| &m.name == name) {
            let ok: Vec<_> = m.runs.iter().filter(|r| !r.diverged).collect();
            let mean = |f: &dyn Fn(&super::ToyRun) -> f64| {
                ok.iter().map(|r| f(r)).sum::<f64>() / ok.len().max(1) as f64
            };
            let _ = writeln!(
                md,
                "| {name} | {} | {}/{} | {:.4e} | {:.4e} | {:.4e} | {:.1} |",
                m.rescale_c,
                ok.len(),
                m.runs.len(),
                mean(&|r| r.gamma[0]),
                mean(&|r| r.gamma[1]),
                mean(&|r| r.gamma[2]),
                mean(&|r| r.active_neurons as f64),
            );
        }
        let _ = writeln!(
            md,
            "| {name}: flow limit | {} | | | | | |",
            limit.describe()
        );
    }
    md.push_str(&own_margin_table(&limits));
    md
}

/// Per method with an own margin: on how many seeds it has the largest such margin of all methods
/// at their flow limits. Empty unless the methods maximise at least two different margins.
fn own_margin_table(limits: &[FlowLimit<'_>]) -> String {
    let owners: Vec<(&FlowLimit<'_>, usize)> = limits
        .iter()
        .filter_map(|l| own_margin(l.runs.potential).map(|k| (l, k)))
        .collect();
    let mut kinds: Vec<usize> = owners.iter().map(|&(_, k)| k).collect();
    kinds.dedup();
    if kinds.len() < 2 {
        return String::new();
    }
    let mut md = String::from(
        "\nDoes each method maximise its own margin at the flow limit? Seeds on which its margin is the largest of all methods (every method at its smallest `c`; seeds where any method diverged are left out):\n\n| method | own margin | largest on | flow limit |\n|---|---|---|---|\n",
    );
    for (limit, k) in &owners {
        let (mut wins, mut seeds) = (0, 0);
        for run in limit.runs.runs.iter().filter(|r| !r.diverged) {
            let others: Option<Vec<f64>> = limits
                .iter()
                .filter(|o| o.runs.name != limit.runs.name)
                .map(|o| {
                    o.runs
                        .runs
                        .iter()
                        .find(|r| r.seed == run.seed && !r.diverged)
                        .map(|r| r.gamma[k - 1])
                })
                .collect();
            if let Some(others) = others {
                seeds += 1;
                wins += usize::from(others.iter().all(|&o| run.gamma[k - 1] > o));
            }
        }
        let _ = writeln!(
            md,
            "| {} | L{k} | {wins}/{seeds} seeds | {} |",
            limit.runs.name,
            limit.describe()
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toy::{ToyConfig, run_all};

    /// A real 3-method, 2-seed, 5-step experiment at c = 0.1 and 0.01 (margins set by hand below).
    fn results() -> ToyResults {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/toy-2layer.toml");
        let mut config = ToyConfig::load(&path).unwrap();
        config.seeds = vec![0, 1];
        config.max_steps = 5;
        config.rescale_c = vec![0.01, 0.1];
        for method in &mut config.methods {
            method.rescale_c = None;
        }
        run_all(&config, None, &|| false).unwrap()
    }

    fn set(results: &mut ToyResults, name: &str, c: f64, seed: u64, gamma: [f64; 3]) {
        let m = results
            .methods
            .iter_mut()
            .find(|m| m.name == name && m.rescale_c == c)
            .unwrap();
        m.runs.iter_mut().find(|r| r.seed == seed).unwrap().gamma = gamma;
    }

    #[test]
    fn the_flow_limit_is_the_smallest_c_and_converges_under_the_threshold() {
        let mut results = results();
        assert_eq!(results.methods.len(), 6, "3 methods x 2 values of c");
        for (name, own) in [("hyperbolic", 0), ("gd", 1), ("p3", 2)] {
            for seed in [0, 1] {
                let mut gamma = [1.0; 3];
                gamma[own] = 2.0;
                set(&mut results, name, 0.1, seed, gamma);
                set(&mut results, name, 0.01, seed, gamma);
            }
        }
        // gd's L3 margin of seed 1 moves by 0.5% between c = 0.1 and 0.01.
        set(&mut results, "gd", 0.01, 1, [1.0, 2.0, 1.005]);
        let limits = flow_limits(&results);
        assert_eq!(limits.len(), 3);
        for limit in &limits {
            assert_eq!(limit.runs.rescale_c, 0.01);
            assert_eq!(limit.previous.unwrap().rescale_c, 0.1);
        }
        assert!(limits[0].converged() && limits[2].converged());
        assert!(!limits[1].converged());
        assert!((limits[1].change.unwrap() - 0.005 / 1.005).abs() < 1e-12);

        let md = flow_limit_tables(&results);
        assert!(
            md.contains(
                "| gd: flow limit | c = 0.01, **not converged** (change from c = 0.1: 5.0e-3) |"
            ),
            "{md}"
        );
        assert!(md.contains("| hyperbolic | L1 | 2/2 seeds |"), "{md}");
        assert!(md.contains("| gd | L2 | 2/2 seeds |"), "{md}");
        // p3's own L3 margin loses to nobody but ties with none: largest on both seeds.
        assert!(md.contains("| p3 | L3 | 2/2 seeds |"), "{md}");
        // gd's L3 margin 1.005 on seed 1 is still below p3's 2.
        set(&mut results, "gd", 0.01, 0, [1.0, 3.0, 2.5]);
        let md = flow_limit_tables(&results);
        assert!(md.contains("| p3 | L3 | 1/2 seeds |"), "{md}");
    }

    #[test]
    fn a_single_c_has_no_flow_limit_table() {
        let mut results = results();
        results.methods.retain(|m| m.rescale_c == 0.1);
        assert!(flow_limits(&results).iter().all(|l| l.change.is_none()));
        assert_eq!(flow_limit_tables(&results), "");
    }
}
