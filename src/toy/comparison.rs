//! Our measured margins beside the paper's tables ([`super::paper`]): the side-by-side block of
//! `tables.md`.

use std::fmt::Write as _;

use super::flow_limit::flow_limit;
use super::paper::{PaperRow, PaperTable};
use super::results::ToyResults;
use crate::diagnostics::MeanStd;

/// A ratio with 3 significant digits.
fn ratio(value: f64) -> String {
    if value != 0.0 && value.abs() < 0.01 {
        format!("{value:.2e}")
    } else {
        format!("{value:.3}")
    }
}

/// The Markdown block that sets the paper's `table` beside our `results`: the margins, then the
/// scale-free ratios (which do not depend on how teacher, data and margins are normalised):
/// each method's `L_k / L_2` (the columns' first / last over the L2 column where the table has
/// no L2), and each method's margin relative to the table's first row.
pub fn side_by_side(table: &PaperTable, results: &ToyResults) -> String {
    let ours = |method: &str, k: usize| -> Option<(MeanStd, String)> {
        let limit = flow_limit(results, method)?;
        let m = limit.runs;
        let group = m.headline()?;
        let state = format!(
            "{} {}/{}, {}",
            if group.settled {
                "settled"
            } else {
                "not settled"
            },
            group.seeds.len(),
            m.runs.len(),
            limit.describe()
        );
        Some((group.summary[&format!("gamma_{k}")], state))
    };
    let mut md = format!(
        "## Side by side with the paper's Table {}\n\n{}. Paper: mean ± std over its 6 seeds; ours: mean ± std over the runs named in the last column, each method at its flow limit (smallest `c`).\n\n| method |",
        table.id, table.caption
    );
    for k in table.columns {
        let _ = write!(md, " L{k} paper | L{k} ours | ours / paper |");
    }
    md.push_str(" our runs |\n|---|");
    md.push_str(&"---:|---:|---:|".repeat(table.columns.len()));
    md.push_str("---|\n");
    for row in table.rows {
        let _ = write!(md, "| {} |", row.method);
        let mut state = "not run".to_string();
        for (&k, &(mean, std)) in table.columns.iter().zip(row.values) {
            match ours(row.method, k) {
                Some((value, s)) => {
                    state = s;
                    let _ = write!(
                        md,
                        " {mean:.2e} ± {std:.1e} | {:.2e} ± {:.1e} | {:.2} |",
                        value.mean,
                        value.std,
                        value.mean / mean
                    );
                }
                None => {
                    let _ = write!(md, " {mean:.2e} ± {std:.1e} | - | - |");
                }
            }
        }
        let _ = writeln!(md, " {state} |");
    }

    let (reference_k, other_ks): (usize, Vec<usize>) = if table.columns.contains(&2) {
        (
            2,
            table.columns.iter().copied().filter(|&k| k != 2).collect(),
        )
    } else {
        (table.columns[0], table.columns[1..].to_vec())
    };
    let first = &table.rows[0];
    md.push_str("\nScale-free ratios (ratios of means), paper vs ours:\n\n| method |");
    for k in &other_ks {
        let _ = write!(md, " L{k}/L{reference_k} paper | ours |");
    }
    for k in table.columns {
        let _ = write!(md, " L{k} / {}'s paper | ours |", first.method);
    }
    md.push_str("\n|---|");
    md.push_str(&"---:|---:|".repeat(other_ks.len() + table.columns.len()));
    md.push('\n');
    let paper_value = |row: &PaperRow, k: usize| {
        let i = table
            .columns
            .iter()
            .position(|&c| c == k)
            .expect("a column");
        row.values[i].0
    };
    let our_value = |method: &str, k: usize| ours(method, k).map(|(v, _)| v.mean);
    let cell = |value: Option<f64>| value.map_or("-".to_string(), ratio);
    for row in table.rows {
        let _ = write!(md, "| {} |", row.method);
        for &k in &other_ks {
            let paper = paper_value(row, k) / paper_value(row, reference_k);
            let ours = our_value(row.method, k)
                .zip(our_value(row.method, reference_k))
                .map(|(a, b)| a / b);
            let _ = write!(md, " {} | {} |", ratio(paper), cell(ours));
        }
        for &k in table.columns {
            let paper = paper_value(row, k) / paper_value(first, k);
            let ours = our_value(row.method, k)
                .zip(our_value(first.method, k))
                .map(|(a, b)| a / b);
            let _ = write!(md, " {} | {} |", ratio(paper), cell(ours));
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toy::paper::paper_table;

    #[test]
    fn the_side_by_side_block_is_computed_from_the_results() {
        let mut results = crate::toy::results::tests::tiny_results("toy-2layer-lambda-p3.toml");
        let table = paper_table("4").unwrap();
        for (m, value) in results
            .methods
            .iter_mut()
            .zip([1.0e-2, 2.0e-2, 4.0e-2, 9.0])
        {
            for group in &mut m.groups {
                group.summary.get_mut("gamma_2").unwrap().mean = value;
                group.summary.get_mut("gamma_3").unwrap().mean = 3.0 * value;
            }
        }
        let md = side_by_side(table, &results);
        // lambda-10.0: ours 1e-2 against the paper's 2.24e-4.
        let row = md
            .lines()
            .find(|l| l.starts_with("| lambda-10.0 | 2.24e-4"))
            .expect(&md);
        assert!(row.contains("| 1.00e-2 ±"), "{row}");
        assert!(
            row.contains(&format!("| {:.2} |", 1.0e-2 / 2.24e-4)),
            "{row}"
        );
        assert!(row.ends_with("| not settled 3/3, c = 0.1 only |"), "{row}");
        // Ratios: L3/L2 = 3 for ours; lambda-0.1 relative to lambda-10.0 = 4.
        let ratios = md
            .lines()
            .filter(|l| l.starts_with("| lambda-0.1 |"))
            .nth(1)
            .expect(&md);
        let paper = 1.43e-3 / 2.34e-4;
        assert!(
            ratios.starts_with(&format!(
                "| lambda-0.1 | {paper:.3} | 3.000 | {:.3} | 4.000 |",
                2.34e-4 / 2.24e-4
            )),
            "{ratios}"
        );
        assert!(!md.contains("| gd |"), "only the paper's rows: {md}");
    }
}
