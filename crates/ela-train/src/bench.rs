//! `ela bench`: training-step time of the attention variants, measured side by side.
//!
//! Shared machines drift: two runs measured minutes apart can differ by 20% for reasons that have
//! nothing to do with the model. So every variant trains in the same process, on the same
//! batch, in interleaved rounds (round r runs one step of each variant, in an order that rotates
//! every round), and the reported ratios are medians of per-round ratios against MRLA-B.

use std::time::Instant;

use anyhow::{Result, bail};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use ela_model::{AttentionKind, ElaResNet, ElaResNetConfig, SkipMode, StageLayout};
use serde::{Deserialize, Serialize};

use crate::backend::{self, Backend};

/// What to benchmark.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct BenchConfig {
    /// ResNet depth (9n + 2).
    #[arg(long, default_value_t = 20)]
    pub depth: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Input `C,H,W`.
    #[arg(long, default_value = "3,32,32", value_parser = parse_shape)]
    pub input: [usize; 3],
    /// Classes of the head.
    #[arg(long, default_value_t = 100)]
    pub num_classes: usize,
    /// Blocks ELA skips (0-based over all blocks, e.g. `1,4`); default: every second non-first
    /// block of each stage, as EBQM at q = 0.5 tends to leave.
    #[arg(long, value_delimiter = ',')]
    pub skip: Option<Vec<usize>>,
    /// Untimed steps per variant first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Timed rounds (one step of every variant per round).
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// Device index.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Then run the PyTorch reference (`bench/pytorch/bench.py`) with this Python (default
    /// `python3`) on the same configuration, and report Burn / PyTorch step-time ratios.
    #[arg(long, num_args = 0..=1, default_missing_value = "python3")]
    pub pytorch: Option<String>,
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

/// One variant's timings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantResult {
    /// `none`, `mrla-l`, `mrla-b`, `ela-full` or `ela-retrieval`.
    pub name: String,
    /// Skipped blocks.
    pub skipped: Vec<usize>,
    /// Median seconds per training step.
    pub median_seconds: f64,
    /// Median over rounds of (this step time / MRLA-B's step time in the same round).
    pub ratio_to_mrla_b: f64,
    /// Every timed step, seconds.
    pub seconds: Vec<f64>,
}

/// The benchmark's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    /// The configuration.
    pub config: BenchConfig,
    /// Backend and device.
    pub device: String,
    /// One entry per variant.
    pub variants: Vec<VariantResult>,
    /// The PyTorch reference's results, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pytorch: Option<PytorchResult>,
}

/// What `bench/pytorch/bench.py` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PytorchResult {
    /// `pytorch <version>`.
    pub framework: String,
    /// Device (and CPU threads).
    pub device: String,
    /// Per variant: `name`, `median_seconds`, `ratio_to_mrla_b`, `seconds`.
    pub variants: Vec<PytorchVariant>,
}

/// One PyTorch variant's timings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PytorchVariant {
    /// Variant name, as in [`VariantResult::name`].
    pub name: String,
    /// Median seconds per training step.
    pub median_seconds: f64,
    /// Median per-round ratio to PyTorch's MRLA-B.
    pub ratio_to_mrla_b: f64,
    /// Every timed step, seconds.
    pub seconds: Vec<f64>,
}

/// PyTorch's name of the device a Burn `backend` measurement ran on: the same CUDA device, or
/// the CPU (wgpu has no PyTorch counterpart; it is compared with the CPU).
fn torch_device(backend: Backend, index: usize) -> String {
    match backend {
        Backend::Cuda => format!("cuda:{index}"),
        Backend::Cpu | Backend::Wgpu | Backend::Vulkan => "cpu".to_string(),
    }
}

/// Runs the PyTorch reference on `config` with `python`, right after the Burn measurement.
fn run_pytorch(config: &BenchConfig, skipped: &[usize], python: &str) -> Result<PytorchResult> {
    let skip: Vec<String> = skipped.iter().map(usize::to_string).collect();
    let [c, h, w] = config.input;
    let args: Vec<String> = [
        ("--depth", config.depth.to_string()),
        ("--batch-size", config.batch_size.to_string()),
        ("--input", format!("{c},{h},{w}")),
        ("--num-classes", config.num_classes.to_string()),
        ("--skip", skip.join(",")),
        ("--warmup", config.warmup.to_string()),
        ("--rounds", config.rounds.to_string()),
        ("--seed", config.seed.to_string()),
        ("--device", torch_device(config.backend, config.device)),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect();
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
    name: String,
    model: ElaResNet,
    optim: ModuleOptimizer,
    skipped: Vec<usize>,
}

impl Variant {
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
}

/// Runs the benchmark.
pub fn run(config: &BenchConfig) -> Result<BenchReport> {
    if config.batch_size == 0 || config.rounds == 0 || config.num_classes == 0 {
        bail!("--batch-size, --rounds and --num-classes must be at least 1");
    }
    let layout = StageLayout::cifar(config.depth)?;
    let skipped = match &config.skip {
        Some(s) => s.clone(),
        None => default_skips(&layout),
    };
    ela_prune::SkipMask::from_flags(&layout, {
        let mut flags = vec![false; layout.num_blocks()];
        for &i in &skipped {
            if i >= flags.len() {
                bail!(
                    "--skip: block {i} is outside the model's {} blocks",
                    flags.len()
                );
            }
            flags[i] = true;
        }
        flags
    })
    .map_err(|e| anyhow::anyhow!("--skip: {e}"))?;

    let base = backend::device(config.backend, config.device)?;
    let device = base.clone().autodiff();
    device.seed(config.seed);
    let [c, h, w] = config.input;
    let x = Tensor::<4>::random(
        [config.batch_size, c, h, w],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let labels: Vec<i64> = (0..config.batch_size)
        .map(|i| (i % config.num_classes) as i64)
        .collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [config.batch_size]), &device);

    let specs: [(&str, AttentionKind, SkipMode, bool); 5] = [
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
    let mut variants = Vec::new();
    for (name, attention, mode, skips) in specs {
        let model = ElaResNetConfig::new(config.depth, config.num_classes)
            .with_in_channels(c)
            .with_attention(attention)
            .with_skip_mode(mode)
            .init(&device)?;
        let flags: Vec<bool> = (0..layout.num_blocks())
            .map(|i| skips && skipped.contains(&i))
            .collect();
        model.set_skip_flags(&flags)?;
        let optim = SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
            .init();
        variants.push(Variant {
            name: name.to_string(),
            model,
            optim,
            skipped: if skips { skipped.clone() } else { Vec::new() },
        });
    }
    for v in variants.iter_mut() {
        for _ in 0..config.warmup {
            v.step(&x, &y);
        }
    }
    let n = variants.len();
    let mut times = vec![Vec::with_capacity(config.rounds); n];
    for round in 0..config.rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let t = variants[i].step(&x, &y);
            times[i].push(t);
        }
    }
    let reference = specs
        .iter()
        .position(|s| s.0 == "mrla-b")
        .expect("mrla-b is measured");
    let results = variants
        .iter()
        .zip(&times)
        .map(|(v, t)| {
            let ratios: Vec<f64> = t
                .iter()
                .zip(&times[reference])
                .map(|(a, b)| a / b)
                .collect();
            VariantResult {
                name: v.name.clone(),
                skipped: v.skipped.clone(),
                median_seconds: median(t),
                ratio_to_mrla_b: median(&ratios),
                seconds: t.clone(),
            }
        })
        .collect();
    let pytorch = match &config.pytorch {
        Some(python) => Some(run_pytorch(config, &skipped, python)?),
        None => None,
    };
    Ok(BenchReport {
        config: config.clone(),
        device: format!("{:?} {base:?}", config.backend),
        variants: results,
        pytorch,
    })
}

impl BenchReport {
    /// A Markdown table of the results.
    pub fn table(&self) -> String {
        let mut out = format!(
            "ResNet-{} training step, batch {}, input {:?}, {} classes, {} rounds, {}\n\n\
             | variant | skipped blocks | median s/step | × MRLA-B (median of per-round ratios) |\n\
             |---|---|---|---|\n",
            self.config.depth,
            self.config.batch_size,
            self.config.input,
            self.config.num_classes,
            self.config.rounds,
            self.device
        );
        for v in &self.variants {
            out.push_str(&format!(
                "| {} | {:?} | {:.4} | {:.3} |\n",
                v.name, v.skipped, v.median_seconds, v.ratio_to_mrla_b
            ));
        }
        if let Some(pt) = &self.pytorch {
            out.push_str(&format!(
                "\nPyTorch reference ({}, {}), measured right after, same configuration:\n\n\
                 | variant | PyTorch median s/step | PyTorch × MRLA-B | Burn / PyTorch |\n\
                 |---|---|---|---|\n",
                pt.framework, pt.device
            ));
            for p in &pt.variants {
                let burn = self.variants.iter().find(|v| v.name == p.name);
                out.push_str(&format!(
                    "| {} | {:.4} | {:.3} | {} |\n",
                    p.name,
                    p.median_seconds,
                    p.ratio_to_mrla_b,
                    burn.map_or("-".into(), |b| format!(
                        "{:.2}",
                        b.median_seconds / p.median_seconds
                    ))
                ));
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
        "--retrieval".into(),
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
}
