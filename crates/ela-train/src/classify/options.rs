//! The named options of a training run: its attention, dataset and recipe, pruning method and
//! learning-rate schedule, and the pruning flags with their checks.

use anyhow::{Context, Result, bail};
use ela_model::{ALL_ATTENTION, AttentionKind};
use ela_prune::{EbqmParams, KlDirection, Mapping, PruneMethod, PruningSchedule, SchedulePreset};
use serde::{Deserialize, Serialize};

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
