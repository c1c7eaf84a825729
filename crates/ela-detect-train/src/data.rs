//! The run's data: training and validation splits (the digit set, generated on first use, or
//! COCO 2017) and the detection pipeline that turns their images into batches.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ela_data::coco::CocoSplit;
use ela_data::detection::{DetectionItem, DetectionPipeline};
use ela_data::digits::{DigitsConfig, ensure};
use rand::rngs::StdRng;

use crate::config::{DetectDataset, DetectRunConfig, DetectorKind};

/// Both splits and the pipeline.
#[derive(Debug, Clone)]
pub struct DetectData {
    /// Training split (images without objects left out).
    pub train: CocoSplit,
    /// Validation split (every image).
    pub val: CocoSplit,
    /// The pipeline (training flips; validation does not).
    pub pipeline: DetectionPipeline,
}

impl DetectData {
    /// Opens (or, for the digits, makes) the run's data.
    pub fn open(config: &DetectRunConfig) -> Result<Self> {
        let root = &config.data_dir;
        let (train, val) = match config.dataset {
            DetectDataset::Digits => {
                let set = ensure(root, &DigitsConfig::default())
                    .with_context(|| format!("digit set in {}", root.display()))?;
                (
                    CocoSplit::open(&set.annotations("train"), &set.images("train"), true)?,
                    CocoSplit::open(&set.annotations("val"), &set.images("val"), false)?,
                )
            }
            DetectDataset::Coco => {
                let ann = |s: &str| {
                    root.join("annotations")
                        .join(format!("instances_{s}2017.json"))
                };
                for s in ["train", "val"] {
                    if !ann(s).exists() {
                        bail!(
                            "{} is missing: fetch COCO 2017 with `cargo xtask fetch coco --dir {}` \
                             or point --data-dir at a folder holding annotations/ and {s}2017/",
                            ann(s).display(),
                            root.parent().unwrap_or(Path::new(".")).display()
                        );
                    }
                }
                (
                    CocoSplit::open(&ann("train"), &root.join("train2017"), true)?,
                    CocoSplit::open(&ann("val"), &root.join("val2017"), false)?,
                )
            }
        };
        let mut data = Self {
            train,
            val,
            pipeline: DetectionPipeline {
                scale: config.scale,
                masks: config.detector == DetectorKind::MaskRcnn,
                ..DetectionPipeline::mmdet()
            },
        };
        if let Some(n) = config.limit_train {
            data.train.images.truncate(n);
        }
        if let Some(n) = config.limit_val {
            data.val.images.truncate(n);
        }
        if data.train.images.is_empty() {
            bail!(
                "{} has no training image with objects",
                data.train.annotation_file.display()
            );
        }
        if data.train.num_classes() != data.val.num_classes() {
            bail!(
                "{} has {} categories but {} has {}",
                data.train.annotation_file.display(),
                data.train.num_classes(),
                data.val.annotation_file.display(),
                data.val.num_classes()
            );
        }
        Ok(data)
    }

    /// Items of `split` at `positions`, through the pipeline (flipped at random when `rng` is
    /// given).
    pub fn items(
        &self,
        split: &CocoSplit,
        positions: &[usize],
        mut rng: Option<&mut StdRng>,
    ) -> Result<Vec<DetectionItem>> {
        positions
            .iter()
            .map(|&p| {
                let image = &split.images[p];
                let rgb = split.load_rgb(image)?;
                let targets = split.targets(image.id);
                self.pipeline
                    .apply(image.id, &rgb, &targets, rng.as_deref_mut())
                    .map_err(|e| anyhow::anyhow!("{}: {e}", split.annotation_file.display()))
            })
            .collect()
    }
}
