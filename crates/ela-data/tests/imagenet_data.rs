//! The ImageNet image-folder pipeline on `fixtures/imagefolder` (see its README).

use std::path::PathBuf;

use burn::data::dataset::Dataset;
use ela_data::dataset::EpochClock;
use ela_data::imagenet::{CROP, FolderIndex, ImageFolderSet};

fn dir(split: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("tests/fixtures/imagefolder")
        .join(split)
}

/// Mean of each CHW channel.
fn channel_means(pixels: &[u8]) -> [f64; 3] {
    let plane = pixels.len() / 3;
    let mean = |c: usize| {
        pixels[c * plane..(c + 1) * plane]
            .iter()
            .map(|&p| f64::from(p))
            .sum::<f64>()
            / plane as f64
    };
    [mean(0), mean(1), mean(2)]
}

#[test]
fn folders_are_classes_and_images_are_decoded_to_rgb_crops() {
    let train = FolderIndex::scan(&dir("train"), None).unwrap();
    assert_eq!(train.classes, ["n01", "n02", "n03"]);
    let names: Vec<(String, u32)> = train
        .files
        .iter()
        .map(|(p, c)| (p.file_name().unwrap().to_string_lossy().into_owned(), *c))
        .collect();
    let expected = [
        ("a.JPEG", 0),
        ("b.jpg", 0),
        ("gray.JPEG", 1),
        ("cmyk.JPEG", 2),
        ("png_inside.JPEG", 2),
    ];
    assert_eq!(
        names,
        expected.map(|(n, c)| (n.to_string(), c)),
        "notes.txt is not an image"
    );
    let val = FolderIndex::scan(&dir("val"), Some(&train.classes)).unwrap();
    assert_eq!(val.files.iter().map(|f| f.1).collect::<Vec<_>>(), [0, 2]);

    let clock = EpochClock::new();
    clock.set(1);
    let eval = ImageFolderSet::new(&val, false, 0, clock.clone());
    let v = eval.get(0).unwrap();
    assert_eq!(v.pixels.len(), 3 * CROP * CROP);
    assert_eq!(v.label, 0);
    let [r, g, b] = channel_means(&v.pixels);
    assert!((r - 200.0).abs() < 4.0 && (g - 30.0).abs() < 4.0 && (b - 30.0).abs() < 4.0);
    // A 40×30 image is upscaled: the shorter side to 256, then the centre crop.
    assert_eq!(eval.get(1).unwrap().pixels.len(), 3 * CROP * CROP);

    let set = ImageFolderSet::new(&train, true, 7, clock.clone());
    let gray = channel_means(&set.get(2).unwrap().pixels);
    assert!(
        gray.iter().all(|&m| (m - gray[0]).abs() < 0.5),
        "grey → equal channels {gray:?}"
    );
    let cmyk = channel_means(&set.get(3).unwrap().pixels);
    assert!(cmyk[2] > cmyk[0] + 100.0, "CMYK blue stays blue: {cmyk:?}");
    let png = channel_means(&set.get(4).unwrap().pixels);
    assert_eq!(png.map(|m| m.round()), [30.0, 30.0, 200.0]);
}

#[test]
fn training_crops_follow_seed_epoch_and_item_only() {
    let train = FolderIndex::scan(&dir("train"), None).unwrap();
    let clock = EpochClock::new();
    clock.set(1);
    let a = ImageFolderSet::new(&train, true, 7, clock.clone());
    let first = a.get(0).unwrap().pixels;
    // The same seed and epoch in another set (another worker) give the same crop.
    let b = ImageFolderSet::new(&train, true, 7, clock.clone());
    assert_eq!(b.get(0).unwrap().pixels, first);
    // Another seed or another epoch gives another crop of the gradient image.
    let c = ImageFolderSet::new(&train, true, 8, clock.clone());
    assert_ne!(c.get(0).unwrap().pixels, first);
    clock.set(2);
    assert_ne!(a.get(0).unwrap().pixels, first);
    clock.set(1);
    assert_eq!(a.get(0).unwrap().pixels, first);
}

#[test]
fn bad_folders_and_files_are_named() {
    let err = FolderIndex::scan(&dir("nowhere"), None).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("nowhere") && msg.contains("DIR/train/<wnid>"),
        "{msg}"
    );
    let err = FolderIndex::scan(&dir("train"), Some(&["n01".to_string()])).unwrap_err();
    assert!(err.to_string().contains("'n02'"), "{err}");
    let broken = FolderIndex::scan(&dir("broken"), None).unwrap();
    let set = ImageFolderSet::new(&broken, false, 0, EpochClock::new());
    let err = set.item(0).unwrap_err();
    assert!(
        err.contains("bad.JPEG") && err.contains("cannot decode"),
        "{err}"
    );
}

#[test]
fn limited_splits_keep_every_class() {
    // a, b (n01), gray (n02), cmyk, png_inside (n03): three evenly spaced files are items 0, 2
    // and 4 (⌊(2i+1)·5/6⌋), one per class; the first three would miss n03.
    let index = FolderIndex::scan(&dir("train"), None).unwrap();
    let set = ImageFolderSet::new(&index, false, 0, EpochClock::new());
    let labels = |s: &ImageFolderSet| -> Vec<usize> {
        (0..s.len()).map(|i| s.get(i).unwrap().label).collect()
    };
    assert_eq!(labels(&set.evenly_spaced(3)), [0, 1, 2]);
    assert_eq!(labels(&set.truncated(3)), [0, 0, 1]);
    assert_eq!(labels(&set.evenly_spaced(2)), [0, 2]);
    assert_eq!(set.evenly_spaced(9).len(), 5);
}
