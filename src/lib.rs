//! mirrorburn: mirror-descent training and implicit-bias diagnostics on the Burn stack.
//!
//! Floors, from the ground up (nothing imports upward): `conv` -> `optim`, `model`, `data`,
//! `backend`, `fsutil`, `plot` -> `config` -> `diagnostics`, `rundir` -> `train` -> `report`, `toy` ->
//! `sweep` -> `commands`.

pub mod backend;
pub mod bench;
pub mod commands;
pub mod config;
pub mod conv;
pub mod data;
pub mod diagnostics;
pub mod fsutil;
pub mod model;
pub mod optim;
pub mod plot;
pub mod report;
pub mod rundir;
pub mod sweep;
pub mod toy;
pub mod train;

#[cfg(test)]
mod test_support;

/// The README's code examples, compiled as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
