//! The detection data: the digit set's determinism and exact boxes and masks, the COCO reader's
//! checks, the MMDetection pipeline's geometry, and orientation-grouped batches.

use burn::prelude::*;
use ela_data::coco::{CocoInstances, CocoSplit, DetectionTargets, RleCounts, Segmentation};
use ela_data::detection::{DetectionPipeline, group_batches};
use ela_data::digits::{DigitsConfig, ensure};
use ela_data::masks::BitMask;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn small() -> DigitsConfig {
    DigitsConfig {
        train_images: 12,
        val_images: 4,
        ..DigitsConfig::default()
    }
}

/// Decodes column-major runs to a row-major mask.
fn decode(runs: &[u32], h: usize, w: usize) -> Vec<bool> {
    let mut column_major = Vec::with_capacity(h * w);
    for (i, &r) in runs.iter().enumerate() {
        column_major.extend(std::iter::repeat_n(i % 2 == 1, r as usize));
    }
    assert_eq!(column_major.len(), h * w, "runs cover the image");
    let mut out = vec![false; h * w];
    for x in 0..w {
        for y in 0..h {
            out[y * w + x] = column_major[x * h + y];
        }
    }
    out
}

#[test]
fn digit_set_is_deterministic_with_exact_boxes_and_masks() {
    let dir = tempfile::tempdir().unwrap();
    let a = ensure(&dir.path().join("a"), &small()).unwrap();
    let b = ensure(&dir.path().join("b"), &small()).unwrap();
    for split in ["train", "val"] {
        let ja = std::fs::read(a.annotations(split)).unwrap();
        assert_eq!(
            ja,
            std::fs::read(b.annotations(split)).unwrap(),
            "{split} json"
        );
        let pa = std::fs::read(a.images(split).join("000001.png")).unwrap();
        assert_eq!(
            pa,
            std::fs::read(b.images(split).join("000001.png")).unwrap()
        );
    }
    let set = CocoInstances::read(&a.annotations("train")).unwrap();
    assert_eq!(set.images.len(), 12);
    assert_eq!(set.categories.len(), 10);
    assert!(set.annotations.len() >= 12, "at least one digit per canvas");
    let mut sides = Vec::new();
    for ann in &set.annotations {
        let Some(Segmentation::Rle {
            counts: RleCounts::Runs(runs),
            size: [h, w],
        }) = &ann.segmentation
        else {
            panic!("digit masks are uncompressed RLE");
        };
        let mask = decode(runs, *h, *w);
        let area = mask.iter().filter(|&&m| m).count();
        assert_eq!(area as f64, ann.area);
        let xs: Vec<usize> = (0..h * w).filter(|&i| mask[i]).map(|i| i % w).collect();
        let ys: Vec<usize> = (0..h * w).filter(|&i| mask[i]).map(|i| i / w).collect();
        let (x1, x2) = (*xs.iter().min().unwrap(), *xs.iter().max().unwrap() + 1);
        let (y1, y2) = (*ys.iter().min().unwrap(), *ys.iter().max().unwrap() + 1);
        assert_eq!(
            ann.bbox,
            [x1 as f64, y1 as f64, (x2 - x1) as f64, (y2 - y1) as f64],
            "box of annotation {} is its mask's tight bounds",
            ann.id
        );
        sides.push(ann.bbox[2].max(ann.bbox[3]));
    }
    let (lo, hi) = sides
        .iter()
        .fold((f64::MAX, 0.0f64), |(l, h), &s| (l.min(s), h.max(s)));
    assert!(hi > 2.0 * lo, "several scales: sides from {lo} to {hi}");
    // A second call with the same configuration keeps the set; another configuration refuses.
    assert!(ensure(&a.root, &small()).is_ok());
    let other = DigitsConfig { seed: 1, ..small() };
    let err = ensure(&a.root, &other).unwrap_err().to_string();
    assert!(err.contains("digits.json"), "{err}");
}

#[test]
fn coco_reader_names_the_file_and_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("instances.json");
    std::fs::write(&path, "[1, 2").unwrap();
    let err = CocoInstances::read(&path).unwrap_err().to_string();
    assert!(err.contains("instances.json"), "{err}");
    std::fs::write(
        &path,
        r#"{"images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 4}],
            "categories": [{"id": 1, "name": "x"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1]}]}"#,
    )
    .unwrap();
    let err = CocoInstances::read(&path).unwrap_err().to_string();
    assert!(err.contains("category 7"), "{err}");
    let missing = CocoSplit::open(&dir.path().join("nope.json"), dir.path(), true)
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nope.json"), "{missing}");
}

#[test]
fn split_reads_images_and_targets() {
    let dir = tempfile::tempdir().unwrap();
    let set = ensure(&dir.path().join("d"), &small()).unwrap();
    let split = CocoSplit::open(&set.annotations("val"), &set.images("val"), true).unwrap();
    let first = split.images[0].clone();
    let rgb = split.load_rgb(&first).unwrap();
    assert_eq!((rgb.width(), rgb.height()), (128, 128));
    let t = split.targets(first.id);
    assert_eq!(t.boxes.len(), t.labels.len());
    assert!(t.labels.iter().all(|&l| l < 10));
}

#[test]
fn pipeline_geometry_follows_mmdetection() {
    let p = DetectionPipeline::mmdet();
    // mmcv.imrescale: factor min(1333 / 640, 800 / 480) = 5/3.
    assert_eq!(p.resized(640, 480), (1067, 800));
    assert_eq!(p.resized(480, 640), (800, 1067));
    assert_eq!(p.resized(2000, 500), (1333, 333));
    let image = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8, y as u8, 0]));
    let targets = DetectionTargets {
        boxes: vec![[8.0, 4.0, 24.0, 20.0]],
        labels: vec![3],
        crowd: vec![],
        masks: vec![Some(Segmentation::Polygons(vec![vec![
            8.0, 4.0, 24.0, 4.0, 8.0, 20.0,
        ]]))],
    };
    let small = DetectionPipeline {
        scale: (128, 96),
        masks: true,
        ..DetectionPipeline::mmdet()
    };
    let mut rng = StdRng::seed_from_u64(0);
    let mut flipped = None;
    let mut straight = None;
    for _ in 0..20 {
        let item = small.apply(1, &image, &targets, Some(&mut rng)).unwrap();
        assert_eq!(item.size, (96, 128));
        if item.flipped {
            flipped = Some(item);
        } else {
            straight = Some(item);
        }
    }
    let (f, s) = (flipped.unwrap(), straight.unwrap());
    assert_eq!(s.targets.boxes[0], [16.0, 8.0, 48.0, 40.0]);
    assert_eq!(f.targets.boxes[0], [128.0 - 48.0, 8.0, 128.0 - 16.0, 40.0]);
    assert_eq!(f.to_original(f.targets.boxes[0]), targets.boxes[0]);
    assert_eq!(s.to_original(s.targets.boxes[0]), targets.boxes[0]);
    // The flipped image is the mirror of the straight one.
    let (_, w) = s.size;
    for y in [0, 40, 95] {
        for x in [0, 17, 127] {
            assert_eq!(s.pixels[y * w + x], f.pixels[y * w + (w - 1 - x)]);
        }
    }
    // Masks follow the image: the resized mask of the triangle, mirrored when flipped.
    let (sm, fm) = (&s.masks[0], &f.masks[0]);
    assert_eq!((sm.height, sm.width), (96, 128));
    assert_eq!(sm.flip_horizontal(), *fm);
    let original = BitMask::from_segmentation(targets.masks[0].as_ref().unwrap(), 48, 64).unwrap();
    assert_eq!(*sm, original.resize_nearest(96, 128));
    assert_eq!(sm.area(), 4 * original.area());
    assert!(odd_masks_are_empty(&small, &image));
    let device = Device::flex();
    let batch = small.collate(&[s.clone(), f], &device);
    assert_eq!(batch.dims(), [2, 3, 96, 128]);
    let odd = DetectionPipeline {
        scale: (100, 70),
        ..DetectionPipeline::mmdet()
    };
    let item = odd.apply(1, &image, &targets, None).unwrap();
    let batch = odd.collate(std::slice::from_ref(&item), &device);
    assert_eq!(
        batch.dims(),
        [1, 3, 96, 96],
        "padded to a multiple of 32 from {:?}",
        item.size
    );
}

#[test]
fn batches_keep_one_orientation_and_cover_every_image() {
    let sizes: Vec<(usize, usize)> = (0..23)
        .map(|i| if i % 3 == 0 { (100, 60) } else { (60, 100) })
        .collect();
    let mut rng = StdRng::seed_from_u64(3);
    let batches = group_batches(&sizes, 4, &mut rng);
    let mut seen = vec![false; sizes.len()];
    for b in &batches {
        assert_eq!(b.len(), 4);
        let landscape = sizes[b[0]].1 > sizes[b[0]].0;
        assert!(b.iter().all(|&i| (sizes[i].1 > sizes[i].0) == landscape));
        for &i in b {
            seen[i] = true;
        }
    }
    assert!(seen.iter().all(|&s| s));
}

#[test]
fn an_incomplete_coco_is_refused_with_its_count() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("train2017")).unwrap();
    std::fs::write(dir.path().join("train2017/000000000009.jpg"), b"x").unwrap();
    let err = ela_data::fetch::check_coco(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds 1 images; COCO 2017 has 118287"),
        "{err}"
    );
    let source = ela_data::fetch::FetchName::Coco.source(None).unwrap();
    assert_eq!(source.files.len(), 3);
    assert!(
        source
            .files
            .iter()
            .all(|f| f.url.starts_with("http://images.cocodataset.org/"))
    );
}

/// Without `masks`, the pipeline rasterizes nothing.
fn odd_masks_are_empty(pipeline: &DetectionPipeline, image: &image::RgbImage) -> bool {
    let plain = DetectionPipeline {
        masks: false,
        ..pipeline.clone()
    };
    let targets = DetectionTargets {
        boxes: vec![[1.0, 1.0, 5.0, 5.0]],
        labels: vec![0],
        ..Default::default()
    };
    plain
        .apply(7, image, &targets, None)
        .unwrap()
        .masks
        .is_empty()
}
