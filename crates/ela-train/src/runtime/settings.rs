//! [`RunSettings`]: what the runtime needs of any task's configuration, every value decided.

use std::path::PathBuf;

use ela_prune::{KlDirection, PruneMethod, PruningSchedule, SkipMode};
use ela_records::ResumeOverride;
use serde::{Deserialize, Serialize};

use super::optim::SgdSettings;
use crate::backend::{Backend, Precision};
use crate::schedule::LrSchedule;

/// ELA's pruning step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruneSetup {
    /// The windows whose KL scores are averaged, and after which a decision is taken.
    pub windows: PruningSchedule,
    /// The decision method (EBQM or an ablation).
    pub method: PruneMethod,
    /// ε padding of the KL.
    pub kl_eps: f64,
    /// Direction of the KL.
    pub kl_direction: KlDirection,
    /// What a skipped block still computes.
    pub skip_mode: SkipMode,
}

/// The runtime's view of a run: where, how long, on what, with which optimizer, schedule and
/// pruning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// The run directory.
    pub out: PathBuf,
    /// Epochs.
    pub epochs: usize,
    /// Global batch size: images per optimizer step over all devices.
    pub batch_size: usize,
    /// Data-loader worker threads.
    pub workers: usize,
    /// Seed of initialization, data order, augmentation and sampling.
    pub seed: u64,
    /// Backend.
    pub backend: Backend,
    /// Training devices' indices; the first is the main one (model, optimizer, validation).
    pub devices: Vec<usize>,
    /// Float type of every tensor.
    pub precision: Precision,
    /// The optimizer.
    pub sgd: SgdSettings,
    /// The learning rate over the run.
    pub schedule: LrSchedule,
    /// ELA's pruning step (ELA runs only).
    pub pruning: Option<PruneSetup>,
    /// What resumes changed, with the epoch each took effect.
    pub resume_overrides: Vec<ResumeOverride>,
}
