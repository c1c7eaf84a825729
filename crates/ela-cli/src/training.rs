//! `ela train`: a run of any task on the runtime, then its report drawn by `ela-report`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use ela_detect_train::DetectTrainArgs;
use ela_records::{RunSummary, TaskKind, read_task};
use ela_report::{Run, write_report};
use ela_train::classify::TrainConfig;

/// What to train: a task's flags.
#[derive(Debug, Clone)]
pub enum Launch {
    /// A classification run.
    Classify(Box<TrainConfig>),
    /// A detection run.
    Detect(Box<DetectTrainArgs>),
}

impl Launch {
    /// The task.
    pub fn task(&self) -> TaskKind {
        match self {
            Self::Classify(_) => TaskKind::Classify,
            Self::Detect(_) => TaskKind::Detect,
        }
    }

    /// The run to continue (`--resume DIR`) and the learning rate to continue with, if any.
    fn resuming(&self) -> Option<(&Path, Option<f64>)> {
        match self {
            Self::Classify(c) => c.resume.as_deref().map(|d| (d, c.lr)),
            Self::Detect(a) => a.resume.as_deref().map(|d| (d, a.lr)),
        }
    }
}

/// A finished run and its report.
#[derive(Debug, Clone)]
pub struct Finished {
    /// What the run's `summary.json` holds.
    pub summary: RunSummary,
    /// The run's `report.md`, when it could be drawn.
    pub report: Option<PathBuf>,
}

/// Trains `launch` (or, with `--resume DIR`, continues the run in DIR, whatever its task; a task
/// asked for explicitly must be the run's), then writes the run's report into `report/` of its
/// directory.
pub fn run(launch: &Launch, explicit: bool) -> Result<Finished> {
    if let Some((dir, lr)) = launch.resuming() {
        let task = read_task(dir).map_err(|e| anyhow::anyhow!("--resume: {e:#}"))?;
        if explicit && task != launch.task() {
            bail!(
                "--resume: {} holds a {task} run, not a {} run (--task)",
                dir.display(),
                launch.task()
            );
        }
        return resume(dir, lr).map(report);
    }
    let summary = match launch {
        Launch::Classify(config) => ela_train::classify::train(config)?,
        Launch::Detect(args) => ela_detect_train::train(args)?,
    };
    Ok(report(summary))
}

/// Continues the run in `dir`, whatever its task (`lr` replaces its base learning rate).
pub fn resume(dir: &Path, lr: Option<f64>) -> Result<RunSummary> {
    match read_task(dir).map_err(|e| anyhow::anyhow!("--resume: {e:#}"))? {
        TaskKind::Classify => ela_train::classify::resume(dir, lr),
        TaskKind::Detect => ela_detect_train::resume(dir, lr),
    }
}

/// Trains `launch` from its start (no resume).
pub fn start(launch: &Launch) -> Result<RunSummary> {
    match launch {
        Launch::Classify(config) => ela_train::classify::train(config),
        Launch::Detect(args) => ela_detect_train::train(args),
    }
}

/// Writes the report of a finished run. The run's results are already saved: a report that
/// cannot be drawn is a warning, not a failure.
pub fn report(summary: RunSummary) -> Finished {
    let dir = &summary.run_dir;
    let report = match Run::load(dir).and_then(|run| write_report(&[run], &dir.join("report"))) {
        Ok(report) => Some(report.markdown),
        Err(err) => {
            eprintln!("warning: no report written: {err:#}");
            None
        }
    };
    Finished { summary, report }
}

/// The final values worth a line: accuracy, or the COCO APs.
pub fn headline(summary: &RunSummary) -> String {
    match summary.task {
        TaskKind::Classify => format!(
            "test accuracy: {:.2}%",
            summary.get("test_acc").unwrap_or(f64::NAN)
        ),
        TaskKind::Detect => {
            let mut line = format!(
                "bbox AP {:.4} AP50 {:.4} AP75 {:.4}",
                summary.get("AP").unwrap_or(f64::NAN),
                summary.get("AP50").unwrap_or(f64::NAN),
                summary.get("AP75").unwrap_or(f64::NAN)
            );
            if let Some(ap) = summary.get("segm_AP") {
                line.push_str(&format!(
                    "; segm AP {ap:.4} AP50 {:.4}",
                    summary.get("segm_AP50").unwrap_or(f64::NAN)
                ));
            }
            line
        }
    }
}
