//! The run directory's CSV files, read and written by the `csv` crate with serde records:
//! columns by header name, cells quoted where they need it. A last line without its newline is
//! a torn append (a crash mid-write) and is dropped; any other malformed row makes the file
//! corrupt, naming the file and the line.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::RunDirError;

/// A row of one of the run directory's per-epoch CSV files (its serde field names are the
/// columns).
pub trait CsvRecord: Serialize + DeserializeOwned {
    /// The epoch the row belongs to.
    fn epoch(&self) -> usize;
}

/// A number for a cell of a file with dynamic columns: plain notation for ordinary magnitudes,
/// scientific notation (still exact, shortest round-trip) for very small or large ones.
pub fn format_number(value: f64) -> String {
    if value != 0.0 && value.is_finite() && !(1e-4..1e6).contains(&value.abs()) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// `text` without a torn last line.
fn complete_lines(text: &str) -> &str {
    &text[..text.rfind('\n').map_or(0, |end| end + 1)]
}

fn corrupt(path: &Path, error: csv::Error) -> RunDirError {
    RunDirError::Corrupt {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// A reader over the complete lines of `text`.
fn reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().from_reader(complete_lines(text).as_bytes())
}

/// Every row of `text` (the content of `path`).
pub fn parse_records<T: DeserializeOwned>(path: &Path, text: &str) -> Result<Vec<T>, RunDirError> {
    reader(text)
        .deserialize()
        .map(|row| row.map_err(|e| corrupt(path, e)))
        .collect()
}

/// The rows as CSV text, with the header line first when `header` is set (no rows: no text).
pub fn render_records<T: Serialize>(rows: &[T], header: bool) -> String {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(header)
        .from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).expect("records serialize to memory");
    }
    String::from_utf8(writer.into_inner().expect("an in-memory writer")).expect("UTF-8 cells")
}

/// A file with dynamic columns: its header and rows of raw cells.
pub struct Table {
    /// Column names in order.
    pub columns: Vec<String>,
    /// The data rows, cells in column order, each with its line number.
    pub rows: Vec<(u64, Vec<String>)>,
}

impl Table {
    /// Parses `text` (the content of `path`); `required` columns must be in its header.
    pub fn parse(path: &Path, text: &str, required: &[&str]) -> Result<Self, RunDirError> {
        let mut reader = reader(text);
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| corrupt(path, e))?
            .iter()
            .map(str::to_string)
            .collect();
        if !columns.is_empty()
            && let Some(missing) = required.iter().find(|c| !columns.iter().any(|h| h == *c))
        {
            return Err(RunDirError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("no `{missing}` column in its header"),
            });
        }
        let rows = reader
            .records()
            .map(|record| {
                let record = record.map_err(|e| corrupt(path, e))?;
                let line = record.position().map_or(0, |p| p.line());
                Ok((line, record.iter().map(str::to_string).collect()))
            })
            .collect::<Result<_, RunDirError>>()?;
        Ok(Self { columns, rows })
    }

    /// The cell of `column` in `cells` parsed as `T`, or an error naming the line.
    pub fn get<T: std::str::FromStr>(
        &self,
        path: &Path,
        (line, cells): &(u64, Vec<String>),
        column: &str,
    ) -> Result<T, RunDirError> {
        let cell = self
            .columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| cells.get(i))
            .map_or("", String::as_str);
        cell.parse().map_err(|_| RunDirError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("line {line}: `{column}` = {cell:?} is not a valid value"),
        })
    }
}

/// Text of a file with dynamic columns: `header`, then `rows`.
pub fn render_table(header: &[String], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header).expect("in memory");
    for row in rows {
        writer.write_record(&row).expect("in memory");
    }
    String::from_utf8(writer.into_inner().expect("in memory")).expect("UTF-8 cells")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Pair {
        a: u32,
        b: Option<f64>,
        name: String,
    }

    #[test]
    fn columns_are_found_by_name_cells_are_quoted_and_a_torn_last_line_is_dropped() {
        let path = Path::new("x.csv");
        let rows = vec![
            Pair {
                a: 1,
                b: Some(2.5),
                name: "lambda=0.01, lr=0.1".into(),
            },
            Pair {
                a: 3,
                b: None,
                name: "say \"hi\"".into(),
            },
        ];
        let text = render_records(&rows, true);
        assert_eq!(parse_records::<Pair>(path, &text).unwrap(), rows);
        // Reordered columns, and a torn append at the end.
        let reordered = "name,b,a\nx,,7\ny,1";
        let parsed: Vec<Pair> = parse_records(path, reordered).unwrap();
        assert_eq!(
            parsed,
            vec![Pair {
                a: 7,
                b: None,
                name: "x".into()
            }]
        );
    }

    #[test]
    fn malformed_lines_and_missing_columns_are_corrupt() {
        let path = Path::new("x.csv");
        let short = parse_records::<Pair>(path, "a,b,name\n1,2,x\n1\n").unwrap_err();
        assert!(
            short.to_string().contains("x.csv") && short.to_string().contains("line: 3"),
            "{short}"
        );
        let bad = parse_records::<Pair>(path, "a,b,name\nx,2,y\n").unwrap_err();
        assert!(bad.to_string().contains("line: 2"), "{bad}");
        let missing = Table::parse(path, "a,b\n", &["c"]).err().unwrap();
        assert!(missing.to_string().contains("no `c` column"), "{missing}");
        let table = Table::parse(path, "a\nx\n", &["a"]).unwrap();
        let error = table.get::<f64>(path, &table.rows[0], "a").unwrap_err();
        assert!(error.to_string().contains("line 2: `a` = \"x\""), "{error}");
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
        #[derive(Serialize, serde::Deserialize)]
        struct One {
            v: f64,
        }
        for value in [1e-300, -2.5e12, f64::INFINITY, 0.1 + 0.2] {
            let text = render_records(&[One { v: value }], true);
            let back: Vec<One> = parse_records(Path::new("x.csv"), &text).unwrap();
            assert_eq!(back[0].v.to_bits(), value.to_bits(), "{text}");
        }
    }
}
