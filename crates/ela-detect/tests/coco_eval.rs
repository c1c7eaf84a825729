//! COCO evaluation against pycocotools: every fixture case (made by
//! `fixtures/coco_eval/make_fixtures.py`) must give pycocotools' 12 statistics within 1e-6.

use std::path::{Path, PathBuf};

use ela_detect::{CocoStats, IouType, evaluate_files};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/coco_eval");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("stats.json").exists())
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_fixture_matches_pycocotools() {
    let cases = cases();
    assert_eq!(cases.len(), 5, "fixture cases: {cases:?}");
    let mut worst = 0.0f64;
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let iou = if name.starts_with("segm") {
            IouType::Segm
        } else {
            IouType::Bbox
        };
        let expected: CocoStats =
            serde_json::from_str(&std::fs::read_to_string(case.join("stats.json")).unwrap())
                .unwrap();
        let got = evaluate_files(&case.join("gt.json"), &case.join("dt.json"), iou).unwrap();
        for (k, (a, b)) in CocoStats::KEYS
            .iter()
            .zip(got.to_array().iter().zip(expected.to_array()))
        {
            let diff = (a - b).abs();
            worst = worst.max(diff);
            assert!(diff <= 1e-6, "{name} {k}: ours {a}, pycocotools {b}");
        }
        // The fixtures are not degenerate: something was detected.
        assert!(expected.ap50 > 0.05, "{name}: {expected:?}");
    }
    println!("largest difference from pycocotools: {worst:e}");
}

#[test]
fn the_json_keys_are_the_papers_names() {
    let stats = CocoStats::from_slice(&[0.0; 12]).unwrap();
    let value = serde_json::to_value(stats).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut expected = CocoStats::KEYS.to_vec();
    expected.sort();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, expected);
}

#[test]
fn bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let gt = dir.path().join("gt.json");
    std::fs::write(&gt, "{ not json").unwrap();
    let err = evaluate_files(&gt, &gt, IouType::Bbox)
        .unwrap_err()
        .to_string();
    assert!(err.contains("gt.json"), "{err}");
    let missing = dir.path().join("missing.json");
    let good =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/coco_eval/bbox_edges/gt.json");
    let err = evaluate_files(&good, &missing, IouType::Bbox)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.json"), "{err}");
    assert!(
        "mask"
            .parse::<IouType>()
            .unwrap_err()
            .to_string()
            .contains("--iou-type")
    );
}
