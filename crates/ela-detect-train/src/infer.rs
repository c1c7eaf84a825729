//! A trained detector from its run directory (`config.json`, `classes.json`, `model.bpk`) for
//! inference on single images: what `ela detect` runs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use burn::store::ModuleRecord;
use ela_data::coco::{CocoCategory, read_rgb};
use ela_data::detection::DetectionPipeline;
use ela_model::Prunable;
use ela_records::checkpoint::load_state;
use image::RgbImage;

use crate::config::DetectRunConfig;
use crate::data::{BatchItems, DetectBatcher};
use crate::evaluate::CocoResult;
use crate::model::DetectionModel;
use crate::task::{CLASSES_FILE, MODEL_FILE};

/// A detector ready for inference.
#[derive(Debug)]
pub struct TrainedDetector {
    /// The model (eval mode).
    pub model: DetectionModel,
    /// The input pipeline (no flip).
    pub pipeline: DetectionPipeline,
    /// Categories in class-index order.
    pub categories: Vec<CocoCategory>,
    /// The files it was read from.
    pub files: Vec<PathBuf>,
    /// The run it was trained by, for one of ours.
    pub run: Option<DetectRunConfig>,
}

/// The run directory and the weights file that `weights` names: a run directory (its final
/// weights), or a `.bpk` file inside one (its checkpoints' too).
pub fn run_files(weights: &Path) -> (PathBuf, PathBuf) {
    if weights.is_dir() {
        return (weights.to_path_buf(), weights.join(MODEL_FILE));
    }
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
}

/// The configuration of the detection run that `weights` names.
pub fn read_run(weights: &Path) -> Result<DetectRunConfig> {
    let (dir, _) = run_files(weights);
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "--weights: cannot read {} (a detection run's directory holds it)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "--weights: {} is not a detection run's configuration",
            path.display()
        )
    })
}

impl TrainedDetector {
    /// Loads the run that `weights` names: a run directory, or a `.bpk` file inside one.
    pub fn load(weights: &Path, device: &Device) -> Result<Self> {
        let (dir, file) = run_files(weights);
        let read = |name: &str| -> Result<String> {
            let p = dir.join(name);
            std::fs::read_to_string(&p).with_context(|| {
                format!(
                    "--weights: cannot read {} (a detection run's directory holds it)",
                    p.display()
                )
            })
        };
        let run = read_run(weights)?;
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
        let detector = config.init(device)?.load_record(record);
        if detector.parameter_count() == 0 {
            bail!("--weights: {} holds an empty model", file.display());
        }
        let model = DetectionModel::new(detector, categories.iter().map(|c| c.id).collect());
        // ELA's skip flags are not part of the record: a checkpoint's come from its state, the
        // final model's from `pruning.json`.
        let (flags, flags_file) = skip_flags(&dir, &file)?;
        if let Some(flags) = flags {
            model.set_skip_flags(&flags).with_context(|| {
                format!(
                    "--weights: the skip flags of {} do not fit the model",
                    dir.display()
                )
            })?;
        }
        let files = [dir.join("config.json"), dir.join(CLASSES_FILE), file]
            .into_iter()
            .chain(flags_file)
            .collect();
        Ok(Self {
            model,
            pipeline: DetectionPipeline {
                scale: run.scale,
                ..DetectionPipeline::mmdet()
            },
            categories,
            files,
            run: Some(run),
        })
    }
}

/// The skip flags that go with `file` of the run in `dir`, if the run pruned, and the file they
/// come from.
fn skip_flags(dir: &Path, file: &Path) -> Result<(Option<Vec<bool>>, Option<PathBuf>)> {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(epoch) = name
        .strip_prefix("model-")
        .and_then(|n| n.strip_suffix(".bpk"))
        .and_then(|n| n.parse::<usize>().ok())
    {
        let folder = file.parent().unwrap_or(Path::new("."));
        let state = load_state(folder, epoch).context("--weights")?;
        let path = ela_records::checkpoint::state_path(folder, epoch);
        return Ok((Some(state.skip_flags), Some(path)));
    }
    let pruning = dir.join("pruning.json");
    if !pruning.exists() {
        return Ok((None, None));
    }
    let flags = ela_records::read_pruning(&pruning)?.final_mask;
    Ok((Some(flags), Some(pruning)))
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
        let original = (rgb.height() as usize, rgb.width() as usize);
        let batch = DetectBatcher::new(self.pipeline.clone()).batch(
            vec![BatchItems {
                items: vec![item],
                originals: vec![original],
                seed: 0,
            }],
            device,
        );
        Ok((rgb, self.model.results(batch)))
    }
}
