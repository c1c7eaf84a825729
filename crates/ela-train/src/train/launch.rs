//! From a configuration to a finished run directory: [`train`] and [`resume`] run the same short
//! sequence of steps, each a function below: the data, the devices, the run directory and where
//! the run starts, the model with its pruning step, the start records, the training itself, and
//! the results.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining, TrainingStrategy};

use super::config::{ResumeOverride, TrainConfig};
use super::dataset::{RunData, run_data};
use super::optim::sgd;
use super::options::{LrScheduleName, Method};
use super::pretrained::load_pretrained;
use super::resolved::RunConfig;
use super::summary::RunSummary;
use crate::backend::{self, Backend};
use crate::checkpoint::{
    AtomicCheckpointer, KEEP, RECORDS, TrainingState, latest_complete, load_state, verify_records,
};
use crate::lr::{EpochSchedule, ScheduleKind};
use crate::model::ElaClassifier;
use crate::pruning::{PruningController, ScoreProbe};
use crate::renderer::BarRenderer;
use crate::strategy::{PruningStrategy, StrategyState};
use ela_data::dataset::{EpochClock, EpochShuffled, ImageBatcher};
use ela_records::lock::RunLock;
use ela_records::{PruningRecord, RunDir, git_revision, write_json};

/// Trains one model as configured and writes its run directory.
pub fn train(config: &TrainConfig) -> Result<RunSummary> {
    run_training(&config.resolve()?, None)
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
        let previous = config.resolve()?.lr;
        let from_epoch = latest_complete(&checkpoint_dir(dir)).map_or(1, |k| k + 1);
        println!("resuming with base learning rate {lr} from epoch {from_epoch} (was {previous})");
        config.lr = Some(lr);
        config.resume_overrides.push(ResumeOverride {
            from_epoch,
            lr,
            previous_lr: previous,
        });
    }
    run_training(&config.resolve()?, Some(lock))
}

/// The run directory's checkpoint folder.
pub fn checkpoint_dir(run: &Path) -> PathBuf {
    run.join("checkpoint")
}

/// Trains `config`'s run: a new one, or with `resuming` (the lock of its directory) the run in
/// `config.out`, from its newest complete checkpoint or, without one, from its first epoch.
fn run_training(config: &RunConfig, resuming: Option<RunLock>) -> Result<RunSummary> {
    let started = Instant::now();
    // Data and devices first: a missing dataset or backend leaves no run directory behind.
    // Order and augmentation of epoch k depend on (seed, k) alone: a resumed run reads exactly
    // the batches an uninterrupted one would.
    let clock = EpochClock::new();
    let data = run_data(config, &clock)?;
    let devices = Devices::open(config, data.train.len())?;
    let start = open_run(config, resuming)?;
    let (model, pruning) = build_model(config, &data, &devices, start.resumed.as_ref())?;
    let revision = git_revision();
    write_start_records(config, &start, &data, pruning.as_ref(), &revision)?;
    print_banner(config, &start, &data, &devices, &model, pruning.as_ref());
    let run_path = start.run.path().to_path_buf();
    let device = format!("{:?}", devices.base);
    let (net, state) = fit(config, data, devices, start, model, pruning, clock, started)?;
    finish(config, &run_path, (net, &state), device, revision)
}

/// The devices of a run: the main one (autodiff) and the data-parallel workers' (the main one
/// first; one entry without data parallelism).
struct Devices {
    /// The main device, without autodiff (the banner and summary name it).
    base: Device,
    /// Every worker's autodiff device.
    workers: Vec<Device>,
}

impl Devices {
    /// Opens (and probes) each configured device once, for `n_train` training images.
    fn open(config: &RunConfig, n_train: usize) -> Result<Self> {
        let indices = &config.devices;
        let base = backend::device_with(config.backend, indices[0], config.precision)?;
        // The CPU backend's logical devices are all the one CPU device.
        let same = |i: usize, j: usize| i == j || config.backend == Backend::Cpu;
        let mut made: Vec<(usize, Device)> = vec![(indices[0], base.clone())];
        let mut workers = Vec::with_capacity(indices.len());
        for &i in indices {
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
        if n_train < workers.len() {
            bail!(
                "{n_train} training image(s) cannot be shared by {} data-parallel devices",
                workers.len()
            );
        }
        Ok(Self { base, workers })
    }

    /// The main autodiff device: the model, the optimizer and validation live there.
    fn main(&self) -> Device {
        self.workers[0].clone()
    }

    /// Images per device of every global batch.
    fn batch(&self, config: &RunConfig) -> usize {
        config.batch_size / self.workers.len()
    }
}

/// Where a run starts: its directory (owned) and the checkpoint it continues from, if any.
struct Start {
    run: RunDir,
    resumed: Option<TrainingState>,
}

impl Start {
    /// Whether the run's start records are written anew: a new run, or one started again.
    fn fresh(&self) -> bool {
        self.resumed.is_none()
    }
}

/// Creates a new run's directory, or (`resuming`, the lock of an existing one) finds the
/// newest complete checkpoint to continue from: without one the run starts again from epoch 1.
fn open_run(config: &RunConfig, resuming: Option<RunLock>) -> Result<Start> {
    let out = config.out.clone();
    let epochs = config.epochs;
    let checkpoints = checkpoint_dir(&out);
    let start = match resuming {
        None => Start {
            run: RunDir::create(&out)?,
            resumed: None,
        },
        Some(lock) => {
            let removed = lock.remove_stale_temporaries()?;
            if removed > 0 {
                println!("removed {removed} unfinished temporary file(s) of the stopped run");
            }
            let resumed = match latest_complete(&checkpoints) {
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
            };
            let metrics = resumed
                .as_ref()
                .map_or_else(Vec::new, |s| s.metrics.clone());
            Start {
                run: RunDir::reopen(lock, metrics)?,
                resumed,
            }
        }
    };
    std::fs::create_dir_all(&checkpoints)
        .with_context(|| format!("cannot create {}", checkpoints.display()))?;
    Ok(start)
}

/// The network (pretrained weights, or the checkpoint's skip mask) in its training wrapper,
/// and ELA's pruning step for ELA runs.
fn build_model(
    config: &RunConfig,
    data: &RunData,
    devices: &Devices,
    resumed: Option<&TrainingState>,
) -> Result<(ElaClassifier, Option<PruningController>)> {
    let device = devices.main();
    device.seed(config.seed);
    let mut net = config
        .model_config(data.num_classes, data.shape[0])
        .init(&device)?;
    let ela = config.attention == Method::Ela;
    match (&config.pretrained, resumed) {
        (Some(path), None) => load_pretrained(&mut net, path, ela)?,
        (_, Some(state)) => net
            .set_skip_flags(&state.skip_flags)
            .context("--resume: the checkpoint's skip mask does not fit the model")?,
        (None, None) => {}
    }
    let layout = net.layout();
    // ELA's pruning step: windows, the KL probe the model reads, decisions and their record.
    let pruning = if ela {
        let preset = config.dataset.prune_preset();
        let schedule = config.prune.schedule(config.epochs, preset)?;
        let method = config.prune.method_for(preset)?;
        let record = PruningRecord {
            method,
            kl_direction: config.prune.kl_direction,
            eps: config.prune.kl_eps,
            skip_mode: config.skip_mode,
            blocks_per_stage: layout.blocks_per_stage().to_vec(),
            schedule: schedule.to_string(),
            windows: Vec::new(),
            final_mask: vec![false; layout.num_blocks()],
        };
        let probe = ScoreProbe::new(layout, config.prune.kl_eps, config.prune.kl_direction);
        Some(PruningController::new(schedule, method, probe, record))
    } else {
        None
    };
    let model = ElaClassifier::new(net, pruning.as_ref().map(|p| p.probe().clone()))
        .with_label_smoothing(config.label_smoothing as f32)
        .with_grad_scale(1.0 / devices.workers.len() as f32);
    Ok((model, pruning))
}

/// The learning-rate schedule's shape: ×0.1 after 50% and 75% of the epochs (CIFAR: after
/// epochs 90 and 135 of 180; a run too short for a milestone keeps the base rate rather than
/// starting decayed), or cosine decay.
fn schedule_kind(config: &RunConfig) -> ScheduleKind {
    let epochs = config.epochs;
    match config.lr_schedule {
        LrScheduleName::MultiStep => ScheduleKind::MultiStep {
            milestones: [epochs / 2, epochs * 3 / 4]
                .into_iter()
                .filter(|&m| m > 0)
                .collect(),
            gamma: 0.1,
        },
        LrScheduleName::Cosine => ScheduleKind::Cosine { min_lr: 0.0 },
    }
}

/// `config.json` (every value as resolved for this run) and the empty `pruning.json` of a run
/// that starts; a resume rewrites `config.json` only to record what it changed.
fn write_start_records(
    config: &RunConfig,
    start: &Start,
    data: &RunData,
    pruning: Option<&PruningController>,
    revision: &str,
) -> Result<()> {
    let run = &start.run;
    let mut resolved = serde_json::to_value(config).expect("serializable");
    resolved["out"] = serde_json::json!(run.path());
    if let Some(p) = pruning {
        resolved["prune"]["windows"] = serde_json::json!(p.schedule().to_string());
        resolved["prune"]["resolved_method"] = serde_json::to_value(p.method()).expect("json");
    }
    // Besides the configuration: what the run derived from it, and the code it ran.
    let derived = [
        (
            "resolved_lr_schedule",
            serde_json::to_value(schedule_kind(config)).expect("json"),
        ),
        (
            "normalization",
            serde_json::to_value(&data.normalization).expect("json"),
        ),
        (
            "crop_padding",
            serde_json::json!(config.dataset.recipe().crop_padding),
        ),
        ("git_revision", serde_json::json!(revision)),
    ];
    for (key, value) in derived {
        resolved[key] = value;
    }
    if start.fresh() || !config.resume_overrides.is_empty() {
        write_json(&run.file("config.json"), &resolved)?;
    }
    if let Some(p) = pruning
        && start.fresh()
    {
        write_json(&run.file("pruning.json"), p.record())?;
    }
    Ok(())
}

/// What the run is, where, on what, and where it resumes.
fn print_banner(
    config: &RunConfig,
    start: &Start,
    data: &RunData,
    devices: &Devices,
    model: &ElaClassifier,
    pruning: Option<&PruningController>,
) {
    println!(
        "ela: {} {} ResNet-{} on {} ({}: {} train / {} test images), {} parameters",
        config.attention.name(),
        config.arch,
        config.depth,
        config.dataset.name(),
        data.source,
        data.train.len(),
        data.test.len(),
        model.net.parameter_count()
    );
    let n = devices.workers.len();
    println!(
        "backend {:?} | device {:?}{} | precision {} | run dir {}",
        config.backend,
        devices.base,
        if n > 1 {
            format!(
                " (+{} data-parallel, {} images each)",
                n - 1,
                devices.batch(config)
            )
        } else {
            String::new()
        },
        config.precision,
        start.run.path().display()
    );
    if let Some(kernels) = backend::kernels_line(config.backend) {
        println!("kernels: {kernels}");
    }
    if let Some(p) = pruning {
        println!(
            "pruning: {} windows [{}], skip mode {}",
            p.method().name(),
            p.schedule(),
            config.skip_mode
        );
    }
    if let Some(state) = &start.resumed {
        let skipped: Vec<usize> = (0..state.skip_flags.len())
            .filter(|&i| state.skip_flags[i])
            .collect();
        println!(
            "resuming after epoch {} of {} (skipping {skipped:?})",
            state.epoch, config.epochs
        );
    }
}

/// Trains: the loaders, SGD and the learning-rate schedule, the pruning strategy with its
/// checkpoints, run by Burn's `SupervisedTraining`. Returns the trained network and what the
/// strategy recorded.
#[allow(clippy::too_many_arguments)]
fn fit(
    config: &RunConfig,
    data: RunData,
    devices: Devices,
    start: Start,
    model: ElaClassifier,
    pruning: Option<PruningController>,
    clock: EpochClock,
    started: Instant,
) -> Result<(ela_model::ElaResNet, Arc<Mutex<StrategyState>>)> {
    let device_batch = devices.batch(config);
    let n_devices = devices.workers.len();
    let batcher = ImageBatcher::new(data.shape, data.normalization);
    let n_train = data.train.len();
    let loader_train = DataLoaderBuilder::new(batcher.clone())
        .batch_size(device_batch)
        .num_workers(config.workers)
        .build(EpochShuffled::new(
            data.train.clone(),
            n_train,
            config.seed,
            clock.clone(),
        ));
    let loader_test = DataLoaderBuilder::new(batcher)
        .batch_size(config.batch_size)
        .num_workers(config.workers)
        .build(data.test.clone());
    // Optimizer steps per epoch: the last device's share (Burn's split gives it the remainder)
    // in batches of `device_batch`.
    let last_share = n_train - (n_devices - 1) * (n_train / n_devices);
    let lr_schedule = EpochSchedule::new(
        config.lr,
        schedule_kind(config),
        config.warmup_epochs,
        config.epochs,
        last_share.div_ceil(device_batch),
    );
    let optim = sgd(
        config.momentum,
        config.weight_decay,
        config.decay_norm_and_bias,
        &model,
    );
    let learner = Learner::new(model, optim, lr_schedule);
    let run_path = start.run.path().to_path_buf();
    let checkpoints = checkpoint_dir(&run_path);
    let resumed_epoch = start.resumed.as_ref().map(|s| s.epoch);
    let (strategy, state) = PruningStrategy::new(
        devices.main(),
        pruning,
        start.run,
        clock,
        checkpoints.clone(),
        start.resumed.as_ref(),
    );
    let strategy = strategy.with_workers(devices.workers).with_start(started);
    let mut training = SupervisedTraining::new(run_path.join("burn"), loader_train, loader_test)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .num_epochs(config.epochs)
        .renderer(Box::new(BarRenderer::new()))
        .with_custom_checkpointers(
            AtomicCheckpointer::new(&checkpoints, RECORDS[0]),
            AtomicCheckpointer::new(&checkpoints, RECORDS[1]),
            AtomicCheckpointer::new(&checkpoints, RECORDS[2]),
        )
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(KEEP))
        .with_training_strategy(TrainingStrategy::Custom(Arc::new(strategy)));
    if let Some(epoch) = resumed_epoch {
        training = training.checkpoint(epoch);
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
    Ok((result.model.net, state))
}

/// The results: the final weights and `summary.json`.
fn finish(
    config: &RunConfig,
    run_path: &Path,
    (net, state): (ela_model::ElaResNet, &Mutex<StrategyState>),
    device: String,
    revision: String,
) -> Result<RunSummary> {
    let state = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(err) = &state.error {
        bail!("training stopped: {err}");
    }
    let metrics = state.run.metrics();
    let last = metrics.last().context("training ran no epoch")?;
    net.save_safetensors(&run_path.join("model.safetensors"))?;
    let skipped: Vec<usize> = net
        .skip_flags()
        .iter()
        .enumerate()
        .filter_map(|(i, &s)| s.then_some(i))
        .collect();
    let summary = RunSummary {
        run_dir: run_path.to_path_buf(),
        git_revision: revision,
        seed: config.seed,
        device,
        parameters: net.parameter_count(),
        test_acc: last.test_acc,
        test_loss: last.test_loss,
        skipped,
        train_seconds: metrics.iter().map(|m| m.train_seconds).collect(),
        total_seconds: state.total_seconds(),
        resume_overrides: config.resume_overrides.clone(),
    };
    write_json(&run_path.join("summary.json"), &summary)?;
    Ok(summary)
}
