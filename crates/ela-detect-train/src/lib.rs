//! Training ELA detectors (paper §4.2): MMDetection's 1x recipe on COCO, or the offline digit
//! set by default, with ELA's pruning step through `ela-train`'s task-agnostic
//! [`PruningController`](ela_train::pruning::PruningController), atomic per-epoch checkpoints,
//! resume, and COCO statistics after every epoch.
//!
//! - [`config`]: the flags of `ela train --task detect` and the resolved run configuration.
//! - [`data`]: the training and validation splits through the detection pipeline.
//! - [`schedule`]: the learning rate (linear warm-up, steps after epochs 8 and 11 of 12).
//! - [`evaluate`]: detections of a split in COCO's result format and their statistics.
//! - [`metrics`]: per-epoch losses and COCO statistics, `metrics.csv` and `coco.json`.
//! - [`infer`]: a trained detector loaded from its run directory, for single images.
//! - [`run`]: the training loop, its checkpoints and resume.

pub mod config;
pub mod data;
pub mod evaluate;
pub mod infer;
pub mod metrics;
pub mod run;
pub mod schedule;

pub use config::{DetectRunConfig, DetectTrainArgs};
pub use run::{DetectSummary, resume, train};
