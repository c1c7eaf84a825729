//! Parity with torchvision: a Faster R-CNN R-50 FPN state dict made by torchvision (reduced
//! width, random weights; `fixtures/torchvision/make_parity.py`) imported with the torchvision
//! preset gives torchvision's eval-mode FPN features, proposals and detections on the same
//! input, within the tolerances asserted below.

use std::io::Read;

use burn::prelude::*;
use burn::tensor::TensorData;
use ela_detect::DetectorConfig;
use ela_detect::boxes::box_iou;
use ela_detect::nms::host_f32;
use ela_detect::rpn::proposals;
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

#[test]
fn torchvision_faster_rcnn_imports_and_agrees() {
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/frcnn_r50_w4.json")).unwrap())
            .unwrap();
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(format!("{DIR}/frcnn_r50_w4.pth.gz")).unwrap(),
    )
    .read_to_end(&mut bytes)
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pth = dir.path().join("frcnn.pth");
    std::fs::write(&pth, bytes).unwrap();

    let device = Device::flex();
    let mut config = DetectorConfig::torchvision(90);
    config.backbone.width_per_group = 4;
    config.fpn_channels = 64;
    config.head_width = 128;
    let mut model = config.init(&device).unwrap();
    let applied = model.load_torchvision(&pth).unwrap();
    assert!(applied > 250, "{applied} tensors applied");

    let (h, w) = (320, 448);
    let data: Vec<f32> = (0..3)
        .flat_map(|c| (0..h).flat_map(move |y| (0..w).map(move |x| input_value(c, y, x))))
        .collect();
    let image = Tensor::<4>::from_data(TensorData::new(data, [1, 3, h, w]), &device);

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
    let dets = model.detect(&config, image, &[(h, w)]).remove(0);
    let theirs = boxes(&fixture["boxes"]);
    let their_labels: Vec<i64> = fixture["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let their_scores: Vec<f32> = fixture["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let ours: Vec<[f32; 4]> = dets.iter().map(|d| d.bbox).collect();
    // torchvision's labels count the background as 0.
    let our_labels: Vec<i64> = dets.iter().map(|d| d.class as i64 + 1).collect();
    assert_eq!(dets.len(), theirs.len(), "number of detections");
    let (fraction, worst) = matched(
        &theirs,
        &ours,
        Some((&their_labels, &our_labels)),
        0.99,
        &device,
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
