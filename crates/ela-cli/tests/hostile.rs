//! What a hostile week of use tries, run as the real `ela` binary: two runs in one directory,
//! a run pointed at a user's folder, outputs over inputs, resumes that change settings, weights
//! of another precision, empty or disagreeing data, devices that do not exist, pretrained skip
//! flags in a run that does not prune. Every case ends in a clear error (exit status 1 or 2,
//! never a panic's 101) before anything is lost, or in a run that does what it says.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
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
#[test]
fn a_second_process_on_a_running_run_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut first = Command::new(env!("CARGO_BIN_EXE_ela"))
        .args([
            "train",
            "--limit-train",
            "256",
            "--limit-test",
            "64",
            "--epochs",
            "3",
            "--seed",
            "1",
            "--out",
            s(&out),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
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
        vec!["train", "--seed", "7", "--epochs", "1", "--out", s(&out)],
        vec!["train", "--resume", s(&out)],
    ] {
        let (code, _, stderr) = ela(&args);
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
    let (code, _, stderr) = ela(&["train", "--resume", s(&out)]);
    assert!(
        code == Some(1) && stderr.contains("already finished"),
        "{stderr}"
    );
}

/// Class 2: a new run refuses a folder that holds anything but an unstarted run, and leaves the
/// user's files as they were.
#[test]
fn a_folder_that_is_not_a_run_is_never_written_into() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mine");
    std::fs::create_dir_all(out.join("report")).unwrap();
    for name in ["model.safetensors", "metrics.csv", "report/report.md"] {
        std::fs::write(out.join(name), format!("my {name}")).unwrap();
    }
    let (code, _, stderr) = ela(&["train", "--epochs", "1", "--out", s(&out)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("not empty and holds no ela run") && stderr.contains("metrics.csv"),
        "{stderr}"
    );
    for name in ["model.safetensors", "metrics.csv", "report/report.md"] {
        assert_eq!(
            std::fs::read_to_string(out.join(name)).unwrap(),
            format!("my {name}")
        );
    }
    let entries = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(entries, 3, "nothing was added");
}

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
#[test]
fn a_resume_records_what_it_changes_and_a_run_without_checkpoint_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nan");
    let common = [
        "--attention",
        "none",
        "--limit-train",
        "96",
        "--limit-test",
        "32",
        "--epochs",
        "2",
        "--warmup-epochs",
        "0",
    ];
    let mut args = vec!["train", "--lr", "1e30", "--out", s(&out)];
    args.extend(common);
    let (code, _, stderr) = ela(&args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("--resume starts the run again from epoch 1"),
        "{stderr}"
    );
    // What a kill in the middle of an atomic write leaves.
    std::fs::write(out.join(".tmpK1ll3d"), b"half").unwrap();
    std::fs::create_dir_all(out.join("checkpoint")).unwrap();
    std::fs::write(out.join("checkpoint/.tmpH4lf"), b"half").unwrap();

    let (code, stdout, stderr) = ela(&["train", "--resume", s(&out), "--lr", "0.02"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("starting it again from epoch 1"),
        "{stdout}"
    );
    assert!(!out.join(".tmpK1ll3d").exists() && !out.join("checkpoint/.tmpH4lf").exists());
    let config = json(&out.join("config.json"));
    assert_eq!(config["lr"], 0.02, "a later --resume reads this rate");
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

/// Classes 8 and 9: empty or disagreeing splits and devices that do not exist (or are given
/// twice) stop the run before its directory exists; the data-parallel path runs on logical CPU
/// devices only when asked for.
#[test]
fn bad_data_and_devices_stop_before_anything_is_written() {
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
    for (flags, needle) in [
        (vec!["--devices", "0,0"], "device 0 is given twice"),
        (
            vec!["--devices", "0,1"],
            "backend 'cpu' has no device 1; it has one device, 0",
        ),
        (
            vec!["--device", "5"],
            "--device 5: backend 'cpu' has no device 5",
        ),
    ] {
        let mut args = vec!["train", "--out", s(&out)];
        args.extend(&flags);
        let (code, _, stderr) = ela(&args);
        assert_eq!(code, Some(1), "{flags:?}: {stderr}");
        assert!(stderr.contains(needle), "{flags:?}: {stderr}");
        assert!(!out.exists());
    }
}
