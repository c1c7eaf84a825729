//! A split's detections in COCO's result format (original-image pixels, `[x, y, w, h]`, the
//! dataset's category ids) and their COCO statistics.

use std::path::Path;

use anyhow::Result;
use burn::prelude::*;
use ela_data::coco::CocoSplit;
use ela_detect::{CocoStats, DetectorConfig, FasterRcnn, IouType, evaluate_files};
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
}

/// Detects every image of `split` in batches of `batch` (eval mode, on `device`).
pub fn detect_split(
    model: &FasterRcnn,
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
        for (item, dets) in items.iter().zip(model.detect(config, images, &sizes)) {
            for d in dets {
                let [x1, y1, x2, y2] = item.to_original(d.bbox);
                out.push(CocoResult {
                    image_id: item.image_id,
                    category_id: categories[d.class],
                    bbox: [x1, y1, x2 - x1, y2 - y1],
                    score: d.score,
                });
            }
        }
    }
    Ok(out)
}

/// Writes `results` to `path` (atomically) and scores them against `split`'s ground truth. No
/// detection at all scores zero everywhere COCOeval would have ground truth to find.
pub fn score(split: &CocoSplit, results: &[CocoResult], path: &Path) -> Result<CocoStats> {
    ela_records::write_json(path, &results)?;
    if results.is_empty() {
        return Ok(CocoStats::from_slice(&[0.0; 12])?);
    }
    Ok(evaluate_files(&split.annotation_file, path, IouType::Bbox)?)
}
