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

/// Why a backend cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BackendUnavailable {
    /// This binary was built without the backend.
    #[error(
        "backend `{name}` is not compiled into this binary; rebuild with `cargo build --release --features {name}`"
    )]
    NotCompiled {
        /// The backend's name, which is also its cargo feature.
        name: &'static str,
    },
    /// The NVIDIA driver library cannot be loaded.
    #[error(
        "backend `cuda` needs the NVIDIA driver, but libcuda.so.1 cannot be loaded ({reason}); install the driver or add its directory to LD_LIBRARY_PATH, or run with `--backend wgpu` or `--backend flex`"
    )]
    NoCudaDriver {
        /// The loader's message.
        reason: String,
    },
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
    pub fn resolve(self) -> Result<BackendDevice, BackendUnavailable> {
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
    pub fn resolve_at(self, index: Option<usize>) -> Result<BackendDevice, BackendUnavailable> {
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

    /// The (non-autodiff) device, or an error naming the cargo feature to enable or the missing
    /// driver.
    pub fn device(&self) -> Result<Device, BackendUnavailable> {
        self.device_at(None)
    }

    /// The (non-autodiff) device: GPU number `index` when given (the default GPU otherwise);
    /// the CPU backend ignores the index.
    pub fn device_at(&self, index: Option<usize>) -> Result<Device, BackendUnavailable> {
        let _ = index; // unused when no GPU backend is compiled in
        match self {
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(match index {
                Some(i) => burn::tensor::DeviceKind::DiscreteGpu(i),
                None => burn::tensor::DeviceKind::DefaultDevice,
            })),
            #[cfg(feature = "cuda")]
            Backend::Cuda => {
                cuda_driver()?;
                Ok(Device::cuda(index.unwrap_or(0)))
            }
            #[allow(unreachable_patterns)]
            other => Err(BackendUnavailable::NotCompiled { name: other.name() }),
        }
    }
}

/// Checks that the NVIDIA driver library loads (Burn's cuda runtime would otherwise panic in a
/// worker thread on first use); it stays loaded for the runtime.
#[cfg(all(feature = "cuda", unix))]
fn cuda_driver() -> Result<(), BackendUnavailable> {
    // SAFETY: dlopen and dlerror with a NUL-terminated name; dlerror's message is copied at once.
    unsafe {
        if !libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL).is_null() {
            return Ok(());
        }
        let message = libc::dlerror();
        let reason = if message.is_null() {
            "unknown loader error".to_string()
        } else {
            std::ffi::CStr::from_ptr(message)
                .to_string_lossy()
                .into_owned()
        };
        Err(BackendUnavailable::NoCudaDriver { reason })
    }
}

/// Windows and others: Burn's runtime reports a missing driver itself.
#[cfg(all(feature = "cuda", not(unix)))]
fn cuda_driver() -> Result<(), BackendUnavailable> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the NVIDIA driver the error names the fix (with it, the device resolves).
    #[cfg(all(feature = "cuda", unix))]
    #[test]
    fn cuda_without_a_driver_is_a_clear_error() {
        if let Err(error) = Backend::Cuda.device() {
            let message = error.to_string();
            assert!(
                matches!(error, BackendUnavailable::NoCudaDriver { .. })
                    && message.contains("LD_LIBRARY_PATH"),
                "{message}"
            );
        }
    }

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
