//! Training ELA ResNets on Burn's `Learner`.
//!
//! - [`attention`]: per-stage attention maps averaged over a validation pass.
//! - [`bench`]: training-step time of the attention variants, interleaved in one process.
//! - [`config`]: TOML config files as flags (`ela train --config FILE`).
//! - [`data`]: the MNIST IDX reader and the embedded MNIST sample, dataset and batcher.
//! - [`checkpoint`]: atomic per-epoch checkpoints and resume.
//! - [`cifar`]: the CIFAR-10/100 binary reader and the pad-and-crop / flip augmentation.
//! - [`fetch`]: resumable, checksummed downloads of the official dataset archives.
//! - [`ilsvrc`]: ImageNet-1K prepared from the official ILSVRC2012 archives.
//! - [`imagenet`]: the ImageNet image-folder dataset with its decoding and augmentation.
//! - [`mat`]: a MATLAB level-5 MAT-file reader (the ILSVRC2012 devkit's `meta.mat`).
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

pub mod attention;
pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod cifar;
pub mod config;
pub mod data;
pub mod fetch;
pub mod fuzzing;
pub mod guard;
pub mod ilsvrc;
pub mod imagenet;
pub mod lock;
pub mod lr;
pub mod mat;
pub mod model;
pub mod pruning;
pub mod renderer;
pub mod report;
pub mod reproduce;
pub mod run;
pub mod strategy;
pub mod train;
