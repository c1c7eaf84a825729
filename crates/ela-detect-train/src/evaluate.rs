//! A split's detections in COCO's result format (original-image pixels, `[x, y, w, h]`, the
//! dataset's category ids; with Mask R-CNN each mask pasted at the original size and encoded as
//! compressed RLE, as MMDetection's `segm` results, which also keep the box) and their COCO
//! statistics.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use ela_data::coco::CocoSplit;
use ela_data::detection::{DetectionItem, DetectionPipeline};
use ela_data::masks::CompressedRle;
use ela_detect::roi_head::Detection;
use ela_detect::{CocoStats, DetectorConfig, IouType, evaluate_files, paste_mask};
use serde::{Deserialize, Serialize};

use crate::data::{DetectBatcher, EvalBatches};
use crate::model::DetectionModel;

/// One detection as COCO's results files hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoResult {
    /// Image id.
    pub image_id: u64,
    /// Category id.
    pub category_id: u64,
    /// `[x, y, width, height]` in the original image.
    pub bbox: [f32; 4],
    /// Confidence.
    pub score: f32,
    /// Mask R-CNN: the instance mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<CompressedRle>,
}

impl CocoResult {
    /// A detection of `item` (an image of `original` `(height, width)` pixels) as a result.
    pub fn new(
        config: &DetectorConfig,
        item: &DetectionItem,
        original: (usize, usize),
        category_id: u64,
        d: &Detection,
    ) -> Self {
        let b = item.to_original(d.bbox);
        let segmentation = d.mask.as_ref().zip(config.mask.as_ref()).map(|(probs, m)| {
            paste_mask(probs, m.size, b, original, m.paste, m.threshold).to_rle()
        });
        let [x1, y1, x2, y2] = b;
        Self {
            image_id: item.image_id,
            category_id,
            bbox: [x1, y1, x2 - x1, y2 - y1],
            score: d.score,
            segmentation,
        }
    }
}

/// Detects every image of `split` through `pipeline` in batches of `batch` (the model in eval
/// mode, on `device`); `progress` hears of each batch done (done, of all).
pub fn detect_split(
    model: &DetectionModel,
    pipeline: &DetectionPipeline,
    split: &Arc<CocoSplit>,
    batch: usize,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<CocoResult>> {
    let batches = EvalBatches::new(pipeline, split.clone(), batch);
    let batcher = DetectBatcher::new(pipeline.clone());
    let mut out = Vec::new();
    for i in 0..batches.len() {
        let items = batches
            .get(i)
            .map_err(|e| anyhow::anyhow!("{}: {e}", split.annotation_file.display()))?;
        out.extend(model.results(batcher.batch(vec![items], device)));
        progress(i + 1, batches.len());
    }
    Ok(out)
}

/// Writes `results` to `path` (atomically) and scores their boxes or masks against `split`'s
/// ground truth. No detection at all scores zero everywhere COCOeval would have ground truth to
/// find.
pub fn score(
    split: &CocoSplit,
    results: &[CocoResult],
    path: &Path,
    iou: IouType,
) -> Result<CocoStats> {
    ela_records::write_json(path, &results)?;
    if results.is_empty() {
        return Ok(CocoStats::from_slice(&[0.0; 12])?);
    }
    Ok(evaluate_files(&split.annotation_file, path, iou)?)
}
