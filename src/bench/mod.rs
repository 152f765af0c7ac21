//! Benchmarks behind `mirrorburn bench`: the optimizer step alone, the whole training step, the
//! data pipeline alone, the backends' agreement on one step, the mirror step's accuracy per element, the convolution per layer, the
//! step per op, and the student-teacher toy's step, and training throughput in a window shared by processes. Each returns rows and renders a Markdown table.

mod agreement;
mod conv;
mod ops;
mod optimizer;
mod pipeline;
mod step_accuracy;
mod toy;
mod training_step;
mod window;

pub use agreement::{
    AgreementBounds, AgreementRow, F32_BOUNDS, StepDifference, StepOutcome, TF32_BOUNDS,
    agreement_optimizers, agreement_rows, agreement_table, compare, one_step,
};
pub use conv::{ConvRow, ConvTimes, conv_rows, conv_table};
pub use ops::{OpRow, op_rows, op_table};
pub use optimizer::{BenchRow, run as optimizer_rows, to_markdown as optimizer_table};
pub use pipeline::{PipelineRow, pipeline_row, pipeline_table, synthetic_batch, synthetic_split};
pub use step_accuracy::{
    NEW_WEIGHT_ULPS, RELATIVE_UPDATES, STEP_TOLERANCE, StepAccuracyRow, step_accuracy_rows,
    step_accuracy_table, weights_and_gradients,
};
pub use toy::{ToyStepRow, toy_step_rows, toy_step_table};
pub use training_step::{StepRow, step_rows, step_table};
pub use window::{WindowRow, window_row, window_table};

/// The potentials every benchmark times: GD, hyperbolic and p = 10 (lambda 0.01).
fn benchmark_potentials() -> [crate::optim::Potential; 3] {
    use crate::optim::Potential;
    [
        Potential::Gd,
        Potential::Hyperbolic { lambda: 0.01 },
        Potential::PHomogeneous {
            p: 10.0,
            lambda: 0.01,
        },
    ]
}

/// The median of `values` (the upper one of an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn training_step_and_pipeline_benchmarks_measure_every_configuration() {
        let device = Device::flex();
        let rows = step_rows(&[32, 16], 4, 1, &device);
        assert_eq!(rows.len(), 8, "4 optimizers x 2 widths");
        for row in &rows {
            assert!(
                row.forward_backward_s > 0.0 && row.optimizer_s > 0.0,
                "{row:?}"
            );
            assert!((0.0..1.0).contains(&row.optimizer_share()), "{row:?}");
        }
        assert!(
            rows[0].params < rows[4].params,
            "width/16 is larger than width/32"
        );
        let table = step_table(&rows, "flex");
        assert_eq!(
            table.lines().filter(|l| l.starts_with("| 1/")).count(),
            8,
            "{table}"
        );
        let conv = conv_rows(32, 3, 1);
        assert_eq!(conv.iter().map(|r| r.count).sum::<usize>(), 13, "{conv:?}");
        assert!(
            conv.iter()
                .all(|r| r.ours.weight_grad_ms > 0.0 && r.burn.forward_ms > 0.0)
        );
        let table = conv_table(&conv, 32, 3);
        assert!(
            table.contains("| 3-2@32 | 1 |") && table.contains("all 13 layers"),
            "{table}"
        );
        let ops = op_rows(32, 3, 1, &device);
        assert_eq!(ops.len(), 13 + 1 + 1 + 3, "{ops:?}");
        assert_eq!(
            ops.iter().filter(|r| r.op.ends_with("+pool")).count(),
            5,
            "{ops:?}"
        );
        assert!(
            ops.iter()
                .all(|r| r.forward_ms + r.backward_ms > 0.0 && r.backward_cores > 0.0),
            "{ops:?}"
        );
        assert!(op_table(&ops, 32, 3, "flex").contains("| block 13 16-16@2 +pool |"));
        let pipeline = pipeline_row(40, 8, 1, &device);
        assert!(pipeline.images_per_s > 0.0);
        assert!(pipeline_table(&pipeline, "flex").contains("40 synthetic images"));
    }
}
