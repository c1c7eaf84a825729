//! The run's data: training and validation splits (the digit set, generated on first use, or
//! COCO 2017), the detection pipeline that turns their images into batches, and the datasets the
//! runtime's loaders read.
//!
//! An item of these datasets is a whole batch: the training split's batches are grouped by
//! orientation anew every epoch (MMDetection's `GroupSampler`), so a loader takes one item at a
//! time. Everything random in an epoch (the grouping, each image's flip, the batch's anchor and
//! RoI sampling) is drawn from a seed derived from (seed, epoch, batch), so a resumed run reads
//! and samples exactly what an uninterrupted one would, with any number of loader workers.

use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result, bail};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::prelude::*;
use ela_data::coco::CocoSplit;
use ela_data::dataset::{EpochClock, splitmix};
use ela_data::detection::{DetectionItem, DetectionPipeline, group_batches};
use ela_data::digits::{DigitsConfig, ensure};
use ela_detect::rpn::Targets;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::config::{DetectDataset, DetectRunConfig, DetectorKind};

/// Both splits and the pipeline.
#[derive(Debug, Clone)]
pub struct DetectData {
    /// Training split (images without objects left out).
    pub train: Arc<CocoSplit>,
    /// Validation split (every image).
    pub val: Arc<CocoSplit>,
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
        let (mut train, mut val) = (train, val);
        if let Some(n) = config.limit_train {
            train.images.truncate(n);
        }
        if let Some(n) = config.limit_val {
            val.images.truncate(n);
        }
        if train.images.is_empty() {
            bail!(
                "{} has no training image with objects",
                train.annotation_file.display()
            );
        }
        if val.images.is_empty() {
            bail!("{} has no validation image", val.annotation_file.display());
        }
        for split in [&train, &val] {
            check_images(split)?;
        }
        if train.num_classes() != val.num_classes() {
            bail!(
                "{} has {} categories but {} has {}",
                train.annotation_file.display(),
                train.num_classes(),
                val.annotation_file.display(),
                val.num_classes()
            );
        }
        Ok(Self {
            train: Arc::new(train),
            val: Arc::new(val),
            pipeline: DetectionPipeline {
                scale: config.scale,
                masks: config.detector == DetectorKind::MaskRcnn,
                ..DetectionPipeline::mmdet()
            },
        })
    }

    /// Items of `split` at `positions`, through the pipeline (see [`load_items`]).
    pub fn items(
        &self,
        split: &CocoSplit,
        positions: &[usize],
        flip_seed: Option<&dyn Fn(usize) -> u64>,
    ) -> Result<Vec<DetectionItem>> {
        load_items(&self.pipeline, split, positions, flip_seed)
    }
}

/// Items of `split` at `positions`, through `pipeline`; image k is flipped at random (with the
/// pipeline's probability) when `flip_seed` gives the seed of its draw, `flip_seed(k)`.
pub fn load_items(
    pipeline: &DetectionPipeline,
    split: &CocoSplit,
    positions: &[usize],
    flip_seed: Option<&dyn Fn(usize) -> u64>,
) -> Result<Vec<DetectionItem>> {
    positions
        .iter()
        .enumerate()
        .map(|(k, &p)| {
            let image = &split.images[p];
            let rgb = split.load_rgb(image)?;
            let targets = split.targets(image.id);
            let mut rng = flip_seed.map(|s| StdRng::seed_from_u64(s(k)));
            pipeline
                .apply(image.id, &rgb, &targets, rng.as_mut())
                .map_err(|e| anyhow::anyhow!("{}: {e}", split.annotation_file.display()))
        })
        .collect()
}

/// Refuses a split whose annotations name images its folder does not hold, naming them, before
/// any work.
pub fn check_images(split: &CocoSplit) -> Result<()> {
    let missing: Vec<&str> = split
        .images
        .iter()
        .filter(|i| !split.image_dir.join(&i.file_name).is_file())
        .map(|i| i.file_name.as_str())
        .collect();
    if let Some(first) = missing.first() {
        bail!(
            "{} names {} image(s) that {} does not hold: {first}{}",
            split.annotation_file.display(),
            missing.len(),
            split.image_dir.display(),
            match missing.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            }
        );
    }
    Ok(())
}

/// One batch as a loader item: its images through the pipeline, and the seed of its sampling.
#[derive(Debug, Clone)]
pub struct BatchItems {
    /// The images, in batch order.
    pub items: Vec<DetectionItem>,
    /// Each image's original `(height, width)`.
    pub originals: Vec<(usize, usize)>,
    /// The seed of the batch's anchor and RoI sampling.
    pub seed: u64,
}

/// A batch on the device.
#[derive(Debug, Clone)]
pub struct DetectBatch {
    /// The images, normalized and padded to a common size.
    ///
    /// # Shapes
    /// `[batch, 3, height, width]`, height and width multiples of the pipeline's divisor.
    pub images: Tensor<4>,
    /// Each image's size after resizing, before padding: `(height, width)`.
    pub sizes: Vec<(usize, usize)>,
    /// Each image's ground truth, in its resized (and flipped) pixels.
    pub targets: Vec<Targets>,
    /// What maps each image's detections back to its original pixels.
    pub images_meta: Vec<ImageMeta>,
    /// The seed of the batch's anchor and RoI sampling.
    pub seed: u64,
}

/// What maps an image's detections back to the original image.
#[derive(Debug, Clone)]
pub struct ImageMeta {
    /// The pipeline's item (its pixels dropped).
    pub item: DetectionItem,
    /// The original `(height, width)`.
    pub original: (usize, usize),
}

/// Collates a loader's items (whole batches) into one device batch.
#[derive(Debug, Clone)]
pub struct DetectBatcher {
    pipeline: DetectionPipeline,
}

impl DetectBatcher {
    /// A batcher padding as `pipeline` says.
    pub fn new(pipeline: DetectionPipeline) -> Self {
        Self { pipeline }
    }
}

impl Batcher<BatchItems, DetectBatch> for DetectBatcher {
    fn batch(&self, batches: Vec<BatchItems>, device: &Device) -> DetectBatch {
        let seed = batches.first().map_or(0, |b| b.seed);
        let (items, originals): (Vec<DetectionItem>, Vec<(usize, usize)>) = batches
            .into_iter()
            .flat_map(|b| b.items.into_iter().zip(b.originals))
            .unzip();
        let images = self.pipeline.collate(&items, device);
        let sizes = items.iter().map(|i| i.size).collect();
        let (targets, images_meta) = items
            .into_iter()
            .zip(originals)
            .map(|(mut item, original)| {
                let targets = Targets {
                    boxes: item.targets.boxes.clone(),
                    labels: item.targets.labels.clone(),
                    masks: std::mem::take(&mut item.masks),
                };
                item.pixels = Vec::new();
                (targets, ImageMeta { item, original })
            })
            .unzip();
        DetectBatch {
            images,
            sizes,
            targets,
            images_meta,
            seed,
        }
    }
}

/// A seed from `seed` and the parts of a draw's address (epoch, batch, image, …).
pub fn derive_seed(seed: u64, parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(splitmix(seed), |s, &p| splitmix(s ^ splitmix(p)))
}

/// The training split's batches of an epoch, grouped by orientation and shuffled anew each
/// epoch of the clock; item `i` is the epoch's batch `i`.
pub struct TrainBatches {
    data: DetectData,
    batch: usize,
    seed: u64,
    clock: EpochClock,
    sizes: Vec<(usize, usize)>,
    len: usize,
    order: RwLock<(usize, Vec<Vec<usize>>)>,
}

impl TrainBatches {
    /// Batches of `batch` training images (one device's share of a step).
    pub fn new(data: &DetectData, batch: usize, seed: u64, clock: EpochClock) -> Self {
        let sizes: Vec<(usize, usize)> = data
            .train
            .images
            .iter()
            .map(|i| (i.height, i.width))
            .collect();
        // Every epoch has as many batches: each orientation's group, padded to whole batches.
        let len = [false, true]
            .iter()
            .map(|&landscape| {
                let n = sizes.iter().filter(|s| (s.1 > s.0) == landscape).count();
                n.div_ceil(batch.max(1))
            })
            .sum();
        Self {
            data: data.clone(),
            batch,
            seed,
            clock,
            sizes,
            len,
            order: RwLock::new((0, Vec::new())),
        }
    }

    fn positions(&self, epoch: usize, index: usize) -> Option<Vec<usize>> {
        {
            let order = self.order.read().unwrap_or_else(|e| e.into_inner());
            if order.0 == epoch {
                return order.1.get(index).cloned();
            }
        }
        let mut order = self.order.write().unwrap_or_else(|e| e.into_inner());
        if order.0 != epoch {
            let mut rng = StdRng::seed_from_u64(derive_seed(self.seed, &[epoch as u64]));
            *order = (epoch, group_batches(&self.sizes, self.batch, &mut rng));
        }
        order.1.get(index).cloned()
    }
}

impl Dataset<BatchItems> for TrainBatches {
    fn get(&self, index: usize) -> Result<BatchItems, DatasetError> {
        let epoch = self.clock.get();
        let positions = self.positions(epoch, index).ok_or_else(|| {
            DatasetError::new(std::io::Error::other(format!(
                "batch {index} of {}",
                self.len
            )))
        })?;
        let (e, b) = (epoch as u64, index as u64);
        let flip = |k: usize| derive_seed(self.seed, &[e, b, k as u64, 1]);
        let split = &self.data.train;
        let items = self
            .data
            .items(split, &positions, Some(&flip))
            .map_err(|err| DatasetError::new(std::io::Error::other(format!("{err:#}"))))?;
        Ok(BatchItems {
            originals: positions
                .iter()
                .map(|&p| (split.images[p].height, split.images[p].width))
                .collect(),
            items,
            seed: derive_seed(self.seed, &[e, b, 2]),
        })
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// A split's images in order, in batches of `batch`, not flipped: what evaluation reads.
pub struct EvalBatches {
    pipeline: DetectionPipeline,
    split: Arc<CocoSplit>,
    batch: usize,
}

impl EvalBatches {
    /// `split` through `pipeline` in batches of `batch`.
    pub fn new(pipeline: &DetectionPipeline, split: Arc<CocoSplit>, batch: usize) -> Self {
        Self {
            pipeline: pipeline.clone(),
            split,
            batch: batch.max(1),
        }
    }
}

impl Dataset<BatchItems> for EvalBatches {
    fn get(&self, index: usize) -> Result<BatchItems, DatasetError> {
        let start = index * self.batch;
        let end = (start + self.batch).min(self.split.images.len());
        if start >= end {
            return Err(DatasetError::new(std::io::Error::other(format!(
                "batch {index} of {}",
                self.len()
            ))));
        }
        let positions: Vec<usize> = (start..end).collect();
        let items = load_items(&self.pipeline, &self.split, &positions, None)
            .map_err(|err| DatasetError::new(std::io::Error::other(format!("{err:#}"))))?;
        Ok(BatchItems {
            originals: positions
                .iter()
                .map(|&p| (self.split.images[p].height, self.split.images[p].width))
                .collect(),
            items,
            seed: 0,
        })
    }

    fn len(&self) -> usize {
        self.split.images.len().div_ceil(self.batch)
    }
}
