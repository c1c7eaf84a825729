//! [`TrainConfig`]: every flag of `ela train`, and its resolution into a [`RunConfig`]: the
//! registered model expanded, the dataset's recipe for the flags left out, every value checked
//! before any work.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ela_model::{Arch, ElaResNetConfig, SkipMode};
use serde::{Deserialize, Serialize};

use super::options::{DatasetName, LrScheduleName, Method, PruneArgs};
use super::resolved::RunConfig;
use crate::runtime::session::utc_stamp;
use crate::runtime::{DeviceArgs, TaskName};

/// Every flag of `ela train`, as given: a flag left out is `None` (or its fixed default);
/// [`TrainConfig::resolve`] decides the rest and checks everything.
///
/// `--config FILE.toml` reads flags from a file (see [`crate::config`]); flags on the command line
/// win.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct TrainConfig {
    /// The task: `classify` (these flags), or `detect` (`ela train --task detect --help`).
    #[arg(long, value_enum, default_value = "classify")]
    #[serde(skip)]
    pub task: TaskName,
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
    #[command(flatten)]
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub devices: DeviceArgs,
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
}

impl TrainConfig {
    /// The run's configuration with every value decided: `--model` expanded into the family,
    /// depth and attention, the dataset's recipe for every flag left out, the run directory
    /// named; every value checked before any work starts.
    pub fn resolve(&self) -> Result<RunConfig> {
        let config = self.with_model_expanded()?;
        config.check_flags()?;
        let recipe = config.dataset.recipe();
        let arch = config.arch.unwrap_or(match config.dataset {
            DatasetName::Imagenet => Arch::Imagenet,
            DatasetName::Mnist | DatasetName::Cifar10 | DatasetName::Cifar100 => Arch::Cifar,
        });
        // CIFAR: ResNet-20; ImageNet: ResNet-50, the paper's main model.
        let depth = config.depth.unwrap_or(match arch {
            Arch::Cifar => 20,
            Arch::Imagenet => 50,
        });
        let epochs = config.epochs.unwrap_or(recipe.epochs);
        let batch_size = config.batch_size.unwrap_or(recipe.batch_size);
        // The recipe's rate, scaled linearly with the batch size where the recipe says so.
        let lr = config
            .lr
            .unwrap_or_else(|| match recipe.lr_reference_batch {
                Some(reference) => recipe.lr * batch_size as f64 / reference as f64,
                None => recipe.lr,
            });
        let resolved = RunConfig {
            dataset: config.dataset,
            data_dir: config.data_dir.clone(),
            limit_train: config.limit_train.or(recipe.limit_train),
            limit_test: config.limit_test,
            model: config.model.clone(),
            arch,
            depth,
            attention: config.attention,
            dim_per_head: config.dim_per_head.unwrap_or_else(|| {
                ElaResNetConfig::official_dim_per_head(arch, config.attention.attention())
            }),
            deep_stem: config.deep_stem,
            pretrained: config.pretrained.clone(),
            skip_mode: config.skip_mode,
            zero_init_last_bn: config.zero_init_last_bn.unwrap_or(recipe.zero_init_last_bn),
            epochs,
            batch_size,
            lr,
            label_smoothing: config.label_smoothing.unwrap_or(recipe.label_smoothing),
            decay_norm_and_bias: config
                .decay_norm_and_bias
                .unwrap_or(recipe.decay_norm_and_bias),
            lr_schedule: config.lr_schedule.unwrap_or(recipe.lr_schedule),
            warmup_epochs: config
                .warmup_epochs
                .unwrap_or(recipe.warmup_epochs)
                .min(epochs),
            momentum: config.momentum,
            weight_decay: config.weight_decay,
            seed: config.seed,
            backend: config.devices.backend,
            devices: config.devices.indices(),
            precision: config.devices.precision,
            // ImageNet decodes JPEGs per item: one worker per core; the in-memory sets: one.
            workers: config.workers.unwrap_or_else(|| match config.dataset {
                DatasetName::Imagenet => {
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                }
                _ => 1,
            }),
            out: config.out.clone().unwrap_or_else(|| {
                PathBuf::from("runs").join(format!(
                    "{}-r{depth}-{}-{}",
                    config.attention.name(),
                    config.dataset.name(),
                    utc_stamp()
                ))
            }),
            prune: config.prune.clone(),
            resume_overrides: Vec::new(),
        };
        config.check_resolved(&resolved)?;
        Ok(resolved)
    }

    /// This configuration with `--model` expanded into --arch, --depth and --attention. An
    /// empty name clears a --model given earlier (in a config file, say).
    fn with_model_expanded(&self) -> Result<Self> {
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

    /// Checks of values as given, whatever the recipe.
    fn check_flags(&self) -> Result<()> {
        if self.epochs == Some(0) {
            bail!("--epochs must be at least 1");
        }
        if self.batch_size == Some(0) {
            bail!("--batch-size must be at least 1");
        }
        if self.workers == Some(0) {
            bail!("--workers must be at least 1");
        }
        if self.limit_train == Some(0) || self.limit_test == Some(0) {
            bail!("--limit-train/--limit-test must be at least 1");
        }
        Ok(())
    }

    /// Checks of the values the run would use, before any data is read.
    fn check_resolved(&self, run: &RunConfig) -> Result<()> {
        let lr = run.lr;
        if !(lr.is_finite() && lr > 0.0) {
            bail!("--lr must be a positive number, got {lr}");
        }
        if !(0.0..1.0).contains(&run.momentum) {
            bail!("--momentum must lie in [0, 1), got {}", run.momentum);
        }
        if !(run.weight_decay.is_finite() && run.weight_decay >= 0.0) {
            bail!("--weight-decay must be >= 0, got {}", run.weight_decay);
        }
        let smoothing = run.label_smoothing;
        if !(0.0..1.0).contains(&smoothing) {
            bail!("--label-smoothing must lie in [0, 1), got {smoothing}");
        }
        self.devices.check(run.batch_size)?;
        run.arch.stages(run.depth).context("--depth")?;
        // The model's own options (--dim-per-head, --deep-stem, …), before any data is read.
        run.model_config(1, 1).check().context("model options")?;
        if let Some(path) = &run.pretrained
            && !path.is_file()
        {
            bail!("--pretrained: {} is not a file", path.display());
        }
        // Every pruning value, also where the attention does not prune: a value that would fail
        // at the first decision, or means nothing, is refused before any work.
        run.prune.validate(run.epochs, run.dataset.prune_preset())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                .resolve()
                .unwrap()
                .depth
        };
        assert_eq!(depth(&[]), 20);
        assert_eq!(depth(&["--depth", "56"]), 56);
        assert_eq!(depth(&["--dataset", "imagenet"]), 50);
        assert_eq!(depth(&["--arch", "imagenet"]), 50);
        assert_eq!(depth(&["--dataset", "imagenet", "--depth", "18"]), 18);
        assert_eq!(depth(&["--dataset", "imagenet", "--arch", "cifar"]), 20);
    }
}
