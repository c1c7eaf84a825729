//! `metrics.csv`: one row per epoch, written by [`crate::RunDir`] and read back by reports and
//! resumes.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// One row of `metrics.csv`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Training accuracy (%), on the augmented batches as seen.
    pub train_acc: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Test accuracy (%).
    pub test_acc: f64,
    /// Wall seconds of the training split (forward, backward, optimizer).
    pub train_seconds: f64,
    /// Wall seconds of the whole epoch (training, evaluation, pruning step).
    pub epoch_seconds: f64,
    /// Skipped blocks during this epoch, ascending.
    pub skipped: Vec<usize>,
}

pub(crate) const CSV_HEADER: &str = "epoch,lr,train_loss,train_acc,test_loss,test_acc,train_seconds,epoch_seconds,num_skipped,skipped";

impl EpochMetrics {
    pub(crate) fn csv_row(&self) -> String {
        let skipped: Vec<String> = self.skipped.iter().map(usize::to_string).collect();
        format!(
            "{},{},{:.6},{:.4},{:.6},{:.4},{:.3},{:.3},{},{}",
            self.epoch,
            self.lr,
            self.train_loss,
            self.train_acc,
            self.test_loss,
            self.test_acc,
            self.train_seconds,
            self.epoch_seconds,
            self.skipped.len(),
            skipped.join(";")
        )
    }
}

/// Reads `metrics.csv` as written by [`crate::RunDir`].
pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_metrics(&text).with_context(|| format!("{} is not a valid metrics file", path.display()))
}

/// Parses the text of a `metrics.csv`.
pub fn parse_metrics(text: &str) -> Result<Vec<EpochMetrics>> {
    let mut lines = text.lines();
    let header = lines.next().context("it is empty")?;
    if !header.starts_with("epoch,lr,train_loss") {
        bail!("line 1 is not the metrics header");
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 10 {
            bail!("line {n} has {} fields, expected 10", fields.len());
        }
        let num = |k: usize| -> Result<f64> {
            let v: f64 = fields[k].parse().with_context(|| {
                format!("line {n}, field {}: '{}' is not a number", k + 1, fields[k])
            })?;
            Ok(v)
        };
        let epoch: usize = fields[0]
            .parse()
            .with_context(|| format!("line {n}: epoch '{}' is not a whole number", fields[0]))?;
        let skipped = if fields[9].is_empty() {
            Vec::new()
        } else {
            fields[9]
                .split(';')
                .map(|s| s.parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| {
                    format!("line {n}: skipped blocks '{}' are not indices", fields[9])
                })?
        };
        rows.push(EpochMetrics {
            epoch,
            lr: num(1)?,
            train_loss: num(2)?,
            train_acc: num(3)?,
            test_loss: num(4)?,
            test_acc: num(5)?,
            train_seconds: num(6)?,
            epoch_seconds: num(7)?,
            skipped,
        });
    }
    Ok(rows)
}
