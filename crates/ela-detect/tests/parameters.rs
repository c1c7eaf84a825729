//! Parameter counts of Faster R-CNN with FPN against torchvision's
//! (`fixtures/params/counts.json`, made by `make_counts.py`) and the paper's Table 5.
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

#[test]
fn ela_faster_rcnn_against_table5() {
    let device = Device::flex();
    for (depth, table5) in [(50, 41.7), (101, 60.9)] {
        let model = DetectorConfig::mmdet(depth, AttentionKind::MrlaB, 80)
            .init(&device)
            .unwrap();
        let trainable = model.trainable_parameter_count();
        println!(
            "ELA Faster R-CNN R-{depth}: {} parameters, {trainable} trainable (Table 5: {table5}M)",
            model.parameter_count()
        );
        assert!(
            (trainable as f64 / 1e6 - table5).abs() < 0.05,
            "R-{depth}: {trainable} against {table5}M"
        );
    }
}
