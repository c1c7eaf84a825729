//! Box operations against `torchvision.ops` (fixture `fixtures/ops/ops.safetensors`, made by
//! `fixtures/ops/make_ops.py`): IoU, NMS, batched NMS, the delta coder, and RoIAlign's forward
//! and input gradient in both presets.

use burn::prelude::*;
use burn::tensor::TensorData;
use ela_detect::nms::{host_f32, host_i64};
use ela_detect::{DeltaCoder, Roi, RoiAlignConfig, batched_nms, box_iou, nms, roi_align};
use safetensors::{Dtype, SafeTensors};

struct Fixture {
    bytes: Vec<u8>,
}

impl Fixture {
    fn load() -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/ops/ops.safetensors"
        );
        Self {
            bytes: std::fs::read(path).unwrap(),
        }
    }

    fn floats(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), Dtype::F32, "{name}");
        let v = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        (v, t.shape().to_vec())
    }

    fn ints(&self, name: &str) -> Vec<i64> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), Dtype::I64, "{name}");
        t.data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    fn tensor<const D: usize>(&self, name: &str, device: &Device) -> Tensor<D> {
        let (v, shape) = self.floats(name);
        Tensor::from_data(TensorData::new(v, shape), device)
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Largest `|a - b| / max(|b|, 1)`.
fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

#[test]
fn iou_matches_torchvision() {
    let f = Fixture::load();
    let device = Device::flex();
    let iou = box_iou(f.tensor("iou_a", &device), f.tensor("iou_b", &device));
    let d = max_diff(&host_f32(iou), &f.floats("iou").0);
    assert!(d < 1e-6, "IoU differs by {d}");
}

#[test]
fn nms_and_batched_nms_match_torchvision() {
    let f = Fixture::load();
    let device = Device::flex();
    for t in [3, 5, 7] {
        let thr = t as f32 / 10.0;
        let boxes = f.tensor::<2>("nms_boxes", &device);
        let scores = f.tensor::<1>("nms_scores", &device);
        let keep = host_i64(nms(boxes.clone(), scores.clone(), thr));
        assert_eq!(keep, f.ints(&format!("nms_keep_{t}")), "nms at {thr}");
        let (groups, n) = (f.ints("nms_idxs"), f.ints("nms_idxs").len());
        let groups = Tensor::<1, Int>::from_data(TensorData::new(groups, [n]), &device);
        let keep = host_i64(batched_nms(boxes, scores, groups, thr));
        assert_eq!(
            keep,
            f.ints(&format!("batched_nms_keep_{t}")),
            "batched_nms at {thr}"
        );
    }
}

#[test]
fn empty_nms_keeps_nothing() {
    let device = Device::flex();
    let boxes = Tensor::<2>::zeros([0, 4], &device);
    let scores = Tensor::<1>::zeros([0], &device);
    assert!(host_i64(nms(boxes, scores, 0.5)).is_empty());
}

#[test]
fn delta_coder_matches_torchvision_box_coder() {
    let f = Fixture::load();
    let device = Device::flex();
    for (name, coder) in [
        ("rpn", DeltaCoder::rpn().torchvision()),
        ("roi", DeltaCoder::roi().torchvision()),
    ] {
        let proposals = f.tensor::<2>("coder_proposals", &device);
        let encoded = coder.encode(proposals.clone(), f.tensor("coder_gt", &device));
        let d = max_rel_diff(
            &host_f32(encoded),
            &f.floats(&format!("coder_encode_{name}")).0,
        );
        assert!(d < 1e-5, "{name} encode differs by {d} (relative)");
        let decoded = coder.decode(proposals, f.tensor("coder_deltas", &device), None);
        let want = f.floats(&format!("coder_decode_{name}")).0;
        // Relative: decoded boxes reach 1e5 pixels where the clamp applies.
        let rel = max_rel_diff(&host_f32(decoded), &want);
        assert!(rel < 1e-5, "{name} decode differs by {rel} (relative)");
    }
}

#[test]
fn mmdetection_clamps_the_log_ratio_from_below_too() {
    let f = Fixture::load();
    let device = Device::flex();
    let proposals = f.tensor::<2>("coder_proposals", &device);
    let deltas = f.tensor::<2>("coder_deltas", &device);
    let mm = host_f32(DeltaCoder::rpn().decode(proposals.clone(), deltas.clone(), None));
    let tv = host_f32(
        DeltaCoder::rpn()
            .torchvision()
            .decode(proposals.clone(), deltas, None),
    );
    let p = host_f32(proposals);
    // Row 0 has dw = 9, dh = -9: the widths agree (clamped above in both), the heights not.
    let width = |b: &[f32]| b[2] - b[0];
    let height = |b: &[f32]| b[3] - b[1];
    let r = ela_detect::coder::MAX_LOG_RATIO;
    assert!((width(&mm[..4]) - width(&tv[..4])).abs() < 1e-2);
    let want = height(&p[..4]) * (-r).exp();
    assert!(
        (height(&mm[..4]) - want).abs() < 1e-4,
        "{} vs {want}",
        height(&mm[..4])
    );
    assert!(height(&tv[..4]) < want / 10.0);
    // Rows without extreme deltas decode alike.
    assert!(max_diff(&mm[5 * 4..], &tv[5 * 4..]) < 1e-3);
}

#[test]
fn encode_then_decode_is_the_identity() {
    let f = Fixture::load();
    let device = Device::flex();
    let coder = DeltaCoder::roi();
    let proposals = f.tensor::<2>("coder_proposals", &device);
    let gt = f.tensor::<2>("coder_gt", &device);
    let back = coder.decode(proposals.clone(), coder.encode(proposals, gt.clone()), None);
    let d = max_diff(&host_f32(back), &host_f32(gt));
    assert!(d < 1e-3, "round trip differs by {d}");
}

fn rois(f: &Fixture) -> Vec<Roi> {
    f.floats("roi_rois")
        .0
        .chunks_exact(5)
        .map(|r| Roi {
            batch: r[0] as usize,
            bbox: [r[1], r[2], r[3], r[4]],
        })
        .collect()
}

#[test]
fn roi_align_forward_and_gradient_match_torchvision() {
    let f = Fixture::load();
    let device = Device::flex().autodiff();
    for (name, config) in [
        ("mmdet", RoiAlignConfig::mmdet(7, 0.25)),
        ("torchvision", RoiAlignConfig::torchvision(7, 0.25)),
    ] {
        let features = f.tensor::<4>("roi_features", &device).require_grad();
        let out = roi_align(features.clone(), &rois(&f), &config);
        assert_eq!(out.dims(), [16, 3, 7, 7]);
        let d = max_diff(
            &host_f32(out.clone()),
            &f.floats(&format!("roi_out_{name}")).0,
        );
        assert!(d < 1e-5, "{name} forward differs by {d}");
        let upstream = f.tensor::<4>(&format!("roi_upstream_{name}"), &device);
        let grads = (out * upstream).sum().backward();
        let grad = features.grad(&grads).expect("the features get a gradient");
        let d = max_diff(&host_f32(grad), &f.floats(&format!("roi_grad_{name}")).0);
        assert!(d < 1e-5, "{name} input gradient differs by {d}");
    }
}

/// A diverged RPN (NaN deltas) yields no proposal rather than a panic, and sampling falls back to
/// the ground-truth boxes alone.
#[test]
fn degenerate_proposals_are_none_and_sampling_keeps_the_ground_truth() {
    use ela_detect::roi_head::{RoiHeadConfig, sample_rois};
    use ela_detect::rpn::{RpnConfig, RpnOutput, Targets, proposals};
    use rand::SeedableRng;

    let device = Device::flex();
    let config = RpnConfig::mmdet();
    let levels = vec![((4, 4), 48)];
    let anchors = config.anchors(&levels);
    let n = anchors.len();
    let output = RpnOutput {
        logits: Tensor::zeros([1, n], &device),
        deltas: Tensor::full([1, n, 4], f32::NAN, &device),
        levels,
    };
    let (boxes, scores) = proposals(&config, &output, &anchors, 0, (16, 16), true);
    assert_eq!((boxes.dims(), scores.len()), ([0, 4], 0));
    let targets = [Targets {
        boxes: vec![[1.0, 1.0, 9.0, 9.0]],
        labels: vec![2],
        masks: Vec::new(),
    }];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let samples = sample_rois(&RoiHeadConfig::mmdet(3), &[boxes], &targets, &mut rng);
    assert_eq!(samples.positives.len(), 1);
    assert_eq!(
        samples.rois[samples.positives[0].row].bbox,
        [1.0, 1.0, 9.0, 9.0]
    );
}
