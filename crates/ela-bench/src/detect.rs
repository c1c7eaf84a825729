//! `ela bench --task detect`: one training step of Faster R-CNN with FPN for the plain, MRLA-B
//! and ELA backbones, interleaved round by round in one process on the same batch (random
//! images, random boxes, fixed seed), and the RoIAlign of that step's RoIs (forward and
//! backward) on its own. Medians over the rounds; ratios are taken within this run.

use std::time::Instant;

use anyhow::Result;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use ela_detect::rpn::Targets;
use ela_detect::{Detector, DetectorConfig, MultiLevelRoiAlign, Roi};
use ela_model::{AttentionKind, Prunable};
use ela_train::backend::{self, Backend};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::Serialize;

use crate::default_skips;

/// The flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DetectBenchConfig {
    /// The task: `detect` (these flags), or `classify` (`ela bench --help`).
    #[arg(long, value_enum, default_value = "detect")]
    pub task: ela_train::runtime::TaskName,
    /// Backbone depth (ImageNet ResNet).
    #[arg(long, default_value_t = 50)]
    pub depth: usize,
    /// Padded input size HEIGHT,WIDTH (MMDetection's largest COCO batch is 800,1344).
    #[arg(long, value_delimiter = ',', default_value = "800,1344")]
    pub size: Vec<usize>,
    /// Images per step.
    #[arg(long, default_value_t = 2)]
    pub batch_size: usize,
    /// Object classes.
    #[arg(long, default_value_t = 80)]
    pub num_classes: usize,
    /// Ground-truth boxes per image.
    #[arg(long, default_value_t = 7)]
    pub objects: usize,
    /// Timed rounds.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Untimed rounds first.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// Device index.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Then time torchvision's Faster R-CNN R-50 FPN (`bench/pytorch/detect.py`) with this
    /// Python (default `python3`) beside ours in its torchvision setting, on the same input
    /// size, batch and threads: training step and inference, and the Burn / PyTorch ratios.
    #[arg(long, num_args = 0..=1, default_missing_value = "python3")]
    pub pytorch: Option<String>,
}

/// One variant's result.
#[derive(Debug, Clone, Serialize)]
pub struct DetectBenchRow {
    /// none, mrla-b or ela.
    pub variant: String,
    /// Parameters (PyTorch's count).
    pub parameters: usize,
    /// Median seconds per training step.
    pub step_seconds: f64,
    /// Every timed step.
    pub steps: Vec<f64>,
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct DetectBenchReport {
    /// The configuration, as text.
    pub setup: String,
    /// Variants.
    pub rows: Vec<DetectBenchRow>,
    /// Median seconds of RoIAlign forward + backward over one step's sampled RoIs.
    pub roi_align_seconds: f64,
    /// RoIs in that measurement.
    pub rois: usize,
}

impl DetectBenchReport {
    /// A markdown table.
    pub fn table(&self) -> String {
        let base = self.rows[0].step_seconds;
        let mut out = format!(
            "{}\n\n| backbone | parameters | s/step | / plain |\n|---|---|---|---|\n",
            self.setup
        );
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {:.3} | {:.2} |\n",
                r.variant,
                r.parameters,
                r.step_seconds,
                r.step_seconds / base
            ));
        }
        if let (Some(b), Some(e)) = (
            self.rows.iter().find(|r| r.variant == "mrla-b"),
            self.rows.iter().find(|r| r.variant == "ela"),
        ) {
            out.push_str(&format!(
                "\nELA / MRLA-B: {:.2}\n",
                e.step_seconds / b.step_seconds
            ));
        }
        out.push_str(&format!(
            "RoIAlign forward + backward, {} RoIs: {:.4} s ({:.1}% of the plain step)\n",
            self.rois,
            self.roi_align_seconds,
            100.0 * self.roi_align_seconds / base
        ));
        out
    }
}

struct Variant {
    name: &'static str,
    model: Detector,
    optim: ModuleOptimizer,
    steps: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `config.objects` random boxes (16 px to half the image per side) of random classes below
/// `classes` in each image of `(h, w)`.
pub(crate) fn random_targets(
    config: &DetectBenchConfig,
    (h, w): (usize, usize),
    classes: usize,
    rng: &mut StdRng,
) -> Vec<Targets> {
    (0..config.batch_size)
        .map(|_| {
            let boxes = (0..config.objects)
                .map(|_| {
                    let (bw, bh) = (
                        rng.random_range(16.0..w as f32 / 2.0),
                        rng.random_range(16.0..h as f32 / 2.0),
                    );
                    let (x, y) = (
                        rng.random_range(0.0..w as f32 - bw),
                        rng.random_range(0.0..h as f32 - bh),
                    );
                    [x, y, x + bw, y + bh]
                })
                .collect();
            let labels = (0..config.objects)
                .map(|_| rng.random_range(0..classes))
                .collect();
            Targets {
                boxes,
                labels,
                masks: Vec::new(),
            }
        })
        .collect()
}

/// The input size `--size` gives.
pub(crate) fn size(config: &DetectBenchConfig) -> Result<(usize, usize)> {
    let [h, w] = config.size[..] else {
        anyhow::bail!("--size takes HEIGHT,WIDTH, got {:?}", config.size);
    };
    Ok((h, w))
}

/// Runs the benchmark.
pub fn run_detect(config: &DetectBenchConfig) -> Result<DetectBenchReport> {
    let (h, w) = size(config)?;
    let device = backend::device(config.backend, config.device)?.autodiff();
    let detector = |attention| DetectorConfig::mmdet(config.depth, attention, config.num_classes);
    let mut variants = Vec::new();
    for (name, attention, skip) in [
        ("none", AttentionKind::None, false),
        ("mrla-b", AttentionKind::MrlaB, false),
        ("ela", AttentionKind::MrlaB, true),
    ] {
        device.seed(config.seed);
        let model = detector(attention).init(&device)?;
        if skip {
            let layout = model.layout();
            let skipped = default_skips(&layout);
            let flags: Vec<bool> = (0..layout.num_blocks())
                .map(|i| skipped.contains(&i))
                .collect();
            model.set_skip_flags(&flags)?;
        }
        variants.push(Variant {
            name,
            model,
            optim: SgdConfig::new().init(),
            steps: Vec::new(),
        });
    }
    device.seed(config.seed);
    let images = Tensor::<4>::random(
        [config.batch_size, 3, h, w],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let mut rng = StdRng::seed_from_u64(config.seed);
    let targets = random_targets(config, (h, w), config.num_classes, &mut rng);
    let sizes = vec![(h, w); config.batch_size];
    let mut align = Vec::new();
    let rois_per_image = 512;
    for round in 0..config.warmup + config.rounds {
        for v in variants.iter_mut() {
            let mut step_rng = StdRng::seed_from_u64(config.seed + round as u64);
            let start = Instant::now();
            let losses = v
                .model
                .losses(images.clone(), &sizes, &targets, false, &mut step_rng)?;
            let loss = losses.total();
            let grads = GradientsParams::from_grads(loss.backward(), &v.model);
            v.model = v.optim.step(1e-4, v.model.clone(), grads);
            let _: f32 = v.model.rpn.cls.weight.val().sum().into_scalar();
            if round >= config.warmup {
                v.steps.push(start.elapsed().as_secs_f64());
            }
        }
        // RoIAlign alone: P2–P5 of this size, 512 RoIs per image.
        let channels = 256;
        let pyramid: Vec<Tensor<4>> = [4, 8, 16, 32]
            .iter()
            .map(|s| {
                Tensor::<4>::random(
                    [config.batch_size, channels, h.div_ceil(*s), w.div_ceil(*s)],
                    Distribution::Normal(0.0, 1.0),
                    &device,
                )
                .require_grad()
            })
            .collect();
        let rois: Vec<Roi> = (0..config.batch_size * rois_per_image)
            .map(|i| {
                let side = rng.random_range(8.0..(h.min(w) as f32) / 2.0);
                let (x, y) = (
                    rng.random_range(0.0..w as f32 - side),
                    rng.random_range(0.0..h as f32 - side),
                );
                Roi {
                    batch: i / rois_per_image,
                    bbox: [x, y, x + side, y + side * rng.random_range(0.5..1.5f32)],
                }
            })
            .collect();
        let roi = MultiLevelRoiAlign {
            output: 7,
            strides: vec![4, 8, 16, 32],
            torchvision: false,
        };
        let start = Instant::now();
        let out = roi.forward(&pyramid, &rois);
        let grads = out.sum().backward();
        let g = pyramid[0].grad(&grads).map(|g| g.sum());
        if let Some(g) = g {
            let _: f32 = g.into_scalar();
        }
        if round >= config.warmup {
            align.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(DetectBenchReport {
        setup: format!(
            "Faster R-CNN R-{} FPN training step, {} images of {h}x{w}, {} objects each, {} classes, backend {:?}, {} rounds after {} warm-up",
            config.depth,
            config.batch_size,
            config.objects,
            config.num_classes,
            config.backend,
            config.rounds,
            config.warmup
        ),
        rows: variants
            .iter()
            .map(|v| DetectBenchRow {
                variant: v.name.to_string(),
                parameters: v.model.parameter_count(),
                step_seconds: median(&v.steps),
                steps: v.steps.clone(),
            })
            .collect(),
        roi_align_seconds: median(&align),
        rois: config.batch_size * rois_per_image,
    })
}
