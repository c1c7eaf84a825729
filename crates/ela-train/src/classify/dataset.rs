//! A run's data: the configured dataset's splits, limited and checked, with the recipe's
//! training augmentation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use burn::data::dataset::Dataset;

use super::options::DatasetName;
use super::resolved::RunConfig;
use ela_data::cifar;
use ela_data::dataset::{EpochClock, ImageItem, Mnist, Normalization, Splits};
use ela_data::imagenet::{self, FolderIndex, ImageFolderSet};

/// Where `cargo xtask fetch` puts a dataset by default.
pub fn default_data_dir(dataset: DatasetName) -> PathBuf {
    PathBuf::from("data").join(dataset.name())
}

/// The folder of a fetched dataset: `dir`, or [`default_data_dir`]; a missing one names the
/// command that fetches it.
pub(crate) fn fetched_dir(dataset: DatasetName, dir: Option<&Path>) -> Result<PathBuf> {
    let dir = dir.map_or_else(|| default_data_dir(dataset), Path::to_path_buf);
    if dir.exists() {
        return Ok(dir);
    }
    let name = dataset.name();
    let fetch = match dataset {
        DatasetName::Imagenet => "fetch imagenet --from ARCHIVES".to_string(),
        _ => format!("fetch {name}"),
    };
    if dir == default_data_dir(dataset) {
        bail!(
            "{name} not found in {}: run `cargo xtask {fetch}` first, or pass --data-dir",
            dir.display()
        );
    }
    bail!(
        "{name} not found in {}: prepare it with `cargo xtask {fetch} --dir DIR` (it lands in \
         DIR/{name}) and pass --data-dir DIR/{name}, or point --data-dir at the folder holding \
         the dataset's files",
        dir.display()
    );
}

/// The splits of an in-memory dataset: MNIST from `dir` or the embedded sample, CIFAR from `dir`
/// or [`default_data_dir`]; a missing dataset names the command that fetches it. ImageNet is read
/// per item from its folders instead (see [`run_data`]).
pub fn load_dataset(dataset: DatasetName, dir: Option<&Path>) -> Result<Splits> {
    let kind = match dataset {
        DatasetName::Mnist => {
            return match dir {
                None => Ok(Mnist::embedded()),
                Some(dir) => Ok(Mnist::from_dir(dir)?),
            };
        }
        DatasetName::Cifar10 => cifar::CifarKind::Cifar10,
        DatasetName::Cifar100 => cifar::CifarKind::Cifar100,
        DatasetName::Imagenet => {
            bail!("ImageNet is not an in-memory dataset: it is read per item by `run_data`")
        }
    };
    Ok(cifar::load(&fetched_dir(dataset, dir)?, kind)?)
}

/// A run's data, ready for the loaders.
pub struct RunData {
    /// The training split with its augmentation (which follows the epoch clock), in file order.
    pub train: Arc<dyn Dataset<ImageItem>>,
    /// The evaluation split.
    pub test: Arc<dyn Dataset<ImageItem>>,
    /// `[C, H, W]` of every item.
    pub shape: [usize; 3],
    /// Number of classes.
    pub num_classes: usize,
    /// Per-channel normalization of the batches.
    pub normalization: Normalization,
    /// Where the data came from, for the run's banner.
    pub source: String,
}

/// The configured dataset's splits, limited by --limit-train/--limit-test, with the training
/// augmentation of the dataset's recipe driven by `clock`.
pub fn run_data(config: &RunConfig, clock: &EpochClock) -> Result<RunData> {
    let recipe = config.dataset.recipe();
    if config.dataset == DatasetName::Imagenet {
        let dir = fetched_dir(config.dataset, config.data_dir.as_deref())?;
        let train_index = FolderIndex::scan(&dir.join("train"), None)?;
        let val_index = FolderIndex::scan(&dir.join("val"), Some(&train_index.classes))?;
        let mut train = ImageFolderSet::new(&train_index, true, config.seed, clock.clone());
        let mut test = ImageFolderSet::new(&val_index, false, config.seed, clock.clone());
        if let Some(n) = config.limit_train {
            train = train.evenly_spaced(n);
        }
        if let Some(n) = config.limit_test {
            test = test.evenly_spaced(n);
        }
        let source = dir.display().to_string();
        check_split(&source, "training", train.len())?;
        check_split(&source, "test", test.len())?;
        return Ok(RunData {
            num_classes: train.num_classes,
            train: Arc::new(train),
            test: Arc::new(test),
            shape: [3, imagenet::CROP, imagenet::CROP],
            normalization: imagenet::normalization(),
            source,
        });
    }
    let data = load_dataset(config.dataset, config.data_dir.as_deref())?;
    let normalization = match config.dataset {
        // Per-channel statistics of the whole training split.
        DatasetName::Cifar10 | DatasetName::Cifar100 => cifar::channel_stats(&data.train),
        _ => Normalization::mnist(),
    };
    let train_set = match config.limit_train {
        Some(n) => data.train.truncated(n),
        None => data.train.clone(),
    };
    let test_set = config
        .limit_test
        .map_or(data.test.clone(), |n| data.test.truncated(n));
    let source = match (&config.data_dir, config.dataset) {
        (Some(dir), _) => dir.display().to_string(),
        (None, DatasetName::Mnist) => "embedded sample".to_string(),
        (None, other) => default_data_dir(other).display().to_string(),
    };
    check_split(&source, "training", train_set.len())?;
    check_split(&source, "test", test_set.len())?;
    let shape = |s: &ela_data::dataset::ImageSet| [s.channels, s.height, s.width];
    if shape(&data.train) != shape(&data.test) || data.train.num_classes != data.test.num_classes {
        let [(c, h, w), (tc, th, tw)] =
            [&data.train, &data.test].map(|s| (s.channels, s.height, s.width));
        bail!(
            "{} in {source}: the splits disagree: training images are {h}x{w} with {c} \
             channel(s) and {} classes, test images {th}x{tw} with {tc} channel(s) and {} \
             classes",
            config.dataset.name(),
            data.train.num_classes,
            data.test.num_classes
        );
    }
    Ok(RunData {
        shape: [train_set.channels, train_set.height, train_set.width],
        num_classes: train_set.num_classes,
        train: match recipe.crop_padding {
            Some(pad) => Arc::new(cifar::Augmented::new(
                train_set,
                pad,
                config.seed,
                clock.clone(),
            )),
            None => Arc::new(train_set),
        },
        test: Arc::new(test_set),
        normalization,
        source,
    })
}

/// Refuses an empty split: a run with no training image would "train" on nothing and a run with
/// no test image would report made-up accuracies.
fn check_split(source: &str, split: &str, len: usize) -> Result<()> {
    if len == 0 {
        bail!("the {split} split of {source} holds no image: a run needs both splits non-empty");
    }
    Ok(())
}
