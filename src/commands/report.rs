//! `mirrorburn report`: figures and report.md comparing run directories.

use std::path::PathBuf;

use crate::report::write_report;

/// `mirrorburn report` arguments.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Run directories (runs differing only in seed are one method).
    #[arg(long, num_args = 1.., required = true)]
    pub runs: Vec<PathBuf>,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes the report.
pub fn execute(args: &ReportArgs) -> anyhow::Result<()> {
    let report = write_report(&args.runs, &args.out)?;
    println!("wrote {}", report.display());
    Ok(())
}
