//! `mirrorburn report`: figures (PNG and SVG) and a Markdown report comparing run directories.
//! Runs that differ only in `seed` form one method; curves over seeds get a min..max band.

mod charts;
mod markdown;
mod read;

pub use markdown::{ReportError, write_report};
pub use read::{Method, RunData, group, method_key, method_label, read_run};
