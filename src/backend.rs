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
        self.resolve_at(None)
    }

    /// Every backend compiled into this binary, `flex` first.
    pub fn compiled() -> Vec<Backend> {
        let mut backends = vec![Backend::Flex];
        if cfg!(feature = "wgpu") {
            backends.push(Backend::Wgpu);
        }
        if cfg!(feature = "cuda") {
            backends.push(Backend::Cuda);
        }
        backends
    }

    /// Like [`resolve`](Self::resolve), on GPU number `index` (`--device`; the CPU backend
    /// ignores it).
    pub fn resolve_at(self, index: Option<usize>) -> Result<BackendDevice, BackendNotCompiled> {
        Ok(BackendDevice {
            backend: self,
            device: self.device_at(index)?,
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
        self.device_at(None)
    }

    /// The (non-autodiff) device: GPU number `index` when given (the default GPU otherwise);
    /// the CPU backend ignores the index.
    pub fn device_at(&self, index: Option<usize>) -> Result<Device, BackendNotCompiled> {
        let _ = index; // unused when no GPU backend is compiled in
        match self {
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(match index {
                Some(i) => burn::tensor::DeviceKind::DiscreteGpu(i),
                None => burn::tensor::DeviceKind::DefaultDevice,
            })),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(index.unwrap_or(0))),
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
