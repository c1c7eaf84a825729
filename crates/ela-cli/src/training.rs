//! `ela train`: a run trained by `ela-train`, then its report drawn by `ela-report`.

use std::path::PathBuf;

use anyhow::Result;
use ela_report::{Run, write_report};
use ela_train::train::{RunSummary, TrainConfig, resume, train};

/// A finished run and its report.
#[derive(Debug, Clone)]
pub struct Finished {
    /// What the run's `summary.json` holds.
    pub summary: RunSummary,
    /// The run's `report.md`, when it could be drawn.
    pub report: Option<PathBuf>,
}

/// Trains `config` (or continues the run of `config.resume`), then writes the run's report
/// into `report/` of its directory.
pub fn run(config: &TrainConfig) -> Result<Finished> {
    let summary = match &config.resume {
        Some(dir) => resume(dir, config.lr)?,
        None => train(config)?,
    };
    Ok(report(summary))
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
