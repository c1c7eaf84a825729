//! What the training runtime gives every task, run as the real `ela` binary: reduced precision,
//! data-parallel devices, config files read for the task, progress and records in one format.

use std::path::Path;

use crate::tasks::{Task, json, run, run_ok, s};

/// `--precision bf16`: every tensor in bf16, the KL scores in f32, a decision recorded.
fn reduced_precision_trains_in_bf16_and_says_so(task: &Task, root: &Path) {
    let out = root.join("run");
    let stdout = run_ok(&task.run_args(
        &out,
        &["--precision", "bf16", "--epochs", "2", "--windows", "1"],
    ));
    assert!(stdout.contains("precision bf16"), "{stdout}");
    let config = json(&out.join("config.json"));
    assert_eq!(config["precision"], "bf16");
    let summary = ela_records::read_summary(&out).unwrap();
    assert!(
        summary.final_values.iter().all(|v| v.value.is_finite()),
        "{summary:?}"
    );
    // The pruning window's KL scores were computed (in f32) and a decision was recorded.
    let pruning = json(&out.join("pruning.json"));
    let windows = pruning["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "{pruning}");
    assert!(
        windows[0]["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["kl"].as_f64().is_some_and(|k| k.is_finite() && k > 0.0)),
        "{pruning}"
    );
    if task.name == "classify" {
        // The weights were trained and saved in bf16 (the header of model.safetensors).
        let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        assert_eq!(header["fc.weight"]["dtype"], "BF16", "{header}");
    }
}

per_task!(
    reduced_precision_trains_in_bf16_and_says_so,
    super::reduced_precision_trains_in_bf16_and_says_so
);

/// `--devices 0,1` on two logical CPU devices: each takes half of every global batch, their
/// gradients make one step, and ELA's window scores every device's batches.
fn data_parallel_training_splits_each_batch_and_still_prunes(task: &Task, root: &Path) {
    let out = root.join("run");
    let args = task.run_args(
        &out,
        &["--devices", "0,1", "--epochs", "2", "--windows", "1"],
    );
    let (code, stdout, stderr) = run(&args, &[("ELA_CPU_DEVICES", "2")]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    // The classification run's global batch is 32, the detector's 4.
    let per_device = if task.name == "classify" { 16 } else { 2 };
    assert!(
        stdout.contains(&format!("(+1 data-parallel, {per_device} images each)")),
        "{stdout}"
    );
    // 160 images in 5 steps of two 16-image batches; 16 images in 4 steps of two 2-image
    // batches: twice as many scored batches as steps.
    let pruning = json(&out.join("pruning.json"));
    let batches = if task.name == "classify" { 10 } else { 8 };
    assert_eq!(pruning["windows"][0]["batches"], batches, "{pruning}");
    assert_eq!(
        pruning["windows"][0]["newly_skipped"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "fixed pruning skips one block: {pruning}"
    );
    let summary = ela_records::read_summary(&out).unwrap();
    assert!(
        summary.final_values.iter().all(|v| v.value.is_finite()),
        "{summary:?}"
    );

    let (code, _, stderr) = run(
        &task.args(&["--devices", "0,1,2", "--batch-size", "32"]),
        &[],
    );
    assert!(
        code == Some(1)
            && stderr.contains("--batch-size 32 must be a multiple of the number of --devices (3)"),
        "{stderr}"
    );
}

per_task!(
    data_parallel_training_splits_each_batch_and_still_prunes,
    super::data_parallel_training_splits_each_batch_and_still_prunes
);

/// A Table 5 config trains a detector with `train --task detect --config` (its `task` key alone
/// would do), flags on the command line winning; a key the detection flags do not have is an
/// error naming the file and the key, before any work.
#[test]
fn a_table5_config_trains_a_detector_and_is_checked_against_detection_flags() {
    let root = tempfile::tempdir().unwrap();
    let table5 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/table5");
    let config = table5.join("mask-rcnn-r50-ela.toml");
    let out = root.path().join("run");
    let digits = root.path().join("digits");
    let smoke = [
        "--dataset",
        "digits",
        "--data-dir",
        s(&digits),
        "--depth",
        "18",
        "--frozen-stages",
        "0",
        "--norm-eval",
        "false",
        "--limit-train",
        "8",
        "--limit-val",
        "4",
        "--epochs",
        "1",
        "--windows",
        "1",
        "--out",
        s(&out),
    ];
    for task in [&["--task", "detect"][..], &[]] {
        let mut args = crate::tasks::strings(&["train", "--config", s(&config)]);
        args.extend(crate::tasks::strings(task));
        args.extend(crate::tasks::strings(&smoke));
        if out.exists() {
            std::fs::remove_dir_all(&out).unwrap();
        }
        run_ok(&args);
        let written = json(&out.join("config.json"));
        assert_eq!(
            (
                &written["task"],
                &written["detector"],
                &written["ela"],
                &written["depth"]
            ),
            (
                &"detect".into(),
                &"mask-rcnn".into(),
                &true.into(),
                &18.into()
            ),
            "{written}"
        );
    }
    // Detection flags only: a classification key in a detection config is named.
    let bad = root.path().join("bad.toml");
    std::fs::write(&bad, "task = \"detect\"\nlabel-smoothing = 0.1\n").unwrap();
    let (code, _, stderr) = run(&crate::tasks::strings(&["train", "--config", s(&bad)]), &[]);
    assert!(
        code == Some(2)
            && stderr.contains("bad.toml: unknown key `label-smoothing`")
            && stderr.contains("see `ela train --task detect --help`"),
        "{stderr}"
    );
}

/// `train --task detect --pretrained RUN`: the backbone starts from an ImageNet-architecture
/// classification run of the same attention (frozen stem and `layer1`, frozen statistics); a
/// backbone of another attention is refused, naming both.
#[test]
fn a_detector_starts_from_a_classification_runs_backbone_of_its_attention() {
    let root = tempfile::tempdir().unwrap();
    let images =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ela-data/tests/fixtures/imagefolder");
    let classifier = root.path().join("classifier");
    run_ok(&crate::tasks::strings(&[
        "train",
        "--dataset",
        "imagenet",
        "--data-dir",
        s(&images),
        "--depth",
        "18",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--windows",
        "none",
        "--out",
        s(&classifier),
    ]));
    let detect = |attention: &str, out: &Path| {
        run(
            &crate::tasks::strings(&[
                "train",
                "--task",
                "detect",
                "--data-dir",
                s(&root.path().join("digits")),
                "--pretrained",
                s(&classifier),
                "--attention",
                attention,
                "--limit-train",
                "8",
                "--limit-val",
                "4",
                "--epochs",
                "1",
                "--windows",
                "1",
                "--out",
                s(out),
            ]),
            &[],
        )
    };
    let out = root.path().join("detector");
    let (code, stdout, stderr) = detect("ela", &out);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("pretrained backbone: 166 tensors from")
            && stdout.contains("classifier/model.safetensors"),
        "{stdout}"
    );
    let config = json(&out.join("config.json"));
    assert_eq!(
        (&config["frozen_stages"], &config["norm_eval"]),
        (&1.into(), &true.into())
    );
    let summary = ela_records::read_summary(&out).unwrap();
    assert!(
        summary.trainable_parameters < summary.parameters,
        "the stem and layer1 are frozen: {summary:?}"
    );

    let (code, _, stderr) = detect("none", &root.path().join("plain"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("trained attention ela (mrla-b layers), the backbone's is none"),
        "{stderr}"
    );
    assert!(!root.path().join("plain").exists());
}
