//! `margins.csv`: the margins of the fixed training subset at each log step.

use super::csv::{CsvRecord, Row, format_number};
use super::error::RunDirError;
use crate::diagnostics::Margins;

impl CsvRecord for Margins {
    const HEADER: &'static [&'static str] = &[
        "epoch",
        "q_min",
        "product_norm_margin",
        "l2_margin",
        "q_margin",
        "soft_margin",
        "frac_positive",
    ];

    fn to_cells(&self) -> Vec<String> {
        let values = [
            self.q_min,
            self.product_norm_margin,
            self.l2_margin,
            self.q_margin,
            self.soft_margin,
            self.frac_positive,
        ];
        std::iter::once(self.epoch.to_string())
            .chain(values.into_iter().map(format_number))
            .collect()
    }

    fn from_row(row: &Row) -> Result<Self, RunDirError> {
        Ok(Self {
            epoch: row.get("epoch")?,
            q_min: row.get("q_min")?,
            product_norm_margin: row.get("product_norm_margin")?,
            l2_margin: row.get("l2_margin")?,
            q_margin: row.get("q_margin")?,
            soft_margin: row.get("soft_margin")?,
            frac_positive: row.get("frac_positive")?,
        })
    }

    fn epoch(&self) -> usize {
        self.epoch
    }
}
