//! A model's weights as burnpack record bytes, and back.

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;

use super::error::TrainError;
use crate::model::Vgg;

/// The model's record as burnpack bytes.
pub fn model_bytes(model: &Vgg) -> Result<Vec<u8>, TrainError> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| TrainError::Record {
            what: "serializing the model".into(),
            message: format!("{e:?}"),
        })?;
    Ok(bytes.to_vec())
}

/// Loads record `bytes` (from `origin`, for messages) into `model`.
pub fn load_model(bytes: Vec<u8>, model: Vgg, origin: &str) -> Result<Vgg, TrainError> {
    let failed = |e: String| TrainError::Record {
        what: format!("loading model record {origin}"),
        message: e,
    };
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| failed(format!("{e:?}")))?;
    model
        .try_load_record(record)
        .map_err(|e| failed(format!("{e:?}")))
}
