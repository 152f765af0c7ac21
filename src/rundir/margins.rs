//! `margins.csv`: the margins of the fixed training subset at each log step (the columns are
//! the fields of [`Margins`]).

use super::csv::CsvRecord;
use crate::diagnostics::Margins;

impl CsvRecord for Margins {
    fn epoch(&self) -> usize {
        self.epoch
    }
}
