//! Object detection on the training runtime (paper §4.2): Faster and Mask R-CNN with FPN,
//! MMDetection's 1x recipe on COCO or the offline digit set by default, with ELA's pruning step,
//! checkpoints, resume, data parallelism and precision all from `ela-train`'s runtime, and COCO
//! statistics after every epoch.
//!
//! - [`config`]: the flags of `ela train --task detect`, the resolved run configuration and the
//!   runtime's settings it gives.
//! - [`data`]: the training and validation splits through the detection pipeline, as the
//!   datasets of the runtime's loaders (a whole batch per item).
//! - [`model`]: the detector with Burn's train and inference steps.
//! - [`pretrained`]: ImageNet weights for the backbone.
//! - [`task`]: [`Detection`], the task the runtime trains: values, evaluation, records.
//! - [`evaluate`]: detections of a split in COCO's result format and their statistics.
//! - [`eval`]: `ela eval --task detect`, a detector scored on a dataset's validation split.
//! - [`infer`]: a trained detector loaded from its run directory, for single images.
//! - [`torchvision`]: torchvision's COCO detectors from their `state_dict`, with their
//!   transform and labels.

pub mod config;
pub mod data;
pub mod eval;
pub mod evaluate;
pub mod infer;
pub mod model;
pub mod pretrained;
pub mod task;
pub mod torchvision;

use std::path::Path;

use anyhow::Result;
use ela_records::RunSummary;

pub use config::{DetectRunConfig, DetectTrainArgs};
pub use model::DetectionModel;
pub use task::Detection;

/// Trains a detector as the flags say, in a new run directory.
pub fn train(args: &DetectTrainArgs) -> Result<RunSummary> {
    ela_train::runtime::train::<Detection>(args.resolve()?)
}

/// Continues the detection run in `dir` (see [`ela_train::runtime::resume`]).
pub fn resume(dir: &Path, lr: Option<f64>) -> Result<RunSummary> {
    ela_train::runtime::resume::<Detection>(dir, lr)
}
