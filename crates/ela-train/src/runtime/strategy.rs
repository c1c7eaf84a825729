//! The runtime's learning strategy: Burn's epoch loop for any [`Task`], plus ELA's pruning step.
//!
//! Burn 0.22's learner has no callbacks; a custom [`SupervisedLearningStrategy`] is the hook.
//! This one runs the train/validate loop of Burn's default strategies (one device, or
//! data-parallel with the optimizer on the main device) and, every epoch:
//! - switches the pruning controller's probe on in window epochs, so every training step also
//!   returns per-block KL scores, summed **on the device** (one read-back per epoch);
//! - sums the task's training values on the device, and stops at the first step whose loss is
//!   NaN or infinite (tracked on the device too);
//! - validates with the task's evaluation;
//! - takes ELA's decision at a window's end and sets the model's shared skip flags in place
//!   (parameters, optimizer state and schedule carry on unchanged);
//! - records the epoch and checkpoints Burn's records and the typed state.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::data::dataloader::split::split_dataloader;
use burn::data::dataloader::{DataLoaderIterator, Progress};
use burn::optim::GradientsAccumulator;
use burn::prelude::*;
use burn::train::train::MultiDevicesTrainStep;
use burn::train::{
    EventProcessorTraining, Interrupter, Learner, LearnerEvent, SupervisedLearningStrategy,
    SupervisedTrainingEventProcessor, TrainLoader, TrainOutput, TrainingComponents, TrainingItem,
    ValidLoader,
};
use ela_data::dataset::EpochClock;
use ela_model::Prunable;
use ela_records::checkpoint::{CheckpointState, WindowSums, save_state};
use ela_records::{EpochRecord, RunDir};

use super::sums::TrainSums;
use super::task::Task;
use crate::pruning::PruningController;

/// What the strategy leaves behind for the caller.
#[derive(Debug)]
pub struct RunState {
    /// The run directory with the epochs so far.
    pub run: RunDir,
    /// ELA's pruning step (ELA runs only), with its decisions so far.
    pub pruning: Option<PruningController>,
    /// Why the strategy stopped training early, if it did.
    pub error: Option<String>,
    /// Optimizer steps taken so far, over every process that trained the run.
    pub steps: usize,
    /// What resumes changed (kept in every checkpoint).
    overrides: Vec<ela_records::ResumeOverride>,
    /// Wall seconds of the run's earlier processes (a resumed run), up to their last checkpoint.
    seconds_before: f64,
    /// When this process started the run.
    started: Instant,
}

impl RunState {
    /// The state of a run that starts (`resumed`: continues) now; `started` is when this
    /// process began it.
    pub fn new(
        run: RunDir,
        pruning: Option<PruningController>,
        resumed: Option<&CheckpointState>,
        overrides: Vec<ela_records::ResumeOverride>,
        started: Instant,
    ) -> Self {
        Self {
            run,
            pruning,
            error: None,
            steps: resumed.map_or(0, |r| r.steps),
            overrides,
            seconds_before: resumed.map_or(0.0, |r| r.elapsed_seconds),
            started,
        }
    }

    /// Wall seconds of the whole run so far: this process's, plus those of the processes before
    /// a resume, up to the checkpoint it resumed from.
    pub fn total_seconds(&self) -> f64 {
        self.seconds_before + self.started.elapsed().as_secs_f64()
    }

    /// Stops the run with `reason` (the caller reports it).
    fn fail(&mut self, interrupter: &Interrupter, reason: String) {
        interrupter.stop(Some(&reason));
        self.error = Some(reason);
    }
}

/// The learning strategy of a task; see the module docs.
pub struct RuntimeStrategy<T: Task> {
    task: Arc<T>,
    device: Device,
    /// Data-parallel workers' devices (the first is `device`); empty for one device.
    workers: Vec<Device>,
    state: Arc<Mutex<RunState>>,
    clock: EpochClock,
    checkpoints: PathBuf,
    seed: u64,
}

impl<T: Task> RuntimeStrategy<T> {
    /// A strategy training `task` on `workers` (autodiff devices; the first holds the model,
    /// the optimizer and validation). It sets `clock` to each epoch before its data is read,
    /// and writes its part of every checkpoint into `checkpoints`.
    pub fn new(
        task: Arc<T>,
        workers: Vec<Device>,
        state: Arc<Mutex<RunState>>,
        clock: EpochClock,
        checkpoints: PathBuf,
        seed: u64,
    ) -> Self {
        let device = workers[0].clone();
        let workers = if workers.len() > 1 {
            workers
        } else {
            Vec::new()
        };
        Self {
            task,
            device,
            workers,
            state,
            clock,
            checkpoints,
            seed,
        }
    }
}

/// Where the training batches come from: one loader on the main device, or one share of the
/// epoch per data-parallel device with Burn's step that runs them.
enum TrainFeed<M: super::task::TaskModel> {
    One(TrainLoader<M>),
    Parallel(Vec<TrainLoader<M>>, MultiDevicesTrainStep<M>),
}

impl<T: Task> SupervisedLearningStrategy<T::Model> for RuntimeStrategy<T> {
    fn fit(
        &self,
        components: TrainingComponents<T::Model>,
        mut learner: Learner<T::Model>,
        dataloader_train: TrainLoader<T::Model>,
        dataloader_valid: ValidLoader<T::Model>,
        starting_epoch: usize,
    ) -> (T::Model, SupervisedTrainingEventProcessor<T::Model>) {
        // One device: the loader feeds it. Several: each worker reads its own share of every
        // epoch (Burn's split), already on its device.
        let dl_valid = dataloader_valid.to_device(&self.device.clone().inner());
        let total_train_items = dataloader_train.num_items();
        let feed = if self.workers.is_empty() {
            TrainFeed::One(dataloader_train.to_device(&self.device))
        } else {
            TrainFeed::Parallel(
                split_dataloader(dataloader_train, &self.workers),
                MultiDevicesTrainStep::new(&self.workers),
            )
        };
        learner.fork(&self.device);
        let mut processor = components.event_processor;
        let interrupter = components.interrupter;
        let mut checkpointer = components.checkpointer;
        let event_store = components.event_store;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let task = &*self.task;

        for epoch in starting_epoch..=components.num_epochs {
            let epoch_start = Instant::now();
            // Data order, augmentation and sampling of this epoch depend on the epoch alone.
            self.clock.set(epoch);
            let skipped_now = skipped(&learner.model());
            if let Some(controller) = &state.pruning {
                controller.start_epoch(epoch);
            }

            // Training split.
            interrupter.fail_on_error(processor.process_train(LearnerEvent::StartSplit {
                epoch_number: epoch,
                total_items: total_train_items,
            }));
            let mut sums = TrainSums::default();
            let main = self.device.clone();
            let steps = match &feed {
                TrainFeed::One(dl_train) => {
                    let mut steps = 0;
                    each_batch(dl_train.iter(), &interrupter, |batch, progress, i| {
                        steps = i;
                        let TrainOutput { grads, mut item } = learner.train_step(batch);
                        learner.lr_step();
                        learner.optimizer_step(grads);
                        sums.add(&mut item, &main, i);
                        let item =
                            TrainingItem::new(item, progress, Some(i), Some(learner.lr_current()));
                        interrupter.fail_on_error(
                            processor.process_train(LearnerEvent::ProcessedItem(item)),
                        );
                    });
                    steps
                }
                TrainFeed::Parallel(loaders, multi) => {
                    let mut iterators: Vec<_> = loaders.iter().map(|l| l.iter()).collect();
                    let (mut step, mut item_count) = (0, 0);
                    loop {
                        let model = learner.model();
                        let (outputs, progress) = match multi.step(&mut iterators, &model) {
                            Ok((outputs, _)) if outputs.is_empty() => break,
                            Ok(result) => result,
                            Err(err) => {
                                interrupter.fail(err);
                                break;
                            }
                        };
                        step += 1;
                        let mut accumulator = GradientsAccumulator::new();
                        let mut items = Vec::with_capacity(outputs.len());
                        for output in outputs {
                            let TrainOutput { grads, item } = output.output;
                            accumulator.accumulate(&model, grads.to_device(&main, &model));
                            items.push(item);
                        }
                        learner.lr_step();
                        learner.optimizer_step(accumulator.grads());
                        for mut item in items {
                            sums.add(&mut item, &main, step);
                            item_count += 1;
                            let item = TrainingItem::new(
                                item,
                                progress.clone(),
                                Some(item_count),
                                Some(learner.lr_current()),
                            );
                            interrupter.fail_on_error(
                                processor.process_train(LearnerEvent::ProcessedItem(item)),
                            );
                        }
                        if interrupter.should_stop() {
                            break;
                        }
                    }
                    step
                }
            };
            let read = sums.read();
            let train_seconds = epoch_start.elapsed().as_secs_f64();
            if let Some(bad) = read.first_bad {
                let lr = learner.lr_current().base();
                let reason = format!(
                    "the training loss became NaN or infinite at epoch {epoch}, step {bad} \
                     (learning rate {lr:.4}); nothing of this epoch was saved, the last good \
                     checkpoint is {}. Continue with a lower learning rate: \
                     `cargo xtask train --resume {} --lr <lower>`",
                    if epoch > 1 {
                        format!("epoch {}", epoch - 1)
                    } else {
                        "none: --resume starts the run again from epoch 1".into()
                    },
                    state.run.path().display()
                );
                state.fail(&interrupter, reason);
                break;
            }
            state.steps += steps;
            interrupter.fail_on_error(processor.process_train(LearnerEvent::EndSplit(epoch)));
            if interrupter.should_stop() {
                break;
            }
            let mut values = task.train_values(&read.values, read.items, read.batches);

            // Validation split.
            interrupter.fail_on_error(processor.process_valid(LearnerEvent::StartSplit {
                epoch_number: epoch,
                total_items: dl_valid.num_items(),
            }));
            let model = learner.model().valid();
            let mut validation = task.start_validation(&model);
            each_batch(dl_valid.iter(), &interrupter, |batch, progress, i| {
                let out = task.validate(&model, batch, &mut validation);
                let item = TrainingItem::new(out, progress, Some(i), None);
                interrupter
                    .fail_on_error(processor.process_valid(LearnerEvent::ProcessedItem(item)));
            });
            if interrupter.should_stop() {
                break;
            }
            match task.finish_validation(&model, validation, epoch, &mut state.run) {
                Ok(v) => values.extend(v),
                Err(err) => {
                    state.fail(
                        &interrupter,
                        format!("validation of epoch {epoch}: {err:#}"),
                    );
                    break;
                }
            }
            interrupter.fail_on_error(processor.process_valid(LearnerEvent::EndSplit(epoch)));
            interrupter.fail_on_error(processor.process_train(LearnerEvent::EndEpoch(epoch)));
            interrupter.fail_on_error(processor.flush());
            if interrupter.should_stop() {
                break;
            }

            // Pruning step.
            let RunState { pruning, run, .. } = &mut *state;
            if let Some(controller) = pruning.as_mut() {
                let model = learner.model();
                let decided = controller
                    .end_epoch(epoch, read.scores, &model)
                    .and_then(|d| {
                        if d.is_some() {
                            ela_records::write_json(
                                &run.file("pruning.json"),
                                controller.record(),
                            )?;
                        }
                        Ok(d)
                    });
                match decided {
                    Ok(Some(d)) => println!("{}", d.line()),
                    Ok(None) => {}
                    Err(err) => {
                        state.fail(
                            &interrupter,
                            format!("pruning step after epoch {epoch}: {err:#}"),
                        );
                        break;
                    }
                }
            }

            // The epoch's record.
            let lr = learner.lr_current().base();
            let record = EpochRecord {
                epoch,
                lr,
                values,
                train_seconds,
                epoch_seconds: epoch_start.elapsed().as_secs_f64(),
                skipped: skipped_now,
            };
            println!(
                "epoch {epoch:>3}/{}  lr {lr:.4}  {}  {:.1} s (train {train_seconds:.1} s)  \
                 skipped {:?}",
                components.num_epochs,
                task.epoch_line(&record.values),
                record.epoch_seconds,
                record.skipped
            );
            let recorded = state
                .run
                .record_epoch(record)
                .and_then(|()| task.write_records(&state.run, state.run.epochs()));
            if let Err(err) = recorded {
                state.fail(&interrupter, format!("recording epoch {epoch}: {err:#}"));
                break;
            }

            // Checkpoint: Burn's records (model, optimizer, schedule), then the state.
            if let Some(cp) = checkpointer.as_mut() {
                cp.checkpoint(&learner, epoch, &event_store);
            }
            if interrupter.should_stop() {
                break;
            }
            let checkpoint = CheckpointState {
                epoch,
                seed: self.seed,
                steps: state.steps,
                skip_flags: learner.model().skip_flags(),
                window: state
                    .pruning
                    .as_ref()
                    .map_or_else(WindowSums::default, |c| c.state().clone()),
                pruning: state.pruning.as_ref().map(|c| c.record().clone()),
                epochs: state.run.epochs().to_vec(),
                elapsed_seconds: state.total_seconds(),
                resume_overrides: state.overrides.clone(),
            };
            if let Err(err) = save_state(&self.checkpoints, &checkpoint) {
                state.fail(
                    &interrupter,
                    format!("checkpoint after epoch {epoch}: {err:#}"),
                );
                break;
            }
        }
        if let Some(controller) = &state.pruning {
            controller.stop();
        }
        (learner.model(), processor)
    }
}

/// The skipped blocks of `model`, ascending.
fn skipped(model: &impl Prunable) -> Vec<usize> {
    let flags = model.skip_flags();
    (0..flags.len()).filter(|&i| flags[i]).collect()
}

/// Feeds every batch of `iterator` to `step`, with the loader's progress and the 1-based
/// iteration, until the loader ends, a batch fails to load (recorded on the interrupter) or the
/// interrupter says stop.
fn each_batch<I>(
    mut iterator: Box<dyn DataLoaderIterator<I> + '_>,
    interrupter: &Interrupter,
    mut step: impl FnMut(I, Progress, usize),
) {
    let mut iteration = 0;
    while let Some(batch) = iterator.next() {
        let batch = match batch {
            Ok(batch) => batch,
            Err(err) => {
                interrupter.fail(err);
                break;
            }
        };
        iteration += 1;
        let progress = iterator.progress();
        step(batch, progress, iteration);
        if interrupter.should_stop() {
            break;
        }
    }
}
