//! `ela eval`, run as the real binary: a classifier's scores reproduce what its run measured,
//! from its run directory and from its weights file with a registered model; a detection run's
//! evaluation writes and scores its detections; bad input is refused before any work. (The
//! detection statistics against a run's own log are checked on a run that learns, in
//! `ela-detect-train`'s `tests/end_to_end.rs`.)

use crate::tasks::{run, run_ok, s, strings};

/// The JSON object `ela eval` prints.
fn scores(args: &[&str]) -> serde_json::Value {
    let stdout = run_ok(&strings(args));
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn a_classifier_scores_what_its_run_measured_from_the_run_or_its_weights() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("run");
    let classify = crate::tasks::task(root.path(), "classify");
    run_ok(&classify.run_args(&out, &["--epochs", "2", "--windows", "1"]));
    let summary = ela_records::read_summary(&out).unwrap();
    let (acc, loss) = (
        summary.get("test_acc").unwrap(),
        summary.get("test_loss").unwrap(),
    );
    assert_eq!(summary.skipped.len(), 1, "{summary:?}");

    // The run directory: its dataset, test limit, batch, normalization and skip flags.
    let from_run = scores(&["eval", "--weights", s(&out)]);
    assert_eq!(from_run["task"], "classify");
    assert_eq!(from_run["images"], 64);
    assert!(
        (from_run["top1"].as_f64().unwrap() - acc).abs() < 1e-9,
        "{from_run} against {summary:?}"
    );
    assert!(
        (from_run["loss"].as_f64().unwrap() - loss).abs() < 1e-5,
        "{from_run}"
    );
    assert!(from_run["top5"].as_f64().unwrap() >= acc);
    assert!(from_run["images_per_second"].as_f64().unwrap() > 0.0);

    // Its weights file with the registered model it is: the same predictions.
    let weights = out.join("model.safetensors");
    let json = root.path().join("scores.json");
    let from_file = scores(&[
        "eval",
        "--weights",
        s(&weights),
        "--model",
        "cifar_resnet20_ela",
        "--dataset",
        "mnist",
        "--limit",
        "64",
        "--batch-size",
        "16",
        "--json",
        s(&json),
    ]);
    assert!(
        (from_file["top1"].as_f64().unwrap() - acc).abs() < 1e-9,
        "{from_file}"
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(written, from_file, "--json holds what was printed");
}

#[test]
fn a_detection_run_is_scored_on_its_validation_split() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("run");
    let detect = crate::tasks::task(root.path(), "detect");
    // The last epoch validates the final weights: the pruning decision came after epoch 1.
    run_ok(&detect.run_args(&out, &["--epochs", "2", "--windows", "1"]));
    let detections = root.path().join("detections.json");
    let scored = scores(&["eval", "--weights", s(&out), "--detections", s(&detections)]);
    assert_eq!(
        (&scored["task"], &scored["images"]),
        (&"detect".into(), &8.into())
    );
    let logged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("coco.json")).unwrap()).unwrap();
    assert_eq!(scored["bbox"], logged[1]["bbox"], "{scored}");
    assert_eq!(
        std::fs::read(&detections).unwrap(),
        std::fs::read(out.join("val_detections.json")).unwrap(),
        "the same detections as the run's last evaluation"
    );
    // `eval-coco` computes the same statistics from that file.
    let gt = root.path().join("digits/annotations/instances_val.json");
    let stdout = run_ok(&strings(&[
        "eval-coco",
        "--gt",
        s(&gt),
        "--dt",
        s(&detections),
    ]));
    // The run's validation limit (8 images) was applied: eval-coco, on every image of the
    // split, scores the same detections against more ground truth.
    let all_images: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(all_images["AP"].is_number(), "{stdout}");
}

/// Input that cannot be evaluated is named before any work.
#[test]
fn bad_input_is_refused_before_any_work() {
    let root = tempfile::tempdir().unwrap();
    let weights = root.path().join("w.safetensors");
    std::fs::write(&weights, b"not weights").unwrap();
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (nothing, no_cifar) = (root.path().join("nothing"), empty.join("cifar10"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["eval", "--weights", s(&weights)],
            "is a file: name its architecture with --arch",
        ),
        (vec!["eval", "--weights", s(&nothing)], "does not exist"),
        (vec!["eval", "--weights", s(&empty)], "holds no run"),
        (
            vec![
                "eval",
                "--weights",
                s(&weights),
                "--arch",
                "fasterrcnn_resnet50_fpn",
                "--data-dir",
                s(&empty),
            ],
            "holds no validation split: expected annotations/instances_val2017.json",
        ),
        (
            vec![
                "eval",
                "--weights",
                s(&weights),
                "--arch",
                "fasterrcnn_resnet50_fpn",
                "--detections",
                s(&weights),
            ],
            "is the file given as --weights",
        ),
        (
            vec![
                "eval",
                "--weights",
                s(&weights),
                "--model",
                "resnet18",
                "--dataset",
                "cifar10",
                "--data-dir",
                s(&no_cifar),
            ],
            "cifar10 not found in",
        ),
        (
            vec![
                "eval",
                "--task",
                "detect",
                "--weights",
                s(&weights),
                "--model",
                "resnet18",
            ],
            "--task detect: --weights",
        ),
    ];
    for (args, needle) in cases {
        let (code, _, stderr) = run(&strings(&args), &[]);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read(&weights).unwrap(), b"not weights");

    // COCO annotations naming images the folder does not hold.
    let coco = root.path().join("coco");
    std::fs::create_dir_all(coco.join("annotations")).unwrap();
    std::fs::create_dir_all(coco.join("val2017")).unwrap();
    std::fs::write(
        coco.join("annotations/instances_val2017.json"),
        serde_json::json!({
            "images": [{"id": 1, "file_name": "1.jpg", "width": 64, "height": 48}],
            "annotations": [],
            "categories": [{"id": 1, "name": "person"}]
        })
        .to_string(),
    )
    .unwrap();
    let (code, _, stderr) = run(
        &strings(&[
            "eval",
            "--weights",
            s(&weights),
            "--arch",
            "fasterrcnn_resnet50_fpn",
            "--data-dir",
            s(&coco),
        ]),
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("names 1 image(s) that") && stderr.contains("1.jpg"),
        "{stderr}"
    );
}
