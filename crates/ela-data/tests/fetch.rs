//! `ela fetch` against a loopback HTTP server that serves small archives built here in the real
//! CIFAR format: a good one, one with a wrong checksum, a download cut short and resumed, and a
//! corrupt archive.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ela_data::cifar::{self, CifarKind, IMAGE_BYTES};
use ela_data::fetch::{DatasetSource, Fetched, Install, Remote, fetch, md5_file};

/// A request the server saw: path and Range header.
type Hit = (String, Option<String>);

/// A minimal HTTP/1.1 file server on 127.0.0.1 with range support. With `cut_first`, the first
/// response announces the whole file but sends only half of it before closing.
struct Server {
    base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(files: HashMap<String, Vec<u8>>, cut_first: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut cut = cut_first;
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        serve(stream, &files, &h, cut);
                        cut = false;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { base, hits, stop }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(stream: TcpStream, files: &HashMap<String, Vec<u8>>, hits: &Mutex<Vec<Hit>>, cut: bool) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    hits.lock().unwrap().push((path.clone(), range.clone()));
    let mut out = stream;
    let Some(body) = files.get(path.trim_start_matches('/')) else {
        let _ = out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let start: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap_or(0);
    let rest = &body[start.min(body.len())..];
    let head = if start > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
            rest.len(),
            body.len() - 1,
            body.len()
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            rest.len()
        )
    };
    let _ = out.write_all(head.as_bytes());
    let sent = if cut { &rest[..rest.len() / 2] } else { rest };
    let _ = out.write_all(sent);
    let _ = out.flush();
}

/// A CIFAR-10 binary archive (`cifar-10-batches-bin/`), two records per batch file.
fn cifar10_archive() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let files = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for (i, f) in files.iter().enumerate() {
        let mut data = Vec::new();
        for j in 0..2u8 {
            data.push((i as u8 + j) % 10);
            data.extend((0..IMAGE_BYTES).map(|k| (k + i) as u8));
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(
            &mut header,
            format!("cifar-10-batches-bin/{f}"),
            data.as_slice(),
        )
        .unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

fn md5_of(bytes: &[u8], dir: &Path) -> String {
    let p = dir.join("md5-probe");
    std::fs::write(&p, bytes).unwrap();
    let m = md5_file(&p).unwrap();
    std::fs::remove_file(p).unwrap();
    m
}

fn source(server: &Server, file: &str, md5: String) -> DatasetSource {
    DatasetSource {
        name: "cifar10".into(),
        files: vec![Remote {
            file: file.into(),
            url: format!("{}{file}", server.base),
            md5,
        }],
        install: Install::TarGz(CifarKind::Cifar10),
    }
}

const FILE: &str = "cifar-10-binary.tar.gz";

#[test]
fn fetch_installs_once_and_a_second_fetch_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = cifar10_archive();
    let md5 = md5_of(&archive, dir.path());
    let server = Server::start(HashMap::from([(FILE.to_string(), archive)]), false);
    let src = source(&server, FILE, md5);
    let target = dir.path().join("cifar10");
    assert_eq!(
        fetch(&src, dir.path(), false).unwrap(),
        Fetched::Installed(target.clone())
    );
    let splits = cifar::load(&target, CifarKind::Cifar10).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (10, 2));
    assert_eq!(splits.train.label(3), 2);
    assert_eq!(server.hits().len(), 1);

    assert_eq!(
        fetch(&src, dir.path(), false).unwrap(),
        Fetched::AlreadyComplete(target)
    );
    assert_eq!(
        server.hits().len(),
        1,
        "a complete dataset is not downloaded again"
    );
}

#[test]
fn a_wrong_checksum_unpacks_nothing_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        HashMap::from([(FILE.to_string(), cifar10_archive())]),
        false,
    );
    let src = source(&server, FILE, "0123456789abcdef0123456789abcdef".into());
    let err = format!("{:#}", fetch(&src, dir.path(), false).unwrap_err());
    assert!(
        err.contains("checksum mismatch")
            && err.contains(FILE)
            && err.contains("0123456789abcdef0123456789abcdef"),
        "{err}"
    );
    assert!(!dir.path().join("cifar10").exists());
    let downloads = dir.path().join(".downloads");
    assert_eq!(
        std::fs::read_dir(&downloads).unwrap().count(),
        0,
        "no file kept"
    );
}

#[test]
fn an_interrupted_download_resumes_with_a_range_request() {
    let dir = tempfile::tempdir().unwrap();
    let archive = cifar10_archive();
    let md5 = md5_of(&archive, dir.path());
    let len = archive.len();
    let server = Server::start(HashMap::from([(FILE.to_string(), archive)]), true);
    let src = source(&server, FILE, md5);

    let err = format!("{:#}", fetch(&src, dir.path(), false).unwrap_err());
    assert!(err.contains("run the fetch again to resume"), "{err}");
    let part = dir.path().join(".downloads").join(format!("{FILE}.part"));
    let kept = std::fs::metadata(&part).unwrap().len() as usize;
    assert_eq!(kept, len / 2, "the received half is kept");
    assert!(!dir.path().join("cifar10").exists());

    fetch(&src, dir.path(), false).unwrap();
    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits[1].1.as_deref(),
        Some(format!("bytes={kept}-").as_str())
    );
    assert!(!part.exists());
    cifar::load(&dir.path().join("cifar10"), CifarKind::Cifar10).unwrap();
}

#[test]
fn a_corrupt_archive_with_a_matching_checksum_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut garbage = cifar10_archive();
    garbage.truncate(garbage.len() / 3);
    let md5 = md5_of(&garbage, dir.path());
    let server = Server::start(HashMap::from([(FILE.to_string(), garbage)]), false);
    let err = format!(
        "{:#}",
        fetch(&source(&server, FILE, md5), dir.path(), false).unwrap_err()
    );
    assert!(err.contains("corrupt or truncated"), "{err}");
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        vec![".downloads".to_string()],
        "no dataset, no staging folder"
    );
}

// ---- ImageNet from the official archive formats -------------------------------------------

mod imagenet {
    use std::path::{Path, PathBuf};

    use ela_data::fetch::Fetched;
    use ela_data::ilsvrc::{self, Counts, PrepareOptions};
    use ela_data::imagenet::FolderIndex;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    /// The fixture's leaves: class IDs 1–4 (see fixtures/ilsvrc/make_meta.py).
    const WNIDS: [&str; 4] = ["n02119789", "n02100735", "n01440764", "n04592741"];

    fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, bytes.as_slice())
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn jpeg() -> Vec<u8> {
        std::fs::read(fixture("imagefolder/train/n01/a.JPEG")).unwrap()
    }

    /// Archives in the official formats: per-class tars inside the training tar (2, 1, 1, 2
    /// images for IDs 1–4), six flat validation images labelled by the ground truth, and the
    /// devkit with meta.mat.
    fn write_archives(dir: &Path, meta: &str) {
        let per_class = [2, 1, 1, 2];
        let inner: Vec<(String, Vec<u8>)> = WNIDS
            .iter()
            .zip(per_class)
            .map(|(w, n)| {
                let images: Vec<(String, Vec<u8>)> = (0..n)
                    .map(|i| (format!("{w}_{}.JPEG", 100 + i), jpeg()))
                    .collect();
                (format!("{w}.tar"), tar_of(&images))
            })
            .collect();
        std::fs::write(dir.join(ilsvrc::TRAIN_TAR), tar_of(&inner)).unwrap();
        let labels = [3, 1, 4, 4, 2, 1];
        let val: Vec<(String, Vec<u8>)> = (1..=labels.len())
            .map(|n| (format!("ILSVRC2012_val_{n:08}.JPEG"), jpeg()))
            .collect();
        std::fs::write(dir.join(ilsvrc::VAL_TAR), tar_of(&val)).unwrap();
        let truth: String = labels.iter().map(|l| format!("{l}\n")).collect();
        let devkit = tar_of(&[
            (
                "ILSVRC2012_devkit_t12/data/meta.mat".into(),
                std::fs::read(fixture(&format!("ilsvrc/{meta}"))).unwrap(),
            ),
            (
                "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt".into(),
                truth.into_bytes(),
            ),
            (
                "ILSVRC2012_devkit_t12/readme.txt".into(),
                b"devkit".to_vec(),
            ),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &devkit).unwrap();
        std::fs::write(dir.join(ilsvrc::DEVKIT), gz.finish().unwrap()).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn meta_mat_leaves_are_read_plain_and_compressed() {
        // scipy.io.loadmat(path, squeeze_me=True)['synsets'] lists IDs 1, 2, 5, 3, 4 with
        // num_children 0, 0, 4, 0, 0: the leaves by ID are WNIDS.
        for name in ["meta.mat", "meta_compressed.mat"] {
            let path = fixture(&format!("ilsvrc/{name}"));
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(ilsvrc::parse_meta(&path, &bytes).unwrap(), WNIDS, "{name}");
            // Every truncation is an error naming the file, never a panic.
            for cut in (0..bytes.len()).step_by(7) {
                if let Err(e) = ilsvrc::parse_meta(&path, &bytes[..cut]) {
                    assert!(e.to_string().contains(name), "{e}");
                }
            }
        }
        let err = ilsvrc::parse_meta(Path::new("x/meta.mat"), &[0u8; 200])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x/meta.mat") && err.contains("endian"),
            "{err}"
        );
    }

    #[test]
    fn archives_become_class_folders_checked_and_resumable() {
        let tmp = tempfile::tempdir().unwrap();
        let (from, data) = (tmp.path().join("downloads"), tmp.path().join("data"));
        std::fs::create_dir_all(&from).unwrap();

        // Missing archives are named, with where to get them.
        let err = ilsvrc::prepare(&from, &data, PrepareOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(ilsvrc::TRAIN_TAR) && err.contains("image-net.org"),
            "{err}"
        );

        write_archives(&from, "meta_compressed.mat");
        // Not ILSVRC2012's counts: refused without --subset, the unpacked classes kept.
        let err = ilsvrc::prepare(&from, &data, PrepareOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("count check failed: 4 classes, 6 training and 6 validation")
                && err.contains("--subset"),
            "{err}"
        );
        assert!(!data.join("imagenet").exists());
        assert_eq!(
            names(&data.join(".imagenet.unpacking/train")),
            names_sorted(&WNIDS)
        );

        let subset = PrepareOptions {
            subset: true,
            progress: false,
        };
        let out = ilsvrc::prepare(&from, &data, subset).unwrap();
        let root = data.join("imagenet");
        assert_eq!(out, Fetched::Installed(root.clone()));
        assert_eq!(
            ilsvrc::recorded_counts(&root).unwrap(),
            Counts {
                classes: 4,
                train: 6,
                val: 6
            }
        );
        assert_eq!(
            names(&root.join("train/n04592741")),
            ["n04592741_100.JPEG", "n04592741_101.JPEG"]
        );
        // Validation images sit in their ground-truth class: labels 3, 1, 4, 4, 2, 1.
        assert_eq!(
            names(&root.join("val/n02119789")),
            [
                "ILSVRC2012_val_00000002.JPEG",
                "ILSVRC2012_val_00000006.JPEG"
            ]
        );
        assert_eq!(
            names(&root.join("val/n04592741")),
            [
                "ILSVRC2012_val_00000003.JPEG",
                "ILSVRC2012_val_00000004.JPEG"
            ]
        );
        // The loader reads it: classes sorted by WNID, validation labels by the same classes.
        let train = FolderIndex::scan(&root.join("train"), None).unwrap();
        let val = FolderIndex::scan(&root.join("val"), Some(&train.classes)).unwrap();
        assert_eq!(train.classes, names_sorted(&WNIDS));
        assert_eq!((train.files.len(), val.files.len()), (6, 6));
        let tench = train.classes.iter().position(|c| c == "n01440764").unwrap() as u32;
        assert!(
            val.files
                .iter()
                .any(|(p, c)| *c == tench && p.ends_with("ILSVRC2012_val_00000001.JPEG"))
        );
        // A second run does nothing.
        assert_eq!(
            ilsvrc::prepare(&from, &data, subset).unwrap(),
            Fetched::AlreadyComplete(root)
        );
    }

    fn names_sorted(w: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = w.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn truncated_archives_and_unknown_classes_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let (from, data) = (tmp.path().join("downloads"), tmp.path().join("data"));
        std::fs::create_dir_all(&from).unwrap();
        write_archives(&from, "meta.mat");
        let subset = PrepareOptions {
            subset: true,
            progress: false,
        };
        let train = from.join(ilsvrc::TRAIN_TAR);
        let whole = std::fs::read(&train).unwrap();
        std::fs::write(&train, &whole[..whole.len() / 2]).unwrap();
        let err = format!("{:#}", ilsvrc::prepare(&from, &data, subset).unwrap_err());
        assert!(err.contains(ilsvrc::TRAIN_TAR), "{err}");
        assert!(!data.join("imagenet").exists());
        // A class the devkit does not know.
        let stray = tar_of(&[("n99999999.tar".into(), tar_of(&[]))]);
        std::fs::write(&train, stray).unwrap();
        let err = format!("{:#}", ilsvrc::prepare(&from, &data, subset).unwrap_err());
        assert!(
            err.contains("n99999999") && err.contains("4 classes"),
            "{err}"
        );
        // A ground truth that names a class the devkit does not have.
        std::fs::write(&train, whole).unwrap();
        let devkit = tar_of(&[
            (
                "d/data/meta.mat".into(),
                std::fs::read(fixture("ilsvrc/meta.mat")).unwrap(),
            ),
            (
                "d/data/ILSVRC2012_validation_ground_truth.txt".into(),
                b"1\n7\n".to_vec(),
            ),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &devkit).unwrap();
        std::fs::write(from.join(ilsvrc::DEVKIT), gz.finish().unwrap()).unwrap();
        let err = format!("{:#}", ilsvrc::prepare(&from, &data, subset).unwrap_err());
        assert!(
            err.contains("line 2") && err.contains("'7' is not a class ID 1..=4"),
            "{err}"
        );
    }
}
