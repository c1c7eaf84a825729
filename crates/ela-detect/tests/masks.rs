//! The mask branch's host-side steps against independent implementations
//! (`fixtures/masks/make_masks.py`): polygon rasterization and RLE encoding (pycocotools), mask
//! targets (torchvision's RoIAlign in MMCV's and torchvision's conventions), MMDetection's paste
//! (`_do_paste_mask` with `grid_sample`); and the mask loss's gradient reaching the features.

use burn::prelude::*;
use burn::tensor::TensorData;
use ela_data::coco::{RleCounts, Segmentation};
use ela_data::masks::BitMask;
use ela_detect::mask_head::{MaskHeadConfig, MaskSample, mask_loss, mask_targets};
use ela_detect::roi_head::Background;
use ela_detect::{PasteRule, Roi, paste_mask, paste_probabilities};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/masks/masks.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn quad(v: &Value) -> [f32; 4] {
    let f = floats(v);
    [f[0], f[1], f[2], f[3]]
}

fn the_mask(f: &Value) -> BitMask {
    let polygons: Vec<Vec<f64>> = serde_json::from_value(f["polygons"].clone()).unwrap();
    BitMask::from_segmentation(&Segmentation::Polygons(polygons), 61, 83).unwrap()
}

#[test]
fn polygons_rasterize_and_encode_as_pycocotools() {
    let f = fixture();
    let mask = the_mask(&f);
    let want = f["polygons_rle"].as_str().unwrap();
    assert_eq!(mask.to_rle().counts, want);
    let back = BitMask::from_segmentation(
        &Segmentation::Rle {
            counts: RleCounts::Compressed(want.into()),
            size: [61, 83],
        },
        61,
        83,
    )
    .unwrap();
    assert_eq!(back, mask);
    let wrong = BitMask::from_segmentation(
        &Segmentation::Rle {
            counts: RleCounts::Compressed(want.into()),
            size: [60, 83],
        },
        61,
        83,
    );
    assert!(wrong.unwrap_err().contains("60"));
}

#[test]
fn mask_targets_match_mmcv_and_torchvision_roi_align() {
    let f = fixture();
    let mask = the_mask(&f);
    let rois: Vec<[f32; 4]> = f["rois"].as_array().unwrap().iter().map(quad).collect();
    let samples: Vec<MaskSample<'_>> = rois
        .iter()
        .map(|&bbox| MaskSample {
            roi: Roi { batch: 0, bbox },
            class: 0,
            mask: &mask,
        })
        .collect();
    for (config, key, tolerance) in [
        (MaskHeadConfig::mmdet(), "targets_mmdet", 0.0),
        (MaskHeadConfig::torchvision(), "targets_torchvision", 1e-5),
    ] {
        let ours = mask_targets(&config, &samples);
        let want: Vec<f32> = f[key].as_array().unwrap().iter().flat_map(floats).collect();
        assert_eq!(ours.len(), want.len());
        let worst = ours
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!(
            "{key}: largest difference {worst:.2e} over {} values",
            want.len()
        );
        assert!(worst <= tolerance, "{key}: {worst}");
    }
}

#[test]
fn mmdet_paste_matches_grid_sample() {
    let f = fixture();
    let (h, w) = (61, 83);
    let boxes: Vec<[f32; 4]> = f["paste_boxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(quad)
        .collect();
    for (i, bbox) in boxes.iter().enumerate() {
        let probs = floats(&f["paste_probs"][i]);
        let soft = paste_probabilities(&probs, 28, *bbox, (h, w), PasteRule::Mmdet);
        let sum: f64 = soft.iter().map(|&v| f64::from(v)).sum();
        let want = f["paste_sum"][i].as_f64().unwrap();
        assert!(
            (sum - want).abs() <= 1e-4 * want.max(1.0),
            "box {i}: {sum} vs {want}"
        );
        let ours = paste_mask(&probs, 28, *bbox, (h, w), PasteRule::Mmdet, 0.5);
        assert_eq!(
            ours.to_rle().counts,
            f["paste_rle"][i].as_str().unwrap(),
            "box {i}"
        );
    }
}

#[test]
fn mask_loss_is_the_class_maps_bce_and_reaches_the_logits() {
    let device = Device::flex().autodiff();
    let f = fixture();
    let mask = the_mask(&f);
    let config = MaskHeadConfig::mmdet();
    let samples = [
        MaskSample {
            roi: Roi {
                batch: 0,
                bbox: [10.0, 5.0, 50.0, 40.0],
            },
            class: 2,
            mask: &mask,
        },
        MaskSample {
            roi: Roi {
                batch: 0,
                bbox: [60.5, 44.25, 81.0, 60.0],
            },
            class: 0,
            mask: &mask,
        },
    ];
    // Logits: zero except the map of each sample's class, set to ±3 where its target is 1/0.
    let targets = mask_targets(&config, &samples);
    let mut logits = vec![0.0f32; 2 * 3 * 28 * 28];
    for (k, s) in samples.iter().enumerate() {
        for p in 0..28 * 28 {
            logits[(k * 3 + s.class) * 784 + p] = if targets[k * 784 + p] > 0.5 {
                3.0
            } else {
                -3.0
            };
        }
    }
    let logits =
        Tensor::<4>::from_data(TensorData::new(logits, [2, 3, 28, 28]), &device).require_grad();
    let loss = mask_loss(&config, Background::Last, &samples, logits.clone());
    // Every pixel is right with margin 3: BCE = log(1 + e^-3).
    let want = (1.0 + (-3.0f32).exp()).ln();
    let got = loss.clone().into_scalar::<f32>();
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    let grads = loss.backward();
    let g = logits
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    // Only the two class maps receive gradient.
    for (k, s) in samples.iter().enumerate() {
        for c in 0..3 {
            let norm: f32 = g[(k * 3 + c) * 784..][..784].iter().map(|v| v.abs()).sum();
            assert_eq!(norm > 0.0, c == s.class, "sample {k}, map {c}");
        }
    }
}

/// A freshly built Mask R-CNN (every layer initialized, none loaded) gives five finite losses on
/// a small batch, and its mask branch's weights have the He fan-out spread (std √(2 / fan-out)).
#[test]
fn a_fresh_mask_rcnn_trains_a_step() {
    use ela_detect::DetectorConfig;
    use ela_detect::rpn::Targets;
    use rand::SeedableRng;

    let device = Device::flex().autodiff();
    let mut config = DetectorConfig::mmdet_mask(18, ela_model::AttentionKind::MrlaB, 3);
    config.fpn_channels = 16;
    config.head_width = 32;
    config.backbone.frozen_stages = 0;
    config.backbone.norm_eval = false;
    config.mask.as_mut().unwrap().channels = 16;
    let model = config.init(&device).unwrap();
    let upsample = model.mask.as_ref().unwrap().upsample.weight.val();
    let std = upsample
        .clone()
        .powf_scalar(2.0)
        .mean()
        .sqrt()
        .into_scalar::<f32>();
    let want = (2.0f32 / (16.0 * 4.0)).sqrt();
    assert!(
        (std - want).abs() < 0.25 * want,
        "upsample std {std}, He fan-out {want}"
    );

    let image = Tensor::<4>::random([1, 3, 64, 64], burn::tensor::Distribution::Default, &device);
    let mut mask = BitMask::zeros(64, 64);
    for y in 10..40 {
        mask.data[y * 64 + 12..y * 64 + 44].fill(1);
    }
    let targets = [Targets {
        boxes: vec![[12.0, 10.0, 44.0, 40.0]],
        labels: vec![1],
        masks: vec![mask],
    }];
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let losses = model
        .losses(image, &[(64, 64)], &targets, false, &mut rng)
        .unwrap();
    let total = losses.total().into_scalar::<f32>();
    let mask_loss = losses.mask.unwrap().into_scalar::<f32>();
    assert!(
        total.is_finite() && mask_loss.is_finite() && mask_loss > 0.0,
        "{total} {mask_loss}"
    );
}
