//! `mirrorburn toy`: the student-teacher experiment of paper §5 and Appendix J.1-J.2. Every
//! method runs on every seed; results go to `results.json` and `tables.md`, with figures.
//!
//! `results.json` schema: `{ "config": <the ToyConfig>, "methods": [ { "name", "potential",
//! "lr", "step", "runs": [ToyRun...], "groups": [ { "settled", "seeds", "summary": {
//! "<measure>": { "mean", "std" } } } ] } ] }` where the groups summarise the non-diverged runs
//! whose margins settled and those whose margins did not, apart; the measures are `gamma_1`,
//! `gamma_2`, `gamma_3`, `q_margin`, `active_neurons`, `balance_drift`; and `ToyRun` holds
//! `seed` (init), `problem_seed`, `steps`, `log10_final_loss`, `diverged`, `rescaled_at`,
//! `gamma` ([k=1, 2, 3]), `margin_change` (over the last decade of the loss, or null),
//! `settled`, `q_margin`, `active_neurons`, `balance_drift`, `trajectory` ([{ step,
//! log10_inverse_loss, gamma }]), `representation` ([[x, y]] per hidden neuron) and
//! `first_layer` (flattened weights).

mod cache;
mod comparison;
mod config;
mod experiment;
mod flow_limit;
mod gradient;
mod outputs;
mod paper;
mod problem;
pub(crate) mod results;

pub use cache::RunCache;
pub use comparison::side_by_side;
pub use config::{GradientPath, ToyConfig, ToyMethod};
pub use experiment::{
    ToyRun, TrajectoryPoint, k_margins, last_decade_change, run, student_weights,
};
pub use flow_limit::{
    CONVERGED_BELOW, FlowLimit, flow_limit, flow_limit_tables, flow_limits, own_margin,
};
pub use gradient::Forward;
pub use outputs::{ToyError, write_outputs};
pub use paper::{PAPER_TABLE_IDS, PAPER_TABLES, PaperRow, PaperTable, paper_table};
pub use problem::{MAX_TEACHER_DRAWS, Problem, ProblemError, problem};
pub use results::{MethodResult, RunGroup, StudyError, ToyResults, run_all, table};
