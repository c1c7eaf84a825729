//! [`RunConfig`]: a run's configuration with every value decided, before anything runs.
//!
//! [`TrainConfig`](super::TrainConfig) is what the user said (flags, config files); a flag left
//! out is `None`. [`TrainConfig::resolve`](super::TrainConfig::resolve) fills in the registered
//! model, the dataset's recipe and the run directory, checks every value, and gives this: the
//! one configuration the rest of the training reads, and what `config.json` holds.

use std::path::PathBuf;

use ela_model::{Arch, ElaResNetConfig, SkipMode};
use serde::{Deserialize, Serialize};

use super::config::ResumeOverride;
use super::options::{DatasetName, LrScheduleName, Method, PruneArgs};
use crate::backend::{Backend, Precision};

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
