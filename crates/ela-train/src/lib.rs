//! Training ELA ResNets on Burn's `Learner`.
//!
//! It owns the learning: the training configuration and recipes, the learning strategy with the
//! task-agnostic pruning controller, checkpoints and resume, LR schedules, the backends. Data
//! comes from `ela-data`, models from `ela-model`, decisions from `ela-prune`; the run directory
//! and its records are written through `ela-records`. It knows nothing of reports, benchmarks or
//! the command line (`ela-report`, `ela-bench`, `ela-cli`), which build on it.
//!
//! - [`attention`]: attention weights of a validation pass, summed on the device.
//! - [`backend`]: the backend compiled in (a cargo feature) and its devices.
//! - [`config`]: TOML config files as flags (`ela train --config FILE`).
//! - [`checkpoint`]: atomic per-epoch checkpoints and resume.
//! - [`model`]: the classifier wrapper with Burn's train/inference steps and the KL probe.
//! - [`pruning`]: ELA's pruning step for any prunable model: probe, on-device score sums,
//!   windows, decisions, records.
//! - [`strategy`]: the custom learning strategy that is ELA's pruning step.
//! - [`fuzzing`]: the parsers' properties checked by the fuzz targets and their corpus.
//! - [`lr`]: multi-step and cosine schedules (SPEC §4).
//! - [`renderer`]: the progress bars of a training.
//! - [`train`]: one call from a [`train::TrainConfig`] to a finished run.

pub mod attention;
pub mod backend;
pub mod checkpoint;
pub mod config;
pub mod fuzzing;
pub mod lr;
pub mod model;
pub mod pruning;
pub mod renderer;
pub mod strategy;
pub mod train;
