//! The training runtime every task runs on.
//!
//! It owns everything a training needs that is not the task's: the run session and its lock
//! ([`session`]), the devices and data parallelism ([`devices`]), SGD ([`optim`]), the
//! learning-rate schedule ([`crate::schedule`]), precision (through the backend's devices), the
//! epoch loop on Burn's `Learner` with ELA's pruning controller ([`strategy`]), the device-side
//! epoch sums and the stop at the first non-finite loss ([`sums`]), progress bars
//! ([`progress`]), atomic checkpoints with their typed state and the resume rules
//! ([`checkpoint`], `ela_records::checkpoint`), and the run's records and summary ([`run`]).
//!
//! A task supplies only what is its own, through the traits of [`task`]:
//! - [`TaskConfig`]: its resolved configuration (what `config.json` holds), which gives the
//!   runtime its [`RunSettings`];
//! - [`TaskModel`]: its model, with Burn's `TrainStep` (loss, and a [`StepOutput`] with the
//!   values the epoch sums and the KL scores) and `InferenceStep`, and ELA's skip flags
//!   (`Prunable`);
//! - [`Task`]: its data and loaders, the training values of an epoch, its evaluation, its
//!   records, and how its model is saved.
//!
//! Classification ([`crate::classify`]) and detection (`ela-detect-train`) are the two tasks.
//! [`train`] starts a run of a task, [`resume`] continues one; the run directory's format is
//! `ela-records`'s, the same for every task.

pub mod args;
pub mod checkpoint;
pub mod devices;
pub mod optim;
pub mod progress;
pub mod run;
pub mod session;
pub mod settings;
pub mod strategy;
pub mod sums;
pub mod task;

pub use args::DeviceArgs;
pub use optim::SgdSettings;
pub use run::{resume, train};
pub use settings::{PruneSetup, RunSettings};
pub use task::{Loaders, StepOutput, Task, TaskConfig, TaskModel, TaskName};
