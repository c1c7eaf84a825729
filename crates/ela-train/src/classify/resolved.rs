//! [`RunConfig`]: a run's configuration with every value decided, before anything runs.
//!
//! [`TrainConfig`](super::TrainConfig) is what the user said (flags, config files); a flag left
//! out is `None`. [`TrainConfig::resolve`](super::TrainConfig::resolve) fills in the registered
//! model, the dataset's recipe and the run directory, checks every value, and gives this: the
//! one configuration the rest of the training reads, and what `config.json` holds.

use std::path::{Path, PathBuf};

use anyhow::Result;
use ela_model::{Arch, ElaResNetConfig, SkipMode};
use serde::{Deserialize, Serialize};

use super::options::{DatasetName, LrScheduleName, Method, PruneArgs};
use crate::backend::{Backend, Precision};
use crate::runtime::{PruneSetup, RunSettings, SgdSettings, TaskConfig};
use crate::schedule::{Length, LrSchedule, Shape, Warmup, WarmupStart};
use ela_records::ResumeOverride;

/// A training run's resolved configuration: every field is the value the run uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// Dataset.
    pub dataset: DatasetName,
    /// Directory with the dataset's files (`None`: the embedded sample, or `data/<dataset>`).
    pub data_dir: Option<PathBuf>,
    /// Training images used (`None`: all).
    pub limit_train: Option<usize>,
    /// Test images used (`None`: all).
    pub limit_test: Option<usize>,
    /// The registered model the run was asked for, if any (its family, depth and attention are
    /// the fields below).
    pub model: Option<String>,
    /// ResNet family.
    pub arch: Arch,
    /// ResNet depth.
    pub depth: usize,
    /// Layer attention.
    pub attention: Method,
    /// Channels per attention head.
    pub dim_per_head: usize,
    /// The deep stem of ImageNet models (`None`: the attention's official choice).
    pub deep_stem: Option<bool>,
    /// Weights the run starts from.
    pub pretrained: Option<PathBuf>,
    /// What a skipped ELA block still computes.
    pub skip_mode: SkipMode,
    /// Every block's last BN scale starts at zero.
    pub zero_init_last_bn: bool,
    /// Epochs.
    pub epochs: usize,
    /// Global batch size.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Label smoothing of the cross-entropy.
    pub label_smoothing: f64,
    /// Weight decay also on 1-D parameters.
    pub decay_norm_and_bias: bool,
    /// Learning-rate schedule.
    pub lr_schedule: LrScheduleName,
    /// Linear warm-up epochs (at most `epochs`).
    pub warmup_epochs: usize,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Seed of initialization and data order.
    pub seed: u64,
    /// Backend.
    pub backend: Backend,
    /// Training devices' indices; the first is the main one.
    pub devices: Vec<usize>,
    /// Float type of every tensor.
    pub precision: Precision,
    /// Data-loader worker threads.
    pub workers: usize,
    /// The run directory.
    pub out: PathBuf,
    /// Pruning flags.
    pub prune: PruneArgs,
    /// What resumes changed, with the epoch each took effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resume_overrides: Vec<ResumeOverride>,
}

impl RunConfig {
    /// The model's configuration for `num_classes` classes of `in_channels`-channel images.
    pub fn model_config(&self, num_classes: usize, in_channels: usize) -> ElaResNetConfig {
        ElaResNetConfig::new(self.depth, num_classes)
            .with_arch(self.arch)
            .with_in_channels(in_channels)
            .with_attention(self.attention.attention())
            .with_dim_per_head(self.dim_per_head)
            .with_deep_stem(self.deep_stem)
            .with_skip_mode(self.skip_mode)
            .with_zero_init_last_bn(self.zero_init_last_bn)
    }
}

impl RunConfig {
    /// The learning rate over the run: ×0.1 after 50% and 75% of the epochs (CIFAR: after epochs
    /// 90 and 135 of 180; a run too short for a drop keeps the base rate rather than starting
    /// decayed), or cosine decay; a linear warm-up from zero over `warmup_epochs`.
    pub fn lr_schedule(&self) -> LrSchedule {
        let epochs = self.epochs;
        let shape = match self.lr_schedule {
            LrScheduleName::MultiStep => Shape::Steps {
                after: [epochs / 2, epochs * 3 / 4]
                    .into_iter()
                    .filter(|&m| m > 0)
                    .collect(),
                gamma: 0.1,
            },
            LrScheduleName::Cosine => Shape::Cosine { min_lr: 0.0 },
        };
        LrSchedule {
            base: self.lr,
            shape,
            warmup: (self.warmup_epochs > 0).then_some(Warmup {
                length: Length::Epochs(self.warmup_epochs),
                start: WarmupStart::Zero,
            }),
        }
    }
}

impl TaskConfig for RunConfig {
    fn settings(&self) -> Result<RunSettings> {
        let pruning = if self.attention == Method::Ela {
            let preset = self.dataset.prune_preset();
            Some(PruneSetup {
                windows: self.prune.schedule(self.epochs, preset)?,
                method: self.prune.method_for(preset)?,
                kl_eps: self.prune.kl_eps,
                kl_direction: self.prune.kl_direction,
                skip_mode: self.skip_mode,
            })
        } else {
            None
        };
        if !(self.lr.is_finite() && self.lr > 0.0) {
            anyhow::bail!("--lr must be a positive number, got {}", self.lr);
        }
        Ok(RunSettings {
            out: self.out.clone(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            workers: self.workers,
            seed: self.seed,
            backend: self.backend,
            devices: self.devices.clone(),
            precision: self.precision,
            sgd: SgdSettings {
                momentum: self.momentum,
                nesterov: true,
                weight_decay: self.weight_decay,
                decay_norm_and_bias: self.decay_norm_and_bias,
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
