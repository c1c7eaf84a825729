//! COCO evaluation: the 12 standard statistics of pycocotools' `COCOeval`, computed by the
//! `hotcoco` crate (a port of `COCOeval` and of maskApi's RLE and polygon code).
//!
//! The fixtures in `tests/fixtures/coco_eval` (made by pycocotools, snippet beside them) hold
//! what COCOeval treats specially: crowd regions, `area` on the range bounds, more than 100
//! detections per image, categories and images without ground truth, tied scores, polygons and
//! RLE; `tests/coco_eval.rs` asserts agreement within 1e-6 on each.

use std::path::Path;

use hotcoco::params::IouType as HotIouType;
use hotcoco::types::{Annotation, Dataset};
use hotcoco::{COCO, COCOeval};
use serde::{Deserialize, Serialize};

use crate::DetectError;

/// What a detection is compared by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IouType {
    /// Boxes.
    #[default]
    Bbox,
    /// Instance masks (polygons or RLE).
    Segm,
}

impl IouType {
    fn hot(self) -> HotIouType {
        match self {
            IouType::Bbox => HotIouType::Bbox,
            IouType::Segm => HotIouType::Segm,
        }
    }
}

impl std::str::FromStr for IouType {
    type Err = DetectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bbox" => Ok(IouType::Bbox),
            "segm" => Ok(IouType::Segm),
            other => Err(DetectError::Invalid(format!(
                "--iou-type: '{other}' is not one of bbox, segm"
            ))),
        }
    }
}

/// The 12 statistics `COCOeval.summarize()` prints, in its order, under the names papers use.
/// A statistic with nothing to measure (no ground truth in an area range) is -1, as there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CocoStats {
    /// AP at IoU 0.50:0.95, all areas, 100 detections.
    #[serde(rename = "AP")]
    pub ap: f64,
    /// AP at IoU 0.50.
    #[serde(rename = "AP50")]
    pub ap50: f64,
    /// AP at IoU 0.75.
    #[serde(rename = "AP75")]
    pub ap75: f64,
    /// AP of small objects (area < 32²).
    #[serde(rename = "APs")]
    pub ap_small: f64,
    /// AP of medium objects (32² – 96²).
    #[serde(rename = "APm")]
    pub ap_medium: f64,
    /// AP of large objects (> 96²).
    #[serde(rename = "APl")]
    pub ap_large: f64,
    /// AR with 1 detection per image.
    #[serde(rename = "AR1")]
    pub ar1: f64,
    /// AR with 10 detections per image.
    #[serde(rename = "AR10")]
    pub ar10: f64,
    /// AR with 100 detections per image.
    #[serde(rename = "AR100")]
    pub ar100: f64,
    /// AR of small objects.
    #[serde(rename = "ARs")]
    pub ar_small: f64,
    /// AR of medium objects.
    #[serde(rename = "ARm")]
    pub ar_medium: f64,
    /// AR of large objects.
    #[serde(rename = "ARl")]
    pub ar_large: f64,
}

impl CocoStats {
    /// The names, in `COCOeval.stats` order.
    pub const KEYS: [&'static str; 12] = [
        "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
    ];

    /// From `COCOeval.stats` (12 values).
    pub fn from_slice(s: &[f64]) -> Result<Self, DetectError> {
        let &[
            ap,
            ap50,
            ap75,
            ap_small,
            ap_medium,
            ap_large,
            ar1,
            ar10,
            ar100,
            ar_small,
            ar_medium,
            ar_large,
        ] = s
        else {
            return Err(DetectError::Invalid(format!(
                "COCO statistics: expected 12 values, got {}",
                s.len()
            )));
        };
        Ok(Self {
            ap,
            ap50,
            ap75,
            ap_small,
            ap_medium,
            ap_large,
            ar1,
            ar10,
            ar100,
            ar_small,
            ar_medium,
            ar_large,
        })
    }

    /// The values in `COCOeval.stats` order.
    pub fn to_array(&self) -> [f64; 12] {
        [
            self.ap,
            self.ap50,
            self.ap75,
            self.ap_small,
            self.ap_medium,
            self.ap_large,
            self.ar1,
            self.ar10,
            self.ar100,
            self.ar_small,
            self.ar_medium,
            self.ar_large,
        ]
    }
}

/// Scores a COCO results file (a JSON array of detections, or an object with `annotations`)
/// against a COCO instances file.
pub fn evaluate_files(gt: &Path, dt: &Path, iou: IouType) -> Result<CocoStats, DetectError> {
    let ground_truth = COCO::new(gt).map_err(|e| DetectError::File {
        path: gt.to_path_buf(),
        what: "COCO ground truth",
        message: e.to_string(),
    })?;
    let detections = ground_truth.load_res(dt).map_err(|e| DetectError::File {
        path: dt.to_path_buf(),
        what: "COCO detections",
        message: e.to_string(),
    })?;
    run(ground_truth, detections, iou)
}

/// Scores detections held in memory (training's per-epoch evaluation).
pub fn evaluate(
    gt: Dataset,
    detections: Vec<Annotation>,
    iou: IouType,
) -> Result<CocoStats, DetectError> {
    let ground_truth = COCO::from_dataset(gt);
    let detections = ground_truth
        .load_res_anns(detections)
        .map_err(|e| DetectError::Invalid(format!("COCO detections: {e}")))?;
    run(ground_truth, detections, iou)
}

fn run(gt: COCO, dt: COCO, iou: IouType) -> Result<CocoStats, DetectError> {
    let mut eval = COCOeval::new(gt, dt, iou.hot());
    eval.evaluate()
        .map_err(|e| DetectError::Invalid(format!("COCO evaluation: {e}")))?;
    eval.accumulate();
    eval.summarize_lines();
    let stats = eval
        .stats()
        .ok_or_else(|| DetectError::Invalid("COCO evaluation produced no statistics".into()))?;
    CocoStats::from_slice(stats)
}
