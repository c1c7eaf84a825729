//! What a task supplies to the runtime: its configuration ([`TaskConfig`]), its model with
//! Burn's train and inference steps ([`TaskModel`], whose training output is a [`StepOutput`]),
//! and the rest in one [`Task`]: its data, the training values of an epoch, its evaluation and
//! its records.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use burn::data::dataloader::DataLoader;
use burn::prelude::*;
use burn::train::{InferenceStep, ItemLazy, LearnerModel, TrainStep};
use ela_data::dataset::EpochClock;
use ela_model::Prunable;
use ela_records::{EpochRecord, RunDir, TaskKind, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::settings::RunSettings;
use crate::pruning::ScoreProbe;

/// A task's resolved configuration: what `config.json` holds beside the task tag, and what
/// `--resume DIR` reads back.
pub trait TaskConfig: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The runtime's settings, every value checked: a bad value is an error naming its flag.
    fn settings(&self) -> Result<RunSettings>;
    /// Replaces the base learning rate (`--resume DIR --lr X`).
    fn set_lr(&mut self, lr: f64);
    /// Records what a resume changed, so that a later resume keeps it.
    fn push_override(&mut self, change: ela_records::ResumeOverride);
    /// Points the configuration at its run directory (where `--resume` found it).
    fn set_out(&mut self, dir: &Path);
}

/// What a training step returns, beside what Burn's metrics read.
pub trait StepOutput: ItemLazy {
    /// The values this batch adds to the epoch's training sums, `[k]` in f32 off the autodiff
    /// graph (see [`Task::train_values`]).
    fn sums(&self) -> Tensor<1>;
    /// Images in the batch.
    fn items(&self) -> usize;
    /// The minimized loss, `[1]` (the runtime stops at the first one that is not finite).
    fn loss(&self) -> Tensor<1>;
    /// The batch's per-block KL scores (`[num_blocks]`, window epochs of ELA runs), taken out.
    fn take_scores(&mut self) -> Option<Tensor<1>>;
}

/// The model a task trains: Burn's train and inference steps, ELA's skip flags, and the two
/// settings the runtime gives it.
pub trait TaskModel: LearnerModel + Prunable + TrainStep<Output: StepOutput> {
    /// The model with the probe of ELA's pruning step (its training step returns KL scores while
    /// the probe collects).
    fn with_probe(self, probe: ScoreProbe) -> Self;
    /// The model with its loss scaled by `factor` before the backward pass: `1 / n` with `n`
    /// data-parallel devices, so that their summed gradients are the mean's.
    fn with_grad_scale(self, factor: f32) -> Self;
    /// Parameters as PyTorch counts them: all, and those that train.
    fn parameter_counts(&self) -> (usize, usize);
}

/// The loaders of a run.
pub struct Loaders<M: TaskModel> {
    /// The training split, in batches of one device's share of a step.
    pub train: Arc<dyn DataLoader<<M as TrainStep>::Input>>,
    /// Items of the training loader per batch (images, or 1 where an item is a whole batch).
    pub train_batch: usize,
    /// The evaluation split.
    pub valid: Arc<dyn DataLoader<<M as InferenceStep>::Input>>,
}

/// A task on the runtime; see the module docs of [`crate::runtime`].
pub trait Task: Sized + Send + Sync + 'static {
    /// Its configuration.
    type Config: TaskConfig;
    /// Its model.
    type Model: TaskModel;
    /// What a validation pass accumulates.
    type Validation;

    /// Its tag.
    const KIND: TaskKind;

    /// Opens the run's data (before the run directory exists: a missing dataset leaves none).
    /// The data of epoch k may depend on `clock` and the seed alone.
    fn open(config: &Self::Config, clock: &EpochClock) -> Result<Self>;

    /// Its configuration.
    fn config(&self) -> &Self::Config;

    /// One line for the banner: the model and the data.
    fn describe(&self, model: &Self::Model) -> String;

    /// Training items (images): each data-parallel device needs one.
    fn train_items(&self) -> usize;

    /// The model on `device`, whose seed the runtime has set: initialized (with pretrained
    /// weights, for a new run), or, with `resuming`, to be restored from a checkpoint.
    fn model(&self, device: &Device, resuming: bool) -> Result<Self::Model>;

    /// The loaders; the training one yields batches of `device_batch` images.
    fn loaders(&self, device_batch: usize, clock: &EpochClock) -> Result<Loaders<Self::Model>>;

    /// Burn metrics of the run (its `burn/` logs).
    fn metrics(
        training: burn::train::SupervisedTraining<Self::Model>,
    ) -> burn::train::SupervisedTraining<Self::Model>;

    /// The training split's values of an epoch (`train_loss`, `loss_rpn_cls`, …) from the sums
    /// of its batches' [`StepOutput::sums`] over `batches` batches of `items` images in all.
    fn train_values(&self, sums: &[f64], items: usize, batches: usize) -> Vec<Value>;

    /// A validation pass begins, on the model in eval mode.
    fn start_validation(&self, model: &Self::Model) -> Self::Validation;

    /// One validation batch; returns what Burn's metrics of the valid split read.
    fn validate(
        &self,
        model: &Self::Model,
        batch: <Self::Model as InferenceStep>::Input,
        state: &mut Self::Validation,
    ) -> <Self::Model as InferenceStep>::Output;

    /// The validation pass's values (`test_acc`, `AP`, …), its records written into `run`.
    fn finish_validation(
        &self,
        model: &Self::Model,
        state: Self::Validation,
        epoch: usize,
        run: &mut RunDir,
    ) -> Result<Vec<Value>>;

    /// Files the task derives from the epochs so far, rewritten after every epoch and when a
    /// run resumes (so they hold exactly the checkpoint's epochs).
    fn write_records(&self, run: &RunDir, epochs: &[EpochRecord]) -> Result<()> {
        let _ = (run, epochs);
        Ok(())
    }

    /// The epoch's values as one line of the log.
    fn epoch_line(&self, values: &[Value]) -> String;

    /// Entries `config.json` holds beside the configuration: what the run derived from it.
    fn derived(&self) -> Vec<(&'static str, serde_json::Value)> {
        Vec::new()
    }

    /// Writes the trained model into the run directory `dir`.
    fn save_model(&self, model: &Self::Model, dir: &Path) -> Result<()>;
}

/// `--task`: which task a command is for (a command-line value for every [`TaskKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskName(pub TaskKind);

/// Every [`TaskName`], in [`ela_records::ALL_TASKS`]' order.
const TASK_NAMES: [TaskName; ela_records::ALL_TASKS.len()] = {
    let mut out = [TaskName(TaskKind::Classify); ela_records::ALL_TASKS.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = TaskName(ela_records::ALL_TASKS[i]);
        i += 1;
    }
    out
};

impl clap::ValueEnum for TaskName {
    fn value_variants<'a>() -> &'a [Self] {
        &TASK_NAMES
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.0.name()))
    }
}
