//! A split's detections in COCO's result format (original-image pixels, `[x, y, w, h]`, the
//! dataset's category ids; with Mask R-CNN each mask pasted at the original size and encoded as
//! compressed RLE, as MMDetection's `segm` results, which also keep the box) and their COCO
//! statistics.

use std::path::Path;

use anyhow::Result;
use burn::prelude::*;
use ela_data::coco::CocoSplit;
use ela_data::detection::DetectionItem;
use ela_data::masks::CompressedRle;
use ela_detect::roi_head::Detection;
use ela_detect::{CocoStats, Detector, DetectorConfig, IouType, evaluate_files, paste_mask};
use serde::{Deserialize, Serialize};

use crate::data::DetectData;

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

/// Detects every image of `split` in batches of `batch` (eval mode, on `device`).
pub fn detect_split(
    model: &Detector,
    config: &DetectorConfig,
    data: &DetectData,
    split: &CocoSplit,
    batch: usize,
    device: &Device,
) -> Result<Vec<CocoResult>> {
    let categories = split.instances.category_ids();
    let positions: Vec<usize> = (0..split.images.len()).collect();
    let mut out = Vec::new();
    for chunk in positions.chunks(batch.max(1)) {
        let items = data.items(split, chunk, None)?;
        let images = data.pipeline.collate(&items, device);
        let sizes: Vec<(usize, usize)> = items.iter().map(|i| i.size).collect();
        let detected = model.detect(config, images, &sizes);
        for ((item, dets), &p) in items.iter().zip(detected).zip(chunk) {
            let original = (split.images[p].height, split.images[p].width);
            for d in &dets {
                out.push(CocoResult::new(
                    config,
                    item,
                    original,
                    categories[d.class],
                    d,
                ));
            }
        }
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
