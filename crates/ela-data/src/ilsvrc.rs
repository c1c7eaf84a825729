//! `ela fetch imagenet --from DIR`: ImageNet-1K (ILSVRC2012) cannot be downloaded without an
//! account, so this prepares it from the three official archives a user downloaded from
//! image-net.org into the image-folder layout [`crate::imagenet`] reads:
//!
//! - `ILSVRC2012_img_train.tar`: a tar of 1,000 per-class tars `<wnid>.tar`, unpacked to
//!   `train/<wnid>/`;
//! - `ILSVRC2012_img_val.tar`: 50,000 flat `ILSVRC2012_val_<n>.JPEG`, sorted into `val/<wnid>/`
//!   by the devkit's labels;
//! - `ILSVRC2012_devkit_t12.tar.gz`: `data/meta.mat` (the synsets; the 1,000 leaves carry the
//!   ILSVRC2012 class IDs 1…1000 and their WNIDs) and
//!   `data/ILSVRC2012_validation_ground_truth.txt` (one class ID per validation image).
//!
//! Everything is unpacked under `<dir>/.imagenet.unpacking/`, one class folder at a time (each
//! written under a temporary name and renamed when whole), so an interrupted run resumes where
//! it stopped. The folder becomes `<dir>/imagenet/` with a `.complete` marker only after the
//! final count check: 1,281,167 training and 50,000 validation images in 1,000 classes, or, with
//! `--subset`, whatever the archives hold, as long as every image was placed.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use flate2::read::GzDecoder;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::fetch::{Fetched, MARKER, install_staged};
use crate::mat::{self, MatValue};

/// The training archive's name.
pub const TRAIN_TAR: &str = "ILSVRC2012_img_train.tar";
/// The validation archive's name.
pub const VAL_TAR: &str = "ILSVRC2012_img_val.tar";
/// The development kit's name.
pub const DEVKIT: &str = "ILSVRC2012_devkit_t12.tar.gz";

const COUNTS: &str = "counts.json";

/// Images and classes of a prepared ImageNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Classes.
    pub classes: usize,
    /// Training images.
    pub train: usize,
    /// Validation images.
    pub val: usize,
}

/// ILSVRC2012's counts.
pub const OFFICIAL: Counts = Counts {
    classes: 1000,
    train: 1_281_167,
    val: 50_000,
};

/// What the devkit says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devkit {
    /// WNID of class ID `i + 1`.
    pub wnids: Vec<String>,
    /// Class ID (1-based) of validation image `n + 1`.
    pub val_labels: Vec<usize>,
}

/// The leaf synsets of a `meta.mat`: WNIDs indexed by ILSVRC2012 ID − 1.
pub fn parse_meta(path: &Path, bytes: &[u8]) -> Result<Vec<String>> {
    let fail = |e: String| anyhow::anyhow!("{}: {e}", path.display());
    let vars = mat::parse(bytes).map_err(fail)?;
    let synsets = vars
        .iter()
        .find(|(name, _)| name == "synsets")
        .map(|(_, v)| v)
        .ok_or_else(|| fail("no variable 'synsets'".into()))?;
    let field = |name: &str| {
        synsets.field(name).ok_or_else(|| {
            fail(format!(
                "'synsets' is not a structure with a field '{name}'"
            ))
        })
    };
    let (ids, wnids, children) = (
        field("ILSVRC2012_ID")?,
        field("WNID")?,
        field("num_children")?,
    );
    let mut leaves: Vec<Option<String>> = Vec::new();
    for ((id, wnid), children) in ids.iter().zip(&wnids).zip(&children) {
        let bad = |what: &str, v: &MatValue| fail(format!("synset with a bad {what}: {v:?}"));
        let children = children
            .scalar()
            .ok_or_else(|| bad("num_children", children))?;
        if children != 0.0 {
            continue;
        }
        let id = id
            .scalar()
            .filter(|&i| i >= 1.0 && i.fract() == 0.0)
            .ok_or_else(|| bad("ILSVRC2012_ID", id))? as usize;
        let wnid = wnid.text().ok_or_else(|| bad("WNID", wnid))?;
        if leaves.len() < id {
            leaves.resize(id, None);
        }
        if leaves[id - 1].replace(wnid.to_string()).is_some() {
            return Err(fail(format!("class ID {id} appears twice")));
        }
    }
    ensure!(!leaves.is_empty(), "{}: no leaf synsets", path.display());
    leaves
        .into_iter()
        .enumerate()
        .map(|(i, w)| w.ok_or_else(|| fail(format!("class ID {} is missing", i + 1))))
        .collect()
}

/// Reads `meta.mat` and the validation ground truth from the devkit archive.
pub fn read_devkit(path: &Path) -> Result<Devkit> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut archive = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let (mut meta, mut truth) = (None, None);
    let corrupt = || format!("{} is not a readable .tar.gz", path.display());
    for entry in archive.entries().with_context(corrupt)? {
        let mut entry = entry.with_context(corrupt)?;
        let name = entry.path().with_context(corrupt)?.to_path_buf();
        let slot = if name.ends_with("data/meta.mat") {
            &mut meta
        } else if name.ends_with("data/ILSVRC2012_validation_ground_truth.txt") {
            &mut truth
        } else {
            continue;
        };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).with_context(corrupt)?;
        *slot = Some((path.join(name), bytes));
    }
    let (meta_path, meta) =
        meta.with_context(|| format!("{}: no data/meta.mat inside", path.display()))?;
    let (truth_path, truth) = truth.with_context(|| {
        format!(
            "{}: no data/ILSVRC2012_validation_ground_truth.txt inside",
            path.display()
        )
    })?;
    let wnids = parse_meta(&meta_path, &meta)?;
    let text = String::from_utf8(truth)
        .map_err(|_| anyhow::anyhow!("{}: not text", truth_path.display()))?;
    let val_labels = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.trim()
                .parse::<usize>()
                .ok()
                .filter(|&id| (1..=wnids.len()).contains(&id))
                .with_context(|| {
                    format!(
                        "{} line {}: '{}' is not a class ID 1..={}",
                        truth_path.display(),
                        i + 1,
                        l.trim(),
                        wnids.len()
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Devkit { wnids, val_labels })
}

/// Options of [`prepare`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PrepareOptions {
    /// Accept archives with other counts than ILSVRC2012's (a subset, a test tree).
    pub subset: bool,
    /// Draw progress bars.
    pub progress: bool,
}

/// A file name from an archive that is safe to write: one plain path component.
fn plain_name(name: &Path, archive: &Path) -> Result<String> {
    let s = name.to_string_lossy();
    let file = name
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .filter(|f| !f.starts_with('.') && !f.is_empty())
        .with_context(|| format!("{}: entry '{s}' is not a file name", archive.display()))?;
    ensure!(
        name.components().count() <= 2,
        "{}: entry '{s}' is nested deeper than expected",
        archive.display()
    );
    Ok(file)
}

fn bar(progress: bool, len: usize, what: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
            .expect("valid template"),
    );
    bar.set_message(what.to_string());
    bar
}

fn create_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))
}

fn count_files(dir: &Path) -> Result<usize> {
    Ok(fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_file()))
        .count())
}

fn write_entry(entry: &mut impl Read, dest: &Path, archive: &Path) -> Result<()> {
    let mut out = File::create(dest).with_context(|| format!("cannot write {}", dest.display()))?;
    std::io::copy(entry, &mut out).with_context(|| {
        format!(
            "{} is truncated or unreadable (while writing {})",
            archive.display(),
            dest.display()
        )
    })?;
    Ok(())
}

/// Unpacks the training tar of per-class tars into `train/<wnid>/`, skipping classes finished
/// by an earlier run; returns images per class.
fn unpack_train(
    archive: &Path,
    train: &Path,
    classes: &[String],
    progress: bool,
) -> Result<HashMap<String, usize>> {
    let file = File::open(archive).with_context(|| format!("cannot read {}", archive.display()))?;
    let corrupt = || format!("{} is truncated or not a tar archive", archive.display());
    let mut outer = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
    let bar = bar(progress, classes.len(), "train classes");
    let mut counts = HashMap::new();
    for entry in outer.entries().with_context(corrupt)? {
        let entry = entry.with_context(corrupt)?;
        let name = plain_name(&entry.path().with_context(corrupt)?, archive)?;
        let Some(wnid) = name.strip_suffix(".tar") else {
            bail!(
                "{}: entry '{name}' is not a per-class <wnid>.tar",
                archive.display()
            );
        };
        ensure!(
            classes.iter().any(|c| c == wnid),
            "{}: class '{wnid}' is not one of the devkit's {} classes",
            archive.display(),
            classes.len()
        );
        let done = train.join(wnid);
        if !done.is_dir() {
            let partial = train.join(format!(".{wnid}.partial"));
            if partial.exists() {
                fs::remove_dir_all(&partial)
                    .with_context(|| format!("cannot remove {}", partial.display()))?;
            }
            create_dir(&partial)?;
            let inner_name = archive.join(&name);
            let mut inner = tar::Archive::new(entry);
            for image in inner
                .entries()
                .with_context(|| format!("{} is not a tar archive", inner_name.display()))?
            {
                let mut image =
                    image.with_context(|| format!("{} is truncated", inner_name.display()))?;
                if !image.header().entry_type().is_file() {
                    continue;
                }
                let file = plain_name(&image.path()?, &inner_name)?;
                write_entry(&mut image, &partial.join(file), &inner_name)?;
            }
            fs::rename(&partial, &done)
                .with_context(|| format!("cannot rename {}", partial.display()))?;
        }
        counts.insert(wnid.to_string(), count_files(&done)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(counts)
}

/// Validation image `ILSVRC2012_val_00000042.JPEG` → 42.
fn val_number(name: &str) -> Option<usize> {
    let stem = name.strip_prefix("ILSVRC2012_val_")?;
    let digits = stem.split('.').next()?;
    digits.parse().ok().filter(|&n| n >= 1)
}

/// Sorts the validation archive into `val/<wnid>/`; returns images per class.
fn unpack_val(
    archive: &Path,
    val: &Path,
    devkit: &Devkit,
    progress: bool,
) -> Result<HashMap<String, usize>> {
    let partial = val.with_file_name(".val.partial");
    if !val.is_dir() {
        if partial.exists() {
            fs::remove_dir_all(&partial)
                .with_context(|| format!("cannot remove {}", partial.display()))?;
        }
        let file =
            File::open(archive).with_context(|| format!("cannot read {}", archive.display()))?;
        let corrupt = || format!("{} is truncated or not a tar archive", archive.display());
        let mut tar = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
        let bar = bar(progress, devkit.val_labels.len(), "val images");
        let mut seen = vec![false; devkit.val_labels.len()];
        for entry in tar.entries().with_context(corrupt)? {
            let mut entry = entry.with_context(corrupt)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = plain_name(&entry.path().with_context(corrupt)?, archive)?;
            let n = val_number(&name).with_context(|| {
                format!(
                    "{}: '{name}' is not named ILSVRC2012_val_<n>.JPEG",
                    archive.display()
                )
            })?;
            let id = *devkit.val_labels.get(n - 1).with_context(|| {
                format!(
                    "{}: '{name}' has no label: the devkit's ground truth lists {} images",
                    archive.display(),
                    devkit.val_labels.len()
                )
            })?;
            ensure!(
                !std::mem::replace(&mut seen[n - 1], true),
                "{}: '{name}' appears twice",
                archive.display()
            );
            let class = partial.join(&devkit.wnids[id - 1]);
            if !class.is_dir() {
                create_dir(&class)?;
            }
            write_entry(&mut entry, &class.join(&name), archive)?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        fs::rename(&partial, val)
            .with_context(|| format!("cannot rename {}", partial.display()))?;
    }
    let mut counts = HashMap::new();
    for entry in fs::read_dir(val).with_context(|| format!("cannot read {}", val.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            let wnid = path.file_name().expect("a folder").to_string_lossy();
            counts.insert(wnid.into_owned(), count_files(&path)?);
        }
    }
    Ok(counts)
}

/// Prepares `<dir>/imagenet` from the archives in `from`; see the module docs.
pub fn prepare(from: &Path, dir: &Path, options: PrepareOptions) -> Result<Fetched> {
    let target = dir.join("imagenet");
    if target.join(MARKER).exists() {
        return Ok(Fetched::AlreadyComplete(target));
    }
    let [train_tar, val_tar, devkit_tar] = [TRAIN_TAR, VAL_TAR, DEVKIT].map(|f| from.join(f));
    let missing: Vec<&str> = [
        (&train_tar, TRAIN_TAR),
        (&val_tar, VAL_TAR),
        (&devkit_tar, DEVKIT),
    ]
    .iter()
    .filter(|(p, _)| !p.is_file())
    .map(|(_, n)| *n)
    .collect();
    if !missing.is_empty() {
        bail!(
            "--from {}: missing {}. ImageNet cannot be downloaded without an account: download \
             {TRAIN_TAR}, {VAL_TAR} and {DEVKIT} from https://image-net.org (ILSVRC2012) into \
             one folder and pass it to --from",
            from.display(),
            missing.join(", ")
        );
    }
    let devkit = read_devkit(&devkit_tar)?;
    let staging = dir.join(".imagenet.unpacking");
    let (train, val) = (staging.join("train"), staging.join("val"));
    create_dir(&train)?;
    let train_counts = unpack_train(&train_tar, &train, &devkit.wnids, options.progress)?;
    let val_counts = unpack_val(&val_tar, &val, &devkit, options.progress)?;

    let counts = Counts {
        classes: train_counts.len(),
        train: train_counts.values().sum(),
        val: val_counts.values().sum(),
    };
    let empty = devkit
        .wnids
        .iter()
        .find(|w| train_counts.get(*w).is_none_or(|&n| n == 0));
    if let (Some(empty), false) = (empty, options.subset) {
        bail!(
            "{}: class {empty} has no training images; {} is incomplete (unpacked so far: {})",
            train_tar.display(),
            train_tar.display(),
            staging.display()
        );
    }
    if let Some(extra) = val_counts.keys().find(|w| !train_counts.contains_key(*w)) {
        bail!(
            "{}: validation class {extra} has no training images in {}",
            val_tar.display(),
            train_tar.display()
        );
    }
    ensure!(
        counts.val == devkit.val_labels.len() || options.subset,
        "{}: {} validation images, the devkit labels {}",
        val_tar.display(),
        counts.val,
        devkit.val_labels.len()
    );
    if counts != OFFICIAL && !options.subset {
        bail!(
            "count check failed: {} classes, {} training and {} validation images; ILSVRC2012 \
             has {} classes, {} and {}. The unpacked files stay in {}: replace a truncated \
             archive and run again (finished classes are kept), or pass --subset to accept \
             archives that hold a part of ImageNet",
            counts.classes,
            counts.train,
            counts.val,
            OFFICIAL.classes,
            OFFICIAL.train,
            OFFICIAL.val,
            staging.display()
        );
    }
    let json = serde_json::to_string_pretty(&counts).expect("serializable");
    fs::write(staging.join(COUNTS), json)
        .with_context(|| format!("cannot write {}", staging.join(COUNTS).display()))?;
    install_staged(&staging, &target)
}

/// The counts recorded by [`prepare`] in a prepared folder.
pub fn recorded_counts(dir: &Path) -> Result<Counts> {
    let path = dir.join(COUNTS);
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a counts file", path.display()))
}
