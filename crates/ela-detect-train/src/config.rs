//! `ela train --task detect`: the flags, and the configuration they resolve to (what
//! `config.json` of the run holds, and what `--resume` reads back).

use std::path::PathBuf;

use anyhow::{Result, bail};
use ela_detect::DetectorConfig;
use ela_model::AttentionKind;
use ela_prune::{PruneMethod, PruningSchedule, SchedulePreset};
use ela_train::backend::Backend;
use ela_train::train::options::{Method, PruneArgs};
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

/// The flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DetectTrainArgs {
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
    /// ImageNet-pretrained backbone weights (safetensors, as `ela` exports them).
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
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// Device index.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Run directory (default: runs/detect-<dataset>-r<depth>-<attention>-s<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its newest complete checkpoint.
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
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
    /// Device index.
    pub device: usize,
    /// Run directory.
    pub out: PathBuf,
    /// Pruning windows (ELA).
    pub schedule: Option<PruningSchedule>,
    /// Decision method (ELA).
    pub method: Option<PruneMethod>,
    /// KL ε.
    pub kl_eps: f64,
    /// KL direction.
    pub kl_direction: ela_prune::KlDirection,
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
        let (schedule, method) = if ela {
            self.prune.validate(self.epochs, SchedulePreset::Coco)?;
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
            PathBuf::from(format!(
                "runs/{}-{}-r{depth}-{}-s{}",
                self.detector.name(),
                if coco { "coco" } else { "digits" },
                if ela {
                    "ela".to_string()
                } else {
                    attention.to_string()
                },
                self.seed
            ))
        });
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
            backend: self.backend,
            device: self.device,
            out,
            schedule,
            method,
            kl_eps: self.prune.kl_eps,
            kl_direction: self.prune.kl_direction,
        };
        config.detector(80)?;
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
