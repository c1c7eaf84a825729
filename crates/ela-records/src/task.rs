//! Which task a run directory holds: the `task` tag of its `config.json`.
//!
//! Every task (classification, detection, …) writes the same run directory format; the tag says
//! which task's configuration the rest of `config.json` is, so that `--resume DIR`, `report` and
//! `eval` find the task without being told.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The key of the tag in `config.json`.
pub const TASK_KEY: &str = "task";

/// A training task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// Image classification: ResNets on MNIST, CIFAR, ImageNet.
    #[default]
    Classify,
    /// Object detection: Faster and Mask R-CNN with FPN on the digit set or COCO.
    Detect,
}

/// Every task, in the order the command line lists them.
pub const ALL_TASKS: [TaskKind; 2] = [TaskKind::Classify, TaskKind::Detect];

impl TaskKind {
    /// `classify` or `detect`: the tag and the `--task` value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Classify => "classify",
            Self::Detect => "detect",
        }
    }

    /// The task a tag names; an unknown tag is an error that lists the known ones.
    pub fn parse(name: &str) -> Result<Self> {
        ALL_TASKS
            .into_iter()
            .find(|t| t.name() == name)
            .with_context(|| {
                let names: Vec<&str> = ALL_TASKS.iter().map(|t| t.name()).collect();
                format!("'{name}' is not a task (tasks: {})", names.join(", "))
            })
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TaskKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Self::parse(s).map_err(|e| e.to_string())
    }
}

/// The task of the configuration `config` (a run's `config.json`, parsed). A configuration
/// written before runs were tagged is a detection run's when it names a detector.
pub fn task_of(config: &serde_json::Value) -> Result<TaskKind> {
    match config.get(TASK_KEY) {
        Some(serde_json::Value::String(name)) => TaskKind::parse(name),
        Some(other) => bail!("`{TASK_KEY}` is {other}, not a task name"),
        None if config.get("detector").is_some() => Ok(TaskKind::Detect),
        None => Ok(TaskKind::Classify),
    }
}

/// The task of the run in `dir`, from its `config.json`; a folder without one is no run.
pub fn read_task(dir: &Path) -> Result<TaskKind> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} holds no run: cannot read {}",
            dir.display(),
            path.display()
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    task_of(&value).with_context(|| format!("{}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_names_the_task_and_untagged_runs_are_recognized() {
        let tagged = serde_json::json!({"task": "detect", "epochs": 2});
        assert_eq!(task_of(&tagged).unwrap(), TaskKind::Detect);
        let old_detection = serde_json::json!({"detector": "mask-rcnn"});
        assert_eq!(task_of(&old_detection).unwrap(), TaskKind::Detect);
        assert_eq!(
            task_of(&serde_json::json!({"depth": 20})).unwrap(),
            TaskKind::Classify
        );
        let err = task_of(&serde_json::json!({"task": "segment"})).unwrap_err();
        assert!(
            err.to_string()
                .contains("'segment' is not a task (tasks: classify, detect)"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", read_task(dir.path()).unwrap_err());
        assert!(err.contains("holds no run"), "{err}");
    }
}
