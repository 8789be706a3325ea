//! Which burn device to run on, named in one string: `cpu`, `wgpu[:ADAPTER]`,
//! `wgpu-vulkan[:ADAPTER]`, `wgpu-gl[:ADAPTER]` or `cuda[:INDEX]`.
//!
//! The library itself works on any [`Device`] the caller passes; this is the spelling the
//! command-line tool and the tests share, so that "the GPU path" means the same thing
//! everywhere. Backends other than the CPU need the crate's `wgpu` or `cuda` feature; asking
//! for one a build lacks is an error that says which feature to enable.
//!
//! `ADAPTER` is `cpu` (a software adapter: Mesa's lavapipe on Vulkan, llvmpipe on OpenGL),
//! `integrated` or a discrete GPU's index; without it wgpu picks the best adapter it finds.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{DType, Device, DeviceConfig, FloatDType};

/// A backend and adapter, parsed from `cpu`, `wgpu`, `wgpu:cpu`, `wgpu-gl:cpu`, `cuda:1`, ...
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    /// burn's pure-Rust CPU backend (Flex), the default.
    #[default]
    Cpu,
    /// burn's wgpu backend.
    Wgpu {
        /// The graphics API, or `None` for wgpu's own choice.
        api: Option<WgpuApi>,
        /// Which adapter.
        adapter: Adapter,
    },
    /// burn's CUDA backend, GPU `index`.
    Cuda {
        /// The CUDA device ordinal.
        index: usize,
    },
}

/// A graphics API to pin a wgpu device to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WgpuApi {
    /// Vulkan (SPIR-V shaders).
    Vulkan,
    /// OpenGL (WGSL translated to GLSL).
    Gl,
}

/// Which wgpu adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Adapter {
    /// The best adapter wgpu finds (a high-power GPU first).
    #[default]
    Best,
    /// A software adapter running on the CPU (lavapipe, llvmpipe).
    Cpu,
    /// The first integrated GPU.
    Integrated,
    /// The discrete GPU with this index.
    Discrete(usize),
}

/// Why a device could not be named or started.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    /// The string is not a device name.
    #[error(
        "unknown device '{0}': expected cpu, wgpu, wgpu:cpu, wgpu:N, wgpu:integrated, \
         wgpu-vulkan[:ADAPTER], wgpu-gl[:ADAPTER], cuda or cuda:N"
    )]
    Unknown(String),
    /// The backend was not compiled in.
    #[error(
        "device '{spec}' needs the '{feature}' cargo feature, which this build lacks: rebuild \
         with `--features {feature}` (the command-line tool: `--features convbn-cli/{feature}`)"
    )]
    NotBuilt {
        /// The device asked for.
        spec: String,
        /// The cargo feature that provides it.
        feature: &'static str,
    },
    /// The backend is built in but the device did not start (no adapter, no driver, ...).
    #[error("device '{spec}' could not be started: {reason}")]
    Unavailable {
        /// The device asked for.
        spec: String,
        /// What the backend said.
        reason: String,
    },
    /// The device cannot compute in 64-bit floats.
    #[error("device '{0}' has no 64-bit floats; use --precision f32, or the cpu (or cuda) device")]
    NoF64(String),
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, DeviceError> {
        let unknown = || DeviceError::Unknown(s.to_string());
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let adapter = |arg: Option<&str>| -> Result<Adapter, DeviceError> {
            Ok(match arg {
                None => Adapter::Best,
                Some("cpu") => Adapter::Cpu,
                Some("integrated") => Adapter::Integrated,
                Some(n) => Adapter::Discrete(n.parse().map_err(|_| unknown())?),
            })
        };
        match kind {
            "cpu" if arg.is_none() => Ok(DeviceSpec::Cpu),
            "wgpu" => Ok(DeviceSpec::Wgpu {
                api: None,
                adapter: adapter(arg)?,
            }),
            "wgpu-vulkan" => Ok(DeviceSpec::Wgpu {
                api: Some(WgpuApi::Vulkan),
                adapter: adapter(arg)?,
            }),
            "wgpu-gl" => Ok(DeviceSpec::Wgpu {
                api: Some(WgpuApi::Gl),
                adapter: adapter(arg)?,
            }),
            "cuda" => Ok(DeviceSpec::Cuda {
                index: match arg {
                    None => 0,
                    Some(n) => n.parse().map_err(|_| unknown())?,
                },
            }),
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Wgpu { api, adapter } => {
                f.write_str(match api {
                    None => "wgpu",
                    Some(WgpuApi::Vulkan) => "wgpu-vulkan",
                    Some(WgpuApi::Gl) => "wgpu-gl",
                })?;
                match adapter {
                    Adapter::Best => Ok(()),
                    Adapter::Cpu => write!(f, ":cpu"),
                    Adapter::Integrated => write!(f, ":integrated"),
                    Adapter::Discrete(n) => write!(f, ":{n}"),
                }
            }
            DeviceSpec::Cuda { index } => write!(f, "cuda:{index}"),
        }
    }
}

impl DeviceSpec {
    /// The device named by the environment variable `var`, or by `default` when it is unset
    /// (the GPU tests read `CONVBN_TEST_GPU`, default `wgpu:cpu`).
    pub fn from_env(var: &str, default: &str) -> Result<Self, DeviceError> {
        std::env::var(var)
            .unwrap_or_else(|_| default.to_string())
            .parse()
    }

    /// Whether this is burn's CPU backend (where the counting allocator measures memory).
    pub fn is_cpu(&self) -> bool {
        matches!(self, DeviceSpec::Cpu)
    }

    /// The plain (non-autodiff) device, whose float tensors default to `float`.
    ///
    /// Starting the same wgpu device twice returns the first one (burn starts a wgpu runtime
    /// once per process). `float` must be set before the process creates a tensor on the
    /// device: burn fixes a device's default dtype at first use.
    pub fn device(&self, float: FloatDType) -> Result<Device, DeviceError> {
        let mut device = self.start()?;
        if float == FloatDType::F64 {
            if !device.supports_dtype(DType::F64) {
                return Err(DeviceError::NoF64(self.to_string()));
            }
            device
                .configure(DeviceConfig {
                    float_dtype: Some(FloatDType::F64),
                    ..Default::default()
                })
                .map_err(|e| DeviceError::Unavailable {
                    spec: self.to_string(),
                    reason: format!("cannot switch to f64: {e:?}"),
                })?;
        }
        Ok(device)
    }

    /// [`DeviceSpec::device`] with autodiff: the device to train on.
    pub fn training_device(&self, float: FloatDType) -> Result<Device, DeviceError> {
        Ok(self.device(float)?.autodiff())
    }

    fn start(&self) -> Result<Device, DeviceError> {
        match self {
            DeviceSpec::Cpu => Ok(cpu()),
            DeviceSpec::Wgpu { api, adapter } => wgpu(self, *api, *adapter),
            DeviceSpec::Cuda { index } => cuda(self, *index),
        }
    }
}

#[cfg(feature = "flex")]
fn cpu() -> Device {
    Device::flex()
}

#[cfg(not(feature = "flex"))]
fn cpu() -> Device {
    Device::default()
}

#[cfg(feature = "wgpu")]
fn wgpu(spec: &DeviceSpec, api: Option<WgpuApi>, adapter: Adapter) -> Result<Device, DeviceError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use burn::tensor::DeviceKind;
    use burn::tensor::wgpu::WgpuBackend;

    // burn refuses to start one runtime twice: remember the devices started here.
    static STARTED: OnceLock<Mutex<HashMap<DeviceSpec, Device>>> = OnceLock::new();
    let mut started = STARTED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(device) = started.get(spec) {
        return Ok(device.clone());
    }
    let kind = match adapter {
        Adapter::Best => DeviceKind::DefaultDevice,
        Adapter::Cpu => DeviceKind::Cpu,
        Adapter::Integrated => DeviceKind::IntegratedGpu(0),
        Adapter::Discrete(n) => DeviceKind::DiscreteGpu(n),
    };
    let api = match api {
        None => WgpuBackend::Auto,
        Some(WgpuApi::Vulkan) => WgpuBackend::Vulkan,
        Some(WgpuApi::Gl) => WgpuBackend::Gl,
    };
    // wgpu panics when no adapter matches; turn that into an error.
    let attempt = std::panic::catch_unwind(|| {
        Device::wgpu_options()
            .device_kind(kind)
            .graphics_api(api)
            .init()
    });
    let device = match attempt {
        Ok(Ok(device)) => device,
        Ok(Err(e)) => {
            return Err(DeviceError::Unavailable {
                spec: spec.to_string(),
                reason: e.to_string(),
            });
        }
        Err(panic) => {
            let reason = crate::panic_message(panic.as_ref())
                .unwrap_or_else(|| "the wgpu runtime panicked".into());
            return Err(DeviceError::Unavailable {
                spec: spec.to_string(),
                reason,
            });
        }
    };
    started.insert(spec.clone(), device.clone());
    Ok(device)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(spec: &DeviceSpec, _: Option<WgpuApi>, _: Adapter) -> Result<Device, DeviceError> {
    Err(DeviceError::NotBuilt {
        spec: spec.to_string(),
        feature: "wgpu",
    })
}

#[cfg(feature = "cuda")]
fn cuda(spec: &DeviceSpec, index: usize) -> Result<Device, DeviceError> {
    let device = Device::cuda(index);
    // The CUDA runtime starts lazily; a sync makes a missing driver or GPU an error here.
    std::panic::catch_unwind(|| device.sync())
        .map_err(|_| "the CUDA runtime panicked (no driver or no such GPU?)".to_string())
        .and_then(|r| r.map_err(|e| format!("{e:?}")))
        .map_err(|reason| DeviceError::Unavailable {
            spec: spec.to_string(),
            reason,
        })?;
    Ok(device)
}

#[cfg(not(feature = "cuda"))]
fn cuda(spec: &DeviceSpec, _: usize) -> Result<Device, DeviceError> {
    Err(DeviceError::NotBuilt {
        spec: spec.to_string(),
        feature: "cuda",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [
            "cpu",
            "wgpu",
            "wgpu:cpu",
            "wgpu:integrated",
            "wgpu:1",
            "wgpu-vulkan:cpu",
            "wgpu-gl:cpu",
            "wgpu-gl",
            "cuda:0",
            "cuda:3",
        ] {
            let spec: DeviceSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap().to_string(), "cuda:0");
        for bad in [
            "",
            "gpu",
            "cpu:0",
            "wgpu:x",
            "cuda:-1",
            "wgpu-dx12",
            "cuda:1:2",
        ] {
            let err = bad.parse::<DeviceSpec>().unwrap_err();
            assert!(matches!(err, DeviceError::Unknown(_)), "{bad}: {err}");
            assert!(err.to_string().contains("wgpu:cpu"), "{err}");
        }
    }

    #[test]
    fn the_cpu_device_starts_in_both_precisions() {
        let d = DeviceSpec::Cpu.device(FloatDType::F32).unwrap();
        assert!(!d.is_autodiff());
        assert!(
            DeviceSpec::Cpu
                .training_device(FloatDType::F32)
                .unwrap()
                .is_autodiff()
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_backend_not_built_in_names_its_feature() {
        let err = DeviceSpec::Cuda { index: 0 }
            .device(FloatDType::F32)
            .unwrap_err();
        assert!(err.to_string().contains("--features cuda"), "{err}");
    }
}
