//! From a task's configuration to a finished run directory: [`train`] and [`resume`] run the
//! same short sequence of steps for any [`Task`]: the settings, the data, the devices, the run
//! directory and where the run starts, the model with ELA's pruning step, the start records, the
//! training itself on Burn's `SupervisedTraining`, and the results.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::{Learner, SupervisedTraining, TrainingStrategy};
use ela_data::dataset::EpochClock;
use ela_model::Prunable;
use ela_records::checkpoint::{CheckpointState, KEEP, RECORDS, checkpoint_dir};
use ela_records::lock::RunLock;
use ela_records::task::TASK_KEY;
use ela_records::{PruningRecord, RunSummary, SUMMARY_FILE, git_revision};

use super::checkpoint::AtomicCheckpointer;
use super::devices::Devices;
use super::progress::BarRenderer;
use super::session::{self, Start};
use super::settings::RunSettings;
use super::strategy::{RunState, RuntimeStrategy};
use super::task::{Task, TaskConfig, TaskModel};
use crate::backend;
use crate::pruning::{PruningController, ScoreProbe};

/// Trains a new run of task `T` as `config` says, and writes its run directory.
pub fn train<T: Task>(config: T::Config) -> Result<RunSummary> {
    run::<T>(config, None)
}

/// Continues the run of task `T` in `dir` from its newest complete checkpoint, with the
/// configuration in its `config.json`: same model, optimizer state, learning-rate schedule,
/// skip mask, pending KL window sums and data order as if it had never stopped. A run that
/// stopped before its first checkpoint was complete starts again from its first epoch.
///
/// `lr` replaces the base learning rate (after a divergence); the schedule keeps its position.
/// The change is recorded in `config.json` with the epoch it takes effect from, so a later
/// resume keeps it, and in the checkpoints and `summary.json`.
pub fn resume<T: Task>(dir: &Path, lr: Option<f64>) -> Result<RunSummary> {
    // The directory is ours before anything in it is read.
    let lock = RunLock::acquire_existing(dir)?;
    let config = session::resumed_config::<T>(&lock, lr)?;
    run::<T>(config, Some(lock))
}

fn run<T: Task>(config: T::Config, resuming: Option<RunLock>) -> Result<RunSummary> {
    let started = Instant::now();
    let settings = config.settings()?;
    // Data and devices first: a missing dataset or backend leaves no run directory behind.
    // The data of epoch k depends on (seed, k) alone: a resumed run reads exactly the batches
    // an uninterrupted one would.
    let clock = EpochClock::new();
    let task = Arc::new(T::open(&config, &clock)?);
    let devices = Devices::open(&settings, task.train_items())?;
    // A new run's model (its pretrained weights checked) before its directory exists; a resumed
    // run's from its checkpoint.
    let (start, (model, pruning)) = match resuming {
        None => {
            let built = build_model(&*task, &settings, &devices, None)?;
            (session::open(&settings, None)?, built)
        }
        Some(lock) => {
            let start = session::open(&settings, Some(lock))?;
            let built = build_model(&*task, &settings, &devices, start.resumed.as_ref())?;
            (start, built)
        }
    };
    let revision = git_revision();
    write_start_records(&*task, &settings, &start, pruning.as_ref(), &revision)?;
    print_banner(
        &*task,
        &settings,
        &start,
        &devices,
        &model,
        pruning.as_ref(),
    );
    let device = format!("{:?}", devices.base);
    let run_path = start.run.path().to_path_buf();
    let state = fit(
        &task, &settings, devices, start, model, pruning, clock, started,
    )?;
    finish(&*task, &settings, &run_path, state, device, revision)
}

/// The task's model with deterministic parameter ids, the checkpoint's skip mask when resuming,
/// the loss scaling of data parallelism, and ELA's pruning step for ELA runs.
fn build_model<T: Task>(
    task: &T,
    settings: &RunSettings,
    devices: &Devices,
    resumed: Option<&CheckpointState>,
) -> Result<(T::Model, Option<PruningController>)> {
    let device = devices.main();
    device.seed(settings.seed);
    let model = task.model(&device, resumed.is_some())?;
    if let Some(state) = resumed {
        model
            .set_skip_flags(&state.skip_flags)
            .context("--resume: the checkpoint's skip mask does not fit the model")?;
    }
    let model = model.with_grad_scale(1.0 / devices.workers.len() as f32);
    let Some(setup) = &settings.pruning else {
        return Ok((model, None));
    };
    let layout = model.layout();
    let record = PruningRecord {
        method: setup.method,
        kl_direction: setup.kl_direction,
        eps: setup.kl_eps,
        skip_mode: setup.skip_mode,
        blocks_per_stage: layout.blocks_per_stage().to_vec(),
        schedule: setup.windows.to_string(),
        windows: Vec::new(),
        final_mask: vec![false; layout.num_blocks()],
    };
    let probe = ScoreProbe::new(layout, setup.kl_eps, setup.kl_direction);
    let mut controller =
        PruningController::new(setup.windows.clone(), setup.method, probe.clone(), record);
    if let Some(state) = resumed {
        controller.restore(state.window.clone(), state.pruning.clone());
    }
    Ok((model.with_probe(probe), Some(controller)))
}

/// `config.json` (the task tag, the configuration, what the run derived from it, the code's
/// revision) and the empty `pruning.json` of a run that starts; a resume rewrites
/// `config.json` only to record what it changed.
fn write_start_records<T: Task>(
    task: &T,
    settings: &RunSettings,
    start: &Start,
    pruning: Option<&PruningController>,
    revision: &str,
) -> Result<()> {
    let run = &start.run;
    if start.fresh() || !settings.resume_overrides.is_empty() {
        let mut config = serde_json::json!({ TASK_KEY: T::KIND });
        let fields = serde_json::to_value(task.config()).context("serializing config.json")?;
        if let (Some(all), serde_json::Value::Object(fields)) = (config.as_object_mut(), fields) {
            all.extend(fields);
        }
        config["out"] = serde_json::json!(run.path());
        config["resolved_lr_schedule"] = serde_json::to_value(&settings.schedule)?;
        if let Some(setup) = &settings.pruning {
            config["resolved_pruning"] = serde_json::to_value(setup)?;
        }
        for (key, value) in task.derived() {
            config[key] = value;
        }
        config["git_revision"] = serde_json::json!(revision);
        ela_records::write_json(&run.file("config.json"), &config)?;
    }
    if let Some(p) = pruning
        && start.fresh()
    {
        ela_records::write_json(&run.file("pruning.json"), p.record())?;
    }
    // The task's own files, holding exactly the epochs the run continues from.
    task.write_records(run, run.epochs())
}

/// What the run is, where, on what, and where it resumes.
fn print_banner<T: Task>(
    task: &T,
    settings: &RunSettings,
    start: &Start,
    devices: &Devices,
    model: &T::Model,
    pruning: Option<&PruningController>,
) {
    println!("ela: {}", task.describe(model));
    let n = devices.workers.len();
    println!(
        "backend {:?} | device {:?}{} | precision {} | run dir {}",
        settings.backend,
        devices.base,
        if n > 1 {
            format!(
                " (+{} data-parallel, {} images each)",
                n - 1,
                devices.batch(settings.batch_size)
            )
        } else {
            String::new()
        },
        settings.precision,
        start.run.path().display()
    );
    if let Some(kernels) = backend::kernels_line(settings.backend) {
        println!("kernels: {kernels}");
    }
    if let (Some(p), Some(setup)) = (pruning, &settings.pruning) {
        println!(
            "pruning: {} windows [{}], skip mode {}",
            p.method().name(),
            p.schedule(),
            setup.skip_mode
        );
    }
    if let Some(state) = &start.resumed {
        let skipped: Vec<usize> = (0..state.skip_flags.len())
            .filter(|&i| state.skip_flags[i])
            .collect();
        println!(
            "resuming after epoch {} of {} (skipping {skipped:?})",
            state.epoch, settings.epochs
        );
    }
}

/// Trains: the task's loaders, SGD and the learning-rate schedule, the runtime's strategy with
/// its checkpoints, run by Burn's `SupervisedTraining`. Returns the trained model and what the
/// strategy recorded.
#[allow(clippy::too_many_arguments)]
fn fit<T: Task>(
    task: &Arc<T>,
    settings: &RunSettings,
    devices: Devices,
    start: Start,
    model: T::Model,
    pruning: Option<PruningController>,
    clock: EpochClock,
    started: Instant,
) -> Result<(T::Model, Arc<Mutex<RunState>>)> {
    let device_batch = devices.batch(settings.batch_size);
    let loaders = task.loaders(device_batch, &clock)?;
    let steps = devices.steps_per_epoch(loaders.train.num_items(), loaders.train_batch);
    let schedule = settings.schedule.stepped(settings.epochs, steps);
    let optim = settings.sgd.init(&model);
    let learner = Learner::new(model, optim, schedule);
    let run_path = start.run.path().to_path_buf();
    let checkpoints = checkpoint_dir(&run_path);
    let resumed_epoch = start.resumed.as_ref().map(|s| s.epoch);
    let state = Arc::new(Mutex::new(RunState::new(
        start.run,
        pruning,
        start.resumed.as_ref(),
        settings.resume_overrides.clone(),
        started,
    )));
    let strategy = RuntimeStrategy::new(
        task.clone(),
        devices.workers,
        state.clone(),
        clock,
        checkpoints.clone(),
        settings.seed,
    );
    let training = SupervisedTraining::new(run_path.join("burn"), loaders.train, loaders.valid);
    let mut training = T::metrics(training)
        .num_epochs(settings.epochs)
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
    Ok((result.model, state))
}

/// The results: the final weights and `summary.json`, which marks the run finished.
fn finish<T: Task>(
    task: &T,
    settings: &RunSettings,
    run_path: &Path,
    (model, state): (T::Model, Arc<Mutex<RunState>>),
    device: String,
    revision: String,
) -> Result<RunSummary> {
    let state = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(err) = &state.error {
        bail!("training stopped: {err}");
    }
    let epochs = state.run.epochs();
    let last = epochs.last().context("training ran no epoch")?;
    task.save_model(&model, run_path)?;
    let flags = model.skip_flags();
    let (parameters, trainable_parameters) = model.parameter_counts();
    let summary = RunSummary {
        task: T::KIND,
        run_dir: run_path.to_path_buf(),
        git_revision: revision,
        seed: settings.seed,
        device,
        parameters,
        trainable_parameters,
        epochs: last.epoch,
        final_values: last.values.clone(),
        skipped: (0..flags.len()).filter(|&i| flags[i]).collect(),
        train_seconds: epochs.iter().map(|m| m.train_seconds).collect(),
        total_seconds: state.total_seconds(),
        resume_overrides: settings.resume_overrides.clone(),
    };
    ela_records::write_json(&run_path.join(SUMMARY_FILE), &summary)?;
    Ok(summary)
}
