//! Training on Burn's `Learner`: the runtime every task runs on, and the classification task.
//!
//! It owns the learning: the task-agnostic training runtime ([`runtime`]: run sessions,
//! checkpoints and resume, devices and data parallelism, the epoch loop with ELA's pruning
//! step), the learning-rate schedules ([`schedule`]), the pruning controller ([`pruning`]), the
//! backends ([`backend`]), config files ([`config`]) and the classification task
//! ([`classify`]). Data comes from `ela-data`, models from `ela-model`, decisions from
//! `ela-prune`; the run directory and its records are written through `ela-records`. It knows
//! nothing of reports, benchmarks or the command line (`ela-report`, `ela-bench`, `ela-cli`),
//! which build on it; the detection task (`ela-detect-train`) plugs into its runtime.
//!
//! - [`runtime`]: the training runtime and the traits a task implements.
//! - [`classify`]: the classification task: configuration and recipes, data, the classifier.
//! - [`pruning`]: ELA's pruning step for any prunable model: probe, on-device score sums,
//!   windows, decisions, records.
//! - [`schedule`]: the learning-rate schedule (steps or cosine, linear warm-up).
//! - [`backend`]: the backend compiled in (a cargo feature) and its devices.
//! - [`config`]: TOML config files as flags (`ela train --config FILE`).
//! - [`fuzzing`]: the parsers' properties checked by the fuzz targets and their corpus.

pub mod backend;
pub mod classify;
pub mod config;
pub mod fuzzing;
pub mod pruning;
pub mod runtime;
pub mod schedule;
