//! What a hostile week of use tries, run as the real `ela` binary: two runs in one directory,
//! a run pointed at a user's folder, outputs over inputs, resumes that change settings, weights
//! of another precision, empty or disagreeing data, devices that do not exist, pretrained skip
//! flags in a run that does not prune. Every case ends in a clear error (exit status 1 or 2,
//! never a panic's 101) before anything is lost, or in a run that does what it says.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::tasks::{Task, json, s};

/// `ela` with `args` and extra environment variables.
fn ela_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ela"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Exit code, standard output and standard error of `ela args`.
fn ela(args: &[&str]) -> (Option<i32>, String, String) {
    let out = ela_env(args, &[]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A short ELA run (fixed pruning: one block is skipped after epoch 1) with `extra` flags.
fn short_run(out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--limit-train",
        "128",
        "--limit-test",
        "64",
        "--epochs",
        "2",
        "--windows",
        "1",
        "--prune-method",
        "fixed",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = ela(&args);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    stdout
}

/// Class 1: a run directory has one owner. A second training (or a resume) on the directory of
/// a running training is refused, names the owner, and changes nothing; the first run ends as
/// if alone. The lock goes with the process.
fn a_second_process_on_a_running_run_directory_is_refused(task: &Task, root: &Path) {
    let out = root.join("run");
    let mut first = crate::tasks::ela()
        .args(task.run_args(&out, &["--seed", "1"]))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !out.join("config.json").exists() {
        assert!(Instant::now() < deadline, "the first run never started");
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = std::fs::read(out.join("config.json")).unwrap();
    for args in [
        task.run_args(&out, &["--seed", "7", "--epochs", "1", "--windows", "1"]),
        crate::tasks::strings(&["train", "--resume", s(&out)]),
    ] {
        let (code, _, stderr) = crate::tasks::run(&args, &[]);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("is in use by another ela process")
                && stderr.contains(&format!("process {}", first.id())),
            "{args:?}: {stderr}"
        );
    }
    assert!(first.wait().unwrap().success());
    assert_eq!(std::fs::read(out.join("config.json")).unwrap(), before);
    assert_eq!(json(&out.join("config.json"))["seed"], 1);
    assert_eq!(json(&out.join("summary.json"))["seed"], 1);
    // The owner is gone: the directory is a finished run, not a busy one.
    let (code, _, stderr) =
        crate::tasks::run(&crate::tasks::strings(&["train", "--resume", s(&out)]), &[]);
    assert!(
        code == Some(1) && stderr.contains("already finished"),
        "{stderr}"
    );
}

per_task!(
    a_second_process_on_a_running_run_directory_is_refused,
    super::a_second_process_on_a_running_run_directory_is_refused
);

/// Class 2: a new run refuses a folder that holds anything but an unstarted run, and leaves the
/// user's files as they were.
fn a_folder_that_is_not_a_run_is_never_written_into(task: &Task, root: &Path) {
    let out = root.join("mine");
    std::fs::create_dir_all(out.join("report")).unwrap();
    let mine = [task.weights, "metrics.csv", "report/report.md"];
    for name in mine {
        std::fs::write(out.join(name), format!("my {name}")).unwrap();
    }
    let (code, _, stderr) = crate::tasks::run(&task.run_args(&out, &[]), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("not empty and holds no ela run") && stderr.contains("metrics.csv"),
        "{stderr}"
    );
    for name in mine {
        assert_eq!(
            std::fs::read_to_string(out.join(name)).unwrap(),
            format!("my {name}")
        );
    }
    let entries = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(entries, 3, "nothing was added");
}

per_task!(
    a_folder_that_is_not_a_run_is_never_written_into,
    super::a_folder_that_is_not_a_run_is_never_written_into
);

/// Writes a safetensors file holding one f32 tensor `input` of `shape`.
fn input_file(path: &Path, shape: &[usize]) {
    let n: usize = shape.iter().product();
    let raw: Vec<u8> = (0..n)
        .flat_map(|i| (i as f32 * 0.01).to_le_bytes())
        .collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.to_vec(), &raw)
        .unwrap();
    std::fs::write(
        path,
        safetensors::serialize([("input", view)], None).unwrap(),
    )
    .unwrap();
}

/// Classes 3, 5, 6 and 11, on the weights of a half-precision ELA run with a skipped block:
/// `forward` refuses to write over its inputs, loads the f16 weights into its f32 model and
/// refuses an empty image; `--pretrained` loads them too, and applies their skip flags only to
/// an ELA run, saying so either way.
#[test]
fn half_precision_weights_load_and_outputs_never_replace_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("f16");
    short_run(&run, &["--precision", "f16"]);
    let weights = run.join("model.safetensors");
    let skip_flags: Vec<bool> = serde_json::from_str(
        &ela_model::weights::read_metadata(&weights).unwrap()[ela_model::weights::META_SKIP_FLAGS],
    )
    .unwrap();
    let skipped: Vec<usize> = (0..skip_flags.len()).filter(|&i| skip_flags[i]).collect();
    assert_eq!(
        skipped.len(),
        1,
        "fixed pruning skips one block: {skip_flags:?}"
    );

    let input = dir.path().join("x.safetensors");
    input_file(&input, &[2, 1, 28, 28]);
    let original = std::fs::read(&weights).unwrap();
    let forward = |output: &Path, input: &Path| {
        ela(&[
            "forward",
            "--depth",
            "20",
            "--in-channels",
            "1",
            "--weights",
            s(&weights),
            "--input",
            s(input),
            "--output",
            s(output),
        ])
    };
    for target in [&weights, &input] {
        let (code, _, stderr) = forward(target, &input);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains("writing it would destroy that input"),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        original,
        "the weights are intact"
    );

    // f16 weights in an f32 model.
    let logits = dir.path().join("y.safetensors");
    let (code, _, stderr) = forward(&logits, &input);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("skip flags {skip_flags:?}")),
        "{stderr}"
    );
    let bytes = std::fs::read(&logits).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("logits").unwrap().shape(), &[2, 10]);

    // An image without pixels is refused before it runs.
    for shape in [[1, 1, 0, 28], [0, 1, 28, 28]] {
        input_file(&input, &shape);
        let (code, _, stderr) = forward(&logits, &input);
        assert_eq!(code, Some(1), "{shape:?}: {stderr}");
        assert!(stderr.contains("does not fit the model"), "{stderr}");
    }

    // --pretrained: the skip flags go only into an ELA run, and the run says so.
    let mrla = dir.path().join("mrla-b");
    let stdout = short_run(
        &mrla,
        &["--attention", "mrla-b", "--pretrained", s(&weights)],
    );
    assert!(
        stdout.contains(&format!("skip flags (blocks {skipped:?}) are not applied")),
        "{stdout}"
    );
    let flags = &ela_model::weights::read_metadata(&mrla.join("model.safetensors")).unwrap()
        [ela_model::weights::META_SKIP_FLAGS];
    assert!(
        !flags.contains("true"),
        "an MRLA-B run skips nothing: {flags}"
    );
    let ela_run = dir.path().join("ela");
    let stdout = short_run(
        &ela_run,
        &["--pretrained", s(&weights), "--windows", "none"],
    );
    assert!(
        stdout.contains(&format!("blocks {skipped:?} are skipped from the start")),
        "{stdout}"
    );
    let first = std::fs::read_to_string(ela_run.join("metrics.csv")).unwrap();
    let row = first.lines().nth(1).unwrap();
    assert!(row.ends_with(&format!(",1,{}", skipped[0])), "{row}");
}

/// Class 4 and the dead end: a run that diverged in its first epoch has no checkpoint; `--resume
/// --lr` starts it again from epoch 1, removes the killed write's temporary files, and records
/// the new rate where a later resume, the summary and the report find it.
fn a_resume_records_what_it_changes_and_a_run_without_checkpoint_starts_again(
    task: &Task,
    root: &Path,
) {
    let out = root.join("nan");
    let args = task.run_args(&out, &["--lr", "1e30", "--epochs", "2", "--windows", "1"]);
    let (code, _, stderr) = crate::tasks::run(&args, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("--resume starts the run again from epoch 1"),
        "{stderr}"
    );
    // What a kill in the middle of an atomic write leaves.
    std::fs::write(out.join(".tmpK1ll3d"), b"half").unwrap();
    std::fs::create_dir_all(out.join("checkpoint")).unwrap();
    std::fs::write(out.join("checkpoint/.tmpH4lf"), b"half").unwrap();

    let resume = crate::tasks::strings(&["train", "--resume", s(&out), "--lr", "0.02"]);
    let stdout = crate::tasks::run_ok(&resume);
    assert!(
        stdout.contains("starting it again from epoch 1"),
        "{stdout}"
    );
    assert!(!out.join(".tmpK1ll3d").exists() && !out.join("checkpoint/.tmpH4lf").exists());
    let config = json(&out.join("config.json"));
    assert_eq!(config["lr"], 0.02, "a later --resume reads this rate");
    assert_eq!(
        config["task"], task.name,
        "the run directory knows its task"
    );
    let change = serde_json::json!([{"from_epoch": 1, "lr": 0.02, "previous_lr": 1e30}]);
    assert_eq!(config["resume_overrides"], change, "{config}");
    assert_eq!(json(&out.join("summary.json"))["resume_overrides"], change);
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "two epochs: {metrics}");
    let report = std::fs::read_to_string(out.join("report/report.md")).unwrap();
    assert!(
        report.contains("Resumed with base learning rate 0.02 from epoch 1 (was 1e+30)"),
        "{report}"
    );
}

per_task!(
    a_resume_records_what_it_changes_and_a_run_without_checkpoint_starts_again,
    super::a_resume_records_what_it_changes_and_a_run_without_checkpoint_starts_again
);

/// Writes the four MNIST IDX files (raw) with `train` and `test` images of the given sizes.
fn mnist_dir(dir: &Path, (train, train_side): (usize, usize), (test, test_side): (usize, usize)) {
    std::fs::create_dir_all(dir).unwrap();
    let images = |n: usize, side: usize| {
        let mut b = vec![0, 0, 8, 3];
        for d in [n, side, side] {
            b.extend((d as u32).to_be_bytes());
        }
        b.extend((0..n * side * side).map(|i| (i % 251) as u8));
        b
    };
    let labels = |n: usize| {
        let mut b = vec![0, 0, 8, 1];
        b.extend((n as u32).to_be_bytes());
        b.extend((0..n).map(|i| (i % 10) as u8));
        b
    };
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        images(train, train_side),
    )
    .unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels(train)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), images(test, test_side)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels(test)).unwrap();
}

/// Class 8: empty or disagreeing splits stop the run before its directory exists.
#[test]
fn bad_data_stops_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    // (folder, (training images, side), (test images, side), what the error says)
    type Case<'a> = (PathBuf, (usize, usize), (usize, usize), &'a str);
    let cases: [Case; 3] = [
        (
            dir.path().join("empty"),
            (0, 28),
            (20, 28),
            "training split",
        ),
        (dir.path().join("no-test"), (20, 28), (0, 28), "test split"),
        (
            dir.path().join("sizes"),
            (20, 28),
            (20, 32),
            "splits disagree",
        ),
    ];
    for (data, train, test, needle) in cases {
        mnist_dir(&data, train, test);
        let (code, _, stderr) = ela(&["train", "--data-dir", s(&data), "--out", s(&out)]);
        assert_eq!(code, Some(1), "{needle}: {stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert!(!out.exists(), "{needle}: a run directory was created");
    }
}

/// Class 9: devices that do not exist, or are given twice, stop the run before its directory
/// exists, whatever the task; the data-parallel path runs on logical CPU devices only when
/// asked for.
fn devices_that_do_not_exist_stop_before_anything_is_written(task: &Task, root: &Path) {
    let out = root.join("never");
    for (flags, needle) in [
        (["--devices", "0,0"], "device 0 is given twice"),
        (
            ["--devices", "0,1"],
            "backend 'cpu' has no device 1; it has one device, 0",
        ),
        (
            ["--device", "5"],
            "--device 5: backend 'cpu' has no device 5",
        ),
    ] {
        let (code, _, stderr) = crate::tasks::run(&task.run_args(&out, &flags), &[]);
        assert_eq!(code, Some(1), "{flags:?}: {stderr}");
        assert!(stderr.contains(needle), "{flags:?}: {stderr}");
        assert!(!out.exists());
    }
}

per_task!(
    devices_that_do_not_exist_stop_before_anything_is_written,
    super::devices_that_do_not_exist_stop_before_anything_is_written
);

/// Class 8 for detection: a COCO folder without its annotations, or whose annotations name
/// images it does not hold, stops the run before its directory exists, naming the file.
#[test]
fn detection_data_that_is_not_there_stops_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let coco = dir.path().join("coco");
    std::fs::create_dir_all(coco.join("annotations")).unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--task",
            "detect",
            "--dataset",
            "coco",
            "--data-dir",
            s(&coco),
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        ela(&args)
    };
    let (code, _, stderr) = train(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("instances_train2017.json is missing") && stderr.contains("fetch coco"),
        "{stderr}"
    );
    // Annotations naming images that are not there.
    let instances = serde_json::json!({
        "images": [
            {"id": 1, "file_name": "1.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "2.jpg", "width": 64, "height": 48}
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 10, 10], "area": 100,
             "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 3, "bbox": [1, 2, 10, 10], "area": 100,
             "iscrowd": 0}
        ],
        "categories": [{"id": 3, "name": "car", "supercategory": "vehicle"}]
    });
    for split in ["train", "val"] {
        let path = coco.join(format!("annotations/instances_{split}2017.json"));
        std::fs::write(path, instances.to_string()).unwrap();
        std::fs::create_dir_all(coco.join(format!("{split}2017"))).unwrap();
    }
    let (code, _, stderr) = train(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("instances_train2017.json names 2 image(s) that")
            && stderr.contains("1.jpg and 1 more"),
        "{stderr}"
    );
    assert!(!out.exists(), "a run directory was created");
}

/// Class 3 for every command that writes: an output that is one of the command's inputs (the
/// weights a detector was read from, an image, a folder holding the inputs) is refused before
/// anything is read or written, naming both flags, and the inputs are unchanged.
#[test]
fn no_command_writes_over_its_inputs() {
    let root = tempfile::tempdir().unwrap();
    let detect = crate::tasks::task(root.path(), "detect");
    let run = root.path().join("run");
    crate::tasks::run_ok(&detect.run_args(&run, &["--epochs", "1", "--windows", "1"]));
    let image = root.path().join("digits/val");
    let image = std::fs::read_dir(&image)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let inputs = [
        run.join("model.bpk"),
        run.join("classes.json"),
        image.clone(),
    ];
    let before: Vec<Vec<u8>> = inputs.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let detect_args = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["detect", "--weights", s(&run), "--image", s(&image)];
        args.extend_from_slice(extra);
        crate::tasks::strings(&args)
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            detect_args(&["--out", s(&run.join("model.bpk"))]),
            "is the file given as --weights",
        ),
        (
            detect_args(&["--json", s(&run.join("classes.json"))]),
            "is the file given as --weights",
        ),
        (
            detect_args(&["--out", s(&image)]),
            "is the file given as --image",
        ),
        (
            crate::tasks::strings(&["report", s(&run), "--out", s(root.path())]),
            "lies inside",
        ),
        (
            crate::tasks::strings(&[
                "reproduce",
                "table4",
                "--experiments",
                s(&experiments),
                "--results",
                s(&experiments.join("..")),
                "--dry-run",
            ]),
            "lies inside",
        ),
        (
            detect.run_args(
                &root.path().join("digits"),
                &["--pretrained", s(&run.join("model.bpk"))],
            ),
            "lies inside",
        ),
    ];
    for (args, needle) in cases {
        let (code, _, stderr) = crate::tasks::run(&args, &[]);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    for (path, bytes) in inputs.iter().zip(before) {
        assert_eq!(std::fs::read(path).unwrap(), bytes, "{}", path.display());
    }
}

/// Invalid values of the flags every task has are refused with the flag's name before any work,
/// whichever attention the run uses; each task's own flags likewise.
fn invalid_flags_are_rejected_before_any_work(task: &Task, root: &Path) {
    let out = root.join("never");
    let own: Vec<(Vec<&str>, &str)> = match task.name {
        "classify" => vec![
            (vec!["--depth", "21"], "depth"),
            (vec!["--label-smoothing", "nan"], "--label-smoothing"),
            (vec!["--dim-per-head", "7"], "dim_per_head"),
        ],
        _ => vec![
            (vec!["--scale", "5"], "--scale"),
            (vec!["--batch-size", "0"], "--batch-size"),
        ],
    };
    let common: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--tau", "1.5"], "tau"),
        (vec!["--alpha", "0"], "alpha"),
        (vec!["--quantile", "0"], "quantile"),
        (vec!["--windows", "1-9", "--epochs", "4"], "window"),
        (vec!["--epochs", "0"], "--epochs"),
        (vec!["--lr=-1"], "--lr"),
        (vec!["--kl-eps=-1"], "--kl-eps"),
        (vec!["--attention", "none", "--kl-eps", "nan"], "--kl-eps"),
        (vec!["--attention", "mrla-b", "--tau", "2"], "tau"),
        (vec!["--gamma-shape", "0"], "gamma"),
        (vec!["--rate", "nan"], "rate"),
        (vec!["--k", "0"], "--k"),
        (vec!["--momentum", "nan"], "--momentum"),
        (vec!["--weight-decay", "inf"], "--weight-decay"),
    ];
    for (flags, needle) in own.into_iter().chain(common) {
        let (code, _, stderr) = crate::tasks::run(&task.run_args(&out, &flags), &[]);
        assert_eq!(code, Some(1), "{}: {flags:?}: {stderr}", task.name);
        assert!(
            stderr.contains(needle),
            "{}: {flags:?}: {stderr}",
            task.name
        );
        assert!(
            !out.exists(),
            "{}: {flags:?} created the run directory",
            task.name
        );
    }
}

per_task!(
    invalid_flags_are_rejected_before_any_work,
    super::invalid_flags_are_rejected_before_any_work
);
