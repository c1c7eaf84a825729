//! A trained detector from its run directory (`config.json`, `classes.json`, `model.bpk`) for
//! inference on single images: what `ela detect` runs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use burn::store::ModuleRecord;
use ela_data::coco::{CocoCategory, read_rgb};
use ela_data::detection::DetectionPipeline;
use ela_detect::{Detector, DetectorConfig};
use ela_model::Prunable;
use image::RgbImage;

use crate::config::DetectRunConfig;
use crate::evaluate::CocoResult;

/// The categories file a run writes beside its configuration.
pub const CLASSES_FILE: &str = "classes.json";

/// A detector ready for inference.
#[derive(Debug)]
pub struct TrainedDetector {
    /// The model (eval mode).
    pub model: Detector,
    /// Its configuration.
    pub config: DetectorConfig,
    /// The input pipeline (no flip).
    pub pipeline: DetectionPipeline,
    /// Categories in class-index order.
    pub categories: Vec<CocoCategory>,
}

impl TrainedDetector {
    /// Loads the run that `weights` names: a run directory, or a `.bpk` file inside one.
    pub fn load(weights: &Path, device: &Device) -> Result<Self> {
        let (dir, file): (PathBuf, PathBuf) = if weights.is_dir() {
            (weights.to_path_buf(), weights.join("model.bpk"))
        } else {
            let dir = weights
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let dir = if dir.ends_with("checkpoint") {
                dir.parent().unwrap_or(dir)
            } else {
                dir
            };
            (dir.to_path_buf(), weights.to_path_buf())
        };
        let read = |name: &str| -> Result<String> {
            let p = dir.join(name);
            std::fs::read_to_string(&p).with_context(|| {
                format!(
                    "--weights: cannot read {} (a detection run's directory holds it)",
                    p.display()
                )
            })
        };
        let run: DetectRunConfig =
            serde_json::from_str(&read("config.json")?).with_context(|| {
                format!(
                    "--weights: {} is not a detection run's configuration",
                    dir.join("config.json").display()
                )
            })?;
        let categories: Vec<CocoCategory> = serde_json::from_str(&read(CLASSES_FILE)?)
            .with_context(|| {
                format!(
                    "--weights: {} is not a category list",
                    dir.join(CLASSES_FILE).display()
                )
            })?;
        let config = run.detector(categories.len())?;
        let bytes = std::fs::read(&file)
            .with_context(|| format!("--weights: cannot read {}", file.display()))?;
        let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .with_context(|| format!("--weights: {} is not a Burn record", file.display()))?;
        let model = config.init(device)?.load_record(record);
        if model.parameter_count() == 0 {
            bail!("--weights: {} holds an empty model", file.display());
        }
        // ELA's skip flags are not part of the record: a checkpoint's come from its state, the
        // final model's from `pruning.json`.
        if let Some(flags) = skip_flags(&dir, &file)? {
            model.set_skip_flags(&flags).with_context(|| {
                format!(
                    "--weights: the skip flags of {} do not fit the model",
                    dir.display()
                )
            })?;
        }
        Ok(Self {
            model,
            config,
            pipeline: DetectionPipeline {
                scale: run.scale,
                ..DetectionPipeline::mmdet()
            },
            categories,
        })
    }
}

/// The skip flags that go with `file` of the run in `dir`, if the run pruned.
fn skip_flags(dir: &Path, file: &Path) -> Result<Option<Vec<bool>>> {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(epoch) = name
        .strip_prefix("model-")
        .and_then(|n| n.strip_suffix(".bpk"))
    {
        let state = file.with_file_name(format!("state-{epoch}.json"));
        let text = std::fs::read_to_string(&state)
            .with_context(|| format!("--weights: cannot read {}", state.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("--weights: {} is not a checkpoint state", state.display()))?;
        let flags = value["skip_flags"]
            .as_array()
            .map(|a| a.iter().map(|b| b.as_bool().unwrap_or(false)).collect());
        return Ok(flags);
    }
    let pruning = dir.join("pruning.json");
    if !pruning.exists() {
        return Ok(None);
    }
    Ok(Some(ela_records::read_pruning(&pruning)?.final_mask))
}

impl TrainedDetector {
    /// Detections of one image file, in its pixels, as COCO results with image id `image_id`.
    pub fn detect_file(
        &self,
        path: &Path,
        image_id: u64,
        device: &Device,
    ) -> Result<(RgbImage, Vec<CocoResult>)> {
        let rgb = read_rgb(path)?;
        let empty = ela_data::coco::DetectionTargets::default();
        let item = self
            .pipeline
            .apply(image_id, &rgb, &empty, None)
            .map_err(anyhow::Error::msg)?;
        let images = self.pipeline.collate(std::slice::from_ref(&item), device);
        let detections = self
            .model
            .detect(&self.config, images, &[item.size])
            .remove(0);
        let original = (rgb.height() as usize, rgb.width() as usize);
        let results = detections
            .iter()
            .map(|d| {
                CocoResult::new(
                    &self.config,
                    &item,
                    original,
                    self.categories[d.class].id,
                    d,
                )
            })
            .collect();
        Ok((rgb, results))
    }
}
