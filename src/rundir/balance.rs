//! `balance.csv`: the per-layer balance quantities of Lemma 3.1 at each log step.

use super::csv::{CsvRecord, Row, format_number, format_optional};
use super::error::RunDirError;
use crate::diagnostics::BalanceRow;

impl CsvRecord for BalanceRow {
    const HEADER: &'static [&'static str] = &[
        "epoch",
        "layer",
        "path",
        "q",
        "diff_to_next",
        "drift_since_init",
    ];

    fn to_cells(&self) -> Vec<String> {
        vec![
            self.epoch.to_string(),
            self.layer.to_string(),
            self.path.clone(),
            format_number(self.q),
            format_optional(self.diff_to_next),
            format_optional(self.drift_since_init),
        ]
    }

    fn from_row(row: &Row) -> Result<Self, RunDirError> {
        Ok(Self {
            epoch: row.get("epoch")?,
            layer: row.get("layer")?,
            path: row.cell("path").to_string(),
            q: row.get("q")?,
            diff_to_next: row.optional("diff_to_next")?,
            drift_since_init: row.optional("drift_since_init")?,
        })
    }

    fn epoch(&self) -> usize {
        self.epoch
    }
}
