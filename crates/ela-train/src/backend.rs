//! Backend selection by flag. Backends are cargo features; a backend that was not compiled in is
//! a clear error saying how to get it.

use anyhow::{Result, bail};
use burn::tensor::{Device, FloatDType};
use serde::{Deserialize, Serialize};

/// `--backend` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Burn's `flex` CPU backend (the default; what CI and tests use).
    #[value(alias = "flex")]
    Cpu,
    /// wgpu (Vulkan, Metal, DX12 or a software driver), kernels compiled from WGSL.
    Wgpu,
    /// wgpu on Vulkan with kernels compiled to SPIR-V directly (faster on Vulkan GPUs; crashes
    /// on Mesa's software driver lavapipe 22.3, where `wgpu` works).
    Vulkan,
    /// CUDA on NVIDIA GPUs.
    Cuda,
}

impl Backend {
    /// The cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Cpu => "flex",
            Self::Wgpu => "wgpu",
            Self::Vulkan => "vulkan",
            Self::Cuda => "cuda",
        }
    }
}

/// `--precision` values: the float type of every tensor (weights, activations, gradients,
/// optimizer state). Burn 0.22 has no automatic mixed precision (no f32 master weights or loss
/// scaling); reduced precision is the device's default float type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32,
    /// IEEE half precision (5 exponent bits: range ±65,504).
    F16,
    /// bfloat16 (f32's range, 8 significant bits).
    Bf16,
}

impl Precision {
    fn dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::F16 => FloatDType::F16,
            Self::Bf16 => FloatDType::BF16,
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        })
    }
}

/// How many devices the CPU backend offers: one (the machine), unless this environment variable
/// says otherwise. More than one are logical devices on the same CPU, which exercise the
/// data-parallel path (`--devices 0,1`) on a machine without GPUs; they do not add compute.
pub const CPU_DEVICES_ENV: &str = "ELA_CPU_DEVICES";

/// The CPU backend's device count (see [`CPU_DEVICES_ENV`]).
pub fn cpu_device_count() -> Result<usize> {
    match std::env::var(CPU_DEVICES_ENV) {
        Err(_) => Ok(1),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => bail!("{CPU_DEVICES_ENV}={v}: expected a number of devices, at least 1"),
        },
    }
}

/// How many devices `backend` has here, where that is known without opening one: the CPU's.
/// `None` for the GPU backends, whose devices are counted by their driver when one is opened:
/// the device probe then names what went wrong (a missing index, a missing driver, the
/// adapters wgpu found).
fn device_count(backend: Backend) -> Result<Option<usize>> {
    match backend {
        Backend::Cpu => cpu_device_count().map(Some),
        Backend::Cuda | Backend::Wgpu | Backend::Vulkan => Ok(None),
    }
}

/// Checks device indices before anything runs: no device twice (two data-parallel workers on
/// one device would silently change the results), and none that `backend` does not have,
/// naming the ones it has. `flag` names the flag in the message (`--device` or `--devices`).
pub fn check_device_indices(backend: Backend, indices: &[usize], flag: &str) -> Result<()> {
    let list = indices
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    for (k, i) in indices.iter().enumerate() {
        if indices[..k].contains(i) {
            bail!(
                "{flag} {list}: device {i} is given twice; each data-parallel worker needs a \
                 device of its own"
            );
        }
    }
    let name = format!("{backend:?}").to_lowercase();
    if let Some(count) = device_count(backend)?
        && let Some(bad) = indices.iter().find(|&&i| i >= count)
    {
        let has = match (backend, count) {
            (_, 0) => "no device".to_string(),
            (Backend::Cpu, 1) => format!(
                "one device, 0 (the whole CPU: its cores are already all used; set \
                 {CPU_DEVICES_ENV}=N for N logical devices to exercise data-parallel training)"
            ),
            (_, 1) => "one device, 0".to_string(),
            (_, n) => format!("{n} devices, 0 to {}", n - 1),
        };
        bail!("{flag} {list}: backend '{name}' has no device {bad}; it has {has}");
    }
    Ok(())
}

/// The (non-autodiff) f32 device of `backend`; see [`device_with`].
pub fn device(backend: Backend, index: usize) -> Result<Device> {
    device_with(backend, index, Precision::F32)
}

/// The (non-autodiff) device of `backend` computing in `precision`, checked to work: an error
/// names the feature to build with when the backend is not compiled in, what to install when its
/// driver or adapter is missing, and the precision when the backend does not support it.
pub fn device_with(backend: Backend, index: usize, precision: Precision) -> Result<Device> {
    let mut device = unchecked_device(backend, index)?;
    // Before the probe: the first tensor fixes the device's float type.
    if precision != Precision::F32 {
        device.configure(precision.dtype()).map_err(|e| {
            anyhow::anyhow!(
                "--precision {precision}: backend '{}' device {index} does not support it \
                 ({e:?}); use --precision f32",
                format!("{backend:?}").to_lowercase()
            )
        })?;
    }
    probe(backend, index, &device)?;
    Ok(device)
}

/// What to install for `backend`'s driver.
fn driver_hint(backend: Backend) -> &'static str {
    match backend {
        Backend::Cpu => "the CPU backend needs no driver; this is a bug, please report it",
        Backend::Wgpu | Backend::Vulkan => {
            "check --device (0 is the default adapter, N the N-th discrete GPU) and install a \
             Vulkan driver (Linux: your GPU vendor's, or Mesa's `mesa-vulkan-drivers`, \
             which includes the lavapipe software driver; macOS and Windows use Metal and DX12 \
             without one), or use --backend cpu"
        }
        Backend::Cuda => {
            "install the NVIDIA driver (it provides libcuda.so) and check `nvidia-smi` and \
             --device; kernels that call exp/log also need the CUDA toolkit's \
             nvvm/libdevice/libdevice.10.bc (set CUDA_PATH when the toolkit is not in \
             /usr/local/cuda); or use --backend wgpu or cpu"
        }
    }
}

/// Computes log(exp(1)) on `device` and reads it back; see [`checked`]. The exp and log kernels
/// are the first to need more than the driver (CUDA: the toolkit's libdevice), so a missing piece
/// shows here rather than in the middle of the first epoch.
fn probe(backend: Backend, index: usize, device: &Device) -> Result<()> {
    checked(backend, index, || {
        burn::tensor::Tensor::<1>::ones([1], device)
            .exp()
            .log()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map(|v| v[0])
            .map_err(|e| format!("{e:?}"))
    })
}

/// Runs `read` (which should return 1.0, to within a half-precision rounding). Backends panic
/// when their driver or adapter is missing, often in a runtime thread of their own, the caller
/// then seeing only a closed channel: the first panic of any thread during `read` becomes an
/// error naming the backend, the cause and what to install, and is not printed twice.
fn checked(
    backend: Backend,
    index: usize,
    read: impl FnOnce() -> std::result::Result<f32, String>,
) -> Result<()> {
    let panics = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let hook = std::panic::take_hook();
    let seen = panics.clone();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown failure".into());
        if let Ok(mut seen) = seen.lock() {
            seen.push(message);
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read));
    std::panic::set_hook(hook);
    let name = format!("{backend:?}").to_lowercase();
    match result {
        Ok(Ok(v)) if (v - 1.0).abs() < 1e-2 => Ok(()),
        Ok(Ok(v)) => bail!("backend '{name}' device {index} computes log(exp(1)) as {v}"),
        Ok(Err(e)) => bail!("backend '{name}' device {index} cannot be read back: {e}"),
        Err(_) => {
            let why = panics
                .lock()
                .ok()
                .and_then(|seen| seen.first().cloned())
                .unwrap_or_else(|| "unknown failure".into());
            bail!(
                "backend '{name}' device {index} is not usable: {}\n{}",
                why.lines().next().unwrap_or_default(),
                driver_hint(backend)
            )
        }
    }
}

/// wgpu's adapter for `--device N`: the default adapter for 0, else the N-th discrete GPU.
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
fn gpu_kind(index: usize) -> burn::tensor::DeviceKind {
    if index == 0 {
        burn::tensor::DeviceKind::DefaultDevice
    } else {
        burn::tensor::DeviceKind::DiscreteGpu(index)
    }
}

fn unchecked_device(backend: Backend, index: usize) -> Result<Device> {
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
            return Ok(Device::wgpu(gpu_kind(index)));
        }
        Backend::Vulkan => {
            #[cfg(feature = "vulkan")]
            return Ok(Device::vulkan(gpu_kind(index)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_driver_is_an_error_that_says_what_to_install() {
        let err = checked(Backend::Cuda, 1, || {
            panic!("Unable to dynamically load the \"cuda\" shared library\nmore")
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("backend 'cuda' device 1 is not usable: Unable to dynamically load")
                && err.contains("install the NVIDIA driver")
                && !err.contains("more"),
            "{err}"
        );
        // A panic in the backend's own thread, the caller's being a consequence: the first one
        // is the cause.
        let err = checked(Backend::Cuda, 0, || {
            std::thread::spawn(|| panic!("Unable to dynamically load the \"cuda\" library"))
                .join()
                .ok();
            panic!("called `Result::unwrap()` on an `Err` value: RecvError")
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("not usable: Unable to dynamically load") && !err.contains("RecvError"),
            "{err}"
        );
        // The CUDA kernel compiler's panic when the toolkit's libdevice is missing.
        let err = checked(Backend::Cuda, 0, || {
            panic!("libdevice.10.bc was not found: the kernel calls a math function")
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("libdevice.10.bc was not found") && err.contains("set CUDA_PATH"),
            "{err}"
        );
        let err = checked(Backend::Wgpu, 0, || panic!("No adapter found"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Vulkan driver"), "{err}");
        let err = checked(Backend::Cpu, 0, || Ok(0.5))
            .unwrap_err()
            .to_string();
        assert!(err.contains("computes log(exp(1)) as 0.5"), "{err}");
        checked(Backend::Cpu, 0, || Ok(1.0)).unwrap();
        // The CPU backend passes the real probe.
        device(Backend::Cpu, 0).unwrap();
    }

    #[test]
    fn duplicate_and_missing_devices_are_errors_naming_what_exists() {
        let err = check_device_indices(Backend::Cpu, &[0, 0], "--devices")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--devices 0,0: device 0 is given twice"),
            "{err}"
        );
        let err = check_device_indices(Backend::Wgpu, &[1, 2, 1], "--devices")
            .unwrap_err()
            .to_string();
        assert!(err.contains("device 1 is given twice"), "{err}");
        if std::env::var(CPU_DEVICES_ENV).is_err() {
            let err = check_device_indices(Backend::Cpu, &[5], "--device")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("--device 5: backend 'cpu' has no device 5; it has one device, 0"),
                "{err}"
            );
            let err = check_device_indices(Backend::Cpu, &[0, 1], "--devices")
                .unwrap_err()
                .to_string();
            assert!(err.contains("has no device 1"), "{err}");
            check_device_indices(Backend::Cpu, &[0], "--device").unwrap();
        }
        // Device counts of GPU backends are checked when the device is opened.
        check_device_indices(Backend::Wgpu, &[3], "--device").unwrap();
    }
}
