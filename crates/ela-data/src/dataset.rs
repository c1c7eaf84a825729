//! Image classification data: the MNIST IDX format (gzip or raw), the embedded MNIST sample, a
//! Burn dataset over in-memory images, and the batcher that normalizes them into tensors.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use flate2::read::GzDecoder;
use thiserror::Error;

/// Errors reading a dataset file; each names the file.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a valid dataset file of the expected kind.
    #[error("{path} is not a valid dataset file: {reason}")]
    Format { path: PathBuf, reason: String },
    /// Images and labels disagree.
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        images: PathBuf,
        labels: PathBuf,
        n_images: usize,
        n_labels: usize,
    },
}

/// The four files of the MNIST sample shipped in `datasets/mnist-10k` and compiled into the
/// binary (8,000 training and 2,000 test digits; provenance in that folder's README).
mod embedded {
    pub const TRAIN_IMAGES: &[u8] =
        include_bytes!("../../../datasets/mnist-10k/train-images-idx3-ubyte.gz");
    pub const TRAIN_LABELS: &[u8] =
        include_bytes!("../../../datasets/mnist-10k/train-labels-idx1-ubyte.gz");
    pub const TEST_IMAGES: &[u8] =
        include_bytes!("../../../datasets/mnist-10k/t10k-images-idx3-ubyte.gz");
    pub const TEST_LABELS: &[u8] =
        include_bytes!("../../../datasets/mnist-10k/t10k-labels-idx1-ubyte.gz");
}

/// A set of equally sized images with class labels, pixels as bytes in CHW order.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pixels: Arc<Vec<u8>>,
    labels: Arc<Vec<u8>>,
    /// Channels per image.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Indices into the underlying arrays (a slice of the set).
    indices: Arc<Vec<usize>>,
}

impl ImageSet {
    /// A set of `labels.len()` images of shape `[C, H, W]` stored consecutively in `pixels`.
    ///
    /// # Panics
    /// If `pixels` does not hold exactly one image per label.
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<u8>,
        [c, h, w]: [usize; 3],
        num_classes: usize,
    ) -> Self {
        assert_eq!(
            pixels.len(),
            labels.len() * c * h * w,
            "one image per label"
        );
        Self {
            indices: Arc::new((0..labels.len()).collect()),
            pixels: Arc::new(pixels),
            labels: Arc::new(labels),
            channels: c,
            height: h,
            width: w,
            num_classes,
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The first `n` images (all if `n` is larger).
    pub fn truncated(&self, n: usize) -> Self {
        let mut out = self.clone();
        out.indices = Arc::new(self.indices.iter().copied().take(n).collect());
        out
    }

    /// Label of image `i`.
    pub fn label(&self, i: usize) -> usize {
        self.labels[self.indices[i]] as usize
    }

    /// CHW bytes of image `i`.
    pub fn pixels_of(&self, i: usize) -> &[u8] {
        let size = self.channels * self.height * self.width;
        let k = self.indices[i];
        &self.pixels[k * size..(k + 1) * size]
    }
}

/// One image and its label, as the data loader hands them to the batcher.
#[derive(Debug, Clone)]
pub struct ImageItem {
    /// CHW bytes.
    pub pixels: Vec<u8>,
    /// Class index.
    pub label: usize,
}

impl Dataset<ImageItem> for ImageSet {
    fn get(&self, index: usize) -> Result<ImageItem, burn::data::dataset::DatasetError> {
        Ok(ImageItem {
            pixels: self.pixels_of(index).to_vec(),
            label: self.label(index),
        })
    }

    fn len(&self) -> usize {
        self.indices.len()
    }
}

/// The current epoch (1-based), shared by the training loop and the datasets whose order or
/// augmentation depends on it, so that epoch k of a resumed run sees exactly the data of epoch k
/// of an uninterrupted one.
#[derive(Debug, Clone, Default)]
pub struct EpochClock(Arc<AtomicUsize>);

impl EpochClock {
    /// A clock at epoch 1.
    pub fn new() -> Self {
        Self(Arc::new(AtomicUsize::new(1)))
    }

    /// Sets the epoch about to run.
    pub fn set(&self, epoch: usize) {
        self.0.store(epoch, Ordering::SeqCst);
    }

    /// The current epoch.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// SplitMix64: a small, well-mixed generator for seeds derived from (seed, epoch, index).
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A dataset read in a new random order every epoch: the order of epoch k is a permutation
/// seeded by (seed, k) alone, so it does not depend on what ran before (a resumed run) or on the
/// number of loader workers.
#[derive(Debug, Clone)]
pub struct EpochShuffled<D> {
    inner: D,
    seed: u64,
    clock: EpochClock,
    order: Arc<RwLock<(usize, Vec<usize>)>>,
}

impl<D> EpochShuffled<D> {
    /// Shuffles `inner` (of `len` items) by epoch of `clock`.
    pub fn new(inner: D, len: usize, seed: u64, clock: EpochClock) -> Self {
        Self {
            inner,
            seed,
            clock,
            order: Arc::new(RwLock::new((0, (0..len).collect()))),
        }
    }

    /// The permutation of `epoch` (Fisher–Yates with SplitMix64).
    pub fn permutation(seed: u64, epoch: usize, len: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..len).collect();
        let mut state = splitmix(seed ^ splitmix(epoch as u64));
        for i in (1..len).rev() {
            state = splitmix(state);
            let j = (state % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        order
    }

    fn position(&self, index: usize) -> usize {
        let epoch = self.clock.get();
        {
            let order = self.order.read().unwrap_or_else(|e| e.into_inner());
            if order.0 == epoch {
                return order.1[index];
            }
        }
        let mut order = self.order.write().unwrap_or_else(|e| e.into_inner());
        if order.0 != epoch {
            let len = order.1.len();
            *order = (epoch, Self::permutation(self.seed, epoch, len));
        }
        order.1[index]
    }
}

impl<I, D: Dataset<I>> Dataset<I> for EpochShuffled<D> {
    fn get(&self, index: usize) -> Result<I, burn::data::dataset::DatasetError> {
        if index >= self.inner.len() {
            return Err(burn::data::dataset::DatasetError::new(
                std::io::Error::other(format!("index {index} out of {} items", self.inner.len())),
            ));
        }
        self.inner.get(self.position(index))
    }

    fn len(&self) -> usize {
        self.inner.len()
    }
}

fn decompress(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| DataError::Format {
                path: path.to_path_buf(),
                reason: format!("corrupt gzip stream: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// Parses an IDX file (`0x0000 08 NDIM` header, big-endian u32 dims, u8 data), gzip or raw.
/// Returns the dimensions and the data.
pub fn parse_idx(path: &Path, bytes: &[u8], ndim: u8) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let fail = |reason: String| DataError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let raw = decompress(path, bytes)?;
    if raw.len() < 4 {
        return Err(fail(format!(
            "file too short for a header ({} bytes)",
            raw.len()
        )));
    }
    if raw[0] != 0 || raw[1] != 0 || raw[2] != 0x08 {
        return Err(fail(format!(
            "bad magic {:02x}{:02x}{:02x}{:02x}: expected unsigned-byte data (0x000008..)",
            raw[0], raw[1], raw[2], raw[3]
        )));
    }
    if raw[3] != ndim {
        return Err(fail(format!(
            "expected {ndim} dimensions, header says {}",
            raw[3]
        )));
    }
    let header = 4 + 4 * ndim as usize;
    if raw.len() < header {
        return Err(fail("truncated header".into()));
    }
    let dims: Vec<usize> = (0..ndim as usize)
        .map(|i| u32::from_be_bytes(raw[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let expected = expected.ok_or_else(|| fail(format!("dimensions {dims:?} overflow")))?;
    let data = &raw[header..];
    if data.len() != expected {
        return Err(fail(format!(
            "dimensions {dims:?} need {expected} data bytes, the file has {}",
            data.len()
        )));
    }
    Ok((dims, data.to_vec()))
}

fn image_set(
    (images_path, images): (&Path, &[u8]),
    (labels_path, labels): (&Path, &[u8]),
) -> Result<ImageSet, DataError> {
    let (dims, pixels) = parse_idx(images_path, images, 3)?;
    let (ldims, labels) = parse_idx(labels_path, labels, 1)?;
    if dims[0] != ldims[0] {
        return Err(DataError::CountMismatch {
            images: images_path.to_path_buf(),
            labels: labels_path.to_path_buf(),
            n_images: dims[0],
            n_labels: ldims[0],
        });
    }
    if let Some(bad) = labels.iter().position(|&l| l > 9) {
        return Err(DataError::Format {
            path: labels_path.to_path_buf(),
            reason: format!("label {} of item {bad} is not a digit 0-9", labels[bad]),
        });
    }
    Ok(ImageSet::new(pixels, labels, [1, dims[1], dims[2]], 10))
}

/// A dataset's training and test splits.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Training split.
    pub train: ImageSet,
    /// Test split.
    pub test: ImageSet,
}

/// The four official MNIST file names; `.gz` versions are preferred when both exist.
const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// MNIST's splits.
pub type Mnist = Splits;

impl Splits {
    /// The MNIST sample compiled into the binary.
    pub fn embedded() -> Self {
        let name = |f: &str| PathBuf::from(format!("<embedded>/{f}.gz"));
        let load = |i: usize, img: &[u8], j: usize, lab: &[u8]| {
            image_set((&name(FILES[i]), img), (&name(FILES[j]), lab))
                .expect("the embedded MNIST sample is valid")
        };
        Self {
            train: load(0, embedded::TRAIN_IMAGES, 1, embedded::TRAIN_LABELS),
            test: load(2, embedded::TEST_IMAGES, 3, embedded::TEST_LABELS),
        }
    }

    /// MNIST from a directory holding the four official files (gzip or raw).
    pub fn from_dir(dir: &Path) -> Result<Self, DataError> {
        let mut files = Vec::new();
        for f in FILES {
            let gz = dir.join(format!("{f}.gz"));
            let path = if gz.exists() { gz } else { dir.join(f) };
            let bytes = std::fs::read(&path).map_err(|source| DataError::Io {
                path: path.clone(),
                source,
            })?;
            files.push((path, bytes));
        }
        let at = |i: usize| (files[i].0.as_path(), files[i].1.as_slice());
        Ok(Self {
            train: image_set(at(0), at(1))?,
            test: image_set(at(2), at(3))?,
        })
    }
}

/// Per-channel normalization constants.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    /// Mean per channel, on the [0, 1] pixel scale.
    pub mean: Vec<f32>,
    /// Standard deviation per channel.
    pub std: Vec<f32>,
}

impl Normalization {
    /// The usual MNIST constants (mean 0.1307, std 0.3081).
    pub fn mnist() -> Self {
        Self {
            mean: vec![0.1307],
            std: vec![0.3081],
        }
    }
}

/// A batch: normalized images and their labels.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// `[batch, C, H, W]`.
    pub images: Tensor<4>,
    /// `[batch]`.
    pub targets: Tensor<1, Int>,
}

/// Turns image items into a normalized batch on the loader's device.
#[derive(Debug, Clone)]
pub struct ImageBatcher {
    shape: [usize; 3],
    norm: Normalization,
}

impl ImageBatcher {
    /// A batcher for `[C, H, W]` images with the given normalization.
    pub fn new(shape: [usize; 3], norm: Normalization) -> Self {
        Self { shape, norm }
    }
}

impl Batcher<ImageItem, ImageBatch> for ImageBatcher {
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> ImageBatch {
        let [c, h, w] = self.shape;
        let plane = h * w;
        let mut data = Vec::with_capacity(items.len() * c * plane);
        for item in &items {
            for (ch, pixels) in item.pixels.chunks_exact(plane).enumerate() {
                let (mean, std) = (self.norm.mean[ch], self.norm.std[ch]);
                data.extend(pixels.iter().map(|&p| (p as f32 / 255.0 - mean) / std));
            }
        }
        let labels: Vec<i64> = items.iter().map(|i| i.label as i64).collect();
        ImageBatch {
            images: Tensor::from_data(TensorData::new(data, [items.len(), c, h, w]), device),
            targets: Tensor::from_data(TensorData::new(labels, [items.len()]), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(ndim: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, ndim];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn embedded_sample_matches_its_readme() {
        let m = Mnist::embedded();
        assert_eq!((m.train.len(), m.test.len()), (8000, 2000));
        assert_eq!((m.train.height, m.train.width), (28, 28));
        let mut counts = [0usize; 10];
        (0..m.test.len()).for_each(|i| counts[m.test.label(i)] += 1);
        assert_eq!(counts, [211, 211, 191, 215, 201, 178, 220, 191, 187, 195]);
        let mut counts = [0usize; 10];
        (0..m.train.len()).for_each(|i| counts[m.train.label(i)] += 1);
        assert_eq!(counts, [790, 916, 800, 817, 779, 685, 794, 879, 757, 783]);
    }

    #[test]
    fn idx_errors_name_the_file_and_the_problem() {
        let p = Path::new("x/train-images-idx3-ubyte");
        let good = idx(3, &[2, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let (dims, data) = parse_idx(p, &good, 3).unwrap();
        assert_eq!((dims, data.len()), (vec![2, 2, 2], 8));
        let err = parse_idx(p, &good[..good.len() - 1], 3)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x/train-images-idx3-ubyte") && err.contains("need 8 data bytes"),
            "{err}"
        );
        let err = parse_idx(p, &good, 1).unwrap_err().to_string();
        assert!(err.contains("expected 1 dimensions"), "{err}");
        let err = parse_idx(p, b"\x1f\x8bgarbage", 3).unwrap_err().to_string();
        assert!(err.contains("corrupt gzip"), "{err}");
        let err = parse_idx(p, &[0, 0], 3).unwrap_err().to_string();
        assert!(err.contains("too short"), "{err}");
        let err = parse_idx(p, &[1, 2, 3, 4, 5], 3).unwrap_err().to_string();
        assert!(err.contains("bad magic"), "{err}");
    }

    #[test]
    fn directories_are_read_and_mismatches_reported() {
        let dir = tempfile::tempdir().unwrap();
        let write =
            |name: &str, bytes: Vec<u8>| std::fs::write(dir.path().join(name), bytes).unwrap();
        write("train-images-idx3-ubyte", idx(3, &[2, 1, 1], &[0, 255]));
        write("train-labels-idx1-ubyte", idx(1, &[2], &[3, 7]));
        write("t10k-images-idx3-ubyte", idx(3, &[1, 1, 1], &[9]));
        write("t10k-labels-idx1-ubyte", idx(1, &[2], &[1, 2]));
        let err = Mnist::from_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("holds 1 images but") && err.contains("2 labels"),
            "{err}"
        );
        write("t10k-labels-idx1-ubyte", idx(1, &[1], &[1]));
        let m = Mnist::from_dir(dir.path()).unwrap();
        assert_eq!(m.train.label(1), 7);
        std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
        let err = Mnist::from_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("cannot read") && err.contains("t10k-labels-idx1-ubyte"),
            "{err}"
        );
    }

    #[test]
    fn epoch_order_is_a_permutation_fixed_by_seed_and_epoch() {
        let clock = EpochClock::new();
        let set = Mnist::embedded().test.truncated(50);
        let shuffled = EpochShuffled::new(set.clone(), set.len(), 7, clock.clone());
        let labels = |d: &EpochShuffled<ImageSet>| -> Vec<usize> {
            (0..d.len()).map(|i| d.get(i).unwrap().label).collect()
        };
        let epoch1 = labels(&shuffled);
        let mut sorted = epoch1.clone();
        sorted.sort_unstable();
        let mut want: Vec<usize> = (0..set.len()).map(|i| set.label(i)).collect();
        want.sort_unstable();
        assert_eq!(sorted, want, "every item once");
        clock.set(2);
        let epoch2 = labels(&shuffled);
        assert_ne!(epoch1, epoch2);
        // A fresh dataset whose clock starts at epoch 2 (a resumed run) sees epoch 2's order.
        let resumed_clock = EpochClock::new();
        resumed_clock.set(2);
        let resumed = EpochShuffled::new(set.clone(), set.len(), 7, resumed_clock);
        assert_eq!(labels(&resumed), epoch2);
        assert_ne!(
            EpochShuffled::<ImageSet>::permutation(7, 1, 50),
            EpochShuffled::<ImageSet>::permutation(8, 1, 50)
        );
        assert!(shuffled.get(50).is_err());
    }

    #[test]
    fn batcher_normalizes_per_channel() {
        let device = Device::flex();
        let b = ImageBatcher::new(
            [1, 1, 2],
            Normalization {
                mean: vec![0.5],
                std: vec![0.5],
            },
        );
        let batch = b.batch(
            vec![ImageItem {
                pixels: vec![0, 255],
                label: 4,
            }],
            &device,
        );
        let v: Vec<f32> = batch.images.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v, vec![-1.0, 1.0]);
        let t: Vec<i64> = batch.targets.into_data().iter::<i64>().collect();
        assert_eq!(t, vec![4]);
    }
}
