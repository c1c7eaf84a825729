//! The PyTorch reference (`bench/pytorch/bench.py`), run on the same models, batch and device.

#[allow(unused_imports)]
use super::*;

/// What `bench/pytorch/bench.py` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PytorchResult {
    /// `pytorch <version>`.
    pub framework: String,
    /// Device (and CPU threads).
    pub device: String,
    /// One entry per variant.
    pub variants: Vec<PytorchVariant>,
}

/// One PyTorch variant's timings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PytorchVariant {
    /// Variant name, as in [`VariantResult::name`].
    pub name: String,
    /// Training step.
    pub train: Timing,
    /// Inference (eval mode, no autograd).
    pub inference: Timing,
    /// Peak memory, where measured (CPU: resident memory as for Burn; CUDA: the caching
    /// allocator's reserved bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<PeakMemory>,
}

/// PyTorch's name of the device a Burn `backend` measurement ran on: the same CUDA device, or
/// the CPU (wgpu has no PyTorch counterpart; it is compared with the CPU).
pub(super) fn torch_device(backend: Backend, index: usize) -> String {
    match backend {
        Backend::Cuda => format!("cuda:{index}"),
        Backend::Cpu | Backend::Wgpu | Backend::Vulkan => "cpu".to_string(),
    }
}

/// The flags that build the same model, batch and skips at `depth`, as both `ela bench` and
/// `bench/pytorch/bench.py` read them.
pub(super) fn model_args(config: &BenchConfig, depth: usize, skipped: &[usize]) -> Vec<String> {
    let skip: Vec<String> = skipped.iter().map(usize::to_string).collect();
    let [c, h, w] = config.input();
    [
        ("--arch", config.arch.to_string()),
        ("--depth", depth.to_string()),
        ("--batch-size", config.batch_size.to_string()),
        ("--input", format!("{c},{h},{w}")),
        ("--num-classes", config.num_classes().to_string()),
        ("--skip", skip.join(",")),
        ("--seed", config.seed.to_string()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect()
}

/// Runs the PyTorch reference at `depth` with `python`, right after the Burn measurement.
pub(super) fn run_pytorch(
    config: &BenchConfig,
    depth: usize,
    skipped: &[usize],
    python: &str,
) -> Result<PytorchResult> {
    let (warmup, rounds) = config.schedule();
    let mut args = model_args(config, depth, skipped);
    args.extend([
        "--warmup".into(),
        warmup.to_string(),
        "--rounds".into(),
        rounds.to_string(),
        "--device".into(),
        torch_device(config.backend, config.device),
    ]);
    if config.measures_memory() {
        args.push("--memory".into());
    }
    pytorch_json(python, &args)
}

/// Runs `bench/pytorch/bench.py ARGS` with `python` and parses its JSON output.
pub fn pytorch_json<T: serde::de::DeserializeOwned>(python: &str, args: &[String]) -> Result<T> {
    script_json(python, "bench.py", args)
}

/// Runs `bench/pytorch/<name> ARGS` with `python` and parses its JSON output.
pub fn script_json<T: serde::de::DeserializeOwned>(
    python: &str,
    name: &str,
    args: &[String],
) -> Result<T> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench/pytorch")
        .join(name);
    let out = std::process::Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("--pytorch: cannot run '{python}': {e}"))?;
    if !out.status.success() {
        bail!(
            "--pytorch: {} failed (is torch installed? `pip install -r bench/pytorch/requirements.txt`):\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).map_err(|e| {
        anyhow::anyhow!(
            "--pytorch: unexpected output from {}: {e}",
            script.display()
        )
    })
}

/// The PyTorch retrieval timings for `config` (same shapes, same device kind).
pub fn run_retrieval_pytorch(
    config: &RetrievalBenchConfig,
    python: &str,
) -> Result<Vec<RetrievalRow>> {
    block_pytorch(config, python, "--retrieval")
}

/// Runs `bench/pytorch/bench.py MODE` at `config`'s block shape and device.
pub(super) fn block_pytorch<T: serde::de::DeserializeOwned>(
    config: &RetrievalBenchConfig,
    python: &str,
    mode: &str,
) -> Result<T> {
    let args: Vec<String> = [
        ("--channels", config.channels),
        ("--size", config.size),
        ("--batch-size", config.batch_size),
        ("--max-entries", config.max_entries),
        ("--reps", config.reps),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value.to_string()])
    .chain([
        mode.into(),
        "--device".into(),
        torch_device(config.backend, config.device),
    ])
    .collect();
    pytorch_json(python, &args)
}

/// The PyTorch value-map timings for `config` (same shape, same device kind).
pub fn run_value_map_pytorch(config: &RetrievalBenchConfig, python: &str) -> Result<ValueMapTimes> {
    block_pytorch(config, python, "--value-map")
}
