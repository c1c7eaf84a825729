//! The per-epoch record of every task, and `metrics.csv`, its file.
//!
//! Each epoch records what every run has (epoch, learning rate, seconds, skipped blocks) and the
//! task's own values by name: a classification run's `train_loss, train_acc, test_loss,
//! test_acc`, a detection run's losses and COCO statistics. `metrics.csv` has one column per
//! name, between the common ones:
//!
//! ```text
//! epoch,lr,<the task's columns>,train_seconds,epoch_seconds,num_skipped,skipped
//! ```
//!
//! Accuracies (`…_acc`, in %) are written with 4 decimals, every other task value with 6.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The file's name in a run directory.
pub const METRICS_FILE: &str = "metrics.csv";

/// The columns before the task's.
const LEADING: [&str; 2] = ["epoch", "lr"];
/// The columns after the task's.
const TRAILING: [&str; 4] = ["train_seconds", "epoch_seconds", "num_skipped", "skipped"];

/// One named value of a task's epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Value {
    /// Column name (`test_acc`, `AP50`, `loss_rpn_cls`, …).
    pub name: String,
    /// The value.
    pub value: f64,
}

impl Value {
    /// A named value.
    pub fn new(name: impl Into<String>, value: f64) -> Self {
        Self {
            name: name.into(),
            value,
        }
    }

    /// The value named `name` among `values`, NaN when there is none.
    pub fn find(values: &[Value], name: &str) -> f64 {
        values
            .iter()
            .find(|v| v.name == name)
            .map_or(f64::NAN, |v| v.value)
    }
}

/// One epoch of a run, whatever its task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// The task's values, in its column order.
    pub values: Vec<Value>,
    /// Wall seconds of the training split (forward, backward, optimizer).
    pub train_seconds: f64,
    /// Wall seconds of the whole epoch (training, evaluation, pruning step, records).
    pub epoch_seconds: f64,
    /// Blocks skipped during this epoch, ascending.
    pub skipped: Vec<usize>,
}

impl EpochRecord {
    /// The task value named `name`, if the epoch has one.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|v| v.name == name).map(|v| v.value)
    }

    /// The task value named `name`, NaN when the epoch has none (a curve's gap).
    pub fn value(&self, name: &str) -> f64 {
        Value::find(&self.values, name)
    }

    /// The task's column names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.values.iter().map(|v| v.name.as_str()).collect()
    }

    fn csv_row(&self) -> String {
        let values: Vec<String> = self
            .values
            .iter()
            .map(|v| {
                if v.name.ends_with("_acc") {
                    format!("{:.4}", v.value)
                } else {
                    format!("{:.6}", v.value)
                }
            })
            .collect();
        let skipped: Vec<String> = self.skipped.iter().map(usize::to_string).collect();
        let mut row = format!("{},{}", self.epoch, self.lr);
        for v in values {
            row.push(',');
            row.push_str(&v);
        }
        row.push_str(&format!(
            ",{:.3},{:.3},{},{}",
            self.train_seconds,
            self.epoch_seconds,
            self.skipped.len(),
            skipped.join(";")
        ));
        row
    }
}

/// The text of `metrics.csv` for `epochs` (all of one run: the same columns in every epoch).
pub fn metrics_csv(epochs: &[EpochRecord]) -> String {
    let names = epochs.first().map(EpochRecord::names).unwrap_or_default();
    let mut csv: Vec<&str> = LEADING.to_vec();
    csv.extend(&names);
    csv.extend(TRAILING);
    let mut text = csv.join(",");
    text.push('\n');
    for e in epochs {
        text.push_str(&e.csv_row());
        text.push('\n');
    }
    text
}

/// Reads `metrics.csv`, naming the file in any error.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_metrics(&text).with_context(|| format!("{} is not a valid metrics file", path.display()))
}

/// Parses the text of a `metrics.csv`.
pub fn parse_metrics(text: &str) -> Result<Vec<EpochRecord>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("it is empty")?.split(',').collect();
    let n = header.len();
    if n < LEADING.len() + TRAILING.len()
        || header[..2] != LEADING
        || header[n - TRAILING.len()..] != TRAILING
    {
        bail!(
            "line 1 is not the metrics header ({}, the task's columns, {})",
            LEADING.join(","),
            TRAILING.join(",")
        );
    }
    let names = &header[LEADING.len()..n - TRAILING.len()];
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let line_no = i + 2;
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != n {
            bail!("line {line_no} has {} fields, expected {n}", fields.len());
        }
        let num = |k: usize| -> Result<f64> {
            fields[k].parse().with_context(|| {
                format!(
                    "line {line_no}, field {}: '{}' is not a number",
                    k + 1,
                    fields[k]
                )
            })
        };
        let epoch: usize = fields[0].parse().with_context(|| {
            format!(
                "line {line_no}: epoch '{}' is not a whole number",
                fields[0]
            )
        })?;
        let last = fields[n - 1];
        let skipped = if last.is_empty() {
            Vec::new()
        } else {
            last.split(';')
                .map(str::parse::<usize>)
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| {
                    format!("line {line_no}: skipped blocks '{last}' are not indices")
                })?
        };
        let values = names
            .iter()
            .enumerate()
            .map(|(k, name)| Ok(Value::new(*name, num(LEADING.len() + k)?)))
            .collect::<Result<Vec<_>>>()?;
        let t = n - TRAILING.len();
        rows.push(EpochRecord {
            epoch,
            lr: num(1)?,
            values,
            train_seconds: num(t)?,
            epoch_seconds: num(t + 1)?,
            skipped,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(k: usize, values: &[(&str, f64)]) -> EpochRecord {
        EpochRecord {
            epoch: k,
            lr: 0.015_1,
            values: values.iter().map(|(n, v)| Value::new(*n, *v)).collect(),
            train_seconds: 1.25,
            epoch_seconds: 1.5,
            skipped: vec![1, 3],
        }
    }

    #[test]
    fn a_classification_run_keeps_its_columns_and_any_task_reads_back() {
        let classify = [
            ("train_loss", 0.540_123_456),
            ("train_acc", 83.543_21),
            ("test_loss", 0.78),
            ("test_acc", 79.1),
        ];
        let csv = metrics_csv(&[epoch(1, &classify), epoch(2, &classify)]);
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().unwrap(),
            "epoch,lr,train_loss,train_acc,test_loss,test_acc,train_seconds,epoch_seconds,\
             num_skipped,skipped"
        );
        assert_eq!(
            lines.next().unwrap(),
            "1,0.0151,0.540123,83.5432,0.780000,79.1000,1.250,1.500,2,1;3"
        );
        let back = parse_metrics(&csv).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].get("test_acc"), Some(79.1));
        assert_eq!(back[1].skipped, vec![1, 3]);
        assert!(back[0].value("AP").is_nan());

        let detect = [("loss", 1.5), ("AP", 0.25), ("segm_AP50", -1.0)];
        let back = parse_metrics(&metrics_csv(&[epoch(3, &detect)])).unwrap();
        assert_eq!(back[0].names(), ["loss", "AP", "segm_AP50"]);
        assert_eq!(back[0].get("segm_AP50"), Some(-1.0));
        assert_eq!(back[0].epoch, 3);
    }

    #[test]
    fn a_broken_metrics_file_names_the_line_and_field() {
        let err = |text: &str| format!("{:#}", parse_metrics(text).unwrap_err());
        let header = "epoch,lr,test_acc,train_seconds,epoch_seconds,num_skipped,skipped";
        assert!(err("").contains("it is empty"));
        assert!(err("epoch,loss\n").contains("line 1 is not the metrics header"));
        let e = err(&format!("{header}\n1,0.1,zero,1,1,0,\n"));
        assert!(e.contains("line 2, field 3: 'zero' is not a number"), "{e}");
        let e = err(&format!("{header}\n1,0.1,2\n"));
        assert!(e.contains("line 2 has 3 fields, expected 7"), "{e}");
        let e = err(&format!("{header}\n1,0.1,2,1,1,1,x\n"));
        assert!(e.contains("skipped blocks 'x'"), "{e}");
    }
}
