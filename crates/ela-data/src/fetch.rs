//! `ela fetch`: downloads the official dataset archives, resumably, verifies their MD5 before
//! unpacking anything, and installs the dataset atomically.
//!
//! Layout under the target directory (default `data/`):
//! - `.downloads/<file>.part` while a download runs (a later fetch resumes it with an HTTP
//!   range request), `.downloads/<file>` once it is complete and verified;
//! - `<dataset>/` only once the archive is unpacked and its files parse: it is unpacked into a
//!   temporary sibling and renamed into place, with a `.complete` marker, so an interrupted or
//!   failed fetch never leaves a half-unpacked dataset behind. A second fetch of a complete
//!   dataset does nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::read::GzDecoder;
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};

use crate::cifar::{self, CifarKind};
use crate::dataset::Mnist;

/// One file to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// File name (also the name under `.downloads/`).
    pub file: String,
    /// Where to get it.
    pub url: String,
    /// Expected MD5, lowercase hex.
    pub md5: String,
}

/// What a fetched dataset is made of and how it is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSource {
    /// Folder under the target directory (`cifar10`, `cifar100`, `mnist`).
    pub name: String,
    /// Files to download.
    pub files: Vec<Remote>,
    /// How the downloads become the dataset folder.
    pub install: Install,
}

/// How downloaded files become a dataset folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// Unpack one `.tar.gz`, then check that it parses as this CIFAR.
    TarGz(CifarKind),
    /// Copy the four MNIST `.gz` files, then check that they parse.
    MnistFiles,
    /// Unzip COCO 2017's image and annotation archives, then check the image counts and that
    /// every image the instances files list is there.
    CocoZips,
}

/// The datasets `ela fetch` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FetchName {
    /// CIFAR-10, binary version (the dataset authors' site).
    Cifar10,
    /// CIFAR-100, binary version (the dataset authors' site).
    Cifar100,
    /// MNIST, the four official gzip files (a public mirror).
    Mnist,
    /// ImageNet-1K (ILSVRC2012): not downloadable without an account; prepared from the
    /// official archives with `--from DIR` (see [`crate::ilsvrc`]).
    Imagenet,
    /// COCO 2017 detection: train2017 (118,287 images), val2017 (5,000) and the instances
    /// annotations, the official archives (about 19 GB).
    Coco,
}

/// COCO's server.
const COCO_BASE: &str = "http://images.cocodataset.org/";

/// COCO 2017's archives: path under the server, MD5.
const COCO_FILES: [(&str, &str); 3] = [
    (
        "annotations/annotations_trainval2017.zip",
        "f4bbac642086de4f52a3fdda2de5fa2c",
    ),
    ("zips/val2017.zip", "442b8da7639aecaf257c1dceb8ba8c80"),
    ("zips/train2017.zip", "cced6f7f71b7629ddf16f17bbcfab6b2"),
];

/// Images of COCO 2017's splits.
pub const COCO_IMAGES: [(&str, usize); 2] = [("train2017", 118_287), ("val2017", 5_000)];

const CIFAR_BASE: &str = "https://www.cs.toronto.edu/~kriz/";
const MNIST_BASE: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";

impl FetchName {
    /// The official source; `mirror` replaces the base URL (the file names stay). `None` for
    /// ImageNet, which is prepared from archives the user downloaded.
    pub fn source(self, mirror: Option<&str>) -> Option<DatasetSource> {
        let remote = |base: &str, file: &str, md5: &str| Remote {
            file: file.into(),
            url: format!("{}{file}", mirror.unwrap_or(base)),
            md5: md5.into(),
        };
        Some(match self {
            Self::Imagenet => return None,
            Self::Coco => DatasetSource {
                name: "coco".into(),
                files: COCO_FILES
                    .iter()
                    .map(|(path, md5)| {
                        let file = path.rsplit('/').next().expect("a file name");
                        Remote {
                            file: file.into(),
                            url: match mirror {
                                Some(base) => format!("{base}{file}"),
                                None => format!("{COCO_BASE}{path}"),
                            },
                            md5: (*md5).into(),
                        }
                    })
                    .collect(),
                install: Install::CocoZips,
            },
            Self::Cifar10 => DatasetSource {
                name: "cifar10".into(),
                files: vec![remote(
                    CIFAR_BASE,
                    "cifar-10-binary.tar.gz",
                    "c32a1d4ab5d03f1284b67883e8d87530",
                )],
                install: Install::TarGz(CifarKind::Cifar10),
            },
            Self::Cifar100 => DatasetSource {
                name: "cifar100".into(),
                files: vec![remote(
                    CIFAR_BASE,
                    "cifar-100-binary.tar.gz",
                    "03b5dce01913d631647c71ecec9e9cb8",
                )],
                install: Install::TarGz(CifarKind::Cifar100),
            },
            Self::Mnist => DatasetSource {
                name: "mnist".into(),
                files: [
                    (
                        "train-images-idx3-ubyte.gz",
                        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    ),
                    (
                        "train-labels-idx1-ubyte.gz",
                        "d53e105ee54ea40749a09fcbcd1e9432",
                    ),
                    (
                        "t10k-images-idx3-ubyte.gz",
                        "9fb629c4189551a2d022fa330f9573f3",
                    ),
                    (
                        "t10k-labels-idx1-ubyte.gz",
                        "ec29112dd5afa0611ce80d1b7f02629c",
                    ),
                ]
                .into_iter()
                .map(|(f, m)| remote(MNIST_BASE, f, m))
                .collect(),
                install: Install::MnistFiles,
            },
        })
    }
}

/// What a fetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The dataset was already complete; nothing was downloaded.
    AlreadyComplete(PathBuf),
    /// The dataset was downloaded (or resumed), verified and installed.
    Installed(PathBuf),
}

/// The file that marks a dataset folder complete.
pub(crate) const MARKER: &str = ".complete";

/// Lowercase hex MD5 of a file.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Downloads `remote` to `dest`, resuming `dest.part` if a previous download left one, and
/// verifies the MD5. A complete, verified `dest` is kept as it is.
pub fn download(remote: &Remote, dest: &Path, progress: bool) -> Result<()> {
    if dest.exists() {
        if md5_file(dest)? == remote.md5 {
            return Ok(());
        }
        fs::remove_file(dest).with_context(|| format!("cannot remove {}", dest.display()))?;
    }
    let part = dest.with_file_name(format!("{}.part", remote.file));
    let have = fs::metadata(&part).map_or(0, |m| m.len());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(&remote.url);
    if have > 0 {
        request = request.header("Range", &format!("bytes={have}-"));
    }
    let mut response = request
        .call()
        .with_context(|| format!("cannot download {}", remote.url))?;
    let status = response.status().as_u16();
    let resumed = match status {
        206 if have > 0 => true,
        200 => false,
        // The part already holds the whole file.
        416 if have > 0 => {
            return finish(remote, &part, dest);
        }
        _ => bail!("downloading {}: HTTP status {status}", remote.url),
    };
    let remaining: Option<u64> = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut out = if resumed {
        OpenOptions::new().append(true).open(&part)
    } else {
        File::create(&part)
    }
    .with_context(|| format!("cannot write {}", part.display()))?;
    let start = if resumed { have } else { 0 };
    let bar = if progress {
        let bar = ProgressBar::new(remaining.map_or(0, |r| r + start));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        bar.set_message(remote.file.clone());
        bar.set_position(start);
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut reader = response.body_mut().as_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = reader.read(&mut buf).with_context(|| {
            format!(
                "download of {} interrupted after {} bytes; run the fetch again to resume",
                remote.url,
                start + received
            )
        })?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", part.display()))?;
        received += n as u64;
        bar.inc(n as u64);
    }
    out.sync_all()
        .with_context(|| format!("cannot write {}", part.display()))?;
    bar.finish_and_clear();
    if let Some(expected) = remaining
        && received < expected
    {
        bail!(
            "download of {} ended after {} of {} bytes; run the fetch again to resume",
            remote.url,
            start + received,
            start + expected
        );
    }
    finish(remote, &part, dest)
}

/// Verifies a finished `.part` and renames it to `dest`; a wrong checksum removes it.
fn finish(remote: &Remote, part: &Path, dest: &Path) -> Result<()> {
    let got = md5_file(part)?;
    if got != remote.md5 {
        fs::remove_file(part).ok();
        bail!(
            "checksum mismatch for {} (from {}): expected MD5 {}, got {got}; the file was \
             removed, nothing was unpacked",
            remote.file,
            remote.url,
            remote.md5
        );
    }
    fs::rename(part, dest).with_context(|| format!("cannot rename {}", part.display()))?;
    Ok(())
}

/// Fetches `source` into `dir/<name>`; see the module docs.
pub fn fetch(source: &DatasetSource, dir: &Path, progress: bool) -> Result<Fetched> {
    let target = dir.join(&source.name);
    if target.join(MARKER).exists() {
        return Ok(Fetched::AlreadyComplete(target));
    }
    let downloads = dir.join(".downloads");
    fs::create_dir_all(&downloads)
        .with_context(|| format!("cannot create {}", downloads.display()))?;
    let mut archives = Vec::new();
    for remote in &source.files {
        let dest = downloads.join(&remote.file);
        download(remote, &dest, progress)?;
        archives.push(dest);
    }

    let staging = dir.join(format!(".{}.unpacking", source.name));
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    let installed = install(source, &archives, &staging);
    if let Err(err) = installed {
        fs::remove_dir_all(&staging).ok();
        return Err(err);
    }
    install_staged(&staging, &target)
}

/// Marks the unpacked `staging` folder complete and renames it to `target` (replacing an
/// incomplete one): the dataset appears whole or not at all.
pub(crate) fn install_staged(staging: &Path, target: &Path) -> Result<Fetched> {
    File::create(staging.join(MARKER))
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot write {}", staging.join(MARKER).display()))?;
    if target.exists() {
        fs::remove_dir_all(target)
            .with_context(|| format!("cannot replace the incomplete {}", target.display()))?;
    }
    fs::rename(staging, target).with_context(|| {
        format!(
            "cannot rename {} to {}",
            staging.display(),
            target.display()
        )
    })?;
    Ok(Fetched::Installed(target.to_path_buf()))
}

fn install(source: &DatasetSource, archives: &[PathBuf], staging: &Path) -> Result<()> {
    match source.install {
        Install::TarGz(kind) => {
            let archive = &archives[0];
            let file = File::open(archive)
                .with_context(|| format!("cannot read {}", archive.display()))?;
            tar::Archive::new(GzDecoder::new(file))
                .unpack(staging)
                .with_context(|| {
                    format!(
                        "{} is corrupt or truncated (its checksum matched, so the source itself \
                         is bad); nothing was installed",
                        archive.display()
                    )
                })?;
            cifar::load(staging, kind).with_context(|| {
                format!(
                    "{} unpacked, but its files are not {}",
                    archive.display(),
                    source.name
                )
            })?;
        }
        Install::MnistFiles => {
            for archive in archives {
                let name = archive.file_name().expect("a file");
                fs::copy(archive, staging.join(name))
                    .with_context(|| format!("cannot copy {}", archive.display()))?;
            }
            Mnist::from_dir(staging).context("the downloaded MNIST files do not parse")?;
        }
        Install::CocoZips => {
            for archive in archives {
                let file = File::open(archive)
                    .with_context(|| format!("cannot read {}", archive.display()))?;
                zip::ZipArchive::new(file)
                    .and_then(|mut z| z.extract(staging))
                    .with_context(|| {
                        format!(
                            "{} is corrupt or truncated; nothing was installed",
                            archive.display()
                        )
                    })?;
            }
            check_coco(staging)?;
        }
    }
    Ok(())
}

/// An unpacked COCO 2017: both splits' image counts, and every image their instances files
/// list present.
pub fn check_coco(root: &Path) -> Result<()> {
    for (split, count) in COCO_IMAGES {
        let dir = root.join(split);
        let found = fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "jpg"))
            })
            .count();
        if found != count {
            bail!(
                "{} holds {found} images; COCO 2017 has {count}",
                dir.display()
            );
        }
        let ann = root
            .join("annotations")
            .join(format!("instances_{split}.json"));
        let instances = crate::coco::CocoInstances::read(&ann)?;
        if let Some(missing) = instances
            .images
            .iter()
            .find(|i| !dir.join(&i.file_name).exists())
        {
            bail!(
                "{} lists {}, which is not in {}",
                ann.display(),
                missing.file_name,
                dir.display()
            );
        }
    }
    Ok(())
}
