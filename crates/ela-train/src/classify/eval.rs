//! `ela eval` for classification, as timm's `validate.py`: a classifier on a dataset's test split
//! (ImageNet's `val/`, CIFAR's or MNIST's test set), top-1 and top-5 accuracy, the mean
//! cross-entropy and images per second.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use burn::tensor::FloatDType;
use burn::train::InferenceStep;
use ela_data::cifar;
use ela_data::dataset::{EpochClock, ImageBatcher, ImageItem, Normalization};
use ela_data::imagenet::{self, FolderIndex, ImageFolderSet};
use ela_model::weights::LoadOptions;
use serde::Serialize;

use super::dataset::{fetched_dir, load_dataset};
use super::model::ElaClassifier;
use super::options::DatasetName;
use super::resolved::RunConfig;

/// A dataset's test split, ready for a loader.
pub struct TestData {
    /// The images.
    pub test: Arc<dyn Dataset<ImageItem>>,
    /// `[C, H, W]` of every item.
    pub shape: [usize; 3],
    /// Classes.
    pub num_classes: usize,
    /// The split's normalization (CIFAR: its training split's statistics).
    pub normalization: Normalization,
    /// Where it came from.
    pub source: String,
}

/// The test split of `dataset` in `dir` (the embedded MNIST sample or `data/<dataset>` without
/// one), its first `limit` images (ImageNet: `limit` spread evenly over the classes).
pub fn test_data(
    dataset: DatasetName,
    dir: Option<&Path>,
    limit: Option<usize>,
) -> Result<TestData> {
    if dataset == DatasetName::Imagenet {
        let root = fetched_dir(dataset, dir)?;
        let index = FolderIndex::scan(&root.join("val"), None)?;
        let mut test = ImageFolderSet::new(&index, false, 0, EpochClock::new());
        if let Some(n) = limit {
            test = test.evenly_spaced(n);
        }
        return Ok(TestData {
            num_classes: test.num_classes,
            test: Arc::new(test),
            shape: [3, imagenet::CROP, imagenet::CROP],
            normalization: imagenet::normalization(),
            source: root.display().to_string(),
        });
    }
    let data = load_dataset(dataset, dir)?;
    let normalization = match dataset {
        DatasetName::Cifar10 | DatasetName::Cifar100 => cifar::channel_stats(&data.train),
        _ => Normalization::mnist(),
    };
    let test = limit.map_or(data.test.clone(), |n| data.test.truncated(n));
    Ok(TestData {
        shape: [test.channels, test.height, test.width],
        num_classes: test.num_classes,
        test: Arc::new(test),
        normalization,
        source: dir.map_or_else(
            || match dataset {
                DatasetName::Mnist => "embedded sample".to_string(),
                other => super::dataset::default_data_dir(other)
                    .display()
                    .to_string(),
            },
            |d| d.display().to_string(),
        ),
    })
}

/// What an evaluation measured.
#[derive(Debug, Clone, Serialize)]
pub struct ClassificationScores {
    /// Images evaluated.
    pub images: usize,
    /// Top-1 accuracy (%).
    pub top1: f64,
    /// Top-5 accuracy (%); with fewer than 5 classes, every image counts.
    pub top5: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Images per second (decoding included).
    pub images_per_second: f64,
}

/// `model` (in eval mode) on `data`'s test split in batches of `batch` with `workers` loader
/// threads on `device`; `progress` hears of each batch done (done, of all).
pub fn evaluate(
    model: &ElaClassifier,
    data: &TestData,
    batch: usize,
    workers: usize,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ClassificationScores> {
    if data.test.is_empty() {
        bail!("the test split of {} holds no image", data.source);
    }
    let loader = DataLoaderBuilder::new(ImageBatcher::new(data.shape, data.normalization.clone()))
        .batch_size(batch.max(1))
        .num_workers(workers.max(1))
        .build(data.test.clone())
        .to_device(device);
    let batches = data.test.len().div_ceil(batch.max(1));
    let k = data.num_classes.min(5);
    let started = Instant::now();
    let mut sums: Option<Tensor<1>> = None;
    let mut images = 0;
    let mut done = 0;
    for batch in loader.iter() {
        let batch = batch.map_err(|e| anyhow::anyhow!("{}: {e}", data.source))?;
        let n = batch.targets.dims()[0];
        let out = InferenceStep::step(model, batch);
        let targets = out.targets.clone().reshape([n, 1]);
        let loss = out.loss.clone().cast(FloatDType::F32) * n as f64;
        let top = out.output.clone().argsort_descending(1).narrow(1, 0, k);
        let hits = top.equal(targets.expand([n, k])).int();
        let top1 = hits
            .clone()
            .narrow(1, 0, 1)
            .sum()
            .float()
            .cast(FloatDType::F32);
        let topk = hits.sum().float().cast(FloatDType::F32);
        let batch_sums = Tensor::cat(vec![loss, top1, topk], 0);
        sums = Some(match sums.take() {
            Some(s) => s + batch_sums,
            None => batch_sums,
        });
        images += n;
        done += 1;
        progress(done, batches);
    }
    let seconds = started.elapsed().as_secs_f64();
    let sums = sums.map_or_else(Vec::new, crate::runtime::sums::read_back);
    let at = |i: usize| sums.get(i).copied().unwrap_or(0.0);
    let n = images.max(1) as f64;
    Ok(ClassificationScores {
        images,
        top1: 100.0 * at(1) / n,
        top5: 100.0 * at(2) / n,
        loss: at(0) / n,
        images_per_second: images as f64 / seconds.max(1e-9),
    })
}

/// The configuration of the classification run in `dir` (its `config.json`).
pub fn read_run(dir: &Path) -> Result<RunConfig> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--weights: cannot read {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--weights: {} is not valid JSON", path.display()))?;
    let task = ela_records::task_of(&value).with_context(|| path.display().to_string())?;
    if task != ela_records::TaskKind::Classify {
        bail!("--weights: {} holds a {task} run", dir.display());
    }
    serde_json::from_value(value).with_context(|| {
        format!(
            "--weights: {} is not a classification run's configuration",
            path.display()
        )
    })
}

/// The classifier `weights` holds, for `data`'s classes and channels: a classification run
/// directory of ours (`run`: its configuration; `model.safetensors` with its skip flags), or a
/// weights file (ours, an official MRLA checkpoint, torchvision's) of the registered `model`.
/// Every tensor must fit. Returns the classifier and the files it was read from.
pub fn load_classifier(
    weights: &Path,
    run: Option<&RunConfig>,
    model: Option<&str>,
    data: &TestData,
    device: &Device,
) -> Result<(ElaClassifier, PathBuf)> {
    let (classes, channels) = (data.num_classes, data.shape[0]);
    let (config, file) = match (run, model) {
        (Some(run), _) => (
            run.model_config(classes, channels),
            weights.join("model.safetensors"),
        ),
        (None, Some(name)) => (
            ela_model::registry::find(name)
                .context("--model")?
                .config(classes)
                .with_in_channels(channels),
            weights.to_path_buf(),
        ),
        (None, None) => bail!(
            "--weights {} is a file: name its model with --model (`ela models` lists them)",
            weights.display()
        ),
    };
    let mut net = config.init(device)?;
    net.load_checkpoint(
        &file,
        &LoadOptions {
            strict: true,
            ..LoadOptions::default()
        },
    )
    .with_context(|| format!("--weights {}", weights.display()))?;
    Ok((ElaClassifier::new(net), file))
}
