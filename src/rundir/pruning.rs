//! `pruning.csv`: the accuracy-vs-sparsity curve of one-shot magnitude pruning. Its columns are
//! the fixed ones below, then one per weight layer (named by the weight's path) holding that
//! layer's achieved sparsity.

use std::path::Path;

use super::csv::{Table, format_number, render_table};
use super::error::RunDirError;
use crate::diagnostics::PruneScope;

/// The fixed columns of `pruning.csv`.
pub const PRUNING_COLUMNS: [&str; 5] = [
    "sparsity",
    "scope",
    "achieved_sparsity",
    "val_loss",
    "val_acc",
];

/// One row of `pruning.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneRow {
    /// Requested sparsity.
    pub sparsity: f64,
    /// Layer-wise or global threshold.
    pub scope: PruneScope,
    /// Achieved fraction of zero weights over all weight layers.
    pub achieved: f64,
    /// Validation loss after pruning.
    pub val_loss: f64,
    /// Validation accuracy after pruning.
    pub val_acc: f64,
    /// Achieved sparsity of each weight layer, by weight path.
    pub per_layer: Vec<(String, f64)>,
}

fn scope_name(scope: PruneScope) -> &'static str {
    match scope {
        PruneScope::Layer => "layer",
        PruneScope::Global => "global",
    }
}

/// The text of `pruning.csv` (the layer columns are those of the first row).
pub fn to_text(rows: &[PruneRow]) -> String {
    let mut header: Vec<String> = PRUNING_COLUMNS.iter().map(|c| c.to_string()).collect();
    if let Some(first) = rows.first() {
        header.extend(first.per_layer.iter().map(|(path, _)| path.clone()));
    }
    let lines = rows.iter().map(|row| {
        let mut cells = vec![
            format_number(row.sparsity),
            scope_name(row.scope).to_string(),
            format_number(row.achieved),
            format_number(row.val_loss),
            format_number(row.val_acc),
        ];
        cells.extend(row.per_layer.iter().map(|(_, s)| format_number(*s)));
        cells
    });
    render_table(&header, lines)
}

/// Parses `pruning.csv` (the content of `path`).
pub fn parse(path: &Path, text: &str) -> Result<Vec<PruneRow>, RunDirError> {
    let table = Table::parse(path, text, &PRUNING_COLUMNS)?;
    let layers: Vec<String> = table
        .columns
        .iter()
        .filter(|c| !PRUNING_COLUMNS.contains(&c.as_str()))
        .cloned()
        .collect();
    table
        .rows
        .iter()
        .map(|row| {
            let scope: String = table.get(path, row, "scope")?;
            let scope = match scope.as_str() {
                "layer" => PruneScope::Layer,
                "global" => PruneScope::Global,
                other => {
                    return Err(RunDirError::Corrupt {
                        path: path.to_path_buf(),
                        reason: format!("line {}: unknown scope {other:?}", row.0),
                    });
                }
            };
            let per_layer = layers
                .iter()
                .map(|l| Ok((l.clone(), table.get(path, row, l)?)))
                .collect::<Result<_, RunDirError>>()?;
            Ok(PruneRow {
                sparsity: table.get(path, row, "sparsity")?,
                scope,
                achieved: table.get(path, row, "achieved_sparsity")?,
                val_loss: table.get(path, row, "val_loss")?,
                val_acc: table.get(path, row, "val_acc")?,
                per_layer,
            })
        })
        .collect()
}
