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
    /// NVIDIA CUDA GPUs; needs the `cuda` cargo feature (offline, run scripts/cuda_offline.sh
    /// before building).
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
    /// A `--device` the backend cannot address.
    #[error(
        "backend `cuda` numbers its GPUs: use --device N (or discrete:N), not `{choice}` (integrated, virtual, cpu and default are wgpu adapter kinds)"
    )]
    NotACudaDevice {
        /// The device asked for.
        choice: DeviceChoice,
    },
    /// No wgpu adapter of the kind and number asked for.
    #[error(
        "backend `wgpu` has no adapter `{choice}` on this machine; its adapters: {available} (give one to --device, or leave --device out for the default)"
    )]
    NoSuchAdapter {
        /// The adapter asked for.
        choice: DeviceChoice,
        /// The adapters present, in `--device` syntax.
        available: String,
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

/// Which GPU adapter `--device` asks for. wgpu sorts its adapters into kinds and numbers them
/// within each kind; CUDA numbers its GPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// `N` or `discrete:N`: the N-th discrete GPU (CUDA: GPU N).
    Discrete(usize),
    /// `integrated:N`: the N-th integrated GPU (wgpu).
    Integrated(usize),
    /// `virtual:N`: the N-th virtual GPU, e.g. in a VM (wgpu).
    Virtual(usize),
    /// `cpu`: the software adapter, e.g. Mesa's lavapipe (wgpu).
    Cpu,
    /// `default`: the adapter wgpu prefers (`CUBECL_WGPU_DEFAULT_DEVICE` overrides it).
    Default,
}

/// The forms `--device` accepts, for help and errors.
pub const DEVICE_FORMS: &str = "N or discrete:N (discrete GPU N; CUDA: GPU N), integrated:N, \
     virtual:N, cpu (a software adapter such as lavapipe), default";

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a device; use {DEVICE_FORMS}");
        let index = |n: &str| n.parse::<usize>().map_err(|_| bad());
        match text.split_once(':') {
            None if text == "cpu" => Ok(Self::Cpu),
            None if text == "default" => Ok(Self::Default),
            None => index(text).map(Self::Discrete),
            Some(("discrete", n)) => index(n).map(Self::Discrete),
            Some(("integrated", n)) => index(n).map(Self::Integrated),
            Some(("virtual", n)) => index(n).map(Self::Virtual),
            Some(_) => Err(bad()),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Discrete(n) => write!(f, "{n}"),
            Self::Integrated(n) => write!(f, "integrated:{n}"),
            Self::Virtual(n) => write!(f, "virtual:{n}"),
            Self::Cpu => f.write_str("cpu"),
            Self::Default => f.write_str("default"),
        }
    }
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

    /// Like [`resolve`](Self::resolve), on the adapter `choice` (`--device`; the CPU backend
    /// ignores it).
    pub fn resolve_at(
        self,
        choice: Option<DeviceChoice>,
    ) -> Result<BackendDevice, BackendUnavailable> {
        Ok(BackendDevice {
            backend: self,
            device: self.device_at(choice)?,
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

    /// The (non-autodiff) device: the adapter `choice` when given (the default GPU otherwise);
    /// the CPU backend ignores it.
    pub fn device_at(&self, choice: Option<DeviceChoice>) -> Result<Device, BackendUnavailable> {
        let _ = choice; // unused when no GPU backend is compiled in
        match self {
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => wgpu_adapter(choice.unwrap_or(DeviceChoice::Default)),
            #[cfg(feature = "cuda")]
            Backend::Cuda => {
                let index = match choice {
                    None | Some(DeviceChoice::Default) => 0,
                    Some(DeviceChoice::Discrete(i)) => i,
                    Some(other) => {
                        return Err(BackendUnavailable::NotACudaDevice { choice: other });
                    }
                };
                cuda_driver()?;
                Ok(Device::cuda(index))
            }
            #[allow(unreachable_patterns)]
            other => Err(BackendUnavailable::NotCompiled { name: other.name() }),
        }
    }
}

/// The wgpu device for `choice`, or (Burn would panic in a worker thread on first use) an error
/// listing the adapters this machine has.
#[cfg(feature = "wgpu")]
fn wgpu_adapter(choice: DeviceChoice) -> Result<Device, BackendUnavailable> {
    use burn::tensor::{DeviceKind, DeviceType};
    let device = |choice| {
        Device::wgpu(match choice {
            DeviceChoice::Discrete(i) => DeviceKind::DiscreteGpu(i),
            DeviceChoice::Integrated(i) => DeviceKind::IntegratedGpu(i),
            DeviceChoice::Virtual(i) => DeviceKind::VirtualGpu(i),
            DeviceChoice::Cpu => DeviceKind::Cpu,
            DeviceChoice::Default => DeviceKind::DefaultDevice,
        })
    };
    if choice == DeviceChoice::Default {
        return Ok(device(choice));
    }
    let present = Device::enumerate(DeviceType::Wgpu);
    let wanted = device(choice);
    if present.contains(&wanted) {
        return Ok(wanted);
    }
    // Adapters are numbered from 0 within each kind; 16 per kind covers any machine.
    let available: Vec<String> = (0..16)
        .flat_map(|i| {
            [
                DeviceChoice::Discrete(i),
                DeviceChoice::Integrated(i),
                DeviceChoice::Virtual(i),
            ]
        })
        .chain([DeviceChoice::Cpu])
        .filter(|&c| present.contains(&device(c)))
        .map(|c| c.to_string())
        .collect();
    Err(BackendUnavailable::NoSuchAdapter {
        choice,
        available: if available.is_empty() {
            "none".into()
        } else {
            available.join(", ")
        },
    })
}

/// Checks that the NVIDIA driver library loads (Burn's cuda runtime would otherwise panic in a
/// worker thread on first use); it stays loaded for the runtime.
#[cfg(all(feature = "cuda", unix))]
fn cuda_driver() -> Result<(), BackendUnavailable> {
    load_driver(c"libcuda.so.1")
}

/// Loads the driver library `name`, or the error that says how to make it loadable.
#[cfg(all(feature = "cuda", unix))]
fn load_driver(name: &std::ffi::CStr) -> Result<(), BackendUnavailable> {
    // SAFETY: dlopen and dlerror with a NUL-terminated name; dlerror's message is copied at once.
    unsafe {
        if !libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL).is_null() {
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

    /// A driver library that cannot be loaded is an error naming the fix (checked with a name no
    /// machine has, so it runs with and without the NVIDIA driver); a wgpu adapter kind given to
    /// cuda is refused before the driver is touched.
    #[cfg(all(feature = "cuda", unix))]
    #[test]
    fn cuda_without_a_driver_or_with_a_wgpu_adapter_kind_is_a_clear_error() {
        let error = load_driver(c"libmirrorburn-no-such-driver.so.1").unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, BackendUnavailable::NoCudaDriver { .. })
                && message.contains("libmirrorburn-no-such-driver.so.1")
                && message.contains("LD_LIBRARY_PATH"),
            "{message}"
        );
        let error = Backend::Cuda
            .device_at(Some(DeviceChoice::Integrated(0)))
            .unwrap_err();
        assert!(error.to_string().contains("use --device N"), "{error}");
    }

    /// Every adapter kind wgpu offers can be asked for, and prints back as it was given; a bare
    /// number keeps its old meaning (discrete GPU N).
    #[test]
    fn every_adapter_kind_parses_and_prints_back() {
        let cases = [
            ("0", DeviceChoice::Discrete(0)),
            ("discrete:2", DeviceChoice::Discrete(2)),
            ("integrated:1", DeviceChoice::Integrated(1)),
            ("virtual:0", DeviceChoice::Virtual(0)),
            ("cpu", DeviceChoice::Cpu),
            ("default", DeviceChoice::Default),
        ];
        for (text, choice) in cases {
            assert_eq!(text.parse::<DeviceChoice>(), Ok(choice), "{text}");
            assert_eq!(choice.to_string().parse::<DeviceChoice>(), Ok(choice));
        }
        for bad in ["gpu", "integrated", "integrated:x", "-1", "tpu:0", ""] {
            let error = bad.parse::<DeviceChoice>().unwrap_err();
            assert!(
                error.contains(&format!("`{bad}`"))
                    && error.contains("integrated:N, virtual:N, cpu"),
                "{error}"
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
