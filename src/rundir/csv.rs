//! The CSV dialect of a run directory: a header line, comma-separated cells, columns looked up by
//! header name. A last line without its newline is a torn append (a crash mid-write) and is
//! dropped; any other malformed line makes the file corrupt.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use super::error::RunDirError;

/// A number for a CSV cell: plain notation for ordinary magnitudes, scientific notation (still
/// exact, shortest round-trip) for very small or large ones.
pub fn format_number(value: f64) -> String {
    if value != 0.0 && value.is_finite() && !(1e-4..1e6).contains(&value.abs()) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// An optional number: empty when absent.
pub fn format_optional(value: Option<f64>) -> String {
    value.map(format_number).unwrap_or_default()
}

/// The text of a CSV file: `header`, then one line per row.
pub fn render(header: &[String], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut text = header.join(",");
    text.push('\n');
    for row in rows {
        text.push_str(&row.join(","));
        text.push('\n');
    }
    text
}

/// A row type of one of the run directory's CSV files, with its fixed header.
pub trait CsvRecord: Sized {
    /// The column names.
    const HEADER: &'static [&'static str];
    /// The cells, in header order.
    fn to_cells(&self) -> Vec<String>;
    /// Reads a row by column name.
    fn from_row(row: &Row) -> Result<Self, RunDirError>;
    /// The epoch the row belongs to.
    fn epoch(&self) -> usize;
}

/// The header of `T` as owned strings.
pub fn header_of<T: CsvRecord>() -> Vec<String> {
    T::HEADER.iter().map(|c| c.to_string()).collect()
}

/// Every row of `T` in `text` (the content of `path`).
pub fn parse_records<T: CsvRecord>(path: &Path, text: &str) -> Result<Vec<T>, RunDirError> {
    let table = Table::parse(path, text, T::HEADER)?;
    table.rows().map(|row| T::from_row(&row)).collect()
}

/// A parsed CSV file.
pub struct Table<'a> {
    path: &'a Path,
    /// Column names in order.
    pub columns: Vec<String>,
    index: HashMap<String, usize>,
    rows: Vec<(usize, Vec<&'a str>)>,
}

/// One data row, with cells looked up by column name.
pub struct Row<'t, 'a> {
    table: &'t Table<'a>,
    line: usize,
    cells: &'t [&'a str],
}

impl<'a> Table<'a> {
    /// Parses `text` (the content of `path`); `required` columns must be in the header.
    pub fn parse(path: &'a Path, text: &'a str, required: &[&str]) -> Result<Self, RunDirError> {
        let complete = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => "",
        };
        let mut lines = complete.lines().enumerate();
        let columns: Vec<String> = match lines.next() {
            Some((_, header)) => header.split(',').map(str::to_string).collect(),
            None => Vec::new(),
        };
        let index: HashMap<String, usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        let corrupt = |reason: String| RunDirError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        if !columns.is_empty()
            && let Some(missing) = required.iter().find(|c| !index.contains_key(**c))
        {
            return Err(corrupt(format!("no `{missing}` column in its header")));
        }
        let mut rows = Vec::new();
        for (number, line) in lines {
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != columns.len() {
                return Err(corrupt(format!(
                    "line {} has {} cells, the header {}",
                    number + 1,
                    cells.len(),
                    columns.len()
                )));
            }
            rows.push((number + 1, cells));
        }
        Ok(Self {
            path,
            columns,
            index,
            rows,
        })
    }

    /// The data rows in order.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_, 'a>> {
        self.rows.iter().map(move |(line, cells)| Row {
            table: self,
            line: *line,
            cells,
        })
    }
}

impl Row<'_, '_> {
    /// The raw cell of `column`.
    pub fn cell(&self, column: &str) -> &str {
        self.table.index.get(column).map_or("", |&i| self.cells[i])
    }

    /// The cell of `column` parsed as `T`.
    pub fn get<T: FromStr>(&self, column: &str) -> Result<T, RunDirError> {
        let cell = self.cell(column);
        cell.parse().map_err(|_| self.bad(column, cell))
    }

    /// The cell of `column` parsed as `T`, or `None` when empty.
    pub fn optional<T: FromStr>(&self, column: &str) -> Result<Option<T>, RunDirError> {
        match self.cell(column) {
            "" => Ok(None),
            _ => self.get(column).map(Some),
        }
    }

    fn bad(&self, column: &str, cell: &str) -> RunDirError {
        RunDirError::Corrupt {
            path: self.table.path.to_path_buf(),
            reason: format!(
                "line {}: `{column}` = {cell:?} is not a valid value",
                self.line
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_found_by_name_and_a_torn_last_line_is_dropped() {
        let path = Path::new("x.csv");
        let text = "b,a\n2,1\n4,3\n6,";
        let table = Table::parse(path, text, &["a", "b"]).unwrap();
        let rows: Vec<(u32, u32)> = table
            .rows()
            .map(|r| (r.get("a").unwrap(), r.get("b").unwrap()))
            .collect();
        assert_eq!(rows, vec![(1, 2), (3, 4)]);
    }

    #[test]
    fn malformed_lines_and_missing_columns_are_corrupt() {
        let path = Path::new("x.csv");
        let short = Table::parse(path, "a,b\n1\n2,3\n", &[]).err().unwrap();
        assert!(short.to_string().contains("line 2 has 1 cells"), "{short}");
        let missing = Table::parse(path, "a,b\n", &["c"]).err().unwrap();
        assert!(missing.to_string().contains("no `c` column"), "{missing}");
        let table = Table::parse(path, "a\nx\n", &["a"]).unwrap();
        let bad = table.rows().next().unwrap().get::<f64>("a").unwrap_err();
        assert!(bad.to_string().contains("`a` = \"x\""), "{bad}");
    }

    #[test]
    fn numbers_round_trip_through_their_cells() {
        for value in [0.0, 1.5, -2.25e-9, 3.0e12, 1.0 / 3.0, f64::NAN] {
            let back: f64 = format_number(value).parse().unwrap();
            assert!(
                back == value || (back.is_nan() && value.is_nan()),
                "{value}"
            );
        }
    }
}
