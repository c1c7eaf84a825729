//! From a training configuration to a finished run directory.
//!
//! - [`options`]: the named options (attention, dataset and recipe, pruning method, schedule)
//!   and the pruning flags.
//! - [`config`]: [`TrainConfig`], every flag of `ela train`, and its resolution and checks.
//! - [`resolved`]: [`RunConfig`], the run's configuration with every value decided (what
//!   `config.json` holds).
//! - [`dataset`]: the run's data, limited and checked.
//! - [`optim`]: SGD as PyTorch's.
//! - [`pretrained`]: `--pretrained` weights.
//! - [`launch`]: [`train`] and [`resume`], a short sequence of named steps.
//! - [`summary`]: what `summary.json` holds.

pub mod config;
pub mod dataset;
pub mod launch;
pub mod optim;
pub mod options;
pub mod pretrained;
pub mod resolved;
pub mod summary;

pub use config::{ResumeOverride, TrainConfig};
pub use dataset::{RunData, default_data_dir, load_dataset, run_data};
pub use launch::{checkpoint_dir, resume, train};
pub use optim::{one_dim_parameters, sgd};
pub use options::{DatasetName, LrScheduleName, Method, MethodName, PruneArgs, Recipe};
pub use resolved::RunConfig;
pub use summary::RunSummary;
