//! Training ELA ResNets on Burn's `Learner`.
//!
//! It owns the learning: the training configuration and recipes, the learning strategy with the
//! task-agnostic pruning controller, checkpoints and resume, LR schedules, the run directory and
//! its records, the backends. Data comes from `ela-data`, models from `ela-model`, decisions from
//! `ela-prune`.
//!
//! - [`attention`]: per-stage attention maps averaged over a validation pass.
//! - [`bench`]: training-step time of the attention variants, interleaved in one process.
//! - [`config`]: TOML config files as flags (`ela train --config FILE`).
//! - [`checkpoint`]: atomic per-epoch checkpoints and resume.
//! - [`model`]: the classifier wrapper with Burn's train/inference steps and the KL probe.
//! - [`pruning`]: ELA's pruning step for any prunable model: probe, on-device score sums,
//!   windows, decisions, records.
//! - [`strategy`]: the custom learning strategy that is ELA's pruning step.
//! - [`guard`]: no command writes over one of its inputs.
//! - [`fuzzing`]: the parsers' properties checked by the fuzz targets and their corpus.
//! - [`lock`]: ownership of a run directory by one process (an exclusive lock).
//! - [`lr`]: multi-step and cosine schedules (SPEC §4).
//! - [`report`]: `report.md` with PNG figures of runs and their pruning decisions.
//! - [`reproduce`]: every row of a paper table, several seeds, mean ± std next to the paper.
//! - [`run`]: the run directory (config, metrics, `pruning.json`), written atomically.
//! - [`train`]: one call from a [`train::TrainConfig`] to a finished run.

// The data crate under its former paths (`ela_train::data`, `ela_train::fetch`, …).
pub use ela_data::dataset as data;
pub use ela_data::{cifar, fetch, ilsvrc, imagenet, mat};

pub mod attention;
pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod fuzzing;
pub mod guard;
pub mod lock;
pub mod lr;
pub mod model;
pub mod pruning;
pub mod renderer;
pub mod report;
pub mod reproduce;
pub mod run;
pub mod strategy;
pub mod train;
