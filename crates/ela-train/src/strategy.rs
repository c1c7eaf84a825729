//! The pruning learning strategy: Burn's single-device epoch loop, plus ELA's pruning step.
//!
//! Burn 0.22's learner has no callbacks; a custom [`SupervisedLearningStrategy`] is the hook.
//! This one runs the same train/validate loop as Burn's default single-device strategy, and
//! drives the task-agnostic [`PruningController`]:
//! - before each epoch the controller switches the model's [`crate::pruning::ScoreProbe`] on in
//!   window epochs, so every training forward pass also returns per-block KL scores, summed
//!   **on the device** (one read-back per epoch);
//! - after each epoch the controller takes its decision at a window's end and sets the model's
//!   shared skip flags in place: parameters, optimizer state and learning-rate schedule carry
//!   on unchanged;
//! - the strategy records per-epoch metrics (accumulated on the device too) and every decision
//!   in the run directory.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::data::dataloader::split::split_dataloader;
use burn::data::dataloader::{DataLoaderIterator, Progress};
use burn::optim::GradientsAccumulator;
use burn::prelude::*;
use burn::tensor::FloatDType;
use burn::train::train::MultiDevicesTrainStep;
use burn::train::{
    ClassificationOutput, EventProcessorTraining, Interrupter, Learner, LearnerEvent,
    SupervisedLearningStrategy, SupervisedTrainingEventProcessor, TrainLoader, TrainOutput,
    TrainingComponents, TrainingItem, ValidLoader,
};
use ela_model::AttentionKind;

use crate::attention::AttentionAccumulator;
use crate::checkpoint::{TrainingState, save_state};
use crate::model::{ElaClassifier, ElaTrainOutput};
use crate::pruning::{PruningController, ScoreSums, WindowState};
use ela_data::dataset::EpochClock;
use ela_records::{EpochMetrics, RunDir};

/// `first_bad`'s value while every loss of the epoch is finite.
const NO_BAD_STEP: f64 = 1e9;

/// What the strategy leaves behind for the caller.
#[derive(Debug)]
pub struct StrategyState {
    /// The run directory with the metrics so far.
    pub run: RunDir,
    /// ELA's pruning step (ELA runs only), with its decisions so far.
    pub pruning: Option<PruningController>,
    /// Why the strategy stopped training early, if it did.
    pub error: Option<String>,
    /// Wall seconds of the run's earlier processes (a resumed run), up to their last checkpoint.
    seconds_before: f64,
    /// When this process started the run.
    started: Instant,
}

impl StrategyState {
    /// Wall seconds of the whole run so far: this process's, plus those of the processes before
    /// a resume, up to the checkpoint it resumed from.
    pub fn total_seconds(&self) -> f64 {
        self.seconds_before + self.started.elapsed().as_secs_f64()
    }
}

/// The learning strategy; see the module docs.
pub struct PruningStrategy {
    device: Device,
    /// Data-parallel workers' devices (the first is `device`); empty for one device.
    workers: Vec<Device>,
    state: Arc<Mutex<StrategyState>>,
    clock: EpochClock,
    checkpoints: std::path::PathBuf,
}

impl PruningStrategy {
    /// A strategy training on `device` (an autodiff device); `pruning` is `None` for runs that
    /// do not prune (plain, MRLA-B, MRLA-L). It sets `clock` to each epoch before its data is
    /// read, and writes its part of every checkpoint into `checkpoints`. `resumed` is the state
    /// a resumed run continues from.
    pub fn new(
        device: Device,
        mut pruning: Option<PruningController>,
        run: RunDir,
        clock: EpochClock,
        checkpoints: std::path::PathBuf,
        resumed: Option<&TrainingState>,
    ) -> (Self, Arc<Mutex<StrategyState>>) {
        if let (Some(controller), Some(r)) = (pruning.as_mut(), resumed) {
            let window = WindowState {
                sum: r.window_sum.clone(),
                batches: r.window_batches,
            };
            controller.restore(window, r.pruning.clone());
        }
        let state = Arc::new(Mutex::new(StrategyState {
            run,
            pruning,
            error: None,
            seconds_before: resumed.map_or(0.0, |r| r.elapsed_seconds),
            started: Instant::now(),
        }));
        let strategy = Self {
            device,
            workers: Vec::new(),
            state: state.clone(),
            clock,
            checkpoints,
        };
        (strategy, state)
    }

    /// Counts the run's time from `started` (when the process began it) rather than from the
    /// strategy's creation.
    pub fn with_start(self, started: Instant) -> Self {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).started = started;
        self
    }

    /// Trains data-parallel on `devices` (autodiff devices; the first is the strategy's
    /// device, which holds the model, the optimizer and validation), as Burn's multi-device
    /// strategy with the optimizer on the main device: every step, each device takes the next
    /// batch of its share of the epoch, runs forward and backward on a copy of the model, and
    /// the gradients, moved to the main device and summed, make one optimizer step. The
    /// model's loss scaling (see [`ElaClassifier::with_grad_scale`]) makes that sum the mean.
    /// KL scores and metrics are summed over all devices' batches.
    pub fn with_workers(mut self, devices: Vec<Device>) -> Self {
        if devices.len() > 1 {
            self.device = devices[0].clone();
            self.workers = devices;
        }
        self
    }
}

/// Where the training batches come from: one loader on the strategy's device, or one share of
/// the epoch per data-parallel device with Burn's step that runs them.
enum TrainFeed {
    One(TrainLoader<ElaClassifier>),
    Parallel(
        Vec<TrainLoader<ElaClassifier>>,
        MultiDevicesTrainStep<ElaClassifier>,
    ),
}

/// Sums over one epoch's training batches, on the main device.
struct TrainTotals {
    totals: SplitTotals,
    /// KL scores summed over the window batches.
    scores: ScoreSums,
    /// The first step whose loss was NaN or infinite (NO_BAD_STEP while there is none): tracked
    /// on the device, no read-back per step.
    first_bad: Option<Tensor<1>>,
}

impl TrainTotals {
    fn new() -> Self {
        Self {
            totals: SplitTotals::new(),
            scores: ScoreSums::new(),
            first_bad: None,
        }
    }

    /// Adds one batch's output, computed on `device` or elsewhere, at optimizer step `step`.
    fn add(&mut self, item: &mut ElaTrainOutput, device: &Device, step: usize) {
        let c = &item.classification;
        let out = ClassificationOutput::new(
            c.loss.clone().to_device(device),
            c.output.clone().to_device(device),
            c.targets.clone().to_device(device),
        );
        self.totals.add(&out);
        let bad = out
            .loss
            .without_autodiff()
            .is_finite()
            .bool_not()
            .float()
            .cast(FloatDType::F32);
        let at = bad.clone() * step as f64 + (bad.neg() + 1.0) * NO_BAD_STEP;
        self.first_bad = Some(match self.first_bad.take() {
            Some(f) => f.min_pair(at),
            None => at,
        });
        if let Some(scores) = item.scores.take() {
            self.scores.add(scores, device);
        }
    }
}

/// Device-side sums of loss and correct predictions over a split.
struct SplitTotals {
    loss: Option<Tensor<1>>,
    correct: Option<Tensor<1>>,
    items: usize,
}

impl SplitTotals {
    fn new() -> Self {
        Self {
            loss: None,
            correct: None,
            items: 0,
        }
    }

    fn add(&mut self, out: &ClassificationOutput) {
        let batch = out.targets.dims()[0];
        // Sums are kept in f32 whatever the training precision: an f16 sum of a whole epoch
        // would overflow or round away the last batches.
        let loss = out.loss.clone().without_autodiff().cast(FloatDType::F32) * batch as f64;
        let predicted = out
            .output
            .clone()
            .without_autodiff()
            .argmax(1)
            .reshape([batch]);
        let correct = predicted
            .equal(out.targets.clone().without_autodiff())
            .int()
            .sum()
            .float()
            .cast(FloatDType::F32);
        self.loss = Some(match self.loss.take() {
            Some(l) => l + loss,
            None => loss,
        });
        self.correct = Some(match self.correct.take() {
            Some(c) => c + correct,
            None => correct,
        });
        self.items += batch;
    }

    /// Mean loss and accuracy (%): the split's one read-back.
    fn read(self) -> (f64, f64) {
        let n = self.items.max(1) as f64;
        let scalar = |t: Option<Tensor<1>>| t.map_or(0.0, |t| t.into_scalar::<f32>() as f64);
        (scalar(self.loss) / n, 100.0 * scalar(self.correct) / n)
    }
}

impl SupervisedLearningStrategy<ElaClassifier> for PruningStrategy {
    fn fit(
        &self,
        components: TrainingComponents<ElaClassifier>,
        mut learner: Learner<ElaClassifier>,
        dataloader_train: TrainLoader<ElaClassifier>,
        dataloader_valid: ValidLoader<ElaClassifier>,
        starting_epoch: usize,
    ) -> (
        ElaClassifier,
        SupervisedTrainingEventProcessor<ElaClassifier>,
    ) {
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

        for epoch in starting_epoch..=components.num_epochs {
            let epoch_start = Instant::now();
            // Data order and augmentation of this epoch depend on the epoch alone.
            self.clock.set(epoch);
            let skipped_now: Vec<usize> = learner
                .model()
                .net
                .skip_flags()
                .iter()
                .enumerate()
                .filter_map(|(i, &s)| s.then_some(i))
                .collect();
            if let Some(controller) = &state.pruning {
                controller.start_epoch(epoch);
            }

            // Training split.
            interrupter.fail_on_error(processor.process_train(LearnerEvent::StartSplit {
                epoch_number: epoch,
                total_items: total_train_items,
            }));
            let mut sums = TrainTotals::new();
            let main = self.device.clone();
            match &feed {
                TrainFeed::One(dl_train) => each_batch(
                    dl_train.iter(),
                    &interrupter,
                    |batch, progress, iteration| {
                        let TrainOutput { grads, mut item } = learner.train_step(batch);
                        learner.lr_step();
                        learner.optimizer_step(grads);
                        sums.add(&mut item, &main, iteration);
                        let item = TrainingItem::new(
                            item,
                            progress,
                            Some(iteration),
                            Some(learner.lr_current()),
                        );
                        interrupter.fail_on_error(
                            processor.process_train(LearnerEvent::ProcessedItem(item)),
                        );
                    },
                ),
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
                }
            }
            let TrainTotals {
                totals,
                scores,
                first_bad,
            } = sums;
            let (train_loss, train_acc) = totals.read();
            let train_seconds = epoch_start.elapsed().as_secs_f64();
            let bad_step = first_bad.map_or(NO_BAD_STEP, |t| t.into_scalar::<f32>() as f64);
            if bad_step < 0.5 * NO_BAD_STEP {
                let lr = learner.lr_current().base();
                let reason = format!(
                    "the training loss became NaN or infinite at epoch {epoch}, step {} \
                     (learning rate {lr:.4}); nothing of this epoch was saved, the last good \
                     checkpoint is {}. Continue with a lower learning rate: \
                     `cargo xtask train --resume {} --lr <lower>`",
                    bad_step as usize,
                    if epoch > 1 {
                        format!("epoch {}", epoch - 1)
                    } else {
                        "none: --resume starts the run again from epoch 1".into()
                    },
                    state.run.path().display()
                );
                interrupter.stop(Some(&reason));
                state.error = Some(reason);
                break;
            }
            interrupter.fail_on_error(processor.process_train(LearnerEvent::EndSplit(epoch)));
            if interrupter.should_stop() {
                break;
            }

            // Validation split.
            interrupter.fail_on_error(processor.process_valid(LearnerEvent::StartSplit {
                epoch_number: epoch,
                total_items: dl_valid.num_items(),
            }));
            let model = learner.model().valid();
            let mut totals = SplitTotals::new();
            // Layer-attention runs also average each block's attention weights (the report's
            // attention maps); the weights are computed by the forward pass anyway.
            let maps = model.net.attention() == AttentionKind::MrlaB;
            let mut attention = AttentionAccumulator::new(model.net.skip_flags().len());
            each_batch(
                dl_valid.iter(),
                &interrupter,
                |batch, progress, iteration| {
                    let (out, weights) = model.evaluate(batch, maps);
                    attention.add(&weights);
                    totals.add(&out);
                    let item = TrainingItem::new(out, progress, Some(iteration), None);
                    interrupter
                        .fail_on_error(processor.process_valid(LearnerEvent::ProcessedItem(item)));
                },
            );
            let (test_loss, test_acc) = totals.read();
            if maps {
                let net = &model.net;
                let record =
                    attention.finish(&net.layout(), &net.skip_flags(), net.skip_mode(), epoch);
                if let Err(err) = state.run.record_attention(record) {
                    let reason = format!("recording the attention maps of epoch {epoch}: {err:#}");
                    interrupter.stop(Some(&reason));
                    state.error = Some(reason);
                }
            }
            interrupter.fail_on_error(processor.process_valid(LearnerEvent::EndSplit(epoch)));
            interrupter.fail_on_error(processor.process_train(LearnerEvent::EndEpoch(epoch)));
            interrupter.fail_on_error(processor.flush());
            if interrupter.should_stop() {
                break;
            }

            // Pruning step.
            let StrategyState { pruning, run, .. } = &mut *state;
            if let Some(controller) = pruning.as_mut() {
                let net = learner.model().net;
                let decided = controller.end_epoch(epoch, scores, &net).and_then(|d| {
                    if d.is_some() {
                        ela_records::write_json(&run.file("pruning.json"), controller.record())?;
                    }
                    Ok(d)
                });
                match decided {
                    Ok(Some(d)) => println!("{}", d.line()),
                    Ok(None) => {}
                    Err(err) => {
                        let reason = format!("pruning step after epoch {epoch}: {err:#}");
                        interrupter.stop(Some(&reason));
                        state.error = Some(reason);
                    }
                }
            }

            let lr = learner.lr_current().base();
            let metrics = EpochMetrics {
                epoch,
                lr,
                train_loss,
                train_acc,
                test_loss,
                test_acc,
                train_seconds,
                epoch_seconds: epoch_start.elapsed().as_secs_f64(),
                skipped: skipped_now,
            };
            println!(
                "epoch {epoch:>3}/{}  lr {lr:.4}  train loss {train_loss:.4} acc {train_acc:6.2}%  \
                 test loss {test_loss:.4} acc {test_acc:6.2}%  {:.1} s (train {train_seconds:.1} s)  \
                 skipped {:?}",
                components.num_epochs, metrics.epoch_seconds, metrics.skipped
            );
            if let Err(err) = state.run.record_epoch(metrics) {
                let reason = format!("recording epoch {epoch}: {err:#}");
                interrupter.stop(Some(&reason));
                state.error = Some(reason);
            }
            if interrupter.should_stop() {
                break;
            }

            // Checkpoint: Burn's records (model, optimizer, schedule), then ours.
            if let Some(cp) = checkpointer.as_mut() {
                cp.checkpoint(&learner, epoch, &event_store);
            }
            let training_state = TrainingState {
                epoch,
                skip_flags: learner.model().net.skip_flags(),
                window_sum: state
                    .pruning
                    .as_ref()
                    .map_or_else(Vec::new, |c| c.state().sum.clone()),
                window_batches: state.pruning.as_ref().map_or(0, |c| c.state().batches),
                pruning: state.pruning.as_ref().map(|c| c.record().clone()),
                metrics: state.run.metrics().to_vec(),
                elapsed_seconds: state.total_seconds(),
            };
            if let Err(err) = save_state(&self.checkpoints, &training_state) {
                let reason = format!("checkpoint after epoch {epoch}: {err:#}");
                interrupter.stop(Some(&reason));
                state.error = Some(reason);
                break;
            }
        }
        if let Some(controller) = &state.pruning {
            controller.stop();
        }
        (learner.model(), processor)
    }
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
