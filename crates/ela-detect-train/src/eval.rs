//! `ela eval --task detect`: a detector scored on a dataset's validation split, as MMDetection's
//! `tools/test.py --eval bbox segm` does: every image detected, the detections written as COCO
//! results, and COCO's 12 box statistics (and the 12 mask ones for Mask R-CNN) computed from that
//! file exactly as `ela eval-coco` computes them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use burn::prelude::*;
use ela_data::coco::CocoSplit;
use ela_detect::{CocoStats, IouType};
use serde::Serialize;

use crate::data::check_images;
use crate::evaluate::{detect_split, score};
use crate::infer::TrainedDetector;

/// The layouts a validation split can have in a folder: its annotations file (in
/// `annotations/`) and images folder. COCO 2017's, then the digit set's.
const LAYOUTS: [(&str, &str); 2] = [
    ("instances_val2017.json", "val2017"),
    ("instances_val.json", "val"),
];

/// The validation split in `dir` (COCO 2017's `annotations/instances_val2017.json` and
/// `val2017/`, or the digit set's `instances_val.json` and `val/`), its first `limit` images;
/// images its annotations name that the folder does not hold are an error naming them.
pub fn open_split(dir: &Path, limit: Option<usize>) -> Result<Arc<CocoSplit>> {
    let Some((annotations, images)) = LAYOUTS
        .iter()
        .map(|(a, i)| (dir.join("annotations").join(a), dir.join(i)))
        .find(|(a, _)| a.is_file())
    else {
        bail!(
            "--data-dir {} holds no validation split: expected annotations/instances_val2017.json \
             and val2017/ (COCO 2017, `cargo xtask fetch coco`), or annotations/instances_val.json \
             and val/ (the digit set)",
            dir.display()
        );
    };
    let mut split = CocoSplit::open(&annotations, &images, false)?;
    if let Some(n) = limit {
        split.images.truncate(n);
    }
    if split.images.is_empty() {
        bail!("{} has no image", annotations.display());
    }
    check_images(&split)?;
    Ok(Arc::new(split))
}

/// What an evaluation measured.
#[derive(Debug, Clone, Serialize)]
pub struct DetectionScores {
    /// Images evaluated.
    pub images: usize,
    /// Detections written.
    pub detections: usize,
    /// The file they were written to.
    pub detections_file: PathBuf,
    /// COCO box statistics.
    pub bbox: CocoStats,
    /// Mask R-CNN: COCO mask statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segm: Option<CocoStats>,
    /// Images per second of the detection (decoding included, scoring not).
    pub images_per_second: f64,
}

/// Refuses a split whose categories are not all among the detector's (a detector of another
/// dataset), naming both.
pub fn check_categories(detector: &TrainedDetector, split: &CocoSplit) -> Result<()> {
    let ids = &detector.model.category_ids;
    let missing: Vec<u64> = split
        .instances
        .category_ids()
        .into_iter()
        .filter(|id| !ids.contains(id))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} has categories the detector does not know (ids {missing:?}): the detector was \
             trained on another dataset's {} categories",
            split.annotation_file.display(),
            ids.len()
        );
    }
    Ok(())
}

/// Detects every image of `split` with `detector` in batches of `batch` on `device`, writes the
/// detections to `out` and scores them; `progress` hears of each batch done.
pub fn evaluate(
    detector: &TrainedDetector,
    split: &Arc<CocoSplit>,
    batch: usize,
    device: &Device,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DetectionScores> {
    check_categories(detector, split)?;
    let started = Instant::now();
    let model = &detector.model;
    let results = detect_split(model, &detector.pipeline, split, batch, device, progress)?;
    let seconds = started.elapsed().as_secs_f64();
    let bbox = score(split, &results, out, IouType::Bbox)?;
    let segm = match model.detector.config.mask {
        Some(_) => Some(score(split, &results, out, IouType::Segm)?),
        None => None,
    };
    Ok(DetectionScores {
        images: split.images.len(),
        detections: results.len(),
        detections_file: out.to_path_buf(),
        bbox,
        segm,
        images_per_second: split.images.len() as f64 / seconds.max(1e-9),
    })
}
