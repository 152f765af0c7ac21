//! Every read of a tensor back to the host goes through this module, which counts them. On a GPU
//! a read waits for all queued work (a pipeline stall), so a training step must make none
//! between two log points; [`device_reads`] lets tests and `mirrorburn bench --parts step`
//! check that.
//!
//! The CPU kernels' own access to `flex` tensors (host memory: no device, no wait) and Burn's
//! record serialisation at checkpoints are not counted.

use std::cell::Cell;

use burn::tensor::kind::Basic;
use burn::tensor::{Element, Tensor, TensorData};

thread_local! {
    /// Per thread, so that a test's count is not disturbed by tests running beside it.
    static READS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    READS.with(|reads| reads.set(reads.get() + 1));
}

/// Reads a tensor's values to the host (one counted read).
pub fn read_data<const D: usize, K: Basic>(tensor: Tensor<D, K>) -> TensorData {
    count_one();
    tensor.into_data()
}

/// Reads a one-element tensor to the host as `E` (one counted read).
pub fn read_scalar<E: Element, const D: usize, K: Basic>(tensor: Tensor<D, K>) -> E {
    count_one();
    tensor.into_scalar::<E>()
}

/// Reads a tensor's values to the host as f64 (one counted read).
pub fn read_f64<const D: usize, K: Basic>(tensor: Tensor<D, K>) -> Vec<f64> {
    read_data(tensor).iter::<f64>().collect()
}

/// Device-to-host reads made by the calling thread so far.
pub fn device_reads() -> u64 {
    READS.with(Cell::get)
}
