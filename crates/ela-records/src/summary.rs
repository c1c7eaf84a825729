//! `summary.json`: what a finished run reports, for every task. Its presence is what makes a run
//! finished: training writes it last, after the final weights.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::epochs::Value;
use crate::task::TaskKind;

/// The file's name in a run directory.
pub const SUMMARY_FILE: &str = "summary.json";

/// A setting replaced when a run was resumed (`--resume DIR --lr X`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeOverride {
    /// The first epoch trained with the new value (1-based).
    pub from_epoch: usize,
    /// The new base learning rate.
    pub lr: f64,
    /// The base learning rate before.
    pub previous_lr: f64,
}

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run's task.
    #[serde(default)]
    pub task: TaskKind,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Git revision of the code.
    pub git_revision: String,
    /// Seed.
    pub seed: u64,
    /// Backend and device.
    pub device: String,
    /// Parameters (PyTorch's count).
    pub parameters: usize,
    /// Parameters that train (without frozen ones).
    pub trainable_parameters: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// The task's values of the last epoch (`test_acc`, `AP`, …).
    pub final_values: Vec<Value>,
    /// Blocks skipped at the end.
    pub skipped: Vec<usize>,
    /// Seconds of each epoch's training split.
    pub train_seconds: Vec<f64>,
    /// Total wall seconds of the run, over every process that trained it (a resumed run counts
    /// its earlier processes up to the checkpoint it resumed from).
    pub total_seconds: f64,
    /// What resumes changed, with the epoch each took effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resume_overrides: Vec<ResumeOverride>,
}

impl RunSummary {
    /// A final value by name (`test_acc`, `AP`, …).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.final_values
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.value)
    }

    /// Mean seconds of an epoch's training split.
    pub fn mean_train_seconds(&self) -> f64 {
        self.train_seconds.iter().sum::<f64>() / self.train_seconds.len().max(1) as f64
    }
}

/// Whether the run in `dir` finished (its `summary.json` exists).
pub fn is_finished(dir: &Path) -> bool {
    dir.join(SUMMARY_FILE).is_file()
}

/// Reads the `summary.json` of the run in `dir`, naming the file in any error.
pub fn read_summary(dir: &Path) -> Result<RunSummary> {
    let path = dir.join(SUMMARY_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid run summary", path.display()))
}
