//! [`WeightSparsityMetric`] and [`ProductNormMarginMetric`]: burn-train `Metric`s over the math in
//! [`crate::diagnostics`].

use std::sync::Arc;

use burn::tensor::{ExecutionError, TensorReadError};
use burn::train::metric::{
    Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes, NumericEntry,
    SerializedEntry, format_float,
};

use super::output::MarginInput;
use super::weights::ModelWeights;
use crate::diagnostics::{class_margins, norm_product, summarize};

/// `Metric::compute` and `Metric::clear` of a metric whose state is its `value: EpochValue`.
macro_rules! epoch_value_methods {
    () => {
        fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
            Ok(self.value.finish())
        }

        fn clear(&mut self) {
            self.value.clear();
        }
    };
}

/// `Numeric` for a metric whose state is its `value: EpochValue`.
macro_rules! numeric_from_epoch_value {
    ($metric:ty) => {
        impl Numeric for $metric {
            fn value(&self) -> Option<NumericEntry> {
                self.value.batch_entry()
            }

            fn running_value(&self) -> Option<NumericEntry> {
                self.value.running_entry()
            }

            fn final_value(&self) -> NumericEntry {
                self.value.final_entry()
            }
        }
    };
}

/// Which sparsity statistic of a weight layer [`WeightSparsityMetric`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SparsityStatistic {
    /// Fraction of weights with `|w| < 1e-3 max |w|` (higher is sparser).
    NearZero,
    /// `||w||_1 / ||w||_2`, between 1 (one non-zero weight) and `sqrt(n)` (all equal).
    L1OverL2,
}

/// A sparsity statistic of one weight layer (weights in visiting order: 0 is the first; its bias
/// is not counted). Each batch reports the weights its output was computed with (in training:
/// before that batch's update); the epoch's value is the one at its last batch, so registered for
/// validation it is exactly the statistic of the epoch's final weights.
#[derive(Clone)]
pub struct WeightSparsityMetric {
    layer: usize,
    statistic: SparsityStatistic,
    name: MetricName,
    value: EpochValue,
}

impl WeightSparsityMetric {
    /// The fraction of weights near zero in weight layer `layer`.
    pub fn near_zero(layer: usize) -> Self {
        Self::new(layer, SparsityStatistic::NearZero)
    }

    /// `||w||_1 / ||w||_2` of weight layer `layer`.
    pub fn l1_over_l2(layer: usize) -> Self {
        Self::new(layer, SparsityStatistic::L1OverL2)
    }

    fn new(layer: usize, statistic: SparsityStatistic) -> Self {
        let what = match statistic {
            SparsityStatistic::NearZero => "Weights near zero",
            SparsityStatistic::L1OverL2 => "Weight l1-to-l2 ratio",
        };
        Self {
            layer,
            statistic,
            name: Arc::new(format!("{what} (layer {layer})")),
            value: EpochValue::new(Reduction::Last),
        }
    }
}

impl Metric for WeightSparsityMetric {
    type Input = ModelWeights;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: self.statistic == SparsityStatistic::NearZero,
        }
        .into()
    }

    fn update(
        &mut self,
        weights: &ModelWeights,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let layers = weights.layers()?;
        let layer = layers.get(self.layer).ok_or_else(|| {
            input_error(format!(
                "{}: the model has {} weight layers (0 to {}); choose one of them",
                self.name,
                layers.len(),
                layers.len().saturating_sub(1)
            ))
        })?;
        let summary = summarize(&layer.weights);
        let value = match self.statistic {
            SparsityStatistic::NearZero => summary.frac_near_zero,
            SparsityStatistic::L1OverL2 => summary.l1_over_l2,
        };
        Ok(self.value.update(value))
    }

    epoch_value_methods!();
}

numeric_from_epoch_value!(WeightSparsityMetric);

/// The product-norm margin `min_i q_i / prod_l ||W_l||_F` of the batch under the weights that
/// produced it; the epoch's value is the minimum over its batches (the margin of the whole set when
/// the weights are fixed, as in validation).
#[derive(Clone)]
pub struct ProductNormMarginMetric {
    name: MetricName,
    value: EpochValue,
}

impl ProductNormMarginMetric {
    /// The metric.
    pub fn new() -> Self {
        Self {
            name: Arc::new("Product-norm margin".to_string()),
            value: EpochValue::new(Reduction::Min),
        }
    }
}

impl Default for ProductNormMarginMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for ProductNormMarginMetric {
    type Input = MarginInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: true,
        }
        .into()
    }

    fn update(
        &mut self,
        input: &MarginInput,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let [_, classes] = input.logits.dims();
        let logits = input.logits.clone().try_into_vec_as::<f64>()?;
        let labels: Vec<usize> = input
            .targets
            .clone()
            .try_into_vec_as::<i64>()?
            .into_iter()
            .map(|label| {
                usize::try_from(label)
                    .ok()
                    .filter(|&label| label < classes)
                    .ok_or_else(|| {
                        input_error(format!(
                            "{}: class index {label} is not in 0..{classes} (the model's outputs)",
                            self.name
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        let q_min = class_margins(&logits, &labels, classes)
            .into_iter()
            .fold(f64::INFINITY, f64::min);
        let layers = input.weights.layers()?;
        Ok(self.value.update(q_min / norm_product(&layers)))
    }

    epoch_value_methods!();
}

numeric_from_epoch_value!(ProductNormMarginMetric);

/// A metric input the metric cannot use (a layer the model does not have, a label out of
/// range), as the error burn-train reports for the metric (`MetricError`) instead of a panic.
fn input_error(reason: String) -> TensorReadError {
    TensorReadError::Execution(ExecutionError::WithContext { reason })
}

/// How an epoch's value follows from its batches' values.
#[derive(Clone, Copy, Debug)]
enum Reduction {
    /// The last batch's.
    Last,
    /// The smallest.
    Min,
}

/// A batch value and the epoch's value so far.
#[derive(Clone, Debug)]
struct EpochValue {
    reduction: Reduction,
    batch: Option<f64>,
    epoch: Option<f64>,
}

impl EpochValue {
    fn new(reduction: Reduction) -> Self {
        Self {
            reduction,
            batch: None,
            epoch: None,
        }
    }

    fn update(&mut self, value: f64) -> SerializedEntry {
        self.batch = Some(value);
        self.epoch = Some(match (self.reduction, self.epoch) {
            (Reduction::Min, Some(epoch)) => epoch.min(value),
            _ => value,
        });
        let formatted = format!(
            "epoch {} - batch {}",
            format_float(self.epoch.unwrap_or(value), 4),
            format_float(value, 4)
        );
        SerializedEntry::new(formatted, NumericEntry::Value(value).serialize())
    }

    fn finish(&self) -> SerializedEntry {
        match self.epoch {
            Some(epoch) => SerializedEntry::new(
                format_float(epoch, 4),
                NumericEntry::Final(epoch).serialize(),
            ),
            None => SerializedEntry::not_available(None),
        }
    }

    fn clear(&mut self) {
        self.batch = None;
        self.epoch = None;
    }

    fn batch_entry(&self) -> Option<NumericEntry> {
        self.batch.map(NumericEntry::Value)
    }

    fn running_entry(&self) -> Option<NumericEntry> {
        self.epoch.map(NumericEntry::Value)
    }

    fn final_entry(&self) -> NumericEntry {
        NumericEntry::Final(self.epoch.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use burn::data::dataloader::Progress;
    use burn::tensor::{Device, Int, Tensor, TensorData};

    use super::*;
    use crate::model::BiasFreeMlp;

    fn metadata() -> MetricMetadata {
        MetricMetadata {
            progress: Progress {
                items_processed: 1,
                items_total: 1,
                unit: None,
            },
            iteration: Some(0),
            lr: None,
        }
    }

    fn model(first: [f32; 4], second: [f32; 2]) -> BiasFreeMlp {
        let device = Device::flex();
        BiasFreeMlp::from_weights(vec![
            Tensor::from_data(TensorData::new(first.to_vec(), [2, 2]), &device),
            Tensor::from_data(TensorData::new(second.to_vec(), [2, 1]), &device),
        ])
    }

    #[test]
    fn sparsity_of_a_hand_made_layer() {
        // Layer 0: |w| = 0, 1e-4, 1, 2: two below 1e-3 * 2; l1/l2 = 3.0001 / sqrt(5 + 1e-8).
        let weights = ModelWeights::of(&model([0.0, 1e-4, 1.0, -2.0], [3.0, 4.0]));
        let mut near_zero = WeightSparsityMetric::near_zero(0);
        near_zero.update(&weights, &metadata()).unwrap();
        assert_eq!(near_zero.final_value().current(), 0.5);
        let mut ratio = WeightSparsityMetric::l1_over_l2(1);
        ratio.update(&weights, &metadata()).unwrap();
        assert!((ratio.final_value().current() - 7.0 / 5.0).abs() < 1e-12);
        assert_eq!(near_zero.name().as_str(), "Weights near zero (layer 0)");
    }

    #[test]
    fn the_epoch_sparsity_is_the_last_batch_and_clear_forgets_it() {
        let mut metric = WeightSparsityMetric::near_zero(0);
        let sparse = ModelWeights::of(&model([0.0, 0.0, 0.0, 1.0], [1.0, 1.0]));
        let dense = ModelWeights::of(&model([1.0, 1.0, 1.0, 1.0], [1.0, 1.0]));
        metric.update(&sparse, &metadata()).unwrap();
        metric.update(&dense, &metadata()).unwrap();
        assert_eq!(metric.final_value().current(), 0.0);
        metric.clear();
        assert!(metric.running_value().is_none());
        assert!(metric.compute().unwrap().is_not_available());
    }

    #[test]
    fn the_margin_is_the_minimum_over_batches_over_the_norm_product() {
        let device = Device::flex();
        // Layer norms: first sqrt(1 + 4 + 4 + 16) = 5, second sqrt(9 + 16) = 5: product 25.
        let weights = ModelWeights::of(&model([1.0, 2.0, 2.0, 4.0], [3.0, 4.0]));
        let batch = |logits: Vec<f32>, targets: Vec<i64>| MarginInput {
            logits: Tensor::from_data(TensorData::new(logits, [2, 3]), &device),
            targets: Tensor::<1, Int>::from_data(TensorData::new(targets, [2]), &device),
            weights: weights.clone(),
        };
        let mut metric = ProductNormMarginMetric::new();
        // q = 1 (label 0: 3 vs 2) and q = 2 (label 1: 5 vs 3): min 1.
        metric
            .update(
                &batch(vec![3.0, 1.0, 2.0, 0.0, 5.0, 3.0], vec![0, 1]),
                &metadata(),
            )
            .unwrap();
        assert_eq!(metric.value().unwrap().current(), 1.0 / 25.0);
        // q = -3 (label 2: 1 vs 4) and q = 4: the epoch's margin becomes -3 / 25.
        metric
            .update(
                &batch(vec![4.0, 0.0, 1.0, 4.0, 0.0, 0.0], vec![2, 0]),
                &metadata(),
            )
            .unwrap();
        assert_eq!(metric.value().unwrap().current(), -3.0 / 25.0);
        metric
            .update(
                &batch(vec![9.0, 0.0, 0.0, 9.0, 0.0, 0.0], vec![0, 0]),
                &metadata(),
            )
            .unwrap();
        assert_eq!(metric.final_value().current(), -3.0 / 25.0);
    }

    /// A layer the model does not have and a label outside the model's classes are errors that
    /// burn-train reports for the metric (not panics), and name the problem.
    #[test]
    fn a_missing_layer_or_a_label_out_of_range_is_an_error_naming_it() {
        let weights = ModelWeights::of(&model([1.0; 4], [1.0; 2]));
        let error = WeightSparsityMetric::near_zero(2)
            .update(&weights, &metadata())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the model has 2 weight layers (0 to 1)"),
            "{error}"
        );
        let device = Device::flex();
        let input = MarginInput {
            logits: Tensor::from_data(TensorData::new(vec![1.0f32; 6], [2, 3]), &device),
            targets: Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 3], [2]), &device),
            weights,
        };
        let error = ProductNormMarginMetric::new()
            .update(&input, &metadata())
            .unwrap_err()
            .to_string();
        assert!(error.contains("class index 3 is not in 0..3"), "{error}");
    }
}
