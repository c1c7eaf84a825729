//! The classification task: ResNets with layer attention on MNIST, CIFAR and ImageNet, trained on
//! the runtime ([`crate::runtime`]).
//!
//! - [`options`]: the named options (attention, dataset and recipe, pruning method, schedule)
//!   and the pruning flags.
//! - [`config`]: [`TrainConfig`], every flag of `ela train`, and its resolution and checks.
//! - [`resolved`]: [`RunConfig`], the run's configuration with every value decided (what
//!   `config.json` holds), and the runtime's settings it gives.
//! - [`dataset`]: the run's data, limited and checked.
//! - [`eval`]: a classifier on a dataset's test split (`ela eval`): top-1, top-5, loss.
//! - [`pretrained`]: `--pretrained` weights.
//! - [`model`]: the classifier with Burn's train and inference steps and the KL probe.
//! - [`attention`]: attention weights of a validation pass, summed on the device.
//! - [`task`]: [`Classification`], the task the runtime trains.

pub mod attention;
pub mod config;
pub mod dataset;
pub mod eval;
pub mod model;
pub mod options;
pub mod pretrained;
pub mod resolved;
pub mod task;

use std::path::Path;

use anyhow::Result;
use ela_records::RunSummary;

pub use config::TrainConfig;
pub use dataset::{RunData, default_data_dir, load_dataset, run_data};
pub use model::ElaClassifier;
pub use options::{DatasetName, LrScheduleName, Method, MethodName, PruneArgs, Recipe};
pub use resolved::RunConfig;
pub use task::Classification;

/// Trains one model as configured and writes its run directory.
pub fn train(config: &TrainConfig) -> Result<RunSummary> {
    crate::runtime::train::<Classification>(config.resolve()?)
}

/// Continues the classification run in `dir` (see [`crate::runtime::resume`]).
pub fn resume(dir: &Path, lr: Option<f64>) -> Result<RunSummary> {
    crate::runtime::resume::<Classification>(dir, lr)
}
