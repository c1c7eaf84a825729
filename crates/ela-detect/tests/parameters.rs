//! Parameter counts of Faster R-CNN with FPN against torchvision's
//! (`fixtures/params/counts.json`, made by `make_counts.py`), and of every Table 5 row (Faster and
//! Mask R-CNN × ResNet-50/101 × plain, SE, ECA, NL, GC, RLA, MRLA-L, ELA) against the paper.
//!
//! torchvision keeps a regression slot for the background class (4 × 1025 parameters more than
//! MMDetection's class-specific head); everything else is the same architecture. Table 5 reports
//! MMDetection's `get_flops.py` count, which counts only parameters that train: without the
//! frozen stem and `layer1`.

use burn::prelude::*;
use ela_detect::DetectorConfig;
use ela_model::AttentionKind;

const BACKGROUND_SLOT: usize = 4 * 1025;

fn reference(depth: usize) -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/params/counts.json"
    ))
    .unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()[format!("r{depth}")].clone()
}

fn count(v: &serde_json::Value, key: &str) -> usize {
    v[key].as_u64().unwrap() as usize
}

#[test]
fn plain_faster_rcnn_matches_torchvision_and_table5() {
    let device = Device::flex();
    for (depth, table5) in [(50, 41.5), (101, 60.5)] {
        let tv = reference(depth);
        let model = DetectorConfig::mmdet(depth, AttentionKind::None, 80)
            .init(&device)
            .unwrap();
        assert_eq!(
            model.backbone.parameter_count(),
            count(&tv, "body"),
            "R-{depth} body"
        );
        assert_eq!(model.fpn.num_params(), count(&tv, "fpn"), "R-{depth} FPN");
        assert_eq!(model.rpn.num_params(), count(&tv, "rpn"), "R-{depth} RPN");
        assert_eq!(
            model.head.num_params() + BACKGROUND_SLOT,
            count(&tv, "roi_heads"),
            "R-{depth} RoI head"
        );
        assert_eq!(
            model.parameter_count() + BACKGROUND_SLOT,
            count(&tv, "total")
        );
        let trainable = model.trainable_parameter_count();
        assert_eq!(trainable, model.parameter_count() - count(&tv, "frozen"));
        let millions = trainable as f64 / 1e6;
        assert!(
            (millions - table5).abs() < 0.05,
            "R-{depth}: {trainable} trainable against Table 5's {table5}M"
        );
        println!(
            "Faster R-CNN R-{depth}: {} parameters, {trainable} trainable",
            model.parameter_count()
        );
    }
}

/// How Table 5's count of a row was made.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Basis {
    /// MMDetection's `get_flops.py`: parameters that train (the paper's own rows).
    Trainable,
    /// Every parameter, frozen stem and `layer1` included: the NL and GC rows of ResNet-50 come
    /// from the GCNet paper (Cao et al. 2019, Table 6), which counts this way.
    Total,
    /// Not the module we build: GC on ResNet-101 is GCNet's `r4` variant in stages 3–5 (about
    /// C²/2 parameters per block, 18.96M in all, 82.35M with Mask R-CNN R-101's 63.39M); ours
    /// is r16 in every block, as the ResNet-50 row.
    OtherModule,
    /// The paper prints 65.2 for 65.27M (truncated, where every other row is rounded).
    Truncated,
}

/// Table 5: `(detector, depth, attention, parameters in millions, basis)`; `mrla-b` is ELA.
const TABLE5: [(&str, usize, &str, f64, Basis); 28] = [
    ("faster", 50, "none", 41.5, Basis::Trainable),
    ("faster", 50, "se", 44.0, Basis::Trainable),
    ("faster", 50, "eca", 41.5, Basis::Trainable),
    ("faster", 50, "rla", 41.8, Basis::Trainable),
    ("faster", 50, "mrla-l", 41.7, Basis::Trainable),
    ("faster", 50, "mrla-b", 41.7, Basis::Trainable),
    ("faster", 101, "none", 60.5, Basis::Trainable),
    ("faster", 101, "se", 65.2, Basis::Truncated),
    ("faster", 101, "eca", 60.5, Basis::Trainable),
    ("faster", 101, "rla", 60.9, Basis::Trainable),
    ("faster", 101, "mrla-l", 60.9, Basis::Trainable),
    ("faster", 101, "mrla-b", 60.9, Basis::Trainable),
    ("mask", 50, "none", 44.2, Basis::Trainable),
    ("mask", 50, "se", 46.7, Basis::Trainable),
    ("mask", 50, "eca", 44.2, Basis::Trainable),
    ("mask", 50, "nl", 46.5, Basis::Total),
    ("mask", 50, "gc", 46.9, Basis::Total),
    ("mask", 50, "rla", 44.4, Basis::Trainable),
    ("mask", 50, "mrla-l", 44.3, Basis::Trainable),
    ("mask", 50, "mrla-b", 44.3, Basis::Trainable),
    ("mask", 101, "none", 63.2, Basis::Trainable),
    ("mask", 101, "se", 67.9, Basis::Trainable),
    ("mask", 101, "eca", 63.2, Basis::Trainable),
    ("mask", 101, "nl", 65.5, Basis::Total),
    ("mask", 101, "gc", 82.2, Basis::OtherModule),
    ("mask", 101, "rla", 63.6, Basis::Trainable),
    ("mask", 101, "mrla-l", 63.5, Basis::Trainable),
    ("mask", 101, "mrla-b", 63.5, Basis::Trainable),
];

/// Every row of Table 5 we build, against the paper's count on the basis it was made (see
/// [`Basis`]); Mask R-CNN's mask branch is exactly 2,643,280 parameters (four 3×3 convolutions
/// of 256, the 2×2 transposed convolution, 80 class maps).
#[test]
fn every_table5_row_against_the_paper() {
    let device = Device::flex();
    let mask_branch = 4 * (256 * 256 * 9 + 256) + (256 * 256 * 4 + 256) + (256 * 80 + 80);
    assert_eq!(mask_branch, 2_643_280);
    for (detector, depth, attention, paper, basis) in TABLE5 {
        let kind: AttentionKind = attention.parse().unwrap();
        let faster = DetectorConfig::mmdet(depth, kind, 80)
            .init(&device)
            .unwrap();
        let model = match detector {
            "faster" => faster.clone(),
            _ => {
                let mask = DetectorConfig::mmdet_mask(depth, kind, 80)
                    .init(&device)
                    .unwrap();
                assert_eq!(
                    mask.parameter_count(),
                    faster.parameter_count() + mask_branch,
                    "{attention} R-{depth}: Mask R-CNN = Faster R-CNN + the mask branch"
                );
                mask
            }
        };
        let (total, trainable) = (model.parameter_count(), model.trainable_parameter_count());
        println!(
            "{detector} R-{depth} {attention}: {total} parameters, {trainable} trainable; Table 5 {paper}M ({basis:?})"
        );
        let millions = |n: usize| n as f64 / 1e6;
        let off = match basis {
            Basis::Trainable => (millions(trainable) - paper).abs(),
            Basis::Total => (millions(total) - paper).abs(),
            Basis::Truncated => (millions(trainable) - paper).abs() - 0.05,
            Basis::OtherModule => {
                // GCNet's r4 in stages 3–5 adds ~14M more than our r16 in every block.
                assert!(paper - millions(total) > 10.0, "{attention} R-{depth}");
                continue;
            }
        };
        assert!(
            off < 0.05,
            "{detector} R-{depth} {attention}: {trainable} trainable, {total} in all, against Table 5's {paper}M"
        );
    }
}
