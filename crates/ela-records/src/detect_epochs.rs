//! `epochs.json` of a detection run: per epoch, the learning rate, the losses (four, five with
//! masks), the 12 COCO box statistics of the validation split (and the mask ones), the training
//! seconds and the skipped blocks.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The file's name in a run directory.
pub const DETECT_EPOCHS_FILE: &str = "epochs.json";

/// One epoch of a detection run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectEpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Learning rate at the epoch's last iteration.
    pub lr: f64,
    /// RPN objectness loss (epoch mean).
    pub loss_rpn_cls: f64,
    /// RPN box loss.
    pub loss_rpn_bbox: f64,
    /// RoI classification loss.
    pub loss_cls: f64,
    /// RoI box loss.
    pub loss_bbox: f64,
    /// Mask R-CNN: the mask loss.
    #[serde(default)]
    pub loss_mask: Option<f64>,
    /// COCO box statistics by name (`AP`, `AP50`, … `ARl`).
    pub coco: BTreeMap<String, f64>,
    /// Mask R-CNN: COCO mask statistics by name.
    #[serde(default)]
    pub segm: Option<BTreeMap<String, f64>>,
    /// Training wall seconds.
    pub train_seconds: f64,
    /// Blocks skipped after the epoch.
    pub skipped: Vec<usize>,
}

impl DetectEpochRecord {
    /// The losses' sum.
    pub fn loss(&self) -> f64 {
        self.loss_rpn_cls
            + self.loss_rpn_bbox
            + self.loss_cls
            + self.loss_bbox
            + self.loss_mask.unwrap_or(0.0)
    }

    /// A COCO box statistic (NaN when absent).
    pub fn stat(&self, name: &str) -> f64 {
        self.coco.get(name).copied().unwrap_or(f64::NAN)
    }

    /// A COCO mask statistic (NaN when absent).
    pub fn segm_stat(&self, name: &str) -> f64 {
        self.segm
            .as_ref()
            .and_then(|s| s.get(name).copied())
            .unwrap_or(f64::NAN)
    }
}

/// Whether `dir` holds a detection run.
pub fn is_detection_run(dir: &Path) -> bool {
    dir.join(DETECT_EPOCHS_FILE).exists()
}

/// Reads `epochs.json`, naming the file in any error.
pub fn read_detect_epochs(path: &Path) -> Result<Vec<DetectEpochRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a detection run's epochs file", path.display()))
}
