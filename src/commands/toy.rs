//! `mirrorburn toy`: the student-teacher experiment.

use std::path::PathBuf;

use crate::toy::{self, ToyConfig};
use crate::train::{install_stop_handlers, stop_requested};

/// `mirrorburn toy` arguments.
#[derive(clap::Args, Debug)]
pub struct ToyArgs {
    /// Experiment config, e.g. configs/toy-2layer.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Output directory [default: artifacts/toy/<name>].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs every method on every seed and writes results, tables and figures. SIGTERM or SIGINT
/// abandons the runs in progress and exits non-zero; finished runs are kept for the next call.
pub fn execute(args: &ToyArgs) -> anyhow::Result<()> {
    install_stop_handlers()?;
    let config = ToyConfig::load(&args.config)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("artifacts/toy").join(&config.name));
    let started = std::time::Instant::now();
    // Finished runs are kept under the output directory, so an interrupted study resumes.
    let cache = toy::RunCache::new(out.join("runs"));
    let results = toy::run_all(&config, Some(&cache), &stop_requested)?;
    toy::write_outputs(&results, &out)?;
    print!("{}", toy::table(&results));
    println!(
        "wrote {} in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
