//! The training step's profile per op: each VGG-16 block (convolution, bias, ReLU, max pool),
//! the linear classifier with the cross-entropy, and the mirror step, forward and backward, in
//! milliseconds and cores busy (process CPU time over wall time), next to the whole step. Each
//! op is timed alone on autodiff tensors of its layer's shape, the backward pass as
//! `(out * r).sum().backward()` less the forward and less the same loss on a leaf of the
//! output's shape (the product with `r` and its gradient, which the training step does not
//! have); `scripts/torch_reference.py --ops` times PyTorch the same way. On `flex` the blocks
//! run our fused kernels ([`conv3x3_relu`]) unless `MIRRORBURN_CONV=burn`.

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor};

use super::median;
use super::pipeline::synthetic_batch;
use crate::conv::conv3x3_relu;
use crate::model::{Vgg, conv_layer_shapes};
use crate::optim::{MirrorDescentConfig, Potential};

/// Median milliseconds and cores busy of one op's forward and backward passes.
#[derive(Debug, Clone)]
pub struct OpRow {
    /// What was timed, e.g. `block 3 64-128@16` or `linear + cross-entropy`.
    pub op: String,
    /// Forward milliseconds (median).
    pub forward_ms: f64,
    /// Backward milliseconds (median of forward + backward, less the forward).
    pub backward_ms: f64,
    /// Process CPU time over wall time during the forward passes.
    pub forward_cores: f64,
    /// The same during forward + backward.
    pub backward_cores: f64,
}

/// CPU seconds this process has used, all threads together.
fn process_cpu_s() -> f64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid timespec the call writes into.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut time) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    time.tv_sec as f64 + time.tv_nsec as f64 * 1e-9
}

/// Median milliseconds of `repeats` calls of `work` (after a warm-up), and the cores busy over
/// all of them.
fn timed(repeats: usize, device: &Device, mut work: impl FnMut()) -> (f64, f64) {
    work();
    device.sync().expect("device sync");
    let (mut times, cpu_start, wall_start) = (Vec::new(), process_cpu_s(), Instant::now());
    for _ in 0..repeats {
        let start = Instant::now();
        work();
        device.sync().expect("device sync");
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let cores = (process_cpu_s() - cpu_start) / wall_start.elapsed().as_secs_f64();
    (median(times), cores)
}

/// An op's row from its forward and its forward + backward timings, less `loss_ms` (the
/// loss's own forward and backward).
fn row(op: String, forward: (f64, f64), both: (f64, f64), loss_ms: f64) -> OpRow {
    OpRow {
        op,
        forward_ms: forward.0,
        backward_ms: (both.0 - forward.0 - loss_ms).max(0.0),
        forward_cores: forward.1,
        backward_cores: both.1,
    }
}

/// Profiles the training step of VGG-16 at `width_divisor`, batch `batch_size`, on `device`
/// (a plain device; autodiff is added here), `repeats` times per op: one row per conv block,
/// the classifier with the loss, the mirror step per potential, and the whole step.
pub fn op_rows(
    width_divisor: usize,
    batch_size: usize,
    repeats: usize,
    device: &Device,
) -> Vec<OpRow> {
    let device = device.clone().autodiff();
    device.seed(0);
    let normal = Distribution::Normal(0.0, 1.0);
    let model = Vgg::new(width_divisor, 0, &device);
    let mut rows = Vec::new();
    let shapes = conv_layer_shapes(width_divisor);
    for (index, (shape, conv)) in shapes.iter().zip(&model.features).enumerate() {
        let pool = shapes
            .get(index + 1)
            .is_none_or(|next| next.side != shape.side);
        let side = shape.side;
        let x = Tensor::<4>::random([batch_size, shape.in_channels, side, side], normal, &device);
        // The images need no gradient; every later block's input does.
        let x = if index == 0 { x } else { x.require_grad() };
        let (weight, bias) = (conv.weight.val(), conv.bias.as_ref().map(|b| b.val()));
        let block = || conv3x3_relu(x.clone(), weight.clone(), bias.clone(), pool);
        let out_dims = block().dims();
        let r = Tensor::<4>::random(out_dims, normal, &device);
        let forward = timed(repeats, &device, || drop(block()));
        let both = timed(repeats, &device, || {
            drop((block() * r.clone()).sum().backward())
        });
        let leaf = Tensor::<4>::random(out_dims, normal, &device).require_grad();
        let loss = timed(repeats, &device, || {
            drop((leaf.clone() * r.clone()).sum().backward())
        });
        let label = format!(
            "block {} {}-{}@{}{}",
            index + 1,
            shape.in_channels,
            shape.out_channels,
            side,
            if pool { " +pool" } else { "" }
        );
        rows.push(row(label, forward, both, loss.0));
    }
    let channels = shapes.last().expect("13 layers").out_channels;
    let features = Tensor::<2>::random([batch_size, channels], normal, &device).require_grad();
    let targets = Tensor::<1, Int>::from_ints(
        &*(0..batch_size as i64).map(|i| i % 10).collect::<Vec<_>>(),
        &device,
    );
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let loss = || loss_fn.forward(model.classifier.forward(features.clone()), targets.clone());
    let forward = timed(repeats, &device, || drop(loss()));
    let both = timed(repeats, &device, || drop(loss().backward()));
    rows.push(row("linear + cross-entropy".into(), forward, both, 0.0));

    let batch = synthetic_batch(batch_size, 1, &device);
    let step = || {
        let loss = loss_fn.forward(model.forward(batch.images.clone()), batch.targets.clone());
        GradientsParams::from_grads(loss.backward(), &model)
    };
    let whole = timed(repeats, &device, || drop(step()));
    rows.push(OpRow {
        op: "whole forward + backward".into(),
        forward_ms: 0.0,
        backward_ms: whole.0,
        forward_cores: 0.0,
        backward_cores: whole.1,
    });
    for potential in super::benchmark_potentials() {
        let config = MirrorDescentConfig::new().with_potential(potential);
        let mut optimizer = config
            .init_for(&model)
            .expect("benchmark settings are valid");
        let mut current = model.clone();
        let (mut times, mut cpu, mut wall) = (Vec::new(), 0.0, 0.0);
        for round in 0..=repeats {
            let grads = step(); // not timed: the gradients the step consumes
            let (cpu_start, start) = (process_cpu_s(), Instant::now());
            current = optimizer.step(1e-3, current, grads);
            device.sync().expect("device sync");
            if round > 0 {
                times.push(start.elapsed().as_secs_f64() * 1e3);
                cpu += process_cpu_s() - cpu_start;
                wall += start.elapsed().as_secs_f64();
            }
        }
        let label = match potential {
            Potential::Gd => "mirror step gd".to_string(),
            other => format!("mirror step {}", other.label()),
        };
        rows.push(OpRow {
            op: label,
            forward_ms: 0.0,
            backward_ms: median(times),
            forward_cores: 0.0,
            backward_cores: cpu / wall,
        });
    }
    rows
}

/// The rows as a Markdown table, with the blocks' and classifier's total next to the whole
/// forward + backward (the difference is what no op row covers: autodiff bookkeeping, gradient
/// accumulation, the images' upload).
pub fn op_table(rows: &[OpRow], width_divisor: usize, batch_size: usize, backend: &str) -> String {
    let width = match width_divisor {
        1 => "full width".to_string(),
        k => format!("width/{k}"),
    };
    let mut out = format!(
        "Training step per op ({backend}, {width}, batch {batch_size}; medians, ms; cores = process CPU time / wall time)\n\n| op | forward ms | backward ms | cores fwd | cores fwd+bwd |\n|---|---:|---:|---:|---:|\n"
    );
    let mut ops_total = 0.0;
    for row in rows {
        if !row.op.starts_with("whole") && !row.op.starts_with("mirror") {
            ops_total += row.forward_ms + row.backward_ms;
        }
        out.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            row.op, row.forward_ms, row.backward_ms, row.forward_cores, row.backward_cores
        ));
    }
    out.push_str(&format!(
        "| **blocks + classifier** | | {ops_total:.1} | | |\n"
    ));
    out
}
