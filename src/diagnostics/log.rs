//! Writing diagnostics into a run directory: `histograms.jsonl`, `margins.csv`, `balance.csv`.
//!
//! Rows are appended (one write per log step), so a long run stays linear in cost. Readers skip
//! a torn last line, and a resume first rewrites each file (atomically) without the rows past its
//! checkpoint.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::balance::{BALANCE_HEADER, balance_rows, layer_q};
use super::histogram::{LayerHistogram, layer_histogram};
use super::margins::{MARGINS_HEADER, class_margins, margins};
use super::snapshot::weight_layers;
use crate::fsutil::write_atomic;
use crate::model::{NUM_CLASSES, Vgg};
use crate::optim::{MirrorDescentConfig, fan_in};

/// Images (normalised, on the evaluation device) and labels of the fixed margin subset.
pub struct MarginProbe {
    /// `[n, 3, 32, 32]`.
    pub images: Tensor<4>,
    /// Class of each image.
    pub labels: Vec<u8>,
}

/// The diagnostics files of one run directory.
pub struct DiagnosticsLog {
    histograms: PathBuf,
    margins: PathBuf,
    balance: PathBuf,
}

impl DiagnosticsLog {
    /// The diagnostics files under `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            histograms: root.join("histograms.jsonl"),
            margins: root.join("margins.csv"),
            balance: root.join("balance.csv"),
        }
    }

    /// Drops every row past `epoch` (and any torn line), e.g. before resuming from a checkpoint.
    pub fn truncate_after(&self, epoch: usize) -> std::io::Result<()> {
        for (path, header) in [
            (&self.margins, MARGINS_HEADER),
            (&self.balance, BALANCE_HEADER),
        ] {
            let columns = header.split(',').count();
            let kept: Vec<String> = csv_rows(path)
                .into_iter()
                .filter(|row| row.split(',').count() == columns && row_epoch(row) <= Some(epoch))
                .collect();
            write_atomic(path, with_header(header, &kept).as_bytes())?;
        }
        let kept: Vec<String> = fs::read_to_string(&self.histograms)
            .unwrap_or_default()
            .lines()
            .filter(|line| {
                serde_json::from_str::<LayerHistogram>(line).is_ok_and(|h| h.epoch <= epoch)
            })
            .map(|line| format!("{line}\n"))
            .collect();
        write_atomic(&self.histograms, kept.concat().as_bytes())
    }

    /// Per-layer `Q_l` at initialisation, from `balance.csv` (None before the first record).
    pub fn initial_q(&self) -> Option<Vec<f64>> {
        let q: Vec<f64> = csv_rows(&self.balance)
            .iter()
            .filter(|row| row_epoch(row) == Some(0))
            .filter_map(|row| row.split(',').nth(3)?.parse().ok())
            .collect();
        (!q.is_empty()).then_some(q)
    }

    /// Records histograms, margins and balance of `model` at `epoch`. Copies the weights to the
    /// host once; `initial_q` is filled at the first record (epoch 0) and used for the drift.
    pub fn record(
        &self,
        epoch: usize,
        model: &Vgg,
        optimizer: &MirrorDescentConfig,
        probe: &MarginProbe,
        initial_q: &mut Option<Vec<f64>>,
    ) -> anyhow::Result<()> {
        let layers = weight_layers(model);
        let mut histogram_lines = String::new();
        for (index, layer) in layers.iter().enumerate() {
            let h = layer_histogram(
                epoch,
                index,
                &layer.path,
                fan_in(&layer.dims),
                &layer.weights,
            );
            histogram_lines.push_str(&serde_json::to_string(&h)?);
            histogram_lines.push('\n');
        }
        let q = layer_q(&layers, optimizer);
        let initial = initial_q.get_or_insert_with(|| q.clone());
        let logits = logits_of(&model.valid(), &probe.images);
        let point_margins = class_margins(&logits, &probe.labels, NUM_CLASSES);
        let alpha = optimizer.potential.alpha();
        let row = margins(epoch, &point_margins, &layers, q.iter().sum(), alpha);

        append(&self.histograms, None, &histogram_lines)?;
        append(
            &self.margins,
            Some(MARGINS_HEADER),
            &format!("{}\n", row.to_csv()),
        )?;
        let balance = balance_rows(epoch, &layers, &q, initial);
        let balance: String = balance.iter().map(|row| format!("{row}\n")).collect();
        append(&self.balance, Some(BALANCE_HEADER), &balance)?;
        Ok(())
    }
}

/// Logits of `images`, in chunks of 500, as row-major f64.
fn logits_of(model: &Vgg, images: &Tensor<4>) -> Vec<f64> {
    let n = images.dims()[0];
    let mut out = Vec::with_capacity(n * NUM_CLASSES);
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let chunk = images.clone().narrow(0, start, end - start);
        out.extend(model.forward(chunk).into_data().iter::<f64>());
    }
    out
}

/// The margin subset: the first `n` items of `dataset`, batched on `device` (no autodiff).
pub fn margin_probe(
    dataset: &crate::data::CifarDataset,
    batcher: &crate::data::CifarBatcher,
    n: usize,
    device: &Device,
) -> anyhow::Result<MarginProbe> {
    use burn::data::dataloader::batcher::Batcher;
    use burn::data::dataset::Dataset;
    let n = n.min(dataset.len());
    let items = (0..n)
        .map(|i| dataset.get(i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("reading the margin subset: {e}"))?;
    let labels = items.iter().map(|item| item.label).collect();
    let batch = batcher.batch(items, &device.clone().without_autodiff());
    Ok(MarginProbe {
        images: batch.images,
        labels,
    })
}

fn csv_rows(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

fn row_epoch(row: &str) -> Option<usize> {
    row.split(',').next()?.parse().ok()
}

fn with_header(header: &str, rows: &[String]) -> String {
    let mut text = format!("{header}\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}

/// Appends `text` to `path` in one write, creating it with `header` first if it is new.
fn append(path: &Path, header: Option<&str>, text: &str) -> std::io::Result<()> {
    let new = !path.exists();
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut block = String::new();
    if let (true, Some(header)) = (new, header) {
        block.push_str(header);
        block.push('\n');
    }
    block.push_str(text);
    file.write_all(block.as_bytes())?;
    file.sync_data()
}
