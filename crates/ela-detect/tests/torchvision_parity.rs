//! Parity with torchvision: Faster R-CNN and Mask R-CNN R-50 FPN state dicts made by
//! torchvision (reduced width, random weights; `fixtures/torchvision/make_parity.py` and
//! `make_mask_parity.py`) imported with the torchvision presets give torchvision's eval-mode FPN
//! features, proposals, detections, mask probabilities and pasted masks on the same input,
//! within the tolerances asserted below.

use std::io::Read;

use burn::prelude::*;
use burn::tensor::TensorData;
use ela_data::coco::{RleCounts, Segmentation};
use ela_data::masks::BitMask;
use ela_detect::boxes::box_iou;
use ela_detect::nms::host_f32;
use ela_detect::rpn::proposals;
use ela_detect::{DetectorConfig, PasteRule, paste_mask};
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torchvision");

fn input_value(c: usize, y: usize, x: usize) -> f32 {
    ((0.05 * (x as f64 + 1.0) * (c as f64 + 1.0)).sin()
        + (0.07 * (y as f64 + 1.0)).cos() * 0.5
        + 0.1 * c as f64) as f32
}

fn boxes(v: &Value) -> Vec<[f32; 4]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let b: Vec<f32> = b
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            [b[0], b[1], b[2], b[3]]
        })
        .collect()
}

/// Of the reference boxes, the fraction with a box of ours at IoU ≥ `min_iou` (and the same
/// label where labels are given), and the largest coordinate difference among those matched.
fn matched(
    theirs: &[[f32; 4]],
    ours: &[[f32; 4]],
    labels: Option<(&[i64], &[i64])>,
    min_iou: f32,
    device: &Device,
) -> (f64, f32) {
    if ours.is_empty() {
        return (0.0, f32::INFINITY);
    }
    let t = ela_detect::anchors::boxes_tensor(theirs, device);
    let o = ela_detect::anchors::boxes_tensor(ours, device);
    let iou = host_f32(box_iou(t, o));
    let m = ours.len();
    let mut hits = 0;
    let mut worst = 0.0f32;
    for (i, b) in theirs.iter().enumerate() {
        let best = (0..m)
            .filter(|&j| labels.is_none_or(|(lt, lo)| lt[i] == lo[j]))
            .max_by(|&a, &b| iou[i * m + a].total_cmp(&iou[i * m + b]));
        if let Some(j) = best
            && iou[i * m + j] >= min_iou
        {
            hits += 1;
            let d = (0..4)
                .map(|k| (b[k] - ours[j][k]).abs())
                .fold(0.0, f32::max);
            worst = worst.max(d);
        }
    }
    (hits as f64 / theirs.len() as f64, worst)
}

fn numbers<T>(v: &Value, f: impl Fn(&Value) -> T) -> Vec<T> {
    v.as_array().unwrap().iter().map(f).collect()
}

/// A fixture (`NAME.json`, `NAME.pth.gz`) imported into the reduced-width preset; the model, its
/// configuration, the fixture and the input image.
fn import(
    name: &str,
    mut config: DetectorConfig,
    device: &Device,
) -> (ela_detect::Detector, DetectorConfig, Value, Tensor<4>) {
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/{name}.json")).unwrap())
            .unwrap();
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(format!("{DIR}/{name}.pth.gz")).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pth = dir.path().join(format!("{name}.pth"));
    std::fs::write(&pth, bytes).unwrap();

    config.backbone.width_per_group = 4;
    config.fpn_channels = 64;
    config.head_width = 128;
    if let Some(m) = config.mask.as_mut() {
        m.channels = 64;
    }
    let mut model = config.init(device).unwrap();
    let applied = model.load_torchvision(&pth).unwrap();
    assert!(applied > 250, "{applied} tensors applied");

    let (h, w) = (320, 448);
    let data: Vec<f32> = (0..3)
        .flat_map(|c| (0..h).flat_map(move |y| (0..w).map(move |x| input_value(c, y, x))))
        .collect();
    let image = Tensor::<4>::from_data(TensorData::new(data, [1, 3, h, w]), device);
    (model, config, fixture, image)
}

/// Our detections against the fixture's: the same number, ≥ 98% matched (same label, IoU
/// ≥ 0.99) within 1e-2 px, scores rank by rank within 1e-4.
fn check_detections(dets: &[ela_detect::Detection], fixture: &Value, device: &Device) {
    let theirs = boxes(&fixture["boxes"]);
    let their_labels = numbers(&fixture["labels"], |v| v.as_i64().unwrap());
    let their_scores = numbers(&fixture["scores"], |v| v.as_f64().unwrap() as f32);
    let ours: Vec<[f32; 4]> = dets.iter().map(|d| d.bbox).collect();
    // torchvision's labels count the background as 0.
    let our_labels: Vec<i64> = dets.iter().map(|d| d.class as i64 + 1).collect();
    assert_eq!(dets.len(), theirs.len(), "number of detections");
    let (fraction, worst) = matched(
        &theirs,
        &ours,
        Some((&their_labels, &our_labels)),
        0.99,
        device,
    );
    let score_diff = dets
        .iter()
        .zip(&their_scores)
        .map(|(d, s)| (d.score - s).abs())
        .fold(0.0, f32::max);
    println!(
        "detections: {} of {}; {:.1}% matched (same label, IoU ≥ 0.99), largest coordinate difference {worst:.2e}, largest score difference (rank by rank) {score_diff:.2e}",
        dets.len(),
        theirs.len(),
        100.0 * fraction
    );
    assert!(fraction >= 0.98, "{fraction}");
    assert!(worst < 1e-2, "{worst}");
    assert!(score_diff < 1e-4, "{score_diff}");
}

#[test]
fn torchvision_faster_rcnn_imports_and_agrees() {
    let device = Device::flex();
    let (model, config, fixture, image) =
        import("frcnn_r50_w4", DetectorConfig::torchvision(90), &device);
    let (h, w) = (320, 448);

    // FPN outputs: mean, std and 200 sampled values per level.
    let (pyramid, _) = model.features(image.clone(), false);
    for (level, p) in ["0", "1", "2", "3", "pool"].iter().zip(&pyramid) {
        let want = &fixture["levels"][level];
        let shape: Vec<usize> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(&p.dims()[1..], shape.as_slice(), "level {level}");
        let values = host_f32(p.clone());
        let scale = want["std"].as_f64().unwrap() as f32;
        let worst = want["picks"]
            .as_array()
            .unwrap()
            .iter()
            .zip(want["values"].as_array().unwrap())
            .map(|(i, v)| (values[i.as_u64().unwrap() as usize] - v.as_f64().unwrap() as f32).abs())
            .fold(0.0, f32::max);
        println!("FPN level {level}: largest difference {worst:.2e} (std {scale:.3})");
        assert!(
            worst <= 1e-4 * scale.max(1.0),
            "level {level}: {worst} (std {scale})"
        );
    }

    // Proposals: torchvision's first 200 found among ours.
    let rpn_out = model.rpn.forward(&pyramid);
    let anchors = config.rpn.anchors(&rpn_out.levels);
    let (props, _) = proposals(&config.rpn, &rpn_out, &anchors, 0, (h, w), false);
    let ours: Vec<[f32; 4]> = host_f32(props)
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    assert_eq!(
        ours.len(),
        fixture["num_proposals"].as_u64().unwrap() as usize
    );
    let theirs = boxes(&fixture["proposals"]);
    let (fraction, worst) = matched(&theirs, &ours, None, 0.999, &device);
    println!(
        "proposals: {:.1}% of torchvision's first 200 matched (IoU ≥ 0.999), largest coordinate difference {worst:.2e}",
        100.0 * fraction
    );
    assert!(fraction >= 0.99, "{fraction}");
    assert!(worst < 1e-2, "{worst}");

    // Detections: same label, IoU ≥ 0.99, score within 1e-4.
    let dets = model.detect(image, &[(h, w)]).remove(0);
    check_detections(&dets, &fixture, &device);
}

#[test]
fn torchvision_mask_rcnn_imports_and_agrees() {
    let device = Device::flex();
    let (model, config, fixture, image) = import(
        "mrcnn_r50_w4",
        DetectorConfig::torchvision_mask(90),
        &device,
    );
    let (h, w) = (320, 448);
    let dets = model.detect(image, &[(h, w)]).remove(0);
    check_detections(&dets, &fixture, &device);

    // The first detections' 28 × 28 probabilities of their class, rank by rank.
    let their_probs = numbers(&fixture["mask_probs"], |p| {
        numbers(p, |v| v.as_f64().unwrap() as f32)
    });
    let mut prob_diff = 0.0f32;
    for (d, theirs) in dets.iter().zip(&their_probs) {
        let ours = d.mask.as_ref().expect("Mask R-CNN detections carry masks");
        assert_eq!(ours.len(), 28 * 28);
        for (a, b) in ours.iter().zip(theirs) {
            prob_diff = prob_diff.max((a - b).abs());
        }
    }
    // The pasted masks: torchvision's paste, binarized with > 0.5, against pycocotools' RLE.
    let mask = config.mask.as_ref().unwrap();
    let mut differing = 0usize;
    let mut sum_diff = 0.0f64;
    let areas = numbers(&fixture["pasted_area"], |v| v.as_u64().unwrap() as usize);
    for (i, d) in dets.iter().take(their_probs.len()).enumerate() {
        let probs = d.mask.as_ref().unwrap();
        let soft =
            ela_detect::paste_probabilities(probs, 28, d.bbox, (h, w), PasteRule::Torchvision);
        let want_sum = fixture["pasted_sum"][i].as_f64().unwrap();
        sum_diff = sum_diff
            .max((soft.iter().map(|&v| f64::from(v)).sum::<f64>() - want_sum).abs() / want_sum);
        let ours = paste_mask(probs, 28, d.bbox, (h, w), mask.paste, mask.threshold);
        let theirs = BitMask::from_segmentation(
            &Segmentation::Rle {
                counts: RleCounts::Compressed(fixture["pasted_rle"][i].as_str().unwrap().into()),
                size: [h, w],
            },
            h,
            w,
        )
        .unwrap();
        assert_eq!(theirs.area(), areas[i]);
        differing += ours
            .data
            .iter()
            .zip(&theirs.data)
            .filter(|(a, b)| a != b)
            .count();
        if ours == theirs {
            // The same mask encodes to pycocotools' string.
            assert_eq!(
                ours.to_rle().counts,
                fixture["pasted_rle"][i].as_str().unwrap()
            );
        }
    }
    let total_area: usize = areas.iter().sum();
    println!(
        "masks: {} detections; largest 28×28 probability difference {prob_diff:.2e}; pasted probability sums within {sum_diff:.2e} (relative); binarized masks differ in {differing} of {total_area} foreground pixels",
        their_probs.len()
    );
    assert!(prob_diff < 1e-4, "{prob_diff}");
    assert!(sum_diff < 1e-4, "{sum_diff}");
    assert!(differing * 100 <= total_area, "{differing} of {total_area}");
}
