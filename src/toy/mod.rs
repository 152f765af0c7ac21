//! `mirrorburn toy`: the student-teacher experiment of paper §5 and Appendix J.1-J.2. Every
//! method runs on every seed; results go to `results.json` and `tables.md`, with figures.
//!
//! `results.json` schema: `{ "config": <the ToyConfig>, "methods": [ { "name", "potential",
//! "lr", "runs": [ToyRun...], "summary": { "<measure>": { "mean", "std" } } } ] }` where the
//! measures are `gamma_1`, `gamma_2`, `gamma_3`, `q_margin`, `active_neurons`, `balance_drift`
//! (over the seeds that did not diverge) and `ToyRun` holds `seed`, `steps`,
//! `log10_final_loss`, `diverged`, `rescaled_at`, `gamma` ([k=1, 2, 3]), `q_margin`,
//! `active_neurons`, `balance_drift`, `trajectory` ([{ step, log10_inverse_loss, gamma }]),
//! `representation` ([[x, y]] per hidden neuron) and `first_layer` (flattened weights).

mod config;
mod experiment;
mod outputs;
mod results;

pub use config::{ToyConfig, ToyMethod};
pub use experiment::{Problem, ToyRun, TrajectoryPoint, k_margins, problem, run, student_weights};
pub use outputs::{ToyError, write_outputs};
pub use results::{MethodResult, ToyResults, run_all, table};
