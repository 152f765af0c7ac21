//! mirrorburn: mirror-descent training and implicit-bias diagnostics on the Burn stack.
//!
//! Floors, from the ground up (nothing imports upward): `closeness`, `device_read` -> `conv` -> `optim`, `model`, `data`,
//! `backend`, `fsutil`, `heap`, `plot` -> `config` -> `diagnostics`, `rundir` -> `train` -> `report`, `toy` ->
//! `sweep` -> `commands`; `learner` (burn-train metrics) sits on `diagnostics`.
//!
//! Features: `cli` (default) compiles everything the `mirrorburn` program needs; without it the
//! library is [`optim`], [`model`], [`conv`] and [`diagnostics`] on Burn, serde and thiserror.
//! `learner` (default) adds the module `learner`, our diagnostics as burn-train metrics. Start with
//! [`optim`]: its documentation explains the potentials, step forms and layer patterns.

#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod backend;
#[cfg(feature = "cli")]
pub mod bench;
pub mod closeness;
#[cfg(feature = "cli")]
pub mod commands;
#[cfg(feature = "cli")]
pub mod config;
pub mod conv;
#[cfg(feature = "cli")]
pub mod data;
pub mod device_read;
pub mod diagnostics;
#[cfg(feature = "cli")]
pub mod fsutil;
#[cfg(feature = "cli")]
pub mod heap;
#[cfg(feature = "learner")]
pub mod learner;
pub mod model;
pub mod optim;
#[cfg(feature = "cli")]
pub mod plot;
#[cfg(feature = "cli")]
pub mod report;
#[cfg(feature = "cli")]
pub mod rundir;
mod simd;
#[cfg(feature = "cli")]
pub mod sweep;
#[cfg(feature = "cli")]
pub mod toy;
#[cfg(feature = "cli")]
pub mod train;

#[cfg(test)]
mod test_support;

/// The README's code examples, compiled as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
