//! `ela detect --arch` against torchvision at full width: `fasterrcnn_resnet50_fpn` and
//! `maskrcnn_resnet50_fpn` (ResNet-50, FPN 256, box head 1024, 91 labels) with every tensor set
//! by a formula of its name (`fixtures/torchvision/make_detect_fixture.py`, which also ran
//! torchvision 0.24.1 on `image.png`). The test writes the same `state_dict` as safetensors, runs
//! the real binary, and compares the detections: the same number; at least 95% matched with the
//! same label, IoU ≥ 0.99 and the score within 1e-3; their masks with IoU ≥ 0.95.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torchvision")
        .join(name)
}

fn splitmix(z: u64) -> u64 {
    let z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// The fixture script's `value(name, shape)`.
fn values(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let base = fnv1a(name);
    let fan_in: usize = shape.iter().skip(1).product();
    let scale = (3.0 / fan_in as f64).sqrt();
    (0..n)
        .map(|i| {
            let u = (splitmix(base.wrapping_add(i as u64)) >> 11) as f64 * 2f64.powi(-52) - 1.0;
            let v = if name.ends_with("running_var") {
                1.0 + 0.25 * (u + 1.0)
            } else if name.ends_with("running_mean") {
                0.1 * u
            } else if shape.len() == 1 && name.ends_with("weight") {
                1.0 + 0.1 * u
            } else if name.ends_with("bias") {
                0.05 * u
            } else if name.contains("box_predictor.cls_score") {
                4.0 * (u * scale)
            } else {
                u * scale
            };
            v as f32
        })
        .collect()
}

/// The architecture's `state_dict` as the fixture script set it, in a safetensors file.
fn state_dict(arch: &str, out: &Path) {
    let names: Vec<(String, Vec<usize>)> = serde_json::from_str(
        &std::fs::read_to_string(fixture(&format!("{arch}.names.json"))).unwrap(),
    )
    .unwrap();
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = names
        .into_iter()
        .map(|(name, shape)| {
            let bytes = values(&name, &shape)
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            (name, shape, bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(name, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, out).unwrap();
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: [f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

/// A compressed RLE of an `[h, w]` image as its pixels (column-major, as COCO's masks).
fn decode(counts: &str, size: [usize; 2]) -> Vec<bool> {
    let seg = ela_data::coco::Segmentation::Rle {
        counts: ela_data::coco::RleCounts::Compressed(counts.to_string()),
        size,
    };
    ela_data::masks::BitMask::from_segmentation(&seg, size[0], size[1])
        .unwrap()
        .data
        .iter()
        .map(|&v| v != 0)
        .collect()
}

fn mask_iou(a: &[bool], b: &[bool]) -> f64 {
    let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count() as f64;
    let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count() as f64;
    if union == 0.0 { 1.0 } else { inter / union }
}

fn detections_match_torchvision(arch: &str) {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join(format!("{arch}.safetensors"));
    state_dict(arch, &weights);
    let json = dir.path().join("detections.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ela"))
        .args(["detect", "--arch", arch, "--weights"])
        .arg(&weights)
        .arg("--image")
        .arg(fixture("image.png"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(&format!("{arch}.detections.json"))).unwrap(),
    )
    .unwrap();
    let boxes: Vec<[f64; 4]> = theirs["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| std::array::from_fn(|k| b[k].as_f64().unwrap()))
        .collect();
    let labels: Vec<u64> = theirs["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_u64().unwrap())
        .collect();
    let scores: Vec<f64> = theirs["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap())
        .collect();
    assert_eq!(ours.len(), boxes.len(), "{arch}: the number of detections");
    let size = [240, 320];
    let mut matched = 0;
    let mut mask_ious = Vec::new();
    let mut taken = vec![false; ours.len()];
    for (t, b) in boxes.iter().enumerate() {
        let found = ours.iter().enumerate().find(|(j, d)| {
            let [x, y, w, h] = std::array::from_fn(|k| d["bbox"][k].as_f64().unwrap());
            !taken[*j]
                && d["category_id"].as_u64() == Some(labels[t])
                && (d["score"].as_f64().unwrap() - scores[t]).abs() < 1e-3
                && iou(*b, [x, y, x + w, y + h]) >= 0.99
        });
        if let Some((j, d)) = found {
            taken[j] = true;
            matched += 1;
            if let Some(rles) = theirs["masks"].as_array() {
                let counts = d["segmentation"]["counts"].as_str().unwrap();
                let mine = decode(counts, size);
                let reference = decode(rles[t].as_str().unwrap(), size);
                mask_ious.push(mask_iou(&mine, &reference));
            }
        }
    }
    let share = matched as f64 / boxes.len() as f64;
    println!(
        "{arch}: {matched} of {} detections matched; mask IoU min {:?}",
        boxes.len(),
        mask_ious.iter().copied().reduce(f64::min)
    );
    assert!(
        share >= 0.95,
        "{arch}: {matched} of {} matched",
        boxes.len()
    );
    for (k, m) in mask_ious.iter().enumerate() {
        assert!(*m >= 0.95, "{arch}: mask {k} IoU {m}");
    }
    if theirs.get("masks").is_some() {
        assert_eq!(
            mask_ious.len(),
            matched,
            "every matched detection has a mask"
        );
    }
}

#[test]
fn faster_rcnn_detections_match_torchvision() {
    detections_match_torchvision("fasterrcnn_resnet50_fpn");
}

#[test]
fn mask_rcnn_detections_and_masks_match_torchvision() {
    detections_match_torchvision("maskrcnn_resnet50_fpn");
}

/// Weights of another architecture are an error naming the file and what does not fit, before
/// any image is read.
#[test]
fn weights_of_another_architecture_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("mask.safetensors");
    state_dict("maskrcnn_resnet50_fpn", &weights);
    let out = Command::new(env!("CARGO_BIN_EXE_ela"))
        .args(["detect", "--arch", "fasterrcnn_resnet50_fpn", "--weights"])
        .arg(&weights)
        .args(["--image", "missing.png"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("mask.safetensors")
            && err.contains("does not match the detector")
            && err.contains("unused")
            && err.contains("mask.convs.0.weight"),
        "{err}"
    );
}
