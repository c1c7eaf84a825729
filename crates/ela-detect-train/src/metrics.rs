//! What each epoch of a detection run measured: its losses and learning rate, the validation
//! split's COCO statistics, its wall time and the skipped blocks; written as `metrics.csv` (one
//! row per epoch) and `coco.json` (the statistics per epoch) in the run directory.

use std::path::Path;

use anyhow::Result;
use ela_detect::CocoStats;
use serde::{Deserialize, Serialize};

/// One epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectEpochMetrics {
    /// 1-based.
    pub epoch: usize,
    /// Learning rate at the epoch's last iteration.
    pub lr: f64,
    /// Mean RPN objectness loss.
    pub loss_rpn_cls: f64,
    /// Mean RPN box loss.
    pub loss_rpn_bbox: f64,
    /// Mean RoI classification loss.
    pub loss_cls: f64,
    /// Mean RoI box loss.
    pub loss_bbox: f64,
    /// Mask R-CNN: mean mask loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_mask: Option<f64>,
    /// COCO box statistics on the validation split after the epoch.
    pub coco: CocoStats,
    /// Mask R-CNN: COCO mask statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segm: Option<CocoStats>,
    /// Training wall seconds (without evaluation).
    pub train_seconds: f64,
    /// Blocks whose retrieval is skipped after the epoch.
    pub skipped: Vec<usize>,
}

impl DetectEpochMetrics {
    /// The losses' sum.
    pub fn loss(&self) -> f64 {
        self.loss_rpn_cls
            + self.loss_rpn_bbox
            + self.loss_cls
            + self.loss_bbox
            + self.loss_mask.unwrap_or(0.0)
    }
}

/// Rewrites `metrics.csv`, `coco.json` and `epochs.json` (what reports read, through
/// `ela-records`) in `dir` with `epochs`.
pub fn write(dir: &Path, epochs: &[DetectEpochMetrics]) -> Result<()> {
    let mut csv = String::from(
        "epoch,lr,loss,loss_rpn_cls,loss_rpn_bbox,loss_cls,loss_bbox,loss_mask,AP,AP50,AP75,APs,APm,APl,AR1,AR10,AR100,ARs,ARm,ARl,segm_AP,segm_AP50,segm_AP75,train_seconds,skipped\n",
    );
    for m in epochs {
        let stats: Vec<String> = m
            .coco
            .to_array()
            .iter()
            .map(|v| format!("{v:.6}"))
            .collect();
        let skipped: Vec<String> = m.skipped.iter().map(usize::to_string).collect();
        let optional = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
        let segm: Vec<String> = [0, 1, 2]
            .iter()
            .map(|&i| optional(m.segm.map(|s| s.to_array()[i])))
            .collect();
        csv.push_str(&format!(
            "{},{:.6e},{:.6},{:.6},{:.6},{:.6},{:.6},{},{},{},{:.2},{}\n",
            m.epoch,
            m.lr,
            m.loss(),
            m.loss_rpn_cls,
            m.loss_rpn_bbox,
            m.loss_cls,
            m.loss_bbox,
            optional(m.loss_mask),
            stats.join(","),
            segm.join(","),
            m.train_seconds,
            skipped.join(" ")
        ));
    }
    ela_records::write_atomic(&dir.join("metrics.csv"), csv.as_bytes())?;
    let coco: Vec<serde_json::Value> = epochs
        .iter()
        .map(|m| serde_json::json!({"epoch": m.epoch, "bbox": m.coco, "segm": m.segm}))
        .collect();
    ela_records::write_json(&dir.join("coco.json"), &coco)?;
    ela_records::write_json(&dir.join(ela_records::DETECT_EPOCHS_FILE), &epochs)
}
