//! Training throughput inside a wall-clock window that several processes share: K trainings on
//! one GPU (what `sweep --jobs K --devices 0` does) are compared by their aggregate images/s
//! over the same seconds, not over whatever each happened to overlap.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::Device;

use super::pipeline::synthetic_batch;
use crate::model::Vgg;
use crate::optim::MirrorDescentConfig;

/// An arrival later than this after the window's start is noted in the table (sleeping to the
/// start overshoots by a few milliseconds).
const LATE_NOTED_S: f64 = 0.1;

/// Training steps completed inside the window.
#[derive(Debug, Clone)]
pub struct WindowRow {
    /// Width divisor of the VGG-16.
    pub width_divisor: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Steps completed between the window's start and its end.
    pub steps: usize,
    /// Seconds from the window's start to the end of the last counted step.
    pub seconds: f64,
    /// Seconds this process arrived after the window's start (its warm-up overran; 0 normally).
    pub late_s: f64,
}

impl WindowRow {
    /// Training images per second inside the window.
    pub fn images_per_s(&self) -> f64 {
        (self.steps * self.batch_size) as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Warms up (two steps), waits for `start_at` (unix seconds; `None`: now), then trains GD steps
/// of a width/`width_divisor` VGG-16 on one synthetic batch for `seconds`, each step ended by a
/// device sync so that it is counted only when done.
pub fn window_row(
    width_divisor: usize,
    batch_size: usize,
    start_at: Option<f64>,
    seconds: f64,
    device: &Device,
) -> WindowRow {
    let device = device.clone().autodiff();
    let batch = synthetic_batch(batch_size, 1, &device);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut model = Vgg::new(width_divisor, 0, &device);
    let mut optimizer = MirrorDescentConfig::new()
        .init_for(&model)
        .expect("GD is valid");
    let mut step = |model: Vgg| {
        let loss = loss_fn.forward(model.forward(batch.images.clone()), batch.targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optimizer.step(1e-3, model, grads);
        device.sync().expect("device sync");
        model
    };
    for _ in 0..2 {
        model = step(model);
    }
    let start_at = start_at.unwrap_or_else(unix_now);
    let wait = start_at - unix_now();
    if wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
    let late_s = (unix_now() - start_at).max(0.0);
    // Instant for the measurement itself; the wall clock only aligns the processes.
    let start = Instant::now() - Duration::from_secs_f64(late_s);
    let (mut steps, mut last_done) = (0, 0.0);
    loop {
        model = step(model);
        let done = start.elapsed().as_secs_f64();
        if done > seconds {
            break;
        }
        steps += 1;
        last_done = done;
    }
    WindowRow {
        width_divisor,
        batch_size,
        steps,
        seconds: last_done,
        late_s,
    }
}

/// The row as a Markdown table (one line per process; `gpu_check.sh` sums them).
pub fn window_table(row: &WindowRow, backend: &str) -> String {
    format!(
        "Training steps in a shared window ({backend}, GD, width 1/{}, batch {}): \
         {} steps in {:.2} s{}\n\n| backend | width | batch | steps | seconds | images/s |\n\
         |---|---:|---:|---:|---:|---:|\n| {backend} | 1/{} | {} | {} | {:.2} | {:.1} |\n",
        row.width_divisor,
        row.batch_size,
        row.steps,
        row.seconds,
        if row.late_s > LATE_NOTED_S {
            format!(
                " (arrived {:.1} s late: the warm-up overran the window's start)",
                row.late_s
            )
        } else {
            String::new()
        },
        row.width_divisor,
        row.batch_size,
        row.steps,
        row.seconds,
        row.images_per_s()
    )
}
