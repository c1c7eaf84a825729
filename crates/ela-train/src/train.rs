//! From a training configuration to a finished run directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoaderBuilder;
use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{ModuleOptimizer, SgdConfig, decay::WeightDecayConfig};
use burn::prelude::Tensor;
use burn::tensor::Device;
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining, TrainingStrategy};
use ela_model::{ALL_ATTENTION, Arch, AttentionKind, ElaResNetConfig, SkipMode};
use ela_prune::{EbqmParams, KlDirection, Mapping, PruneMethod, PruningSchedule, SchedulePreset};
use serde::{Deserialize, Serialize};

use crate::backend::{self, Backend, Precision};
use crate::checkpoint::{
    AtomicCheckpointer, KEEP, RECORDS, latest_complete, load_state, verify_records,
};
use crate::cifar;
use crate::data::{
    EpochClock, EpochShuffled, ImageBatcher, ImageItem, Mnist, Normalization, Splits,
};
use crate::imagenet::{self, FolderIndex, ImageFolderSet};
use crate::lock::RunLock;
use crate::lr::{EpochSchedule, ScheduleKind};
use crate::model::{ElaClassifier, ScoreProbe};
use crate::renderer::BarRenderer;
use crate::run::{PruningRecord, RunDir, git_revision, write_json};
use crate::strategy::{Pruner, PruningStrategy};
use burn::data::dataset::Dataset;

/// The attention of a run: ELA (MRLA-B whose redundant retrievals are pruned at the window
/// ends), or any of the model's [`AttentionKind`]s, never pruned. On the command line and in
/// files: `ela` or the attention's name (`none`, `mrla-b`, `se`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// ELA.
    Ela,
    /// A model attention, trained as it is.
    Model(AttentionKind),
}

/// Every [`Method`]: ELA, then every attention of the model crate.
const METHODS: [Method; ALL_ATTENTION.len() + 1] = {
    let mut out = [Method::Ela; ALL_ATTENTION.len() + 1];
    let mut i = 0;
    while i < ALL_ATTENTION.len() {
        out[i + 1] = Method::Model(ALL_ATTENTION[i]);
        i += 1;
    }
    out
};

impl Method {
    /// The model's attention.
    pub fn attention(self) -> AttentionKind {
        match self {
            Self::Ela => AttentionKind::MrlaB,
            Self::Model(kind) => kind,
        }
    }

    /// `ela`, or the model attention's name (`none`, `mrla-b`, `se`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ela => "ela",
            Self::Model(kind) => kind.name(),
        }
    }
}

impl clap::ValueEnum for Method {
    fn value_variants<'a>() -> &'a [Self] {
        &METHODS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

impl Serialize for Method {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        METHODS
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown attention '{name}'")))
    }
}

/// Datasets this build can train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// MNIST: the embedded 10k-digit sample, or the official files in `--data-dir`.
    Mnist,
    /// CIFAR-10, the authors' binary version.
    Cifar10,
    /// CIFAR-100 (fine labels), the authors' binary version.
    Cifar100,
    /// ImageNet-1K in the image-folder layout (`train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG`), as
    /// `ela fetch imagenet --from DIR` prepares it.
    Imagenet,
}

impl DatasetName {
    /// `mnist`, `cifar10`, `cifar100` or `imagenet`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar10",
            Self::Cifar100 => "cifar100",
            Self::Imagenet => "imagenet",
        }
    }

    /// The pruning preset of the dataset's paper runs (SPEC §3.2–3.3): windows scaled to the run
    /// and the EBQM defaults. The MNIST sample uses CIFAR's.
    pub fn prune_preset(self) -> SchedulePreset {
        match self {
            Self::Imagenet => SchedulePreset::Imagenet,
            Self::Mnist | Self::Cifar10 | Self::Cifar100 => SchedulePreset::Cifar,
        }
    }

    /// The dataset's default training recipe.
    pub fn recipe(self) -> Recipe {
        match self {
            // Not in the paper: lr 0.02 after a 1-epoch linear warm-up, cosine decay, batches of
            // 32 so that the short default run still takes 64 steps per epoch, and no zero-init
            // of the last BN (with it, the plain ResNet's residual branches barely grow in 256
            // steps: 43% test accuracy against 87% without, on 1,024 digits over 3 epochs).
            // MRLA-B's first epoch is unstable at higher rates: an ELA ResNet-29 on 960 digits
            // ends at 31% (lr 0.1) and 35% (0.05) against 86% (0.02) after 3 epochs.
            Self::Mnist => Recipe {
                epochs: 4,
                limit_train: Some(2048),
                batch_size: 32,
                lr: 0.02,
                lr_schedule: LrScheduleName::Cosine,
                warmup_epochs: 1,
                zero_init_last_bn: false,
                crop_padding: None,
                label_smoothing: 0.0,
                decay_norm_and_bias: true,
                lr_reference_batch: None,
            },
            // SPEC §4: SGD lr 0.1, batch 128, 180 epochs, ×0.1 at 90 and 135, pad-4 crops and
            // flips.
            Self::Cifar10 | Self::Cifar100 => Recipe {
                epochs: 180,
                limit_train: None,
                batch_size: 128,
                lr: 0.1,
                lr_schedule: LrScheduleName::MultiStep,
                warmup_epochs: 0,
                zero_init_last_bn: false,
                crop_padding: Some(4),
                label_smoothing: 0.0,
                decay_norm_and_bias: true,
                lr_reference_batch: None,
            },
            // SPEC §4: 100 epochs, batch 256, lr 0.1 × batch / 256, cosine decay after 3 warm-up
            // epochs, label smoothing 0.1, no weight decay on BN and biases, zero-init of each
            // block's last BN; random-resized crops and flips (in `imagenet`).
            Self::Imagenet => Recipe {
                epochs: 100,
                limit_train: None,
                batch_size: 256,
                lr: 0.1,
                lr_schedule: LrScheduleName::Cosine,
                warmup_epochs: 3,
                zero_init_last_bn: true,
                crop_padding: None,
                label_smoothing: 0.1,
                decay_norm_and_bias: false,
                lr_reference_batch: Some(256),
            },
        }
    }
}

/// A dataset's defaults for the flags a user leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Epochs.
    pub epochs: usize,
    /// Training images used (`None`: all).
    pub limit_train: Option<usize>,
    /// Batch size.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    pub lr_schedule: LrScheduleName,
    /// Linear warm-up epochs.
    pub warmup_epochs: usize,
    /// Zero-init of every block's last BN γ.
    pub zero_init_last_bn: bool,
    /// Training augmentation: zero padding of the random crops (with horizontal flips).
    pub crop_padding: Option<usize>,
    /// Label smoothing of the cross-entropy.
    pub label_smoothing: f64,
    /// Weight decay also on BN scales and shifts and on biases (every 1-D parameter).
    pub decay_norm_and_bias: bool,
    /// With a batch size other than this, the default learning rate scales linearly:
    /// `lr × batch / reference` (the linear scaling rule of SPEC §4's ImageNet recipe).
    pub lr_reference_batch: Option<usize>,
}

/// `--prune-method` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodName {
    /// Enhanced Beta Quantile Mapping.
    Ebqm,
    /// Min-max threshold (ablation).
    Threshold,
    /// Fixed count (ablation).
    Fixed,
    /// EBQM with the normal CDF of the z-scored values (ablation, Table 6).
    Nqm,
    /// EBQM with a Gamma CDF: GQM (ablation, Tables 6 and 7).
    Gqm,
    /// EBQM with an exponential CDF: EQM (ablation, Table 7).
    Eqm,
    /// EBQM with a softmax over the candidates (ablation, Table 6).
    Softmax,
    /// EBQM with a sigmoid of the z-scored values (ablation, Table 6).
    Sigmoid,
}

/// `--lr-schedule` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrScheduleName {
    /// ×0.1 at 50% and 75% of the epochs (CIFAR: 90 and 135 of 180).
    MultiStep,
    /// Cosine decay to 0.
    Cosine,
}

/// Pruning hyper-parameters; unset values take the dataset preset's (SPEC §3.2–3.3).
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct PruneArgs {
    /// Decision method.
    #[arg(
        long = "prune-method",
        alias = "method",
        value_enum,
        default_value = "ebqm"
    )]
    pub method: MethodName,
    /// Beta shape α of EBQM.
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Beta shape β of EBQM.
    #[arg(long)]
    pub beta: Option<f64>,
    /// Threshold τ on the mapped (EBQM) or normalized (threshold) value. Default: the dataset
    /// preset's (CIFAR and MNIST: α 5, β 1, τ 0.3; ImageNet: α 2, β 5, τ 0.25).
    #[arg(long)]
    pub tau: Option<f64>,
    /// Candidate quantile q of EBQM.
    #[arg(long)]
    pub quantile: Option<f64>,
    /// Blocks per decision of the fixed method.
    #[arg(long, default_value_t = 1)]
    pub k: usize,
    /// Shape k of GQM's Gamma CDF (default 2, ours).
    #[arg(long)]
    pub gamma_shape: Option<f64>,
    /// Scale θ of GQM's Gamma CDF (default 0.5, ours).
    #[arg(long)]
    pub gamma_scale: Option<f64>,
    /// Rate λ of EQM's exponential CDF (default 3, ours).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Pruning windows: '1-3,45-48,91-93', a preset scaled to the run ('cifar', 'imagenet',
    /// 'coco'), or 'none'. Default: the dataset's preset scaled to --epochs (imagenet for
    /// ImageNet, cifar otherwise).
    #[arg(long)]
    pub windows: Option<String>,
    /// Direction of the KL score.
    #[arg(long, default_value = "prev-to-next")]
    pub kl_direction: KlDirection,
    /// ε padding of the predecessor's distribution.
    #[arg(long, default_value_t = ela_prune::kl::DEFAULT_EPS)]
    pub kl_eps: f64,
}

impl PruneArgs {
    /// The checked decision method (SPEC §3.3 CIFAR defaults for unset values).
    pub fn method(&self) -> Result<PruneMethod> {
        self.method_for(SchedulePreset::Cifar)
    }

    /// The checked decision method, unset values from `preset`'s EBQM defaults (SPEC §3.3).
    pub fn method_for(&self, preset: SchedulePreset) -> Result<PruneMethod> {
        let d = match preset {
            SchedulePreset::Cifar => EbqmParams::cifar(),
            SchedulePreset::Imagenet => EbqmParams::imagenet(),
            SchedulePreset::Coco => EbqmParams::coco(),
        };
        Ok(match self.method {
            MethodName::Ebqm => PruneMethod::Ebqm(EbqmParams::new(
                self.alpha.unwrap_or(d.alpha),
                self.beta.unwrap_or(d.beta),
                self.tau.unwrap_or(d.tau),
                self.quantile.unwrap_or(d.quantile),
            )?),
            MethodName::Threshold => PruneMethod::threshold(self.tau.unwrap_or(d.tau))?,
            MethodName::Fixed => PruneMethod::Fixed { k: self.k },
            MethodName::Nqm
            | MethodName::Gqm
            | MethodName::Eqm
            | MethodName::Softmax
            | MethodName::Sigmoid => {
                let mapping = match self.method {
                    MethodName::Nqm => Mapping::Normal,
                    MethodName::Gqm => Mapping::Gamma {
                        shape: self.gamma_shape.unwrap_or(Mapping::DEFAULT_GAMMA_SHAPE),
                        scale: self.gamma_scale.unwrap_or(Mapping::DEFAULT_GAMMA_SCALE),
                    },
                    MethodName::Eqm => Mapping::Exponential {
                        rate: self.rate.unwrap_or(Mapping::DEFAULT_EXPONENTIAL_RATE),
                    },
                    MethodName::Softmax => Mapping::Softmax,
                    _ => Mapping::Sigmoid,
                };
                PruneMethod::quantile_map(
                    mapping,
                    self.tau.unwrap_or(d.tau),
                    self.quantile.unwrap_or(d.quantile),
                )?
            }
        })
    }

    /// Checks every pruning value, whichever method and attention will use it: the EBQM shapes,
    /// threshold and quantile (with `preset`'s defaults for unset ones), the mappings'
    /// parameters, `--k`, `--kl-eps` and the windows of a run of `epochs`.
    pub fn validate(&self, epochs: usize, preset: SchedulePreset) -> Result<()> {
        let d = match preset {
            SchedulePreset::Cifar => EbqmParams::cifar(),
            SchedulePreset::Imagenet => EbqmParams::imagenet(),
            SchedulePreset::Coco => EbqmParams::coco(),
        };
        EbqmParams::new(
            self.alpha.unwrap_or(d.alpha),
            self.beta.unwrap_or(d.beta),
            self.tau.unwrap_or(d.tau),
            self.quantile.unwrap_or(d.quantile),
        )?;
        let (shape, scale) = (
            self.gamma_shape.unwrap_or(Mapping::DEFAULT_GAMMA_SHAPE),
            self.gamma_scale.unwrap_or(Mapping::DEFAULT_GAMMA_SCALE),
        );
        Mapping::Gamma { shape, scale }
            .checked()
            .context("--gamma-shape/--gamma-scale")?;
        Mapping::Exponential {
            rate: self.rate.unwrap_or(Mapping::DEFAULT_EXPONENTIAL_RATE),
        }
        .checked()
        .context("--rate")?;
        if self.k == 0 {
            bail!("--k must be at least 1 (blocks per decision of the fixed method)");
        }
        if !(self.kl_eps.is_finite() && self.kl_eps > 0.0 && self.kl_eps < 1.0) {
            bail!(
                "--kl-eps must be a number in (0, 1) (the padding of the predecessor's \
                 distribution), got {}",
                self.kl_eps
            );
        }
        self.method_for(preset)?;
        self.schedule(epochs, preset)?;
        Ok(())
    }

    /// The checked schedule for a run of `epochs`; without --windows, `preset`'s windows
    /// scaled to the run.
    pub fn schedule(&self, epochs: usize, preset: SchedulePreset) -> Result<PruningSchedule> {
        let Some(spec) = self.windows.as_deref() else {
            return Ok(PruningSchedule::preset(preset, epochs));
        };
        Ok(match spec.parse::<SchedulePreset>() {
            Ok(preset) => PruningSchedule::preset(preset, epochs),
            Err(_) => PruningSchedule::parse(spec, epochs).context("--windows")?,
        })
    }
}

/// Everything a training run needs; written, resolved, to the run's `config.json`.
///
/// `--config FILE.toml` reads flags from a file (see [`crate::config`]); flags on the command line
/// win.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct TrainConfig {
    /// Dataset.
    #[arg(long, value_enum, default_value = "mnist")]
    pub dataset: DatasetName,
    /// Directory with the dataset's files. Default: MNIST, the sample embedded in the binary;
    /// CIFAR and ImageNet, `data/<dataset>` (where `cargo xtask fetch <dataset>` puts it).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Use only N training images: the first N (MNIST, CIFAR), or N spread evenly over the
    /// class-sorted folder (ImageNet, so that every class stays in). Default: the dataset's
    /// recipe (the MNIST sample: 2048, so that the default run takes a few minutes on a CPU;
    /// CIFAR and ImageNet: all).
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Use only N test images (chosen as for --limit-train).
    #[arg(long)]
    pub limit_test: Option<usize>,
    /// A registered model, e.g. `cifar_resnet56_ela`, `resnet50_mrlab`, `resnet18` (see
    /// `ela models`): sets --arch, --depth and --attention.
    #[arg(long)]
    #[serde(default)]
    pub model: Option<String>,
    /// ResNet family: cifar (the CIFAR bottleneck ResNet-(9n+2)) or imagenet (torchvision's
    /// ResNet-18/34/50/101/152). Default: imagenet for --dataset imagenet, cifar otherwise.
    #[arg(long)]
    #[serde(default)]
    pub arch: Option<Arch>,
    /// ResNet depth: 9n + 2 for cifar (20, 56, 110, …); 18, 34, 50, 101 or 152 for imagenet.
    /// Default: 20 for cifar, 50 for imagenet.
    #[arg(long)]
    #[serde(default)]
    pub depth: Option<usize>,
    /// Layer attention.
    #[arg(long, value_enum, default_value = "ela")]
    pub attention: Method,
    /// Channels per attention head. Default: the official code's (32 for ImageNet MRLA-L, 16
    /// otherwise).
    #[arg(long)]
    pub dim_per_head: Option<usize>,
    /// ImageNet models: the official MRLA-B deep stem (three 3×3 convolutions) instead of the
    /// 7×7 one. Default: deep for MRLA-B and ELA, as the official code.
    #[arg(long)]
    #[serde(default)]
    pub deep_stem: Option<bool>,
    /// Start from these weights: a PyTorch checkpoint (`.pth`, `.pth.tar`: torchvision's or the
    /// official MRLA code's) or a safetensors file. A head of another number of classes is left
    /// new (fine-tuning); missing and unused tensors are listed.
    #[arg(long)]
    #[serde(default)]
    pub pretrained: Option<PathBuf>,
    /// What a skipped ELA block still computes: full or retrieval.
    #[arg(long, default_value = "full")]
    pub skip_mode: SkipMode,
    /// Initialize every block's last BN scale to zero, so that each residual branch starts as
    /// the identity (`true`), or at one (`false`). Default: the dataset's recipe (ImageNet:
    /// true, SPEC §4 and the official MRLA models; CIFAR and the MNIST sample: false).
    #[arg(long)]
    pub zero_init_last_bn: Option<bool>,
    /// Epochs. Default: the dataset's recipe (CIFAR: 180, SPEC §4; the MNIST sample: 4).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size. Default: the dataset's recipe (CIFAR: 128, SPEC §4; the MNIST sample: 32, so
    /// that the short default run takes 64 optimizer steps per epoch).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Base learning rate. Default: the dataset's recipe (CIFAR: 0.1, ImageNet: 0.1 × batch /
    /// 256, SPEC §4; the MNIST sample: 0.02).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Label smoothing of the cross-entropy. Default: the dataset's recipe (ImageNet: 0.1,
    /// SPEC §4; otherwise 0).
    #[arg(long)]
    #[serde(default)]
    pub label_smoothing: Option<f64>,
    /// Apply weight decay to BN scales and shifts and to biases too (every 1-D parameter).
    /// Default: the dataset's recipe (ImageNet: false, SPEC §4; CIFAR and MNIST: true).
    #[arg(long)]
    #[serde(default)]
    pub decay_norm_and_bias: Option<bool>,
    /// Learning-rate schedule. Default: the dataset's recipe (CIFAR: multi-step, ×0.1 after 50%
    /// and 75% of the epochs; ImageNet and the MNIST sample: cosine).
    #[arg(long, value_enum)]
    pub lr_schedule: Option<LrScheduleName>,
    /// Linear learning-rate warm-up epochs. Default: the dataset's recipe (CIFAR: 0, as SPEC §4;
    /// ImageNet: 3; the MNIST sample: 1, because MRLA-B diverges in its first steps at lr 0.1
    /// without it).
    #[arg(long)]
    pub warmup_epochs: Option<usize>,
    /// SGD momentum (Nesterov, dampening 0 as PyTorch).
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Weight decay (L2, coupled as PyTorch's SGD).
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    /// Seed of initialization and data order.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// Device index of the backend.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Train data-parallel on these device indices, e.g. `0,1,2,3`: every step each device
    /// takes --batch-size / N images of the global batch, and the averaged gradients make one
    /// optimizer step on the first device, which also validates. Default: --device alone.
    #[arg(long, value_delimiter = ',')]
    #[serde(default)]
    pub devices: Vec<usize>,
    /// Float type of every tensor: f32, or f16 / bf16 where the backend supports them (weights,
    /// gradients and optimizer state included; KL scores and epoch sums stay f32).
    #[arg(long, value_enum, default_value = "f32")]
    #[serde(default)]
    pub precision: Precision,
    /// Data-loader worker threads. Default: 1 for the in-memory datasets (MNIST, CIFAR); for
    /// ImageNet, which decodes JPEGs per item, one per CPU core.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Run directory; default: runs/<attention>-r<depth>-<dataset>-<UTC time>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its newest complete checkpoint, with its own
    /// configuration (every other flag is ignored, except --lr, which replaces the base
    /// learning rate).
    #[arg(long)]
    #[serde(skip)]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub prune: PruneArgs,
    /// Read flags from a TOML file (`depth = 56` is `--depth 56`; `[paper]` is metadata); may be
    /// given several times: a later file wins over an earlier one, and flags on the command
    /// line win over every file. A key without a flag is an error naming the file and the key.
    #[arg(long = "config", value_name = "FILE.toml")]
    #[serde(skip)]
    pub config_files: Vec<PathBuf>,
    /// What `--resume DIR --lr X` changed, in order, with the epoch each change took effect
    /// (kept in `config.json`, so that a later resume keeps them).
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resume_overrides: Vec<ResumeOverride>,
}

/// A setting replaced when a run was resumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeOverride {
    /// The first epoch trained with the new value (1-based).
    pub from_epoch: usize,
    /// The new base learning rate.
    pub lr: f64,
    /// The base learning rate before.
    pub previous_lr: f64,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Git revision of the code.
    pub git_revision: String,
    /// Seed.
    pub seed: u64,
    /// Backend and device.
    pub device: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Final test accuracy (%).
    pub test_acc: f64,
    /// Final test loss.
    pub test_loss: f64,
    /// Blocks skipped at the end.
    pub skipped: Vec<usize>,
    /// Seconds per epoch (training split), per epoch.
    pub train_seconds: Vec<f64>,
    /// Total wall seconds of the run, over every process that trained it (a resumed run counts
    /// its earlier processes up to the checkpoint it resumed from).
    pub total_seconds: f64,
    /// What resumes changed (`--resume DIR --lr X`), with the epoch each took effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resume_overrides: Vec<ResumeOverride>,
    /// The run's `report.md`, when it could be drawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<PathBuf>,
}

fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl TrainConfig {
    /// Epochs: the flag's, or the dataset recipe's.
    pub fn resolved_epochs(&self) -> usize {
        self.epochs.unwrap_or(self.dataset.recipe().epochs)
    }

    /// Training images used: the flag's, or the dataset recipe's (`None`: all).
    pub fn resolved_limit_train(&self) -> Option<usize> {
        self.limit_train.or(self.dataset.recipe().limit_train)
    }

    /// The base learning rate: the flag's, or the dataset recipe's (scaled linearly with the
    /// batch size where the recipe says so).
    pub fn resolved_lr(&self) -> f64 {
        let recipe = self.dataset.recipe();
        self.lr.unwrap_or_else(|| match recipe.lr_reference_batch {
            Some(reference) => recipe.lr * self.resolved_batch_size() as f64 / reference as f64,
            None => recipe.lr,
        })
    }

    /// Label smoothing: the flag's, or the dataset recipe's.
    pub fn resolved_label_smoothing(&self) -> f64 {
        self.label_smoothing
            .unwrap_or(self.dataset.recipe().label_smoothing)
    }

    /// Whether weight decay also applies to 1-D parameters: the flag's, or the recipe's.
    pub fn resolved_decay_norm_and_bias(&self) -> bool {
        self.decay_norm_and_bias
            .unwrap_or(self.dataset.recipe().decay_norm_and_bias)
    }

    /// The ResNet family: --arch, or the dataset's (ImageNet's for ImageNet, CIFAR's otherwise).
    pub fn resolved_arch(&self) -> Arch {
        self.arch.unwrap_or(match self.dataset {
            DatasetName::Imagenet => Arch::Imagenet,
            DatasetName::Mnist | DatasetName::Cifar10 | DatasetName::Cifar100 => Arch::Cifar,
        })
    }

    /// The ResNet depth: --depth, or the family's default (CIFAR: 20; ImageNet: 50, the
    /// paper's main model).
    pub fn resolved_depth(&self) -> usize {
        self.depth.unwrap_or(match self.resolved_arch() {
            Arch::Cifar => 20,
            Arch::Imagenet => 50,
        })
    }

    /// The training devices' indices: --devices, or --device alone.
    pub fn device_indices(&self) -> Vec<usize> {
        if self.devices.is_empty() {
            vec![self.device]
        } else {
            self.devices.clone()
        }
    }

    /// Loader worker threads: the flag's, or one per core for ImageNet and 1 otherwise.
    pub fn resolved_workers(&self) -> usize {
        self.workers.unwrap_or_else(|| match self.dataset {
            DatasetName::Imagenet => std::thread::available_parallelism().map_or(1, |n| n.get()),
            _ => 1,
        })
    }

    /// The batch size: the flag's, or the dataset recipe's.
    pub fn resolved_batch_size(&self) -> usize {
        self.batch_size.unwrap_or(self.dataset.recipe().batch_size)
    }

    /// The learning-rate schedule: the flag's, or the dataset recipe's.
    pub fn resolved_lr_schedule(&self) -> LrScheduleName {
        self.lr_schedule
            .unwrap_or(self.dataset.recipe().lr_schedule)
    }

    /// Zero-initialized last BN of each block: the flag's, or the dataset recipe's.
    pub fn resolved_zero_init_last_bn(&self) -> bool {
        self.zero_init_last_bn
            .unwrap_or(self.dataset.recipe().zero_init_last_bn)
    }

    /// Warm-up epochs: the flag's, or the dataset recipe's (never more than the run).
    pub fn resolved_warmup_epochs(&self) -> usize {
        self.warmup_epochs
            .unwrap_or(self.dataset.recipe().warmup_epochs)
            .min(self.resolved_epochs())
    }

    /// This configuration with `--model` expanded into --arch, --depth and --attention. An
    /// empty name clears a --model given earlier (in a config file, say).
    pub fn with_model_resolved(&self) -> Result<Self> {
        let mut out = self.clone();
        if self.model.as_deref() == Some("") {
            out.model = None;
            return Ok(out);
        }
        if let Some(name) = &self.model {
            let entry = ela_model::registry::find(name).context("--model")?;
            out.arch = Some(entry.arch);
            out.depth = Some(entry.depth);
            out.attention = if entry.ela {
                Method::Ela
            } else {
                Method::Model(entry.attention)
            };
        }
        Ok(out)
    }

    /// Channels per attention head: the flag's, or the official code's.
    pub fn resolved_dim_per_head(&self) -> usize {
        self.dim_per_head.unwrap_or_else(|| {
            ElaResNetConfig::official_dim_per_head(self.resolved_arch(), self.attention.attention())
        })
    }

    /// The model's configuration for `num_classes` classes of `in_channels`-channel images.
    pub fn model_config(&self, num_classes: usize, in_channels: usize) -> ElaResNetConfig {
        ElaResNetConfig::new(self.resolved_depth(), num_classes)
            .with_arch(self.resolved_arch())
            .with_in_channels(in_channels)
            .with_attention(self.attention.attention())
            .with_dim_per_head(self.resolved_dim_per_head())
            .with_deep_stem(self.deep_stem)
            .with_skip_mode(self.skip_mode)
            .with_zero_init_last_bn(self.resolved_zero_init_last_bn())
    }

    /// Rejects invalid values before any work starts.
    pub fn validate(&self) -> Result<()> {
        let resolved = self.with_model_resolved()?;
        if self.model.is_some() {
            return resolved.validate_resolved();
        }
        self.validate_resolved()
    }

    fn validate_resolved(&self) -> Result<()> {
        if self.resolved_epochs() == 0 {
            bail!("--epochs must be at least 1");
        }
        if self.resolved_batch_size() == 0 {
            bail!("--batch-size must be at least 1");
        }
        let lr = self.resolved_lr();
        if !(lr.is_finite() && lr > 0.0) {
            bail!("--lr must be a positive number, got {lr}");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            bail!("--momentum must lie in [0, 1), got {}", self.momentum);
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            bail!("--weight-decay must be >= 0, got {}", self.weight_decay);
        }
        let smoothing = self.resolved_label_smoothing();
        if !(0.0..1.0).contains(&smoothing) {
            bail!("--label-smoothing must lie in [0, 1), got {smoothing}");
        }
        if self.workers == Some(0) {
            bail!("--workers must be at least 1");
        }
        let n = self.device_indices().len();
        if !self.resolved_batch_size().is_multiple_of(n) {
            bail!(
                "--batch-size {} must be a multiple of the number of --devices ({n})",
                self.resolved_batch_size()
            );
        }
        let flag = if self.devices.is_empty() {
            "--device"
        } else {
            "--devices"
        };
        backend::check_device_indices(self.backend, &self.device_indices(), flag)?;
        self.resolved_arch()
            .stages(self.resolved_depth())
            .context("--depth")?;
        // The model's own options (--dim-per-head, --deep-stem, …), before any data is read.
        self.model_config(1, 1).check().context("model options")?;
        if let Some(path) = &self.pretrained
            && !path.is_file()
        {
            bail!("--pretrained: {} is not a file", path.display());
        }
        // Every pruning value, also where the attention does not prune: a value that would fail
        // at the first decision, or means nothing, is refused before any work.
        self.prune
            .validate(self.resolved_epochs(), self.dataset.prune_preset())?;
        if self.limit_train == Some(0) || self.limit_test == Some(0) {
            bail!("--limit-train/--limit-test must be at least 1");
        }
        Ok(())
    }
}

/// Loads `--pretrained` weights, with a new head when the file's has another number of classes,
/// and prints what was applied. The file's skip flags (a pruned ELA model's) are applied only to
/// an ELA run (`ela`), and said so; any other run starts with every block active.
fn load_pretrained(net: &mut ela_model::ElaResNet, path: &Path, ela: bool) -> Result<()> {
    use ela_model::weights::LoadOptions;
    let full = LoadOptions {
        ignore_skip_flags: !ela,
        ..LoadOptions::default()
    };
    let (report, new_head) = match net.load_checkpoint(path, &full) {
        Ok(report) => (report, false),
        Err(first) => {
            let headless = LoadOptions {
                skip_head: true,
                ..full
            };
            match net.load_checkpoint(path, &headless) {
                Ok(report) => (report, true),
                Err(_) => return Err(first).context("--pretrained"),
            }
        }
    };
    if report.applied == 0 {
        bail!(
            "--pretrained: {} has no tensor this model uses (unused: {:?})",
            path.display(),
            report.unused
        );
    }
    println!(
        "pretrained: {} tensors from {}{}",
        report.applied,
        path.display(),
        if new_head {
            format!(" (new {}-class head)", net.num_classes())
        } else {
            String::new()
        }
    );
    let skipped: Vec<usize> = report
        .skip_flags
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, &s)| s.then_some(i))
        .collect();
    if !skipped.is_empty() {
        if ela {
            println!(
                "pretrained: the file's skip flags are applied: blocks {skipped:?} are skipped \
                 from the start"
            );
        } else {
            println!(
                "pretrained: the file's skip flags (blocks {skipped:?}) are not applied: this is \
                 not an ELA run, every block attends"
            );
        }
    }
    if !report.missing.is_empty() {
        println!(
            "pretrained: not in the file, left as initialized: {}",
            report.missing.join(", ")
        );
    }
    if !report.unused.is_empty() {
        println!(
            "pretrained: in the file, not in the model: {}",
            report.unused.join(", ")
        );
    }
    Ok(())
}

/// Where `cargo xtask fetch` puts a dataset by default.
pub fn default_data_dir(dataset: DatasetName) -> PathBuf {
    PathBuf::from("data").join(dataset.name())
}

/// The folder of a fetched dataset: `dir`, or [`default_data_dir`]; a missing one names the
/// command that fetches it.
fn fetched_dir(dataset: DatasetName, dir: Option<&Path>) -> Result<PathBuf> {
    let dir = dir.map_or_else(|| default_data_dir(dataset), Path::to_path_buf);
    if dir.exists() {
        return Ok(dir);
    }
    let name = dataset.name();
    let fetch = match dataset {
        DatasetName::Imagenet => "fetch imagenet --from ARCHIVES".to_string(),
        _ => format!("fetch {name}"),
    };
    if dir == default_data_dir(dataset) {
        bail!(
            "{name} not found in {}: run `cargo xtask {fetch}` first, or pass --data-dir",
            dir.display()
        );
    }
    bail!(
        "{name} not found in {}: prepare it with `cargo xtask {fetch} --dir DIR` (it lands in \
         DIR/{name}) and pass --data-dir DIR/{name}, or point --data-dir at the folder holding \
         the dataset's files",
        dir.display()
    );
}

/// The splits of an in-memory dataset: MNIST from `dir` or the embedded sample, CIFAR from `dir`
/// or [`default_data_dir`]; a missing dataset names the command that fetches it. ImageNet is read
/// per item from its folders instead (see [`run_data`]).
pub fn load_dataset(dataset: DatasetName, dir: Option<&Path>) -> Result<Splits> {
    let kind = match dataset {
        DatasetName::Mnist => {
            return match dir {
                None => Ok(Mnist::embedded()),
                Some(dir) => Ok(Mnist::from_dir(dir)?),
            };
        }
        DatasetName::Cifar10 => cifar::CifarKind::Cifar10,
        DatasetName::Cifar100 => cifar::CifarKind::Cifar100,
        DatasetName::Imagenet => {
            bail!("ImageNet is not an in-memory dataset: it is read per item by `run_data`")
        }
    };
    Ok(cifar::load(&fetched_dir(dataset, dir)?, kind)?)
}

/// A run's data, ready for the loaders.
pub struct RunData {
    /// The training split with its augmentation (which follows the epoch clock), in file order.
    pub train: Arc<dyn Dataset<ImageItem>>,
    /// The evaluation split.
    pub test: Arc<dyn Dataset<ImageItem>>,
    /// `[C, H, W]` of every item.
    pub shape: [usize; 3],
    /// Number of classes.
    pub num_classes: usize,
    /// Per-channel normalization of the batches.
    pub normalization: Normalization,
    /// Where the data came from, for the run's banner.
    pub source: String,
}

/// The configured dataset's splits, limited by --limit-train/--limit-test, with the training
/// augmentation of the dataset's recipe driven by `clock`.
pub fn run_data(config: &TrainConfig, clock: &EpochClock) -> Result<RunData> {
    let recipe = config.dataset.recipe();
    if config.dataset == DatasetName::Imagenet {
        let dir = fetched_dir(config.dataset, config.data_dir.as_deref())?;
        let train_index = FolderIndex::scan(&dir.join("train"), None)?;
        let val_index = FolderIndex::scan(&dir.join("val"), Some(&train_index.classes))?;
        let mut train = ImageFolderSet::new(&train_index, true, config.seed, clock.clone());
        let mut test = ImageFolderSet::new(&val_index, false, config.seed, clock.clone());
        if let Some(n) = config.resolved_limit_train() {
            train = train.evenly_spaced(n);
        }
        if let Some(n) = config.limit_test {
            test = test.evenly_spaced(n);
        }
        let source = dir.display().to_string();
        check_split(&source, "training", train.len())?;
        check_split(&source, "test", test.len())?;
        return Ok(RunData {
            num_classes: train.num_classes,
            train: Arc::new(train),
            test: Arc::new(test),
            shape: [3, imagenet::CROP, imagenet::CROP],
            normalization: imagenet::normalization(),
            source,
        });
    }
    let data = load_dataset(config.dataset, config.data_dir.as_deref())?;
    let normalization = match config.dataset {
        // Per-channel statistics of the whole training split.
        DatasetName::Cifar10 | DatasetName::Cifar100 => cifar::channel_stats(&data.train),
        _ => Normalization::mnist(),
    };
    let train_set = match config.resolved_limit_train() {
        Some(n) => data.train.truncated(n),
        None => data.train.clone(),
    };
    let test_set = config
        .limit_test
        .map_or(data.test.clone(), |n| data.test.truncated(n));
    let source = match (&config.data_dir, config.dataset) {
        (Some(dir), _) => dir.display().to_string(),
        (None, DatasetName::Mnist) => "embedded sample".to_string(),
        (None, other) => default_data_dir(other).display().to_string(),
    };
    check_split(&source, "training", train_set.len())?;
    check_split(&source, "test", test_set.len())?;
    let shape = |s: &crate::data::ImageSet| [s.channels, s.height, s.width];
    if shape(&data.train) != shape(&data.test) || data.train.num_classes != data.test.num_classes {
        let [(c, h, w), (tc, th, tw)] =
            [&data.train, &data.test].map(|s| (s.channels, s.height, s.width));
        bail!(
            "{} in {source}: the splits disagree: training images are {h}x{w} with {c} \
             channel(s) and {} classes, test images {th}x{tw} with {tc} channel(s) and {} \
             classes",
            config.dataset.name(),
            data.train.num_classes,
            data.test.num_classes
        );
    }
    Ok(RunData {
        shape: [train_set.channels, train_set.height, train_set.width],
        num_classes: train_set.num_classes,
        train: match recipe.crop_padding {
            Some(pad) => Arc::new(cifar::Augmented::new(
                train_set,
                pad,
                config.seed,
                clock.clone(),
            )),
            None => Arc::new(train_set),
        },
        test: Arc::new(test_set),
        normalization,
        source,
    })
}

/// Refuses an empty split: a run with no training image would "train" on nothing and a run with
/// no test image would report made-up accuracies.
fn check_split(source: &str, split: &str, len: usize) -> Result<()> {
    if len == 0 {
        bail!("the {split} split of {source} holds no image: a run needs both splits non-empty");
    }
    Ok(())
}

/// Module paths of `module`'s 1-D parameters: BN scales and shifts, and biases.
pub fn one_dim_parameters(module: &impl Module) -> Vec<String> {
    #[derive(Default)]
    struct Collect {
        path: Vec<String>,
        found: Vec<String>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
            if D == 1 {
                self.found.push(self.path.join("."));
            }
        }
    }
    let mut collect = Collect::default();
    module.visit(&mut collect);
    collect.found
}

/// SGD as PyTorch's (Nesterov momentum with dampening 0, coupled L2 weight decay). Without
/// `decay_norm_and_bias`, the 1-D parameters of `module` (BN, biases) get no weight decay: they
/// form their own group, matched by module path, so the split survives a checkpoint and resume.
pub fn sgd(
    momentum: f64,
    weight_decay: f64,
    decay_norm_and_bias: bool,
    module: &impl Module,
) -> ModuleOptimizer {
    let momentum = (momentum > 0.0).then(|| {
        MomentumConfig::new()
            .with_momentum(momentum)
            .with_dampening(0.0)
            .with_nesterov(true)
    });
    let config = SgdConfig::new().with_momentum(momentum);
    let decayed = config.clone().with_weight_decay(
        (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
    );
    let optim = decayed.init();
    if decay_norm_and_bias || weight_decay == 0.0 {
        return optim;
    }
    optim.with_group(
        ParamGroup::from_paths(one_dim_parameters(module)),
        config.build(),
        None,
    )
}

/// Trains one model as configured and writes its run directory.
pub fn train(config: &TrainConfig) -> Result<RunSummary> {
    let config = &config.with_model_resolved()?;
    run_training(config, None)
}

/// Continues the run in `dir` from its newest complete checkpoint, with the configuration in its
/// `config.json`: same model, optimizer state, learning-rate schedule, skip mask, pending KL
/// window sums and data order as if it had never stopped. A run that stopped before its first
/// checkpoint was complete starts again from its first epoch, with the same configuration.
///
/// `lr` replaces the base learning rate (after a divergence); the schedule keeps its position.
/// The change is recorded in `config.json` with the epoch it takes effect from, so a later
/// resume keeps it, and in `summary.json` and the report.
pub fn resume(dir: &Path, lr: Option<f64>) -> Result<RunSummary> {
    // The directory is ours before anything in it is read.
    let lock = RunLock::acquire_existing(dir)?;
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--resume: cannot read {}", path.display()))?;
    let mut config: TrainConfig = serde_json::from_str(&text)
        .with_context(|| format!("--resume: {} is not a run configuration", path.display()))?;
    config.out = Some(dir.to_path_buf());
    if let Some(lr) = lr {
        let previous = config.resolved_lr();
        let from_epoch = latest_complete(&checkpoint_dir(dir)).map_or(1, |k| k + 1);
        println!("resuming with base learning rate {lr} from epoch {from_epoch} (was {previous})");
        config.lr = Some(lr);
        config.resume_overrides.push(ResumeOverride {
            from_epoch,
            lr,
            previous_lr: previous,
        });
    }
    run_training(&config, Some(lock))
}

/// The run directory's checkpoint folder.
pub fn checkpoint_dir(run: &Path) -> PathBuf {
    run.join("checkpoint")
}

/// Trains `config`'s run: a new one, or with `resuming` (the lock of its directory) the run in
/// `config.out`, from its newest complete checkpoint or, without one, from its first epoch.
fn run_training(config: &TrainConfig, resuming: Option<RunLock>) -> Result<RunSummary> {
    config.validate()?;
    let started = Instant::now();
    let out = config.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!(
            "{}-r{}-{}-{}",
            config.attention.name(),
            config.resolved_depth(),
            config.dataset.name(),
            utc_stamp()
        ))
    });
    let epochs = config.resolved_epochs();
    // Data and device first: a missing dataset or backend leaves no run directory behind.
    // Order and augmentation of epoch k depend on (seed, k) alone: a resumed run reads exactly
    // the batches an uninterrupted one would.
    let clock = EpochClock::new();
    let data = run_data(config, &clock)?;
    let indices = config.device_indices();
    let base_device = backend::device_with(config.backend, indices[0], config.precision)?;
    let device = base_device.clone().autodiff();
    // Data-parallel devices, each made once (the CPU backend has one device whatever the index).
    let same = |i: usize, j: usize| i == j || config.backend == Backend::Cpu;
    let mut made: Vec<(usize, Device)> = vec![(indices[0], base_device.clone())];
    let mut workers = Vec::with_capacity(indices.len());
    for &i in &indices {
        let d = match made.iter().find(|(j, _)| same(i, *j)) {
            Some((_, d)) => d.clone(),
            None => {
                let d = backend::device_with(config.backend, i, config.precision)?;
                made.push((i, d.clone()));
                d
            }
        };
        workers.push(d.autodiff());
    }
    let n_devices = workers.len();
    if data.train.len() < n_devices {
        bail!(
            "{} training image(s) cannot be shared by {n_devices} data-parallel devices",
            data.train.len()
        );
    }
    // With several devices, each takes its share of the global batch.
    let device_batch = config.resolved_batch_size() / n_devices;
    let checkpoints = checkpoint_dir(&out);
    let resumed = match &resuming {
        Some(lock) => {
            let removed = lock.remove_stale_temporaries()?;
            if removed > 0 {
                println!("removed {removed} unfinished temporary file(s) of the stopped run");
            }
            match latest_complete(&checkpoints) {
                Some(k) if k >= epochs => bail!(
                    "--resume: {} already finished all {epochs} epochs",
                    out.display()
                ),
                Some(k) => {
                    verify_records(&checkpoints, k)?;
                    Some(load_state(&checkpoints, k)?)
                }
                None => {
                    println!(
                        "--resume: {} holds no complete checkpoint (the run stopped during its \
                         first epoch): starting it again from epoch 1 with its configuration",
                        out.display()
                    );
                    None
                }
            }
        }
        None => None,
    };
    // A run started again writes its files anew, as a new run would.
    let fresh = resumed.is_none();
    let run = match (resuming, &resumed) {
        (Some(lock), Some(state)) => RunDir::reopen(lock, state.metrics.clone())?,
        (Some(lock), None) => RunDir::reopen(lock, Vec::new())?,
        (None, _) => RunDir::create(&out)?,
    };
    let _owned = run.lock();
    std::fs::create_dir_all(&checkpoints)
        .with_context(|| format!("cannot create {}", checkpoints.display()))?;
    let RunData {
        train: train_set,
        test: test_set,
        shape,
        num_classes,
        normalization,
        source,
    } = data;

    device.seed(config.seed);
    let mut net = config.model_config(num_classes, shape[0]).init(&device)?;
    if let (Some(path), None) = (&config.pretrained, &resumed) {
        load_pretrained(&mut net, path, config.attention == Method::Ela)?;
    }
    if let Some(state) = &resumed {
        net.set_skip_flags(&state.skip_flags)
            .context("--resume: the checkpoint's skip mask does not fit the model")?;
    }
    let layout = net.layout();
    let parameters = net.parameter_count();
    let ela = config.attention == Method::Ela;
    let pruner = if ela {
        Some(Pruner {
            schedule: config
                .prune
                .schedule(epochs, config.dataset.prune_preset())?,
            method: config.prune.method_for(config.dataset.prune_preset())?,
            layout: layout.clone(),
            probe: ScoreProbe::new(
                layout.clone(),
                config.prune.kl_eps,
                config.prune.kl_direction,
            ),
        })
    } else {
        None
    };
    let model = ElaClassifier::new(net, pruner.as_ref().map(|p| p.probe.clone()))
        .with_label_smoothing(config.resolved_label_smoothing() as f32)
        .with_grad_scale(1.0 / n_devices as f32);

    let revision = git_revision();
    let mut resolved = serde_json::to_value(config).expect("serializable");
    resolved["out"] = serde_json::json!(out);
    if let Some(p) = &pruner {
        resolved["prune"]["windows"] = serde_json::json!(p.schedule.to_string());
        resolved["prune"]["resolved_method"] = serde_json::to_value(p.method).expect("json");
    }
    // ×0.1 after 50% and 75% of the epochs (CIFAR: after epochs 90 and 135 of 180); a run too
    // short for a milestone keeps the base rate rather than starting decayed.
    let milestones: Vec<usize> = [epochs / 2, epochs * 3 / 4]
        .into_iter()
        .filter(|&m| m > 0)
        .collect();
    let schedule_kind = match config.resolved_lr_schedule() {
        LrScheduleName::MultiStep => ScheduleKind::MultiStep {
            milestones,
            gamma: 0.1,
        },
        LrScheduleName::Cosine => ScheduleKind::Cosine { min_lr: 0.0 },
    };
    let warmup_epochs = config.resolved_warmup_epochs();
    resolved["resolved_lr_schedule"] = serde_json::to_value(&schedule_kind).expect("json");
    resolved["warmup_epochs"] = serde_json::json!(warmup_epochs);
    resolved["lr"] = serde_json::json!(config.resolved_lr());
    resolved["batch_size"] = serde_json::json!(config.resolved_batch_size());
    resolved["epochs"] = serde_json::json!(epochs);
    resolved["limit_train"] = serde_json::json!(config.resolved_limit_train());
    resolved["normalization"] = serde_json::to_value(&normalization).expect("json");
    resolved["crop_padding"] = serde_json::json!(config.dataset.recipe().crop_padding);
    resolved["zero_init_last_bn"] = serde_json::json!(config.resolved_zero_init_last_bn());
    resolved["arch"] = serde_json::json!(config.resolved_arch());
    resolved["depth"] = serde_json::json!(config.resolved_depth());
    resolved["label_smoothing"] = serde_json::json!(config.resolved_label_smoothing());
    resolved["decay_norm_and_bias"] = serde_json::json!(config.resolved_decay_norm_and_bias());
    resolved["workers"] = serde_json::json!(config.resolved_workers());
    resolved["git_revision"] = serde_json::json!(revision);
    // A new run's configuration; a resume rewrites it only to record what it changed.
    if fresh || !config.resume_overrides.is_empty() {
        write_json(&run.file("config.json"), &resolved)?;
    }

    let pruning = pruner.as_ref().map(|p| PruningRecord {
        method: p.method,
        kl_direction: config.prune.kl_direction,
        eps: config.prune.kl_eps,
        skip_mode: config.skip_mode,
        blocks_per_stage: layout.blocks_per_stage().to_vec(),
        schedule: p.schedule.to_string(),
        windows: Vec::new(),
        final_mask: vec![false; layout.num_blocks()],
    });
    if let Some(rec) = &pruning
        && fresh
    {
        write_json(&run.file("pruning.json"), rec)?;
    }

    println!(
        "ela: {} {} ResNet-{} on {} ({}: {} train / {} test images), {parameters} parameters",
        config.attention.name(),
        config.resolved_arch(),
        config.resolved_depth(),
        config.dataset.name(),
        source,
        train_set.len(),
        test_set.len()
    );
    println!(
        "backend {:?} | device {:?}{} | precision {} | run dir {}",
        config.backend,
        base_device,
        if n_devices > 1 {
            format!(
                " (+{} data-parallel, {device_batch} images each)",
                n_devices - 1
            )
        } else {
            String::new()
        },
        config.precision,
        run.path().display()
    );
    if let Some(p) = &pruner {
        println!(
            "pruning: {} windows [{}], skip mode {}",
            p.method.name(),
            p.schedule,
            config.skip_mode
        );
    }

    let batcher = ImageBatcher::new(shape, normalization);
    let n_train = train_set.len();
    let loader_train = DataLoaderBuilder::new(batcher.clone())
        .batch_size(device_batch)
        .num_workers(config.resolved_workers())
        .build(EpochShuffled::new(
            train_set.clone(),
            n_train,
            config.seed,
            clock.clone(),
        ));
    let loader_test = DataLoaderBuilder::new(batcher)
        .batch_size(config.resolved_batch_size())
        .num_workers(config.resolved_workers())
        .build(test_set.clone());

    // Optimizer steps per epoch: the last device's share (Burn's split gives it the remainder)
    // in batches of `device_batch`.
    let last_share = n_train - (n_devices - 1) * (n_train / n_devices);
    let iters_per_epoch = last_share.div_ceil(device_batch);
    let lr_schedule = EpochSchedule::new(
        config.resolved_lr(),
        schedule_kind,
        warmup_epochs,
        epochs,
        iters_per_epoch,
    );
    let optim = sgd(
        config.momentum,
        config.weight_decay,
        config.resolved_decay_norm_and_bias(),
        &model,
    );
    let learner = Learner::new(model, optim, lr_schedule);

    let run_path = run.path().to_path_buf();
    if let Some(state) = &resumed {
        println!(
            "resuming after epoch {} of {epochs} (skipping {:?})",
            state.epoch,
            state
                .skip_flags
                .iter()
                .enumerate()
                .filter_map(|(i, &s)| s.then_some(i))
                .collect::<Vec<_>>()
        );
    }
    let (strategy, state) = PruningStrategy::new(
        device,
        pruner,
        run,
        pruning,
        clock,
        checkpoints.clone(),
        resumed.as_ref(),
    );
    let strategy = strategy.with_workers(workers).with_start(started);
    let mut training = SupervisedTraining::new(run_path.join("burn"), loader_train, loader_test)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .num_epochs(epochs)
        .renderer(Box::new(BarRenderer::new()))
        .with_custom_checkpointers(
            AtomicCheckpointer::new(&checkpoints, RECORDS[0]),
            AtomicCheckpointer::new(&checkpoints, RECORDS[1]),
            AtomicCheckpointer::new(&checkpoints, RECORDS[2]),
        )
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(KEEP))
        .with_training_strategy(TrainingStrategy::Custom(Arc::new(strategy)));
    if let Some(state) = &resumed {
        training = training.checkpoint(state.epoch);
    }
    let result = training.launch(learner);
    if let Some(err) = result.error {
        bail!(
            "training failed: {err}\nEvery file written before the failure is intact. After fixing \
             the cause (disk space, permissions), `cargo xtask train --resume {}` continues from \
             the last complete checkpoint.",
            run_path.display()
        );
    }
    let state = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(err) = &state.error {
        bail!("training stopped: {err}");
    }
    let metrics = state.run.metrics();
    let last = metrics.last().context("training ran no epoch")?;
    let net = result.model.net;
    net.save_safetensors(&run_path.join("model.safetensors"))?;
    let skipped: Vec<usize> = net
        .skip_flags()
        .iter()
        .enumerate()
        .filter_map(|(i, &s)| s.then_some(i))
        .collect();
    let summary = RunSummary {
        run_dir: run_path.clone(),
        git_revision: revision,
        seed: config.seed,
        device: format!("{base_device:?}"),
        parameters,
        test_acc: last.test_acc,
        test_loss: last.test_loss,
        skipped,
        train_seconds: metrics.iter().map(|m| m.train_seconds).collect(),
        total_seconds: state.total_seconds(),
        resume_overrides: config.resume_overrides.clone(),
        report: None,
    };
    write_json(&run_path.join("summary.json"), &summary)?;
    // The run's results are saved; a report that cannot be drawn is a warning, not a failure.
    let report = crate::report::Run::load(&run_path)
        .and_then(|run| crate::report::write_report(&[run], &run_path.join("report")));
    match report {
        Ok(report) => Ok(RunSummary {
            report: Some(report.markdown),
            ..summary
        }),
        Err(err) => {
            eprintln!("warning: no report written: {err:#}");
            Ok(summary)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Distribution};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        config: TrainConfig,
    }

    #[test]
    fn the_depth_defaults_to_the_families_usual_network() {
        use clap::Parser;
        let depth = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("train").chain(args.iter().copied()))
                .unwrap()
                .config
                .resolved_depth()
        };
        assert_eq!(depth(&[]), 20);
        assert_eq!(depth(&["--depth", "56"]), 56);
        assert_eq!(depth(&["--dataset", "imagenet"]), 50);
        assert_eq!(depth(&["--arch", "imagenet"]), 50);
        assert_eq!(depth(&["--dataset", "imagenet", "--depth", "18"]), 18);
        assert_eq!(depth(&["--dataset", "imagenet", "--arch", "cifar"]), 20);
    }

    /// One SGD step without momentum: a decayed parameter moves by −lr·(g + wd·w), an undecayed
    /// one by −lr·g.
    #[test]
    fn norm_and_bias_parameters_can_be_left_out_of_weight_decay() {
        let device = Device::flex().autodiff();
        let net = ElaResNetConfig::new(11, 3).init(&device).unwrap();
        let paths = one_dim_parameters(&net);
        assert!(paths.contains(&"bn1.gamma".to_string()), "{paths:?}");
        assert!(paths.contains(&"fc.bias".to_string()), "{paths:?}");
        assert!(
            !paths
                .iter()
                .any(|p| p.ends_with(".weight") && p.contains("conv"))
        );
        let (lr, wd) = (0.5, 0.1);
        for decay_1d in [true, false] {
            let mut optim = sgd(0.0, wd, decay_1d, &net);
            let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Default, &device);
            let loss = net.forward(x).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            let g_gamma = values(grads.get::<1>(net.bn1.gamma.id).unwrap());
            let g_conv = values(grads.get::<4>(net.conv1.weight.id).unwrap());
            let gamma = values(net.bn1.gamma.val());
            let conv = values(net.conv1.weight.val());
            let stepped = optim.step(lr, net.clone(), grads);
            let new_gamma = values(stepped.bn1.gamma.val());
            let new_conv = values(stepped.conv1.weight.val());
            let gamma_decay = if decay_1d { wd } else { 0.0 };
            for i in 0..gamma.len() {
                let want =
                    gamma[i] - (lr * (g_gamma[i] as f64 + gamma_decay * gamma[i] as f64)) as f32;
                assert!(
                    (new_gamma[i] - want).abs() < 1e-5,
                    "decay_1d {decay_1d}: γ[{i}]"
                );
            }
            for i in (0..conv.len()).step_by(37) {
                let want = conv[i] - (lr * (g_conv[i] as f64 + wd * conv[i] as f64)) as f32;
                assert!(
                    (new_conv[i] - want).abs() < 1e-5,
                    "decay_1d {decay_1d}: w[{i}]"
                );
            }
        }
    }
}
