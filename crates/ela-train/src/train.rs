//! From a training configuration to a finished run directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoaderBuilder;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{SgdConfig, decay::WeightDecayConfig};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining, TrainingStrategy};
use ela_model::{AttentionKind, ElaResNetConfig, SkipMode};
use ela_prune::{EbqmParams, KlDirection, PruneMethod, PruningSchedule, SchedulePreset};
use serde::{Deserialize, Serialize};

use crate::backend::{self, Backend};
use crate::data::{ImageBatcher, Mnist, Normalization};
use crate::lr::{EpochSchedule, ScheduleKind};
use crate::model::{ElaClassifier, ScoreProbe};
use crate::renderer::BarRenderer;
use crate::run::{PruningRecord, RunDir, git_revision, write_json};
use crate::strategy::{Pruner, PruningStrategy};

/// The attention of a run: the model's, plus whether ELA prunes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Plain ResNet.
    None,
    /// MRLA-B, never pruned.
    MrlaB,
    /// MRLA-L.
    MrlaL,
    /// ELA: MRLA-B whose redundant retrievals are pruned at the window ends.
    Ela,
}

impl Method {
    /// The model's attention.
    pub fn attention(self) -> AttentionKind {
        match self {
            Self::None => AttentionKind::None,
            Self::MrlaB | Self::Ela => AttentionKind::MrlaB,
            Self::MrlaL => AttentionKind::MrlaL,
        }
    }

    /// `none`, `mrla-b`, `mrla-l` or `ela`.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::MrlaB => "mrla-b",
            Self::MrlaL => "mrla-l",
            Self::Ela => "ela",
        }
    }
}

/// Datasets this build can train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// MNIST: the embedded 10k-digit sample, or the official files in `--data-dir`.
    Mnist,
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

/// Pruning hyper-parameters; unset values take the dataset preset's (SPEC §3.3).
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
    /// Threshold τ on the mapped (EBQM) or normalized (threshold) value.
    #[arg(long)]
    pub tau: Option<f64>,
    /// Candidate quantile q of EBQM.
    #[arg(long)]
    pub quantile: Option<f64>,
    /// Blocks per decision of the fixed method.
    #[arg(long, default_value_t = 1)]
    pub k: usize,
    /// Pruning windows: '1-3,45-48,91-93', a preset scaled to the run ('cifar', 'imagenet',
    /// 'coco'), or 'none'. Default: the cifar preset scaled to --epochs.
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
        let d = EbqmParams::cifar();
        Ok(match self.method {
            MethodName::Ebqm => PruneMethod::Ebqm(EbqmParams::new(
                self.alpha.unwrap_or(d.alpha),
                self.beta.unwrap_or(d.beta),
                self.tau.unwrap_or(d.tau),
                self.quantile.unwrap_or(d.quantile),
            )?),
            MethodName::Threshold => PruneMethod::threshold(self.tau.unwrap_or(d.tau))?,
            MethodName::Fixed => PruneMethod::Fixed { k: self.k },
        })
    }

    /// The checked schedule for a run of `epochs`.
    pub fn schedule(&self, epochs: usize) -> Result<PruningSchedule> {
        let spec = self.windows.as_deref().unwrap_or("cifar");
        Ok(match spec.parse::<SchedulePreset>() {
            Ok(preset) => PruningSchedule::preset(preset, epochs),
            Err(_) => PruningSchedule::parse(spec, epochs).context("--windows")?,
        })
    }
}

/// Everything a training run needs; written, resolved, to the run's `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct TrainConfig {
    /// Dataset.
    #[arg(long, value_enum, default_value = "mnist")]
    pub dataset: DatasetName,
    /// Directory with the dataset's files; default: the sample embedded in the binary.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Use only the first N training images (default 2048: the whole default run takes a few
    /// minutes on a CPU; `--limit-train 8000` uses the whole sample).
    #[arg(long, default_value_t = 2048)]
    pub limit_train: usize,
    /// Use only the first N test images.
    #[arg(long)]
    pub limit_test: Option<usize>,
    /// ResNet depth (9n + 2).
    #[arg(long, default_value_t = 20)]
    pub depth: usize,
    /// Layer attention.
    #[arg(long, value_enum, default_value = "ela")]
    pub attention: Method,
    /// Channels per attention head.
    #[arg(long, default_value_t = 16)]
    pub dim_per_head: usize,
    /// What a skipped ELA block still computes: full or retrieval.
    #[arg(long, default_value = "full")]
    pub skip_mode: SkipMode,
    /// Epochs.
    #[arg(long, default_value_t = 4)]
    pub epochs: usize,
    /// Batch size. Default: the dataset's recipe (CIFAR: 128, SPEC §4; the MNIST sample: 32, so
    /// that the short default run takes 64 optimizer steps per epoch).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Base learning rate. Default: the dataset's recipe (CIFAR and ImageNet: 0.1 at batch 128
    /// and 256, SPEC §4; the MNIST sample: 0.02).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value = "multi-step")]
    pub lr_schedule: LrScheduleName,
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
    /// Data-loader worker threads.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Run directory; default: runs/<attention>-r<depth>-<dataset>-<UTC time>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub prune: PruneArgs,
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
    /// Total wall seconds.
    pub total_seconds: f64,
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

/// The MNIST sample's recipe (not in the paper): MRLA-B's loss rises from 2.5 to 13 within its
/// first five steps at lr 0.1 on MNIST, so it trains at 0.02 after a 1-epoch warm-up, in batches
/// of 32 so that the short default run still takes 64 steps per epoch.
const MNIST_LR: f64 = 0.02;
const MNIST_BATCH: usize = 32;
const MNIST_WARMUP_EPOCHS: usize = 1;

impl TrainConfig {
    /// The base learning rate: the flag's, or the dataset recipe's.
    pub fn resolved_lr(&self) -> f64 {
        self.lr.unwrap_or(match self.dataset {
            DatasetName::Mnist => MNIST_LR,
        })
    }

    /// The batch size: the flag's, or the dataset recipe's.
    pub fn resolved_batch_size(&self) -> usize {
        self.batch_size.unwrap_or(match self.dataset {
            DatasetName::Mnist => MNIST_BATCH,
        })
    }

    /// Warm-up epochs: the flag's, or the dataset recipe's (never more than the run).
    pub fn resolved_warmup_epochs(&self) -> usize {
        let recipe = match self.dataset {
            DatasetName::Mnist => MNIST_WARMUP_EPOCHS,
        };
        self.warmup_epochs.unwrap_or(recipe).min(self.epochs)
    }

    /// Rejects invalid values before any work starts.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
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
        ela_prune::StageLayout::cifar(self.depth).context("--depth")?;
        if self.attention == Method::Ela {
            self.prune.method()?;
            self.prune.schedule(self.epochs)?;
        }
        if self.limit_train == 0 || self.limit_test == Some(0) {
            bail!("--limit-train/--limit-test must be at least 1");
        }
        Ok(())
    }
}

/// Trains one model as configured and writes its run directory.
pub fn train(config: &TrainConfig) -> Result<RunSummary> {
    config.validate()?;
    let started = Instant::now();
    let out = config.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!(
            "{}-r{}-mnist-{}",
            config.attention.name(),
            config.depth,
            utc_stamp()
        ))
    });
    let run = RunDir::create(&out)?;

    let base_device = backend::device(config.backend, config.device)?;
    let device = base_device.clone().autodiff();
    let data = match &config.data_dir {
        None => Mnist::embedded(),
        Some(dir) => Mnist::from_dir(dir)?,
    };
    let train_set = data.train.truncated(config.limit_train);
    let test_set = config
        .limit_test
        .map_or(data.test.clone(), |n| data.test.truncated(n));
    let shape = [train_set.channels, train_set.height, train_set.width];

    device.seed(config.seed);
    let net = ElaResNetConfig::new(config.depth, train_set.num_classes)
        .with_in_channels(shape[0])
        .with_attention(config.attention.attention())
        .with_dim_per_head(config.dim_per_head)
        .with_skip_mode(config.skip_mode)
        .init(&device)?;
    let layout = net.layout();
    let parameters = net.parameter_count();
    let ela = config.attention == Method::Ela;
    let pruner = if ela {
        Some(Pruner {
            schedule: config.prune.schedule(config.epochs)?,
            method: config.prune.method()?,
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
    let model = ElaClassifier::new(net, pruner.as_ref().map(|p| p.probe.clone()));

    let revision = git_revision();
    let mut resolved = serde_json::to_value(config).expect("serializable");
    resolved["out"] = serde_json::json!(out);
    if let Some(p) = &pruner {
        resolved["prune"]["windows"] = serde_json::json!(p.schedule.to_string());
        resolved["prune"]["resolved_method"] = serde_json::to_value(p.method).expect("json");
    }
    // ×0.1 after 50% and 75% of the epochs (CIFAR: after epochs 90 and 135 of 180); a run too
    // short for a milestone keeps the base rate rather than starting decayed.
    let milestones: Vec<usize> = [config.epochs / 2, config.epochs * 3 / 4]
        .into_iter()
        .filter(|&m| m > 0)
        .collect();
    let schedule_kind = match config.lr_schedule {
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
    resolved["git_revision"] = serde_json::json!(revision);
    write_json(&run.file("config.json"), &resolved)?;

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
    if let Some(rec) = &pruning {
        write_json(&run.file("pruning.json"), rec)?;
    }

    println!(
        "ela: {} ResNet-{} on mnist ({}: {} train / {} test images), {parameters} parameters",
        config.attention.name(),
        config.depth,
        config
            .data_dir
            .as_ref()
            .map_or("embedded sample".to_string(), |d| d.display().to_string()),
        train_set.len(),
        test_set.len()
    );
    println!(
        "backend {:?} | device {:?} | precision f32 | run dir {}",
        config.backend,
        base_device,
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

    let batcher = ImageBatcher::new(shape, Normalization::mnist());
    let loader_train = DataLoaderBuilder::new(batcher.clone())
        .batch_size(config.resolved_batch_size())
        .shuffle(config.seed)
        .num_workers(config.workers)
        .build(train_set.clone());
    let loader_test = DataLoaderBuilder::new(batcher)
        .batch_size(config.resolved_batch_size())
        .num_workers(config.workers)
        .build(test_set.clone());

    let iters_per_epoch = train_set.len().div_ceil(config.resolved_batch_size());
    let lr_schedule = EpochSchedule::new(
        config.resolved_lr(),
        schedule_kind,
        warmup_epochs,
        config.epochs,
        iters_per_epoch,
    );
    let momentum = MomentumConfig::new()
        .with_momentum(config.momentum)
        .with_dampening(0.0)
        .with_nesterov(config.momentum > 0.0);
    let optim = SgdConfig::new()
        .with_momentum((config.momentum > 0.0).then_some(momentum))
        .with_weight_decay(
            (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32)),
        )
        .init();
    let learner = Learner::new(model, optim, lr_schedule);

    let run_path = run.path().to_path_buf();
    let (strategy, state) = PruningStrategy::new(device, pruner, run, pruning);
    let result = SupervisedTraining::new(run_path.join("burn"), loader_train, loader_test)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .num_epochs(config.epochs)
        .renderer(Box::new(BarRenderer::new()))
        .with_training_strategy(TrainingStrategy::Custom(Arc::new(strategy)))
        .launch(learner);
    if let Some(err) = result.error {
        bail!("training failed: {err}");
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
        total_seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&run_path.join("summary.json"), &summary)?;
    Ok(summary)
}
