//! Peak memory of one variant, each in a fresh process of its own.

#[allow(unused_imports)]
use super::*;

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`), where the OS has it.
pub(super) fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// Measures one variant's [`PeakMemory`] in this process (which must have run nothing else).
pub fn measure_memory(config: &BenchConfig, name: &str) -> Result<PeakMemory> {
    config.validate()?;
    let [depth] = config.depths[..] else {
        bail!(
            "--memory-of measures one depth, got --depths {:?}",
            config.depths
        );
    };
    let index = VARIANTS
        .iter()
        .position(|v| v.0 == name)
        .with_context(|| format!("--memory-of: unknown variant '{name}'"))?;
    let skipped = config.skipped(depth)?;
    let device = backend::device(config.backend, config.device)?.autodiff();
    let (x, y) = batch(config, &device);
    let x_inner = x.clone().inner();
    let mut variant = Variant::new(config, depth, index, &skipped, &device)?;
    // Every reading follows a read-back, so the device has finished the work before it.
    let _: f32 = x.clone().sum().into_scalar();
    let (kind, resting) = match device.memory_pool_usage() {
        Some(usage) => (MemoryKind::DeviceReserved, usage.bytes_reserved),
        None => (
            MemoryKind::Resident,
            proc_status_bytes("VmRSS")
                .context("peak memory on this backend needs Linux's /proc/self/status")?,
        ),
    };
    let peak = || -> Result<u64> {
        let bytes = match kind {
            MemoryKind::DeviceReserved => device.memory_pool_usage().map(|u| u.bytes_reserved),
            MemoryKind::Resident => proc_status_bytes("VmHWM"),
        };
        bytes.context("the backend stopped reporting its memory")
    };
    variant.infer(&x_inner);
    let inference = peak()?.saturating_sub(resting);
    variant.step(&x, &y);
    variant.step(&x, &y);
    let train = peak()?.saturating_sub(resting);
    // The last optimizer update is still queued (nothing read it back): finish it and free the
    // model before the process ends, so that the backend's teardown finds no work in flight.
    drop(variant);
    device
        .sync()
        .map_err(|e| anyhow::anyhow!("the device failed after the measurement: {e:?}"))?;
    Ok(PeakMemory {
        kind,
        resting_bytes: resting,
        inference_bytes: inference,
        train_bytes: train,
    })
}

/// Runs [`measure_memory`] for one variant in a fresh process of this binary.
pub(super) fn memory_in_child(
    config: &BenchConfig,
    depth: usize,
    skipped: &[usize],
    name: &str,
) -> Result<PeakMemory> {
    let exe = std::env::current_exe().context("cannot find this binary to measure memory")?;
    let out = std::process::Command::new(&exe)
        .arg("bench")
        .args(["--memory-of", name])
        .args(model_args(config, depth, skipped))
        .args(["--backend", config.backend.feature()])
        .args(["--device", &config.device.to_string()])
        .output()
        .with_context(|| format!("cannot run {} to measure memory", exe.display()))?;
    if !out.status.success() {
        bail!(
            "measuring the peak memory of {name} at ResNet-{depth} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .with_context(|| format!("unexpected memory report for {name}: {text}"))
}

pub(super) fn mib(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / (1024.0 * 1024.0))
}
