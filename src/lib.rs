//! mirrorburn: mirror-descent training and implicit-bias diagnostics on the Burn stack.

pub mod backend;
pub mod bench;
pub mod data;
pub mod diagnostics;
pub mod fsutil;
pub mod model;
pub mod optim;
pub mod pruning;
pub mod report;
pub mod toy;
pub mod train;

/// The README's code examples, compiled as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
