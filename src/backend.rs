//! Run-time backend choice. This is the only module that names a backend: `cuda` differs from
//! `wgpu` only by the device it constructs.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// A compute backend, selected with `--backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Burn's `flex` CPU backend (always compiled in; the default).
    Flex,
    /// WGPU (Vulkan/Metal/DX12) GPUs; needs the `wgpu` cargo feature.
    Wgpu,
    /// NVIDIA CUDA GPUs; needs the `cuda` cargo feature (its build needs internet).
    Cuda,
}

/// A backend that this binary was built without.
#[derive(Debug, thiserror::Error)]
#[error(
    "backend `{name}` is not compiled into this binary; rebuild with `cargo build --release --features {name}`"
)]
pub struct BackendNotCompiled {
    /// The backend's name, which is also its cargo feature.
    pub name: &'static str,
}

/// A backend resolved to its device, once per command.
#[derive(Clone, Debug)]
pub struct BackendDevice {
    /// The backend (recorded in run summaries).
    pub backend: Backend,
    /// Its (non-autodiff) device.
    pub device: Device,
}

impl Backend {
    /// Resolves the backend to its device, or an error naming the cargo feature to enable.
    pub fn resolve(self) -> Result<BackendDevice, BackendNotCompiled> {
        Ok(BackendDevice {
            backend: self,
            device: self.device()?,
        })
    }

    /// The backend's name, as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// The (non-autodiff) device, or an error naming the cargo feature to enable.
    pub fn device(&self) -> Result<Device, BackendNotCompiled> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            other => Err(BackendNotCompiled { name: other.name() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex_is_always_available() {
        assert!(Backend::Flex.device().is_ok());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn missing_backend_names_the_feature() {
        let message = Backend::Cuda.device().unwrap_err().to_string();
        assert!(message.contains("--features cuda"), "{message}");
    }
}
