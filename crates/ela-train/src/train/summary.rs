//! What a finished run reports (`summary.json`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::config::ResumeOverride;

/// What a finished run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Git revision of the code.
    pub git_revision: String,
    /// Seed.
    pub seed: u64,
    /// Backend and device.
    pub device: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Final test accuracy (%).
    pub test_acc: f64,
    /// Final test loss.
    pub test_loss: f64,
    /// Blocks skipped at the end.
    pub skipped: Vec<usize>,
    /// Seconds per epoch (training split), per epoch.
    pub train_seconds: Vec<f64>,
    /// Total wall seconds of the run, over every process that trained it (a resumed run counts
    /// its earlier processes up to the checkpoint it resumed from).
    pub total_seconds: f64,
    /// What resumes changed (`--resume DIR --lr X`), with the epoch each took effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resume_overrides: Vec<ResumeOverride>,
}

/// The current UTC time as `YYYYMMDD-HHMMSS`.
pub(crate) fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
