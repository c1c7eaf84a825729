//! Backend selection by flag. Backends are cargo features; a backend that was not compiled in is
//! a clear error saying how to get it.

use anyhow::{Result, bail};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// `--backend` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Burn's `flex` CPU backend (the default; what CI and tests use).
    #[value(alias = "flex")]
    Cpu,
    /// wgpu (Vulkan, Metal, DX12 or a software driver).
    Wgpu,
    /// CUDA on NVIDIA GPUs.
    Cuda,
}

impl Backend {
    /// The cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Cpu => "flex",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }
}

/// The (non-autodiff) device of `backend`, or an error naming the feature to build with.
pub fn device(backend: Backend, index: usize) -> Result<Device> {
    let missing = || {
        format!(
            "backend '{}' is not compiled into this binary; run it through `cargo xtask ... --backend {0}` \
             (which builds with `--features {}`), or use --backend cpu",
            format!("{backend:?}").to_lowercase(),
            backend.feature()
        )
    };
    match backend {
        Backend::Cpu => {
            #[cfg(feature = "flex")]
            return Ok(Device::flex());
        }
        Backend::Wgpu => {
            #[cfg(feature = "wgpu")]
            return Ok(Device::wgpu(if index == 0 {
                burn::tensor::DeviceKind::DefaultDevice
            } else {
                burn::tensor::DeviceKind::DiscreteGpu(index)
            }));
        }
        Backend::Cuda => {
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(index));
        }
    }
    #[allow(unreachable_code)]
    {
        let _ = index;
        bail!(missing())
    }
}
