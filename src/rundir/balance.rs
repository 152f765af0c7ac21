//! `balance.csv`: the per-layer balance quantities of Lemma 3.1 at each log step (the columns
//! are the fields of [`BalanceRow`]; no value for the last layer's differences is an empty
//! cell).

use super::csv::CsvRecord;
use crate::diagnostics::BalanceRow;

impl CsvRecord for BalanceRow {
    fn epoch(&self) -> usize {
        self.epoch
    }
}
