//! The sweep's result table (Table 9 style): per method, every setting (its runs grouped by the
//! full resolved config minus the seed) with the mean ± std over seeds of the best validation
//! accuracy, the best setting first; runs that failed or diverged are counted and marked.

use std::fmt::Write as _;
use std::path::Path;

use super::grid::Sweep;
use super::runner::{RunState, run_dir};
use crate::diagnostics::MeanStd;
use crate::report::method_key;
use crate::rundir::{RunDir, RunDirError, RunStatus};

/// One setting of a method over its seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingRow {
    /// The method.
    pub method: String,
    /// The grid values other than the seed, e.g. `lambda=0.01 lr=0.1`.
    pub setting: String,
    /// Its runs' names, one per seed.
    pub runs: Vec<String>,
    /// Best validation accuracy (%) over the completed seeds.
    pub accuracy: MeanStd,
    /// Seeds completed.
    pub completed: usize,
    /// Seeds that diverged.
    pub diverged: usize,
    /// Seeds that failed.
    pub failed: usize,
    /// Whether this is its method's best setting (highest mean over completed seeds).
    pub best: bool,
}

/// The table rows: methods in sweep order, each method's best setting first.
pub fn setting_rows(
    sweep: &Sweep,
    out: &Path,
    states: &[RunState],
) -> Result<Vec<SettingRow>, RunDirError> {
    let mut rows: Vec<(String, SettingRow, Vec<f64>)> = Vec::new();
    for (run, state) in sweep.runs.iter().zip(states) {
        let key = format!("{}\n{}", run.method, method_key(&run.config));
        let index = match rows.iter().position(|(k, _, _)| *k == key) {
            Some(index) => index,
            None => {
                let setting = run
                    .point
                    .iter()
                    .filter(|(k, _)| k != "seed")
                    .map(|(k, v)| format!("{}={v}", k.rsplit('.').next().unwrap_or(k)))
                    .collect::<Vec<_>>()
                    .join(" ");
                rows.push((
                    key,
                    SettingRow {
                        method: run.method.clone(),
                        setting,
                        runs: Vec::new(),
                        accuracy: MeanStd::of(&[]),
                        completed: 0,
                        diverged: 0,
                        failed: 0,
                        best: false,
                    },
                    Vec::new(),
                ));
                rows.len() - 1
            }
        };
        let (_, row, accuracies) = &mut rows[index];
        row.runs.push(run.name.clone());
        match state.status {
            Some(RunStatus::Completed) => {
                row.completed += 1;
                let summary = RunDir::new(run_dir(out, run)).read_summary()?;
                if let Some(acc) = summary.and_then(|s| s.best_val_acc) {
                    accuracies.push(100.0 * acc);
                }
            }
            Some(RunStatus::Diverged) => row.diverged += 1,
            Some(RunStatus::Failed) => row.failed += 1,
            _ => {}
        }
    }
    let mut rows: Vec<SettingRow> = rows
        .into_iter()
        .map(|(_, mut row, accuracies)| {
            row.accuracy = MeanStd::of(&accuracies);
            row
        })
        .collect();
    let methods: Vec<String> =
        sweep
            .runs
            .iter()
            .map(|r| r.method.clone())
            .fold(Vec::new(), |mut m, x| {
                if !m.contains(&x) {
                    m.push(x);
                }
                m
            });
    let mut ordered = Vec::new();
    for method in methods {
        let mut of_method: Vec<SettingRow> = rows
            .iter()
            .filter(|r| r.method == method)
            .cloned()
            .collect();
        let best = of_method
            .iter()
            .enumerate()
            .filter(|(_, r)| r.completed > 0)
            .max_by(|a, b| a.1.accuracy.mean.total_cmp(&b.1.accuracy.mean))
            .map(|(i, _)| i);
        if let Some(best) = best {
            of_method[best].best = true;
            let row = of_method.remove(best);
            of_method.insert(0, row);
        }
        ordered.extend(of_method);
    }
    rows.clear();
    Ok(ordered)
}

/// The table as Markdown.
pub fn to_markdown(sweep: &Sweep, rows: &[SettingRow]) -> String {
    let mut md = format!(
        "# {}: best validation accuracy per method (mean ± std over seeds)\n\n\
         Each method's best setting (highest mean best-epoch validation accuracy over its completed \
         seeds) is in bold, its other settings below it.\n\n\
         | method | setting | best val acc (%) | seeds completed | diverged | failed |\n\
         |---|---|---:|---:|---:|---:|\n",
        sweep.name
    );
    for row in rows {
        let accuracy = if row.completed == 0 {
            "–".to_string()
        } else {
            format!("{:.2} ± {:.2}", row.accuracy.mean, row.accuracy.std)
        };
        let (open, close) = if row.best { ("**", "**") } else { ("", "") };
        let _ = writeln!(
            md,
            "| {open}{}{close} | {open}{}{close} | {open}{accuracy}{close} | {}/{} | {} | {} |",
            row.method,
            if row.setting.is_empty() {
                "–"
            } else {
                &row.setting
            },
            row.completed,
            row.runs.len(),
            mark(row.diverged),
            mark(row.failed),
        );
    }
    md
}

/// One row of `table9.csv`.
#[derive(serde::Serialize)]
struct CsvRow<'a> {
    method: &'a str,
    setting: &'a str,
    best: bool,
    mean_best_val_acc: f64,
    std_best_val_acc: f64,
    seeds_completed: usize,
    seeds: usize,
    diverged: usize,
    failed: usize,
    /// The run names, space-separated.
    runs: String,
}

/// The table as CSV (cells quoted where they need it).
pub fn to_csv(rows: &[SettingRow]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .serialize(CsvRow {
                method: &row.method,
                setting: &row.setting,
                best: row.best,
                mean_best_val_acc: row.accuracy.mean,
                std_best_val_acc: row.accuracy.std,
                seeds_completed: row.completed,
                seeds: row.runs.len(),
                diverged: row.diverged,
                failed: row.failed,
                runs: row.runs.join(" "),
            })
            .expect("rows serialize to memory");
    }
    String::from_utf8(writer.into_inner().expect("in memory")).expect("UTF-8 cells")
}

fn mark(count: usize) -> String {
    if count == 0 {
        "0".into()
    } else {
        format!("**{count}**")
    }
}
