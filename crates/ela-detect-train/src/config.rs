//! `ela train --task detect`: the flags, and the configuration they resolve to (what
//! `config.json` of the run holds, what `--resume` reads back, and the runtime's settings it
//! gives).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use ela_detect::DetectorConfig;
use ela_model::{AttentionKind, SkipMode};
use ela_prune::{KlDirection, PruneMethod, PruningSchedule, SchedulePreset};
use ela_records::ResumeOverride;
use ela_train::backend::{Backend, Precision};
use ela_train::classify::options::{Method, PruneArgs};
use ela_train::runtime::session::utc_stamp;
use ela_train::runtime::{DeviceArgs, PruneSetup, RunSettings, SgdSettings, TaskConfig, TaskName};
use ela_train::schedule::{Length, LrSchedule, Shape, Warmup, WarmupStart};
use serde::{Deserialize, Serialize};

/// Which detection data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DetectDataset {
    /// The offline digit set, generated on first use (`ela_data::digits`).
    Digits,
    /// COCO 2017: `DIR/annotations/instances_{train,val}2017.json`, `DIR/{train,val}2017/`.
    Coco,
}

/// Which detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DetectorKind {
    /// Faster R-CNN with FPN (boxes).
    #[default]
    FasterRcnn,
    /// Mask R-CNN with FPN (boxes and instance masks).
    MaskRcnn,
}

impl DetectorKind {
    /// `faster-rcnn` or `mask-rcnn` (run directory names).
    pub fn name(self) -> &'static str {
        match self {
            Self::FasterRcnn => "faster-rcnn",
            Self::MaskRcnn => "mask-rcnn",
        }
    }
}

/// The flags of `ela train --task detect`.
#[derive(Debug, Clone, clap::Args)]
pub struct DetectTrainArgs {
    /// The task: `detect` (these flags), or `classify` (`ela train --help`).
    #[arg(long, value_enum, default_value = "detect")]
    pub task: TaskName,
    /// Detector: Faster R-CNN, or Mask R-CNN (which also needs the objects' masks).
    #[arg(long, value_enum, default_value = "faster-rcnn")]
    pub detector: DetectorKind,
    /// Dataset.
    #[arg(long, value_enum, default_value = "digits")]
    pub dataset: DetectDataset,
    /// Dataset folder (default: data/digits-det or data/coco).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Use only the first N training images.
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Use only the first N validation images.
    #[arg(long)]
    pub limit_val: Option<usize>,
    /// ImageNet ResNet depth of the backbone (default: 18 on digits, 50 on COCO).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Backbone attention: ela (MRLA-B with pruning), or any attention of the model crate.
    #[arg(long, value_enum, default_value = "ela")]
    pub attention: Method,
    /// ImageNet-pretrained backbone weights: a classification run directory (or its
    /// `model.safetensors`), an official MRLA checkpoint or torchvision ResNet weights, of the
    /// backbone's depth and attention (with frozen stem and `layer1` and frozen BatchNorm
    /// statistics unless --frozen-stages / --norm-eval say otherwise).
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// Stem and stages frozen (MMDetection `frozen_stages`; default 1 with --pretrained, else
    /// 0: a backbone trained from scratch needs every layer).
    #[arg(long)]
    pub frozen_stages: Option<usize>,
    /// BatchNorm statistics frozen (MMDetection `norm_eval`; default on with --pretrained, off
    /// from scratch, where the statistics must be learned).
    #[arg(long)]
    pub norm_eval: Option<bool>,
    /// Epochs (the 1x schedule: 12).
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    /// Images per batch (default: 4 on digits, 2 on COCO).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate (default: 0.02 per 16 images, scaled to the batch).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Linear warm-up iterations from 0.001 × lr (default: 500 on COCO, 100 on digits).
    #[arg(long)]
    pub warmup_iters: Option<usize>,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Weight decay.
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    /// Resize to fit LONG,SHORT keeping the ratio (default: 1333,800 on COCO, 128,128 on
    /// digits).
    #[arg(long, value_delimiter = ',')]
    pub scale: Vec<usize>,
    /// FPN channels (default: 256 on COCO, 64 on digits).
    #[arg(long)]
    pub fpn_channels: Option<usize>,
    /// Box head FC width (default: 1024 on COCO, 256 on digits).
    #[arg(long)]
    pub head_width: Option<usize>,
    /// RoIs sampled per image (default: 512 on COCO, 128 on digits).
    #[arg(long)]
    pub roi_samples: Option<usize>,
    /// Seed of initialization, data order, flips and sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub devices: DeviceArgs,
    /// Data-loader worker threads (each reads and decodes whole batches).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Run directory (default: runs/<detector>-<dataset>-r<depth>-<attention>-<UTC time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its newest complete checkpoint, with its own
    /// configuration (every other flag is ignored, except --lr, which replaces the base
    /// learning rate).
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Read flags from a TOML file (`depth = 101` is `--depth 101`; `[paper]` is metadata); may
    /// be given several times: a later file wins over an earlier one, and flags on the command
    /// line win over every file.
    #[arg(long = "config", value_name = "FILE.toml")]
    pub config_files: Vec<PathBuf>,
    /// Pruning (ELA only); windows default to the COCO preset (epochs 1 and 7 of 12) scaled to
    /// --epochs, EBQM α 2, β 5, τ 0.2.
    #[command(flatten)]
    pub prune: PruneArgs,
}

/// Everything a run was trained with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectRunConfig {
    /// Detector.
    #[serde(default)]
    pub detector: DetectorKind,
    /// Dataset.
    pub dataset: DetectDataset,
    /// Its folder.
    pub data_dir: PathBuf,
    /// Training images used (all when `None`).
    pub limit_train: Option<usize>,
    /// Validation images used.
    pub limit_val: Option<usize>,
    /// Backbone depth.
    pub depth: usize,
    /// Backbone attention.
    pub attention: AttentionKind,
    /// Whether ELA's pruning runs.
    pub ela: bool,
    /// Pretrained backbone.
    pub pretrained: Option<PathBuf>,
    /// Frozen stem and stages.
    pub frozen_stages: usize,
    /// Frozen BatchNorm statistics.
    pub norm_eval: bool,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Warm-up iterations.
    pub warmup_iters: usize,
    /// Momentum.
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// `(long, short)` resize scale.
    pub scale: (usize, usize),
    /// FPN channels.
    pub fpn_channels: usize,
    /// Box head width.
    pub head_width: usize,
    /// RoIs sampled per image.
    pub roi_samples: usize,
    /// Seed.
    pub seed: u64,
    /// Backend.
    pub backend: Backend,
    /// Training devices' indices; the first is the main one.
    pub devices: Vec<usize>,
    /// Float type of every tensor.
    #[serde(default)]
    pub precision: Precision,
    /// Data-loader worker threads.
    #[serde(default = "one")]
    pub workers: usize,
    /// Run directory.
    pub out: PathBuf,
    /// Pruning windows (ELA).
    pub schedule: Option<PruningSchedule>,
    /// Decision method (ELA).
    pub method: Option<PruneMethod>,
    /// KL ε.
    pub kl_eps: f64,
    /// KL direction.
    pub kl_direction: KlDirection,
    /// What resumes changed, with the epoch each took effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resume_overrides: Vec<ResumeOverride>,
}

fn one() -> usize {
    1
}

impl DetectTrainArgs {
    /// Applies the dataset's defaults and checks every value.
    pub fn resolve(&self) -> Result<DetectRunConfig> {
        let coco = self.dataset == DetectDataset::Coco;
        let pick = |v: Option<usize>, coco_default: usize, digits_default: usize| {
            v.unwrap_or(if coco { coco_default } else { digits_default })
        };
        let batch_size = pick(self.batch_size, 2, 4);
        if batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        if self.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        if self.workers == 0 {
            bail!("--workers must be at least 1");
        }
        if self.limit_train == Some(0) || self.limit_val == Some(0) {
            bail!("--limit-train/--limit-val must be at least 1");
        }
        self.devices.check(batch_size)?;
        let scale = match self.scale.as_slice() {
            [] if coco => (1333, 800),
            [] => (128, 128),
            [long, short] if *long > 0 && *short > 0 => (*long, *short),
            other => bail!("--scale takes LONG,SHORT (two positive sizes), got {other:?}"),
        };
        let depth = pick(self.depth, 50, 18);
        let attention = self.attention.attention();
        let ela = matches!(self.attention, Method::Ela);
        // COCO: 0.02 per 16 images. The digit set trains from scratch with a higher rate.
        let lr = self.lr.unwrap_or(if coco {
            0.02 * batch_size as f64 / 16.0
        } else {
            0.02
        });
        if !(lr > 0.0 && lr.is_finite()) {
            bail!("--lr must be a positive number, got {lr}");
        }
        // Every pruning value, also where the attention does not prune: a value that would fail
        // at the first decision, or means nothing, is refused before any work.
        self.prune.validate(self.epochs, SchedulePreset::Coco)?;
        let (schedule, method) = if ela {
            (
                Some(self.prune.schedule(self.epochs, SchedulePreset::Coco)?),
                Some(self.prune.method_for(SchedulePreset::Coco)?),
            )
        } else {
            (None, None)
        };
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(if coco { "data/coco" } else { "data/digits-det" }));
        let out = self.out.clone().unwrap_or_else(|| {
            PathBuf::from("runs").join(format!(
                "{}-{}-r{depth}-{}-{}",
                self.detector.name(),
                if coco { "coco" } else { "digits" },
                if ela {
                    "ela".to_string()
                } else {
                    attention.to_string()
                },
                utc_stamp()
            ))
        });
        if let Some(path) = &self.pretrained {
            crate::pretrained::weights_file(path)?;
            if !path.exists() {
                bail!("--pretrained: {} does not exist", path.display());
            }
        }
        let config = DetectRunConfig {
            detector: self.detector,
            dataset: self.dataset,
            data_dir,
            limit_train: self.limit_train,
            limit_val: self.limit_val,
            depth,
            attention,
            ela,
            pretrained: self.pretrained.clone(),
            frozen_stages: self
                .frozen_stages
                .unwrap_or(usize::from(self.pretrained.is_some())),
            norm_eval: self.norm_eval.unwrap_or(self.pretrained.is_some()),
            epochs: self.epochs,
            batch_size,
            lr,
            warmup_iters: pick(self.warmup_iters, 500, 100),
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            scale,
            fpn_channels: pick(self.fpn_channels, 256, 64),
            head_width: pick(self.head_width, 1024, 256),
            roi_samples: pick(self.roi_samples, 512, 128),
            seed: self.seed,
            backend: self.devices.backend,
            devices: self.devices.indices(),
            precision: self.devices.precision,
            workers: self.workers,
            out,
            schedule,
            method,
            kl_eps: self.prune.kl_eps,
            kl_direction: self.prune.kl_direction,
            resume_overrides: Vec::new(),
        };
        config.detector(80)?;
        config.settings()?;
        Ok(config)
    }
}

impl DetectRunConfig {
    /// The detector for `classes` object classes (MMDetection 2.x settings, sizes as
    /// configured; the mask branch's convolutions as wide as the FPN).
    pub fn detector(&self, classes: usize) -> Result<DetectorConfig> {
        if classes == 0 {
            bail!("the dataset has no categories");
        }
        let mut d = match self.detector {
            DetectorKind::FasterRcnn => DetectorConfig::mmdet(self.depth, self.attention, classes),
            DetectorKind::MaskRcnn => {
                DetectorConfig::mmdet_mask(self.depth, self.attention, classes)
            }
        };
        d.fpn_channels = self.fpn_channels;
        d.head_width = self.head_width;
        if let Some(m) = d.mask.as_mut() {
            m.channels = self.fpn_channels;
        }
        d.roi.sampler.num = self.roi_samples;
        d.backbone.frozen_stages = self.frozen_stages;
        d.backbone.norm_eval = self.norm_eval;
        d.backbone.resnet().check()?;
        Ok(d)
    }
}

impl DetectRunConfig {
    /// MMDetection's 1x learning rate: ×0.1 after epochs 8 and 11 of 12 (scaled to the run's
    /// length; a drop at or after the last epoch is left out), after mmcv's linear warm-up from
    /// 0.001 × lr over `warmup_iters` iterations.
    pub fn lr_schedule(&self) -> LrSchedule {
        let epochs = self.epochs;
        let scaled = |e: usize| ((e * epochs) as f64 / 12.0).round().max(1.0) as usize;
        let mut after = vec![scaled(8), scaled(11)];
        after.dedup();
        after.retain(|&s| s < epochs);
        LrSchedule {
            base: self.lr,
            shape: Shape::Steps { after, gamma: 0.1 },
            warmup: (self.warmup_iters > 0).then_some(Warmup {
                length: Length::Iterations(self.warmup_iters),
                start: WarmupStart::Ratio { ratio: 0.001 },
            }),
        }
    }
}

impl TaskConfig for DetectRunConfig {
    fn settings(&self) -> Result<RunSettings> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("--lr must be a positive number, got {}", self.lr);
        }
        if !(0.0..1.0).contains(&self.momentum) {
            bail!("--momentum must lie in [0, 1), got {}", self.momentum);
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            bail!("--weight-decay must be >= 0, got {}", self.weight_decay);
        }
        let pruning = match (&self.schedule, self.method) {
            (Some(windows), Some(method)) => Some(PruneSetup {
                windows: windows.clone(),
                method,
                kl_eps: self.kl_eps,
                kl_direction: self.kl_direction,
                skip_mode: SkipMode::Full,
            }),
            _ => None,
        };
        Ok(RunSettings {
            out: self.out.clone(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            workers: self.workers,
            seed: self.seed,
            backend: self.backend,
            devices: self.devices.clone(),
            precision: self.precision,
            // MMDetection's SGD: plain momentum, weight decay on every parameter.
            sgd: SgdSettings {
                momentum: self.momentum,
                nesterov: false,
                weight_decay: self.weight_decay,
                decay_norm_and_bias: true,
            },
            schedule: self.lr_schedule(),
            pruning,
            resume_overrides: self.resume_overrides.clone(),
        })
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn push_override(&mut self, change: ResumeOverride) {
        self.resume_overrides.push(change);
    }

    fn set_out(&mut self, dir: &Path) {
        self.out = dir.to_path_buf();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: DetectTrainArgs,
    }

    #[test]
    fn the_one_x_steps_scale_with_the_run() {
        let config = |epochs: &str| {
            Cli::try_parse_from(["ela", "--epochs", epochs, "--warmup-iters", "0"])
                .unwrap()
                .args
                .resolve()
                .unwrap()
                .lr_schedule()
        };
        let steps = |s: LrSchedule| match s.shape {
            Shape::Steps { after, .. } => after,
            Shape::Cosine { .. } => panic!("steps"),
        };
        assert_eq!(steps(config("12")), vec![8, 11]);
        assert_eq!(steps(config("6")), vec![4]);
        assert_eq!(config("2").warmup, None);
    }
}
