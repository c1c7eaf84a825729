//! `ela bench`: training-step and inference time (and peak memory) of the attention variants,
//! measured side by side.
//!
//! Shared machines drift: two runs measured minutes apart can differ by 20% for reasons that have
//! nothing to do with the model. So every variant runs in the same process, on the same batch,
//! in interleaved rounds (round r runs one training step of each variant, then one inference
//! pass of each, in an order that rotates every round), and the reported ratios are medians of
//! per-round ratios against the plain ResNet and against MRLA-B.
//!
//! Peak memory cannot be told apart per variant inside one process, so each variant's is
//! measured in a fresh process of its own (`--memory-of`, run by the benchmark itself).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use ela_model::{Arch, AttentionKind, ElaResNet, ElaResNetConfig, SkipMode, StageLayout};
use serde::{Deserialize, Serialize};

use crate::backend::{self, Backend};

/// What to benchmark.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct BenchConfig {
    /// ResNet family: `cifar` (depths 9n + 2) or `imagenet` (depths 18, 34, 50, 101, 152).
    #[arg(long, default_value = "cifar")]
    #[serde(default)]
    pub arch: Arch,
    /// ResNet depths, measured one after the other, e.g. `20,56,110` (CIFAR) or `50,101`
    /// (ImageNet).
    #[arg(
        long = "depths",
        visible_alias = "depth",
        value_delimiter = ',',
        default_value = "20"
    )]
    pub depths: Vec<usize>,
    /// Batch size.
    #[arg(long, visible_alias = "batch", default_value_t = 32)]
    pub batch_size: usize,
    /// Input `C,H,W` (default: 3,32,32 for CIFAR, 3,224,224 for ImageNet).
    #[arg(long, value_parser = parse_shape)]
    pub input: Option<[usize; 3]>,
    /// Classes of the head (default: 100 for CIFAR, 1000 for ImageNet).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Blocks ELA skips (0-based over all blocks, e.g. `1,4`; one depth only); default: every
    /// second non-first block of each stage, as EBQM at q = 0.5 tends to leave.
    #[arg(long, value_delimiter = ',')]
    pub skip: Option<Vec<usize>>,
    /// Untimed steps per variant first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Timed rounds (one training step and one inference pass of every variant per round).
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// A short run: one warm-up step, three rounds, no memory measurement (overrides --warmup,
    /// --rounds).
    #[arg(long)]
    pub quick: bool,
    /// Do not measure peak memory (one extra process per variant and depth).
    #[arg(long)]
    pub no_memory: bool,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// Device index.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the results as JSON to this file (default:
    /// `target/bench/<backend>-<arch>-resnet<depths>-<unix time>.json`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Then run the PyTorch reference (`bench/pytorch/bench.py`) with this Python (default
    /// `python3`) on the same configuration, and report Burn / PyTorch ratios.
    #[arg(long, num_args = 0..=1, default_missing_value = "python3")]
    pub pytorch: Option<String>,
    /// Measure the peak memory of this one variant in this process and print it as JSON (what
    /// the benchmark runs in a child process per variant).
    #[arg(long, hide = true)]
    #[serde(skip)]
    pub memory_of: Option<String>,
}

impl BenchConfig {
    /// The input shape `[C, H, W]`.
    pub fn input(&self) -> [usize; 3] {
        self.input.unwrap_or(match self.arch {
            Arch::Cifar => [3, 32, 32],
            Arch::Imagenet => [3, 224, 224],
        })
    }

    /// Classes of the head.
    pub fn num_classes(&self) -> usize {
        self.num_classes.unwrap_or(match self.arch {
            Arch::Cifar => 100,
            Arch::Imagenet => 1000,
        })
    }

    /// The block layout of ResNet-`depth` of this family.
    fn layout(&self, depth: usize) -> Result<StageLayout> {
        let (_, blocks) = self.arch.stages(depth)?;
        Ok(StageLayout::new(blocks)?)
    }

    /// Warm-up steps and timed rounds, after `--quick`.
    pub fn schedule(&self) -> (usize, usize) {
        if self.quick {
            (1, 3)
        } else {
            (self.warmup, self.rounds)
        }
    }

    /// Whether peak memory is measured: not with `--quick` or `--no-memory`.
    pub fn measures_memory(&self) -> bool {
        !self.quick && !self.no_memory
    }

    /// Checks the options that do not depend on the depth.
    fn validate(&self) -> Result<()> {
        let (_, rounds) = self.schedule();
        if self.batch_size == 0 || rounds == 0 || self.num_classes() == 0 {
            bail!("--batch-size, --rounds and --num-classes must be at least 1");
        }
        if self.depths.is_empty() {
            bail!("--depths: give at least one depth, e.g. 20,56,110");
        }
        if self.input().contains(&0) {
            bail!(
                "--input {:?}: channels, height and width must be at least 1",
                self.input()
            );
        }
        if self.skip.is_some() && self.depths.len() > 1 {
            bail!(
                "--skip names blocks of one model; with --depths {:?} give one depth, or leave \
                 --skip out for every second non-first block of each stage",
                self.depths
            );
        }
        for &depth in &self.depths {
            self.layout(depth)
                .with_context(|| format!("--depths: {depth} ({} ResNets)", self.arch))?;
        }
        Ok(())
    }

    /// The blocks ELA skips at `depth`, checked against the model's layout.
    fn skipped(&self, depth: usize) -> Result<Vec<usize>> {
        let layout = self.layout(depth)?;
        let skipped = match &self.skip {
            Some(s) => s.clone(),
            None => default_skips(&layout),
        };
        let mut flags = vec![false; layout.num_blocks()];
        for &i in &skipped {
            match flags.get_mut(i) {
                Some(f) => *f = true,
                None => bail!(
                    "--skip: block {i} is outside ResNet-{depth}'s {} blocks",
                    layout.num_blocks()
                ),
            }
        }
        ela_prune::SkipMask::from_flags(&layout, flags)
            .map_err(|e| anyhow::anyhow!("--skip: {e}"))?;
        Ok(skipped)
    }

    /// Where the JSON results go.
    pub fn json_path(&self, unix_seconds: u64) -> PathBuf {
        self.json.clone().unwrap_or_else(|| {
            let depths: Vec<String> = self.depths.iter().map(usize::to_string).collect();
            PathBuf::from("target/bench").join(format!(
                "{}-{}-resnet{}-{unix_seconds}.json",
                self.backend.feature(),
                self.arch,
                depths.join("-")
            ))
        })
    }
}

fn parse_shape(s: &str) -> Result<[usize; 3], String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("'{s}': {e} (expected C,H,W such as 3,32,32)"))?;
    match v.as_slice() {
        [c, h, w] if *c > 0 && *h > 0 && *w > 0 => Ok([*c, *h, *w]),
        _ => Err(format!("'{s}': expected three positive numbers C,H,W")),
    }
}

/// The variants: name, attention, skip mode, whether ELA's skips apply.
const VARIANTS: [(&str, AttentionKind, SkipMode, bool); 5] = [
    ("none", AttentionKind::None, SkipMode::Full, false),
    ("mrla-l", AttentionKind::MrlaL, SkipMode::Full, false),
    ("mrla-b", AttentionKind::MrlaB, SkipMode::Full, false),
    ("ela-full", AttentionKind::MrlaB, SkipMode::Full, true),
    (
        "ela-retrieval",
        AttentionKind::MrlaB,
        SkipMode::Retrieval,
        true,
    ),
];
const PLAIN: usize = 0;
const MRLA_B: usize = 2;

/// Step times of one variant over the timed rounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timing {
    /// Median seconds.
    pub median_seconds: f64,
    /// Fastest round.
    pub min_seconds: f64,
    /// Slowest round.
    pub max_seconds: f64,
    /// Median over rounds of (this time / the plain ResNet's time in the same round).
    pub ratio_to_plain: f64,
    /// Median over rounds of (this time / MRLA-B's time in the same round).
    pub ratio_to_mrla_b: f64,
    /// Every timed round, seconds.
    pub seconds: Vec<f64>,
}

/// Per-round times of every variant (`times[variant][round]`) as [`Timing`]s.
pub fn timings(times: &[Vec<f64>]) -> Vec<Timing> {
    let ratio = |t: &[f64], reference: usize| -> f64 {
        let r: Vec<f64> = t
            .iter()
            .zip(&times[reference])
            .map(|(a, b)| a / b)
            .collect();
        median(&r)
    };
    times
        .iter()
        .map(|t| Timing {
            median_seconds: median(t),
            min_seconds: t.iter().copied().fold(f64::INFINITY, f64::min),
            max_seconds: t.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            ratio_to_plain: ratio(t, PLAIN),
            ratio_to_mrla_b: ratio(t, MRLA_B),
            seconds: t.clone(),
        })
        .collect()
}

/// Peak memory of one variant, measured in a process that runs nothing else.
///
/// On a backend whose allocator reports its pools (wgpu, CUDA: Burn's CubeCL memory pools;
/// PyTorch's caching allocator on CUDA), the bytes the allocator reserves on the device, which
/// it keeps once reserved, so what it holds after a pass is that pass's peak. On the CPU
/// (`flex`, PyTorch on the CPU), the process's resident memory and its high-water mark.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PeakMemory {
    /// `device-reserved` or `resident`.
    pub kind: MemoryKind,
    /// Bytes once the model, its optimizer and the batch exist.
    pub resting_bytes: u64,
    /// Peak bytes above resting during one eval-mode forward pass.
    pub inference_bytes: u64,
    /// Peak bytes above resting during two training steps (the second one with the
    /// optimizer's momentum buffers in place).
    pub train_bytes: u64,
}

/// What [`PeakMemory`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryKind {
    /// Bytes reserved by the device allocator.
    DeviceReserved,
    /// The process's resident set.
    Resident,
}

impl MemoryKind {
    /// What the numbers count, for the tables.
    pub fn describe(self) -> &'static str {
        match self {
            Self::DeviceReserved => {
                "bytes the device allocator reserves above its resting reservation, each variant \
                 in a process of its own"
            }
            Self::Resident => {
                "the process's resident set (high-water mark) above its resting size, each \
                 variant in a process of its own"
            }
        }
    }
}

/// One variant's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantResult {
    /// `none`, `mrla-l`, `mrla-b`, `ela-full` or `ela-retrieval`.
    pub name: String,
    /// Skipped blocks.
    pub skipped: Vec<usize>,
    /// Trainable parameters.
    pub parameters: usize,
    /// Training step: forward, cross-entropy, backward, SGD update, until the loss is read back.
    pub train: Timing,
    /// Inference: one eval-mode forward pass, until the logits are read back.
    pub inference: Timing,
    /// Peak memory, where measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<PeakMemory>,
}

/// The results at one depth.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepthResult {
    /// ResNet family.
    #[serde(default)]
    pub arch: Arch,
    /// ResNet depth.
    pub depth: usize,
    /// One entry per variant.
    pub variants: Vec<VariantResult>,
    /// The PyTorch reference's results, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pytorch: Option<PytorchResult>,
}

/// The machine a report was measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    /// Host name.
    pub name: String,
    /// CPU model.
    pub cpu: String,
    /// CPU threads available to the process.
    pub threads: usize,
    /// Operating system and architecture.
    pub os: String,
}

impl Host {
    /// This machine.
    pub fn current() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string());
        let name = read("/proc/sys/kernel/hostname").trim().to_string();
        Self {
            name: if name.is_empty() {
                "unknown".into()
            } else {
                name
            },
            cpu,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// The source revision: the commit of the sources this binary was built from, with
/// `-dirty` for uncommitted changes, or `unknown` outside a git checkout.
pub fn revision() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("{rev}-dirty"),
            _ => rev,
        },
        None => "unknown".into(),
    }
}

/// The benchmark's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    /// The configuration.
    pub config: BenchConfig,
    /// Warm-up steps and timed rounds, after `--quick`.
    pub warmup: usize,
    /// Timed rounds.
    pub rounds: usize,
    /// Seconds since the Unix epoch at the start.
    pub unix_seconds: u64,
    /// The machine.
    pub host: Host,
    /// Source revision.
    pub revision: String,
    /// Backend and device (the backend is also `config.backend`).
    pub device: String,
    /// One entry per depth.
    pub depths: Vec<DepthResult>,
}

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
fn torch_device(backend: Backend, index: usize) -> String {
    match backend {
        Backend::Cuda => format!("cuda:{index}"),
        Backend::Cpu | Backend::Wgpu | Backend::Vulkan => "cpu".to_string(),
    }
}

/// The flags that build the same model, batch and skips at `depth`, as both `ela bench` and
/// `bench/pytorch/bench.py` read them.
fn model_args(config: &BenchConfig, depth: usize, skipped: &[usize]) -> Vec<String> {
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
fn run_pytorch(
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

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// Every second non-first block of each stage (1, 3, … within the stage).
pub fn default_skips(layout: &StageLayout) -> Vec<usize> {
    (0..layout.num_blocks())
        .filter(|&i| {
            let (_, position) = layout.locate(i).expect("block in layout");
            position % 2 == 1
        })
        .collect()
}

struct Variant {
    model: ElaResNet,
    optim: ModuleOptimizer,
    skipped: Vec<usize>,
}

impl Variant {
    /// Builds variant `index` of [`VARIANTS`] at `depth` on the autodiff `device`.
    fn new(
        config: &BenchConfig,
        depth: usize,
        index: usize,
        skipped: &[usize],
        device: &Device,
    ) -> Result<Self> {
        let (_, attention, mode, skips) = VARIANTS[index];
        let model = ElaResNetConfig::new(depth, config.num_classes())
            .with_arch(config.arch)
            .with_dim_per_head(ElaResNetConfig::official_dim_per_head(
                config.arch,
                attention,
            ))
            .with_in_channels(config.input()[0])
            .with_attention(attention)
            .with_skip_mode(mode)
            .init(device)?;
        let flags: Vec<bool> = (0..model.layout().num_blocks())
            .map(|i| skips && skipped.contains(&i))
            .collect();
        model.set_skip_flags(&flags)?;
        let optim = SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
            .init();
        Ok(Self {
            model,
            optim,
            skipped: if skips { skipped.to_vec() } else { Vec::new() },
        })
    }

    /// One SGD step; returns its wall time, synchronized by reading the loss back.
    fn step(&mut self, x: &Tensor<4>, y: &Tensor<1, Int>) -> f64 {
        let start = Instant::now();
        let logits = self.model.forward(x.clone());
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optim.step(0.01, self.model.clone(), grads);
        let _: f32 = loss.into_scalar();
        start.elapsed().as_secs_f64()
    }

    /// One eval-mode forward pass of the current weights on the inner (non-autodiff) device;
    /// returns its wall time, synchronized by reading a sum of the logits back.
    fn infer(&self, x: &Tensor<4>) -> f64 {
        let model = self.model.valid();
        let start = Instant::now();
        let _: f32 = model.forward(x.clone()).sum().into_scalar();
        start.elapsed().as_secs_f64()
    }
}

/// The benchmark's random batch at `seed`: inputs on `device` (autodiff) and labels.
fn batch(config: &BenchConfig, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    device.seed(config.seed);
    let [c, h, w] = config.input();
    let x = Tensor::<4>::random(
        [config.batch_size, c, h, w],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let labels: Vec<i64> = (0..config.batch_size)
        .map(|i| (i % config.num_classes()) as i64)
        .collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [config.batch_size]), device);
    (x, y)
}

/// Runs the benchmark at every depth.
pub fn run(config: &BenchConfig) -> Result<BenchReport> {
    config.validate()?;
    let unix_seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = backend::device(config.backend, config.device)?;
    let (warmup, rounds) = config.schedule();
    let mut depths = Vec::new();
    for &depth in &config.depths {
        eprintln!("ResNet-{depth}: {warmup} warm-up steps and {rounds} rounds per variant");
        depths.push(run_depth(config, depth, &base)?);
    }
    Ok(BenchReport {
        config: config.clone(),
        warmup,
        rounds,
        unix_seconds,
        host: Host::current(),
        revision: revision(),
        device: format!("{:?} {base:?}", config.backend),
        depths,
    })
}

fn run_depth(config: &BenchConfig, depth: usize, base: &Device) -> Result<DepthResult> {
    let skipped = config.skipped(depth)?;
    let device = base.clone().autodiff();
    let (x, y) = batch(config, &device);
    let x_inner = x.clone().inner();
    let mut variants = (0..VARIANTS.len())
        .map(|i| Variant::new(config, depth, i, &skipped, &device))
        .collect::<Result<Vec<_>>>()?;
    let (warmup, rounds) = config.schedule();
    for v in variants.iter_mut() {
        for _ in 0..warmup {
            v.step(&x, &y);
        }
        v.infer(&x_inner);
    }
    let n = variants.len();
    let mut train = vec![Vec::with_capacity(rounds); n];
    let mut inference = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (k + round) % n;
            train[i].push(variants[i].step(&x, &y));
        }
        for k in 0..n {
            let i = (k + round) % n;
            inference[i].push(variants[i].infer(&x_inner));
        }
    }
    let mut results = Vec::new();
    for (i, (v, (train, inference))) in variants
        .iter()
        .zip(timings(&train).into_iter().zip(timings(&inference)))
        .enumerate()
    {
        let name = VARIANTS[i].0;
        let memory = if config.measures_memory() {
            Some(memory_in_child(config, depth, &skipped, name)?)
        } else {
            None
        };
        results.push(VariantResult {
            name: name.to_string(),
            skipped: v.skipped.clone(),
            parameters: v.model.parameter_count(),
            train,
            inference,
            memory,
        });
    }
    let pytorch = match &config.pytorch {
        Some(python) => Some(run_pytorch(config, depth, &skipped, python)?),
        None => None,
    };
    Ok(DepthResult {
        arch: config.arch,
        depth,
        variants: results,
        pytorch,
    })
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`), where the OS has it.
fn proc_status_bytes(field: &str) -> Option<u64> {
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
    Ok(PeakMemory {
        kind,
        resting_bytes: resting,
        inference_bytes: inference,
        train_bytes: train,
    })
}

/// Runs [`measure_memory`] for one variant in a fresh process of this binary.
fn memory_in_child(
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

fn mib(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / (1024.0 * 1024.0))
}

impl BenchReport {
    /// Markdown tables of the results, one section per depth, with the benchmark's goals.
    pub fn table(&self) -> String {
        let mut out = format!(
            "batch {}, input {:?}, {} classes, {} warm-up steps, {} rounds, {}; {} ({} threads), \
             revision {}\n",
            self.config.batch_size,
            self.config.input(),
            self.config.num_classes(),
            self.warmup,
            self.rounds,
            self.device,
            self.host.cpu,
            self.host.threads,
            self.revision,
        );
        for d in &self.depths {
            out.push_str(&d.table());
        }
        out
    }
}

impl DepthResult {
    fn variant(&self, name: &str) -> Option<&VariantResult> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// This depth's tables and goals.
    pub fn table(&self) -> String {
        let mut out = format!(
            "\n### {} ResNet-{}\n\n\
             | variant | skipped blocks | params | train s/step (min–max) | × plain | × MRLA-B | \
             inference s/batch (min–max) | × plain | × MRLA-B | peak MiB train / inference |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
            match self.arch {
                Arch::Cifar => "CIFAR",
                Arch::Imagenet => "ImageNet",
            },
            self.depth
        );
        for v in &self.variants {
            let (t, i) = (&v.train, &v.inference);
            out.push_str(&format!(
                "| {} | {} | {} | {:.4} ({:.3}–{:.3}) | {:.3} | {:.3} | {:.4} ({:.3}–{:.3}) | \
                 {:.3} | {:.3} | {} |\n",
                v.name,
                if v.skipped.is_empty() {
                    "–".to_string()
                } else {
                    format!("{} of {}", v.skipped.len(), self.blocks())
                },
                v.parameters,
                t.median_seconds,
                t.min_seconds,
                t.max_seconds,
                t.ratio_to_plain,
                t.ratio_to_mrla_b,
                i.median_seconds,
                i.min_seconds,
                i.max_seconds,
                i.ratio_to_plain,
                i.ratio_to_mrla_b,
                v.memory.map_or("–".into(), |m| format!(
                    "{} / {}",
                    mib(m.train_bytes),
                    mib(m.inference_bytes)
                )),
            ));
        }
        if let Some(m) = self.variants.iter().find_map(|v| v.memory) {
            out.push_str(&format!("\nPeak memory: {}.\n", m.kind.describe()));
        }
        if let Some(pt) = &self.pytorch {
            out.push_str(&format!(
                "\nPyTorch reference ({}, {}), measured right after, same configuration:\n\n\
                 | variant | train s/step | × plain | × MRLA-B | Burn / PyTorch train | \
                 inference s/batch | Burn / PyTorch inference | peak MiB train / inference | \
                 Burn / PyTorch peak train |\n|---|---|---|---|---|---|---|---|---|\n",
                pt.framework, pt.device
            ));
            for p in &pt.variants {
                let burn = self.variant(&p.name);
                let ratio = |f: &dyn Fn(&VariantResult) -> f64, theirs: f64| {
                    burn.map_or("–".into(), |b| format!("{:.2}", f(b) / theirs))
                };
                out.push_str(&format!(
                    "| {} | {:.4} | {:.3} | {:.3} | {} | {:.4} | {} | {} | {} |\n",
                    p.name,
                    p.train.median_seconds,
                    p.train.ratio_to_plain,
                    p.train.ratio_to_mrla_b,
                    ratio(&|b| b.train.median_seconds, p.train.median_seconds),
                    p.inference.median_seconds,
                    ratio(&|b| b.inference.median_seconds, p.inference.median_seconds),
                    p.memory.map_or("–".into(), |m| format!(
                        "{} / {}",
                        mib(m.train_bytes),
                        mib(m.inference_bytes)
                    )),
                    match (burn.and_then(|b| b.memory), p.memory) {
                        (Some(b), Some(m)) if m.train_bytes > 0 =>
                            format!("{:.2}", b.train_bytes as f64 / m.train_bytes as f64),
                        _ => "–".into(),
                    },
                ));
            }
        }
        out.push_str(&self.goals());
        out
    }

    fn blocks(&self) -> usize {
        self.arch
            .stages(self.depth)
            .map_or(0, |(_, blocks)| blocks.iter().sum())
    }

    /// The benchmark's goals at this depth, measured.
    pub fn goals(&self) -> String {
        let mut out = String::from("\n");
        let verdict = |value: f64, limit: f64| if value <= limit { "met" } else { "not met" };
        if let Some(ela) = self.variant("ela-full") {
            let r = ela.train.ratio_to_mrla_b;
            out.push_str(&format!(
                "- ELA (full) train step × MRLA-B: {r:.3} (goal ≤ 0.65: {})\n",
                verdict(r, 0.65)
            ));
            let p = ela.train.ratio_to_plain;
            out.push_str(&format!(
                "- ELA (full) train step × plain ResNet: {p:.3} (goal ≤ 1.15: {})\n",
                verdict(p, 1.15)
            ));
        }
        if let Some(pt) = &self.pytorch {
            for name in ["mrla-b", "ela-full"] {
                let burn = self.variant(name);
                let theirs = pt.variants.iter().find(|p| p.name == name);
                if let (Some(b), Some(p)) = (burn, theirs) {
                    let r = b.train.median_seconds / p.train.median_seconds;
                    out.push_str(&format!(
                        "- {name} Burn / PyTorch train step: {r:.2} (goal ≤ 1.0: {})\n",
                        verdict(r, 1.0)
                    ));
                }
            }
        }
        out
    }
}

/// What `ela bench-retrieval` measures: one block's MRLA-B retrieval over t memory entries.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct RetrievalBenchConfig {
    /// Channels of the block output (CIFAR stages: 64, 128, 256).
    #[arg(long, default_value_t = 64)]
    pub channels: usize,
    /// Spatial size H = W (CIFAR stages: 32, 16, 8).
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Largest memory length (t = 1 … this; ResNet-110 stages have 18 blocks).
    #[arg(long, default_value_t = 18)]
    pub max_entries: usize,
    /// Timed repetitions per t (median reported).
    #[arg(long, default_value_t = 10)]
    pub reps: usize,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// Device index.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Also time the official code's form in PyTorch with this Python (default `python3`).
    #[arg(long, num_args = 0..=1, default_missing_value = "python3")]
    pub pytorch: Option<String>,
}

/// Runs `bench/pytorch/bench.py ARGS` with `python` and parses its JSON output.
pub fn pytorch_json<T: serde::de::DeserializeOwned>(python: &str, args: &[String]) -> Result<T> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/pytorch/bench.py");
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
fn block_pytorch<T: serde::de::DeserializeOwned>(
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

/// Median forward and forward+backward time of one retrieval over `t` entries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetrievalRow {
    /// Memory entries.
    pub entries: usize,
    /// Median seconds of the forward pass.
    pub forward_seconds: f64,
    /// Median seconds of forward plus backward.
    pub forward_backward_seconds: f64,
}

/// Times [`ela_model::LayerAttention::retrieve`] (query, keys and value maps as leaves that need
/// gradients, as inside a training step) for t = 1 … `max_entries`, interleaving the lengths.
pub fn run_retrieval(config: &RetrievalBenchConfig) -> Result<Vec<RetrievalRow>> {
    if config.channels == 0 || !config.channels.is_multiple_of(16) {
        bail!("--channels must be a positive multiple of 16 (the heads' width)");
    }
    if config.max_entries == 0 || config.reps == 0 || config.batch_size == 0 || config.size == 0 {
        bail!("--max-entries, --reps, --batch-size and --size must be at least 1");
    }
    let device = backend::device(config.backend, config.device)?.autodiff();
    let layer = ela_model::LayerAttentionConfig::new(config.channels).init(&device);
    let (b, c, s) = (config.batch_size, config.channels, config.size);
    let leaf3 =
        || Tensor::<3>::random([b, 1, c], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let query = leaf3();
    let keys: Vec<Tensor<3>> = (0..config.max_entries).map(|_| leaf3()).collect();
    let values: Vec<Tensor<4>> = (0..config.max_entries)
        .map(|_| {
            Tensor::<4>::random([b, c, s, s], Distribution::Normal(0.0, 1.0), &device)
                .require_grad()
        })
        .collect();
    let time = |t: usize, backward: bool| -> f64 {
        let start = Instant::now();
        let (out, _) = layer.retrieve(query.clone(), &keys[..t], &values[..t]);
        let total = out.sum();
        if backward {
            let grads = total.backward();
            let g = values[0].grad(&grads).map(|g| g.sum().into_scalar::<f32>());
            std::hint::black_box(g);
        } else {
            let _: f32 = total.into_scalar();
        }
        start.elapsed().as_secs_f64()
    };
    // Warm-up, then rounds over every t.
    for t in 1..=config.max_entries {
        time(t, true);
    }
    let mut forward = vec![Vec::new(); config.max_entries];
    let mut both = vec![Vec::new(); config.max_entries];
    for _ in 0..config.reps {
        for t in 1..=config.max_entries {
            forward[t - 1].push(time(t, false));
            both[t - 1].push(time(t, true));
        }
    }
    Ok((1..=config.max_entries)
        .map(|t| RetrievalRow {
            entries: t,
            forward_seconds: median(&forward[t - 1]),
            forward_backward_seconds: median(&both[t - 1]),
        })
        .collect())
}

/// Median times of one block's depthwise 3×3 value map `v_t = Wv(x_t)` at the retrieval
/// benchmark's shape: the forward pass, and forward + backward with gradients for the input and
/// the weights, for the input only, and for the weights only.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ValueMapTimes {
    /// Forward pass.
    pub forward_seconds: f64,
    /// Forward and backward, gradients of input and weights.
    pub forward_backward_seconds: f64,
    /// Forward and backward, gradient of the input only.
    pub input_gradient_seconds: f64,
    /// Forward and backward, gradient of the weights only.
    pub weight_gradient_seconds: f64,
}

impl ValueMapTimes {
    /// The four passes, named, in seconds.
    pub fn rows(&self) -> [(&'static str, f64); 4] {
        [
            ("forward", self.forward_seconds),
            (
                "forward + backward (input and weights)",
                self.forward_backward_seconds,
            ),
            (
                "forward + backward (input only)",
                self.input_gradient_seconds,
            ),
            (
                "forward + backward (weights only)",
                self.weight_gradient_seconds,
            ),
        ]
    }
}

/// Times [`ela_model::LayerAttention::value`] (loss `sum(v²)`), interleaving the four cases.
pub fn run_value_map(config: &RetrievalBenchConfig) -> Result<ValueMapTimes> {
    if config.channels == 0 || !config.channels.is_multiple_of(16) {
        bail!("--channels must be a positive multiple of 16 (the heads' width)");
    }
    if config.reps == 0 || config.batch_size == 0 || config.size == 0 {
        bail!("--reps, --batch-size and --size must be at least 1");
    }
    let device = backend::device(config.backend, config.device)?.autodiff();
    let config_layer = ela_model::LayerAttentionConfig::new(config.channels);
    let layer = config_layer.init(&device);
    // Separately built: a clone would share the parameters' state with `layer`.
    let frozen = config_layer.init(&device).no_grad();
    let (b, c, s) = (config.batch_size, config.channels, config.size);
    let x = Tensor::<4>::random([b, c, s, s], Distribution::Normal(0.0, 1.0), &device);
    // (input needs a gradient, weights need one, backward at all)
    let cases = [
        (true, true, false),
        (true, true, true),
        (true, false, true),
        (false, true, true),
    ];
    let time = |(input, weights, backward): (bool, bool, bool)| -> f64 {
        let x = if input {
            x.clone().require_grad()
        } else {
            x.clone()
        };
        let layer = if weights { &layer } else { &frozen };
        let start = Instant::now();
        let v = layer.value(x.clone());
        let total = (v.clone() * v).sum();
        if backward {
            let grads = total.backward();
            let gx = x.grad(&grads).map(|g| g.sum().into_scalar::<f32>());
            let gw = layer
                .wv
                .weight
                .grad(&grads)
                .map(|g| g.sum().into_scalar::<f32>());
            std::hint::black_box((gx, gw));
        } else {
            let _: f32 = total.into_scalar();
        }
        start.elapsed().as_secs_f64()
    };
    for case in cases {
        time(case);
    }
    let mut seconds = vec![Vec::new(); cases.len()];
    for _ in 0..config.reps {
        for (i, case) in cases.into_iter().enumerate() {
            seconds[i].push(time(case));
        }
    }
    Ok(ValueMapTimes {
        forward_seconds: median(&seconds[0]),
        forward_backward_seconds: median(&seconds[1]),
        input_gradient_seconds: median(&seconds[2]),
        weight_gradient_seconds: median(&seconds[3]),
    })
}

/// The PyTorch value-map timings for `config` (same shape, same device kind).
pub fn run_value_map_pytorch(config: &RetrievalBenchConfig, python: &str) -> Result<ValueMapTimes> {
    block_pytorch(config, python, "--value-map")
}

/// What `ela bench-data` measures: the CIFAR training input pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct DataBenchConfig {
    /// CIFAR directory (`data/cifar10` after `cargo xtask fetch cifar10`); default: random
    /// images of CIFAR's size, which cost the pipeline exactly as much.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Images per measurement (random images only).
    #[arg(long, default_value_t = 20_000)]
    pub images: usize,
    /// Loader worker counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    pub workers: Vec<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Measure the ImageNet pipeline instead, on the images of this image-folder split
    /// (`DIR/<class>/*.JPEG`, e.g. ImageNet's `train`): JPEG decoding, then decoding with the
    /// training (random-resized crop + flip) or evaluation (resize + centre crop) transform,
    /// then loader epochs per worker count. At most --images images are used.
    #[arg(long)]
    pub imagenet: Option<std::path::PathBuf>,
}

/// Images per second of one configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataBenchRow {
    /// What was measured.
    pub stage: String,
    /// Loader workers (0: on the calling thread).
    pub workers: usize,
    /// Images per second.
    pub images_per_second: f64,
}

/// Measures the ImageNet pipeline on the first `--images` files of an image-folder split.
fn run_imagenet_data(config: &DataBenchConfig, dir: &std::path::Path) -> Result<Vec<DataBenchRow>> {
    use burn::data::dataloader::DataLoaderBuilder;

    use crate::data::{EpochClock, ImageBatcher};
    use crate::imagenet::{CROP, FolderIndex, ImageFolderSet, decode, normalization};

    let index = FolderIndex::scan(dir, None)?;
    let clock = EpochClock::new();
    clock.set(1);
    let train = ImageFolderSet::new(&index, true, 0, clock.clone()).truncated(config.images);
    let eval = ImageFolderSet::new(&index, false, 0, clock.clone()).truncated(config.images);
    let n = train.files_len();
    let mut rows = Vec::new();
    let mut measure = |stage: &str, workers: usize, f: &mut dyn FnMut() -> Result<()>| {
        let start = Instant::now();
        f()?;
        rows.push(DataBenchRow {
            stage: stage.into(),
            workers,
            images_per_second: n as f64 / start.elapsed().as_secs_f64(),
        });
        anyhow::Ok(())
    };
    measure("read + JPEG decode", 0, &mut || {
        for (path, _) in index.files.iter().take(n) {
            let bytes = std::fs::read(path)?;
            std::hint::black_box(decode(path, &bytes).map_err(anyhow::Error::msg)?);
        }
        Ok(())
    })?;
    measure("decode + random-resized crop 224 + flip", 0, &mut || {
        for i in 0..n {
            std::hint::black_box(train.item(i).map_err(anyhow::Error::msg)?);
        }
        Ok(())
    })?;
    measure("decode + resize 256 + centre crop 224", 0, &mut || {
        for i in 0..n {
            std::hint::black_box(eval.item(i).map_err(anyhow::Error::msg)?);
        }
        Ok(())
    })?;
    let device = Device::flex();
    for &workers in &config.workers {
        let loader = DataLoaderBuilder::new(ImageBatcher::new([3, CROP, CROP], normalization()))
            .batch_size(config.batch_size)
            .num_workers(workers)
            .set_device(device.clone())
            .build(train.clone());
        measure(
            "loader epoch (decode, augment, normalize, batch)",
            workers,
            &mut || {
                let mut seen = 0;
                for batch in loader.iter() {
                    seen += batch?.targets.dims()[0];
                }
                if seen != n {
                    bail!("the loader returned {seen} of {n} images");
                }
                Ok(())
            },
        )?;
    }
    Ok(rows)
}

/// Measures the CIFAR pipeline: the augmentation alone, then a full epoch of the loader
/// (shuffle, pad-and-crop, flip, normalization into a `[B, 3, 32, 32]` tensor) per worker count.
pub fn run_data(config: &DataBenchConfig) -> Result<Vec<DataBenchRow>> {
    use burn::data::dataloader::DataLoaderBuilder;
    use burn::data::dataset::Dataset;

    use crate::cifar::{Augmented, CifarKind, IMAGE_BYTES, channel_stats, load};
    use crate::data::{EpochClock, EpochShuffled, ImageBatcher, ImageSet, splitmix};

    if config.batch_size == 0 || config.images == 0 {
        bail!("--batch-size and --images must be at least 1");
    }
    if let Some(dir) = &config.imagenet {
        return run_imagenet_data(config, dir);
    }
    let set = match &config.data_dir {
        Some(dir) => load(dir, CifarKind::Cifar10)?.train,
        None => {
            let pixels = (0..config.images * IMAGE_BYTES)
                .map(|i| splitmix(i as u64) as u8)
                .collect();
            let labels = (0..config.images).map(|i| (i % 10) as u8).collect();
            ImageSet::new(pixels, labels, [3, 32, 32], 10)
        }
    };
    let n = set.len();
    let norm = channel_stats(&set);
    let device = Device::flex();
    let clock = EpochClock::new();
    let mut rows = Vec::new();

    let augmented = Augmented::new(set.clone(), 4, 0, clock.clone());
    let start = Instant::now();
    for i in 0..n {
        std::hint::black_box(augmented.get(i)?);
    }
    rows.push(DataBenchRow {
        stage: "pad-crop-flip only".into(),
        workers: 0,
        images_per_second: n as f64 / start.elapsed().as_secs_f64(),
    });

    for &workers in &config.workers {
        let loader = DataLoaderBuilder::new(ImageBatcher::new([3, 32, 32], norm.clone()))
            .batch_size(config.batch_size)
            .num_workers(workers)
            .set_device(device.clone())
            .build(EpochShuffled::new(
                Augmented::new(set.clone(), 4, 0, clock.clone()),
                n,
                0,
                clock.clone(),
            ));
        let start = Instant::now();
        let mut seen = 0;
        for batch in loader.iter() {
            seen += batch?.targets.dims()[0];
        }
        if seen != n {
            bail!("the loader returned {seen} of {n} images");
        }
        rows.push(DataBenchRow {
            stage: "loader epoch (shuffle, augment, normalize, batch)".into(),
            workers,
            images_per_second: n as f64 / start.elapsed().as_secs_f64(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_default_skips() {
        assert_eq!(parse_shape("1,28,28"), Ok([1, 28, 28]));
        assert!(parse_shape("1,28").is_err());
        assert!(parse_shape("1,0,28").is_err());
        assert!(parse_shape("a,b,c").is_err());
        // ResNet-56: six blocks per stage; skip positions 1, 3, 5 of each.
        let layout = StageLayout::cifar(56).unwrap();
        assert_eq!(default_skips(&layout), vec![1, 3, 5, 7, 9, 11, 13, 15, 17]);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn ratios_are_medians_of_per_round_ratios() {
        // Five variants, three rounds; round 2 is slow for everyone (a busy machine). Per-round
        // ratios cancel the slow round; ratios of medians would not.
        let times = vec![
            vec![1.0, 1.0, 3.0],  // plain
            vec![2.0, 2.0, 6.0],  // mrla-l
            vec![4.0, 5.0, 12.0], // mrla-b
            vec![2.0, 3.0, 6.0],  // ela-full
            vec![3.0, 3.0, 9.0],  // ela-retrieval
        ];
        let t = timings(&times);
        assert_eq!(t[0].ratio_to_plain, 1.0);
        assert_eq!(t[2].ratio_to_mrla_b, 1.0);
        // ela-full / mrla-b per round: 0.5, 0.6, 0.5 -> 0.5; its medians would give 3/5 = 0.6.
        assert_eq!(t[3].ratio_to_mrla_b, 0.5);
        assert_eq!(t[3].ratio_to_plain, 2.0);
        assert_eq!(t[2].ratio_to_plain, 4.0);
        assert_eq!(
            (t[3].min_seconds, t[3].median_seconds, t[3].max_seconds),
            (2.0, 3.0, 6.0)
        );
    }

    #[test]
    fn results_go_to_target_bench_unless_named() {
        let mut config = BenchConfig {
            arch: Arch::Cifar,
            depths: vec![20, 56, 110],
            batch_size: 32,
            input: None,
            num_classes: None,
            skip: None,
            warmup: 2,
            rounds: 10,
            quick: false,
            no_memory: false,
            backend: Backend::Cpu,
            device: 0,
            seed: 0,
            json: None,
            pytorch: None,
            memory_of: None,
        };
        assert_eq!(
            config.json_path(1_700_000_000),
            PathBuf::from("target/bench/flex-cifar-resnet20-56-110-1700000000.json")
        );
        assert_eq!(config.schedule(), (2, 10));
        assert_eq!((config.input(), config.num_classes()), ([3, 32, 32], 100));
        config.arch = Arch::Imagenet;
        assert_eq!(
            (config.input(), config.num_classes()),
            ([3, 224, 224], 1000)
        );
        config.input = Some([3, 64, 64]);
        assert_eq!(config.input(), [3, 64, 64]);
        assert!(
            config.validate().is_err(),
            "ResNet-20 is not an ImageNet depth"
        );
        config.depths = vec![50, 101];
        assert!(config.validate().is_ok());
        // ResNet-50's stages hold 3, 4, 6, 3 blocks.
        assert_eq!(config.skipped(50).unwrap(), vec![1, 4, 6, 8, 10, 12, 14]);
        assert!(config.measures_memory());
        config.quick = true;
        assert_eq!(config.schedule(), (1, 3));
        assert!(!config.measures_memory());
        config.quick = false;
        config.no_memory = true;
        assert!(!config.measures_memory());
        config.json = Some(PathBuf::from("x.json"));
        assert_eq!(config.json_path(1), PathBuf::from("x.json"));
    }
}
