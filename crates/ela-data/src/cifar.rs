//! CIFAR-10 and CIFAR-100 in the dataset authors' binary format, and the training augmentation
//! of SPEC §4 (pad 4, random 32×32 crop, horizontal flip).
//!
//! - CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin` (50,000 images)
//!   and `test_batch.bin` (10,000); each record is a label byte and 3,072 pixel bytes (1,024 red,
//!   then green, then blue, row-major 32×32).
//! - CIFAR-100 (`cifar-100-binary/`): `train.bin` (50,000) and `test.bin` (10,000); each record is
//!   a coarse label byte (20 classes), a fine label byte (100 classes) and 3,072 pixel bytes.
//!   Fine labels by default, as the paper.

use std::path::{Path, PathBuf};

use burn::data::dataset::Dataset;

use crate::dataset::{DataError, EpochClock, ImageItem, ImageSet, Normalization, Splits, splitmix};

/// Pixels per image: 3 × 32 × 32.
pub const IMAGE_BYTES: usize = 3 * 32 * 32;

/// Which CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    /// CIFAR-10.
    Cifar10,
    /// CIFAR-100 with its 100 fine labels.
    Cifar100,
    /// CIFAR-100 with its 20 coarse (superclass) labels.
    Cifar100Coarse,
}

impl CifarKind {
    /// The folder the authors' archive unpacks to.
    pub fn folder(self) -> &'static str {
        match self {
            Self::Cifar10 => "cifar-10-batches-bin",
            Self::Cifar100 | Self::Cifar100Coarse => "cifar-100-binary",
        }
    }

    fn files(self) -> (Vec<&'static str>, &'static str) {
        match self {
            Self::Cifar10 => (
                vec![
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
                "test_batch.bin",
            ),
            Self::Cifar100 | Self::Cifar100Coarse => (vec!["train.bin"], "test.bin"),
        }
    }

    /// Label bytes before the pixels of a record.
    fn label_bytes(self) -> usize {
        match self {
            Self::Cifar10 => 1,
            Self::Cifar100 | Self::Cifar100Coarse => 2,
        }
    }

    /// Number of classes.
    pub fn num_classes(self) -> usize {
        match self {
            Self::Cifar10 => 10,
            Self::Cifar100 => 100,
            Self::Cifar100Coarse => 20,
        }
    }

    fn label_of(self, record: &[u8]) -> u8 {
        match self {
            Self::Cifar10 | Self::Cifar100Coarse => record[0],
            Self::Cifar100 => record[1],
        }
    }
}

/// Parses one binary file's records into pixels and labels, checking sizes and label ranges.
pub fn parse_records(
    path: &Path,
    bytes: &[u8],
    kind: CifarKind,
) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    let record = kind.label_bytes() + IMAGE_BYTES;
    let fail = |reason: String| DataError::Format {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        let name = match kind {
            CifarKind::Cifar10 => "CIFAR-10",
            _ => "CIFAR-100",
        };
        return Err(fail(format!(
            "{} bytes is not a whole number of {record}-byte {name} records (truncated, or not a \
             {name} binary file)",
            bytes.len()
        )));
    }
    let n = bytes.len() / record;
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        if kind != CifarKind::Cifar10 && (r[0] >= 20 || r[1] >= 100) {
            return Err(fail(format!(
                "record {i}: coarse label {} / fine label {} out of range (20 / 100 classes)",
                r[0], r[1]
            )));
        }
        let label = kind.label_of(r);
        if label as usize >= kind.num_classes() {
            return Err(fail(format!(
                "record {i}: label {label} out of range ({} classes)",
                kind.num_classes()
            )));
        }
        labels.push(label);
        pixels.extend_from_slice(&r[kind.label_bytes()..]);
    }
    Ok((pixels, labels))
}

/// The folder holding the binary files: `dir` itself or `dir/<authors' folder>`.
pub fn resolve_dir(dir: &Path, kind: CifarKind) -> PathBuf {
    let nested = dir.join(kind.folder());
    if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    }
}

fn read_split(dir: &Path, files: &[&str], kind: CifarKind) -> Result<ImageSet, DataError> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for f in files {
        let path = dir.join(f);
        let bytes = std::fs::read(&path).map_err(|source| DataError::Io {
            path: path.clone(),
            source,
        })?;
        let (p, l) = parse_records(&path, &bytes, kind)?;
        pixels.extend(p);
        labels.extend(l);
    }
    Ok(ImageSet::new(
        pixels,
        labels,
        [3, 32, 32],
        kind.num_classes(),
    ))
}

/// CIFAR from a directory holding the authors' binary files (or their unpacked folder).
pub fn load(dir: &Path, kind: CifarKind) -> Result<Splits, DataError> {
    let dir = resolve_dir(dir, kind);
    let (train, test) = kind.files();
    Ok(Splits {
        train: read_split(&dir, &train, kind)?,
        test: read_split(&dir, &[test], kind)?,
    })
}

/// Per-channel mean and standard deviation of a set's pixels on the [0, 1] scale.
pub fn channel_stats(set: &ImageSet) -> Normalization {
    let c = set.channels;
    let plane = set.height * set.width;
    let mut sum = vec![0f64; c];
    let mut sq = vec![0f64; c];
    for i in 0..set.len() {
        for (ch, px) in set.pixels_of(i).chunks_exact(plane).enumerate() {
            for &p in px {
                let v = p as f64 / 255.0;
                sum[ch] += v;
                sq[ch] += v * v;
            }
        }
    }
    let n = (set.len() * plane).max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| ((s / n - m * m).max(0.0)).sqrt().max(1e-6) as f32)
        .collect();
    Normalization {
        mean: mean.into_iter().map(|m| m as f32).collect(),
        std,
    }
}

/// A training set with SPEC §4's augmentation: zero-pad by `pad`, take a random crop of the
/// original size, flip horizontally with probability ½.
///
/// Deterministic under `seed` whatever the number of loader workers and wherever a run resumes:
/// image i in epoch k is cropped and flipped by a generator seeded by (seed, i, k).
#[derive(Debug, Clone)]
pub struct Augmented {
    inner: ImageSet,
    pad: usize,
    seed: u64,
    clock: EpochClock,
}

impl Augmented {
    /// Augments `inner` with padding `pad` (4 for CIFAR), by the epoch of `clock`.
    pub fn new(inner: ImageSet, pad: usize, seed: u64, clock: EpochClock) -> Self {
        Self {
            inner,
            pad,
            seed,
            clock,
        }
    }
}

/// Crops `src` (CHW bytes, `h × w`) shifted by (`dy`, `dx`) inside its zero-padded version of
/// padding `pad`, optionally mirrored left-right; writes `h × w` into `out`.
pub fn crop_flip(
    src: &[u8],
    [c, h, w]: [usize; 3],
    pad: usize,
    (dy, dx): (usize, usize),
    flip: bool,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.resize(c * h * w, 0);
    for ch in 0..c {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        let dst = &mut out[ch * h * w..(ch + 1) * h * w];
        for y in 0..h {
            // Row y of the crop is row y + dy − pad of the image.
            let sy = y + dy;
            if sy < pad || sy - pad >= h {
                continue;
            }
            let row = &plane[(sy - pad) * w..(sy - pad + 1) * w];
            let drow = &mut dst[y * w..(y + 1) * w];
            // Column x of the crop is column x + dx − pad of the image.
            let x0 = pad.saturating_sub(dx);
            let x1 = (w + pad).saturating_sub(dx).min(w);
            for x in x0..x1 {
                let v = row[x + dx - pad];
                let tx = if flip { w - 1 - x } else { x };
                drow[tx] = v;
            }
        }
    }
}

impl Dataset<ImageItem> for Augmented {
    fn get(&self, index: usize) -> Result<ImageItem, burn::data::dataset::DatasetError> {
        let item = self.inner.get(index)?;
        let epoch = self.clock.get() as u64;
        let r = splitmix(self.seed ^ splitmix(((index as u64) << 20) ^ epoch));
        let span = (2 * self.pad + 1) as u64;
        let dy = (r % span) as usize;
        let dx = ((r >> 16) % span) as usize;
        let flip = (r >> 40) & 1 == 1;
        let mut pixels = Vec::new();
        crop_flip(
            &item.pixels,
            [self.inner.channels, self.inner.height, self.inner.width],
            self.pad,
            (dy, dx),
            flip,
            &mut pixels,
        );
        Ok(ImageItem {
            pixels,
            label: item.label,
        })
    }

    fn len(&self) -> usize {
        self.inner.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record10(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend(std::iter::repeat_n(fill, IMAGE_BYTES));
        r
    }

    #[test]
    fn records_parse_and_bad_files_name_the_problem() {
        let p = Path::new("d/data_batch_1.bin");
        let bytes = [record10(3, 7), record10(9, 1)].concat();
        let (pixels, labels) = parse_records(p, &bytes, CifarKind::Cifar10).unwrap();
        assert_eq!(labels, vec![3, 9]);
        assert_eq!(pixels.len(), 2 * IMAGE_BYTES);
        assert_eq!(pixels[IMAGE_BYTES], 1);

        let err = parse_records(p, &bytes[..bytes.len() - 5], CifarKind::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("d/data_batch_1.bin") && err.contains("3073-byte"),
            "{err}"
        );
        let err = parse_records(p, &record10(10, 0), CifarKind::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("label 10 out of range"), "{err}");

        // CIFAR-100: coarse then fine label.
        let mut r = vec![19u8, 57];
        r.extend(vec![0u8; IMAGE_BYTES]);
        let (_, fine) = parse_records(p, &r, CifarKind::Cifar100).unwrap();
        let (_, coarse) = parse_records(p, &r, CifarKind::Cifar100Coarse).unwrap();
        assert_eq!((fine, coarse), (vec![57], vec![19]));
        r[1] = 100;
        let err = parse_records(p, &r, CifarKind::Cifar100)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fine label 100"), "{err}");
        // A CIFAR-10 file read as CIFAR-100 does not divide into records.
        assert!(parse_records(p, &record10(1, 0), CifarKind::Cifar100).is_err());
    }

    #[test]
    fn directories_load_and_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir(&inner).unwrap();
        for (i, f) in ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin"]
            .iter()
            .enumerate()
        {
            std::fs::write(inner.join(f), record10(i as u8, 0)).unwrap();
        }
        let err = load(dir.path(), CifarKind::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("data_batch_4.bin"), "{err}");
        for f in ["data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"] {
            std::fs::write(inner.join(f), record10(5, 0)).unwrap();
        }
        let s = load(dir.path(), CifarKind::Cifar10).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (5, 1));
        assert_eq!(
            (0..5).map(|i| s.train.label(i)).collect::<Vec<_>>(),
            [0, 1, 2, 5, 5]
        );
        assert_eq!(s.train.num_classes, 10);
    }

    /// The crop equals indexing the explicitly zero-padded image, for every offset and both
    /// flips.
    #[test]
    fn crop_and_flip_match_explicit_padding() {
        let (c, h, w, pad) = (2, 5, 4, 2);
        let src: Vec<u8> = (0..c * h * w).map(|v| v as u8 + 1).collect();
        let (ph, pw) = (h + 2 * pad, w + 2 * pad);
        let mut padded = vec![0u8; c * ph * pw];
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    padded[ch * ph * pw + (y + pad) * pw + x + pad] = src[ch * h * w + y * w + x];
                }
            }
        }
        let mut out = Vec::new();
        for dy in 0..=2 * pad {
            for dx in 0..=2 * pad {
                for flip in [false, true] {
                    crop_flip(&src, [c, h, w], pad, (dy, dx), flip, &mut out);
                    for ch in 0..c {
                        for y in 0..h {
                            for x in 0..w {
                                let sx = if flip { w - 1 - x } else { x };
                                let want = padded[ch * ph * pw + (y + dy) * pw + sx + dx];
                                assert_eq!(out[ch * h * w + y * w + x], want, "{dy} {dx} {flip}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn augmentation_is_reproducible_and_varies_across_epochs() {
        let pixels: Vec<u8> = (0..4 * IMAGE_BYTES).map(|v| (v % 251) as u8).collect();
        let set = ImageSet::new(pixels, vec![0, 1, 2, 3], [3, 32, 32], 10);
        let clock = EpochClock::new();
        let a = Augmented::new(set.clone(), 4, 42, clock.clone());
        let b = Augmented::new(set, 4, 42, clock.clone());
        let epoch1: Vec<Vec<u8>> = (0..4).map(|i| a.get(i).unwrap().pixels).collect();
        // Another instance, items drawn in another order and twice: same images.
        for i in (0..4).rev() {
            assert_eq!(b.get(i).unwrap().pixels, epoch1[i]);
            assert_eq!(b.get(i).unwrap().pixels, epoch1[i]);
        }
        clock.set(2);
        let epoch2: Vec<Vec<u8>> = (0..4).map(|i| a.get(i).unwrap().pixels).collect();
        assert_ne!(epoch1, epoch2, "a new epoch draws new crops");
        assert!(epoch1.iter().chain(&epoch2).all(|p| p.len() == IMAGE_BYTES));
    }

    #[test]
    fn channel_stats_are_exact() {
        // Channel 0 all 0, channel 1 half 0 / half 255, channel 2 all 255.
        let mut px = vec![0u8; IMAGE_BYTES];
        px[1024..1536].fill(0);
        px[1536..2048].fill(255);
        px[2048..].fill(255);
        let set = ImageSet::new(px, vec![0], [3, 32, 32], 10);
        let n = channel_stats(&set);
        assert!((n.mean[0] - 0.0).abs() < 1e-6 && (n.mean[1] - 0.5).abs() < 1e-6);
        assert!((n.mean[2] - 1.0).abs() < 1e-6);
        assert!((n.std[1] - 0.5).abs() < 1e-6);
    }
}
