//! The command layer: one module per `mirrorburn` subcommand, each with its arguments and an
//! `execute` function. Errors here are `anyhow`, with the library's typed errors inside.

pub mod bench;
pub mod compare;
pub mod prune;
pub mod recipe;
pub mod report;
pub mod sweep;
pub mod toy;
pub mod train;
