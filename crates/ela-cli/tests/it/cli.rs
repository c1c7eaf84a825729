//! The small commands users script against (`summary`, `prune-plan`, `forward`) and the errors
//! a user meets first, run as the real `ela` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A JSON file a run wrote.
fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ela(args: &[&str]) -> (bool, String, String) {
    ela_env(args, &[])
}

/// `ela args` with extra environment variables.
fn ela_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ela"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn summary_ends_with_the_spec_parameter_count() {
    for (depth, classes, attention, expected) in [
        ("20", "10", "none", 220_378),
        ("56", "100", "none", 614_452),
        ("110", "10", "none", 1_147_738),
        ("110", "100", "none", 1_170_868),
        // 220,378 + 2·(6 + 704) + 2·(10 + 1,408) + 2·(10 + 2,816): Wq, Wk, Wv and bn_mrla.
        ("20", "10", "ela", 230_286),
    ] {
        let (ok, stdout, stderr) = ela(&[
            "summary",
            "--depth",
            depth,
            "--attention",
            attention,
            "--num-classes",
            classes,
        ]);
        assert!(ok, "{stderr}");
        assert_eq!(
            stdout.lines().last().unwrap(),
            format!("parameters: {expected}"),
            "ResNet-{depth} {attention} {classes} classes"
        );
        let blocks = stdout.lines().filter(|l| l.starts_with("block")).count();
        assert_eq!(blocks, 3 * (depth.parse::<usize>().unwrap() - 2) / 9);
    }
    let (ok, stdout, _) = ela(&[
        "summary",
        "--depth",
        "20",
        "--attention",
        "none",
        "--num-classes",
        "10",
        "--in-channels",
        "1",
    ]);
    assert!(ok);
    assert_eq!(stdout.lines().last().unwrap(), "parameters: 220090");
    let (ok, _, stderr) = ela(&["summary", "--depth", "21", "--attention", "none"]);
    assert!(!ok && stderr.contains("depth 21"), "{stderr}");
}

#[test]
fn prune_plan_replays_decisions_from_a_kl_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kl.json");
    // The scipy golden case of ela-prune's decide.rs tests (block 0 has no score).
    std::fs::write(
        &log,
        "[null, 0.12, 0.03, 0.40, 0.07, 0.25, 0.05, 0.31, 0.09]",
    )
    .unwrap();
    let path = log.to_str().unwrap();
    let plan = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["prune-plan", "--kl", path];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = ela(&args);
        assert!(ok, "{stderr}");
        serde_json::from_str(&stdout).unwrap()
    };
    let v = plan(&[]);
    assert_eq!(v["skip"], serde_json::json!([2, 4, 6]));
    assert!((v["mapped"][4].as_f64().unwrap() - 0.13168724279835411).abs() < 1e-12);
    assert!(
        v["normalized"][1].is_null(),
        "block 1 is above the quantile"
    );
    let v = plan(&[
        "--alpha",
        "2",
        "--beta",
        "5",
        "--tau",
        "0.25",
        "--quantile",
        "0.8",
    ]);
    assert_eq!(v["skip"], serde_json::json!([2, 6]));
    let v = plan(&["--method", "threshold", "--tau", "0.3"]);
    assert_eq!(v["skip"], serde_json::json!([1, 2, 4, 6, 8]));
    let v = plan(&["--method", "fixed", "--k", "2"]);
    assert_eq!(v["skip"], serde_json::json!([2, 6]));
    let (ok, _, stderr) = ela(&["prune-plan", "--kl", path, "--tau", "2"]);
    assert!(!ok && stderr.contains("tau"), "{stderr}");

    // A pruning.json's window, and bad input naming the file.
    let record = dir.path().join("pruning.json");
    std::fs::write(
        &record,
        r#"{"windows": [{"blocks": [{"kl": null}, {"kl": 0.2}, {"kl": 0.1}, {"kl": 0.9}]}]}"#,
    )
    .unwrap();
    let (ok, stdout, stderr) = ela(&[
        "prune-plan",
        "--kl",
        record.to_str().unwrap(),
        "--method",
        "fixed",
        "--k",
        "1",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["skip"], serde_json::json!([2]));
    std::fs::write(&log, "[null, \"x\"]").unwrap();
    let (ok, _, stderr) = ela(&["prune-plan", "--kl", path]);
    assert!(
        !ok && stderr.contains("kl.json") && stderr.contains("entry 1"),
        "{stderr}"
    );
}

fn fixture(name: &str) -> PathBuf {
    // Read at run time: a test binary reused from a shared target directory may have been
    // compiled in another checkout.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../ela-model/tests/fixtures")
        .join(name)
}

fn read_f32(path: &Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn forward_reproduces_the_numpy_reference_logits() {
    let dir = tempfile::tempdir().unwrap();
    let io = fixture("reference_io.safetensors");
    for (skip, expected) in [(None, "mrla_b"), (Some("1,4"), "ela_full")] {
        let out = dir.path().join(format!("{expected}.safetensors"));
        let mut args = vec![
            "forward",
            "--depth",
            "29",
            "--attention",
            "ela",
            "--num-classes",
            "10",
            "--weights",
        ];
        let weights = fixture("mrla_b_r29.safetensors");
        args.push(weights.to_str().unwrap());
        args.extend([
            "--input",
            io.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ]);
        if let Some(s) = skip {
            args.extend(["--skip", s]);
        }
        let (ok, _, stderr) = ela(&args);
        assert!(ok, "{stderr}");
        let got = read_f32(&out, "logits");
        let want = read_f32(&io, expected);
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-4 * scale + 1e-4,
                "{expected}: {a} vs {b}"
            );
        }
    }
    // Wrong architecture for the weights: a clear error naming the file.
    let (ok, _, stderr) = ela(&[
        "forward",
        "--depth",
        "20",
        "--attention",
        "ela",
        "--num-classes",
        "10",
        "--weights",
        fixture("mrla_b_r29.safetensors").to_str().unwrap(),
        "--input",
        io.to_str().unwrap(),
        "--output",
        dir.path().join("x.safetensors").to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("mrla_b_r29.safetensors"), "{stderr}");
}

#[test]
fn baseline_summaries_match_table_1() {
    // ELA paper, Table 1 (CIFAR-10): BAM in every block 0.27M, DIA 0.44M for ResNet-20.
    for (attention, params) in [("bam-block", 266_360), ("dia", 439_226), ("se", 242_834)] {
        let (ok, out, err) = ela(&[
            "summary",
            "--depth",
            "20",
            "--attention",
            attention,
            "--num-classes",
            "10",
        ]);
        assert!(ok, "{err}");
        assert_eq!(
            out.lines().last().unwrap(),
            format!("parameters: {params}"),
            "{attention}"
        );
    }
}

#[test]
fn config_files_set_flags_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.toml");
    std::fs::write(
        &file,
        "depth = 21
epochs = 1
[paper]
top1 = 1.0
",
    )
    .unwrap();
    let out = dir.path().join("run");
    let (ok, _, err) = ela(&[
        "train",
        "--config",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("depth 21"), "{err}");
    let (ok, _, err) = ela(&[
        "train",
        "--config",
        file.to_str().unwrap(),
        "--depth",
        "22",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("depth 22"), "the flag wins: {err}");
    std::fs::write(&file, "no_such_flag = 3\n").unwrap();
    let (ok, _, err) = ela(&["train", "--config", file.to_str().unwrap()]);
    assert!(
        !ok && err.contains("run.toml: unknown key `no_such_flag`"),
        "the file and the key are named: {err}"
    );
    // A negative number is a value, named with its file and key when its flag rejects it, and
    // reaches validation when the flag takes it.
    std::fs::write(&file, "epochs = -3\n").unwrap();
    let (ok, _, err) = ela(&["train", "--config", file.to_str().unwrap()]);
    assert!(!ok && err.contains("run.toml: key `epochs`"), "{err}");
    std::fs::write(&file, "lr = -3\n").unwrap();
    let (ok, _, err) = ela(&["train", "--config", file.to_str().unwrap()]);
    assert!(
        !ok && err.contains("--lr must be a positive number"),
        "{err}"
    );
    // Two files: the later one wins; the command line wins over both.
    let second = dir.path().join("second.toml");
    std::fs::write(&file, "depth = 21\n").unwrap();
    std::fs::write(&second, "depth = 23\n").unwrap();
    let two = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--config",
            file.to_str().unwrap(),
            "--config",
            second.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ela(&args)
    };
    let (ok, _, err) = two(&[]);
    assert!(!ok && err.contains("depth 23"), "{err}");
    let (ok, _, err) = two(&["--depth", "24"]);
    assert!(!ok && err.contains("depth 24"), "{err}");
    // `train --help` lists --config.
    let (ok, help, _) = ela(&["train", "--help"]);
    assert!(ok && help.contains("--config <FILE.toml>"), "{help}");
    assert!(!out.exists());
}

#[test]
fn a_missing_dataset_names_the_fetch_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nothing-here");
    let out = dir.path().join("run");
    let (ok, _, err) = ela(&[
        "train",
        "--dataset",
        "cifar100",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("cargo xtask fetch cifar100") && err.contains("nothing-here"),
        "{err}"
    );
    assert!(
        !out.exists(),
        "no run directory for a run that cannot start"
    );
}

/// Runs `ela ARGS` with a file-size limit of `kib` KiB, SIGXFSZ ignored: a write past the limit
/// fails with EFBIG, as a full disk fails with ENOSPC.
fn ela_with_file_limit(kib: usize, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -f {kib}; trap '' XFSZ; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_ela"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_failing_write_is_named_and_loses_nothing_written_before() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_str = run.to_str().unwrap();
    let train = [
        "train",
        "--epochs",
        "2",
        "--limit-train",
        "64",
        "--limit-test",
        "64",
        "--out",
        run_str,
    ];
    // No file may grow at all: config.json is the first write, at start.
    let (code, err) = ela_with_file_limit(0, &train);
    assert_eq!(code, Some(1), "an error, not a panic or a signal:\n{err}");
    assert!(
        err.contains("config.json") && err.contains("File too large"),
        "{err}"
    );

    // 600 KiB: the run's small files fit; the ResNet-20 model record and the SGD momentum
    // record (about 0.9 MB each, saved concurrently) do not.
    std::fs::remove_dir_all(&run).unwrap();
    let (code, err) = ela_with_file_limit(600, &train);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        (err.contains("model-1.bpk") || err.contains("optim-1.bpk"))
            && err.contains("File too large")
            && err.contains("--resume"),
        "{err}"
    );
    // What was written before the failing write is whole: the config, epoch 1's metrics row.
    let config = json(&run.join("config.json"));
    assert_eq!(config["epochs"], 2);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    // No half-written temporary file left, and no complete checkpoint claimed for epoch 1.
    let names: Vec<String> = std::fs::read_dir(run.join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with('.') || n == "model-1.bpk"),
        "{names:?}"
    );
    // The cause fixed (no more limit), the advised `--resume` works: without a complete
    // checkpoint it starts the run again from epoch 1 and finishes it.
    let (ok, stdout, err) = ela(&["train", "--resume", run_str]);
    assert!(
        ok && stdout.contains("starting it again from epoch 1"),
        "{stdout}\n{err}"
    );
    assert!(run.join("summary.json").is_file());
}

#[test]
fn imagenet_models_by_name_summarize_and_fine_tune_from_pretrained_weights() {
    // The registry, as users see it.
    let (ok, stdout, _) = ela(&["models"]);
    assert!(ok);
    for name in [
        "resnet50_mrlab",
        "resnet101_ela",
        "cifar_resnet56_mrlal",
        "resnet18",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(name)),
            "{name}:\n{stdout}"
        );
    }
    let (ok, stdout, stderr) = ela(&["summary", "--model", "resnet50", "--num-classes", "1000"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().last().unwrap(), "parameters: 25557032");
    let (ok, _, stderr) = ela(&["summary", "--model", "resnet51_mrlab"]);
    assert!(
        !ok && stderr.contains("--model") && stderr.contains("18, 34, 50, 101 or 152"),
        "{stderr}"
    );

    // A 5-class ImageNet-style ResNet-18 MRLA-B for 1-channel images, as a pretrained file.
    let dir = tempfile::tempdir().unwrap();
    let device = burn::tensor::Device::flex();
    let pretrained = ela_model::registry::find("resnet18_mrlab")
        .unwrap()
        .config(5)
        .with_in_channels(1)
        .init(&device)
        .unwrap();
    let weights = dir.path().join("pretrained.safetensors");
    pretrained.save_safetensors(&weights).unwrap();
    let out = dir.path().join("run");
    let (ok, stdout, stderr) = ela(&[
        "train",
        "--model",
        "resnet18_ela",
        "--pretrained",
        weights.to_str().unwrap(),
        "--epochs",
        "1",
        "--limit-train",
        "64",
        "--limit-test",
        "32",
        "--batch-size",
        "16",
        "--windows",
        "none",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    // Everything but the 10-class head came from the file: resnet18_mrlab's deep stem (3
    // convolutions, 3 BNs of 4 tensors), 8 blocks × 17 (2 convolutions, 2 BNs, Wq, Wk, Wv,
    // bn_mrla) and 3 downsamples × 5.
    assert!(
        stdout.contains("pretrained: 166 tensors") && stdout.contains("(new 10-class head)"),
        "{stdout}"
    );
    assert!(stdout.contains("ela imagenet ResNet-18"), "{stdout}");
    let config = json(&out.join("config.json"));
    assert_eq!(config["arch"], "imagenet");
    assert_eq!(config["depth"], 18);
    assert_eq!(config["attention"], "ela");

    let (ok, _, stderr) = ela(&[
        "train",
        "--model",
        "resnet18",
        "--pretrained",
        "/nonexistent/w.pth",
    ]);
    assert!(
        !ok && stderr.contains("--pretrained") && stderr.contains("/nonexistent/w.pth"),
        "{stderr}"
    );
}

#[test]
fn imagenet_folders_train_with_the_imagenet_recipe() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ela-data/tests/fixtures/imagefolder");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (ok, stdout, stderr) = ela(&[
        "train",
        "--dataset",
        "imagenet",
        "--data-dir",
        data.to_str().unwrap(),
        "--model",
        "resnet18_ela",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--workers",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    // Five images in three class folders (notes.txt is not one); two validation images.
    assert!(
        stdout.contains("ResNet-18 on imagenet") && stdout.contains("5 train / 2 test images"),
        "{stdout}"
    );
    let config = json(&out.join("config.json"));
    // SPEC §4's ImageNet recipe: lr 0.1 × batch / 256, label smoothing 0.1, no decay on BN and
    // biases, zero-init of the last BN, cosine after warm-up (3 epochs, capped at the run's 2),
    // ImageNet normalization; SPEC §3.3's ImageNet EBQM defaults and windows.
    assert_eq!(config["lr"], 0.1 * 4.0 / 256.0);
    assert_eq!(config["label_smoothing"], 0.1);
    assert_eq!(config["decay_norm_and_bias"], false);
    assert_eq!(config["zero_init_last_bn"], true);
    assert_eq!(config["warmup_epochs"], 2);
    assert_eq!(config["workers"], 2);
    assert_eq!(config["normalization"]["mean"][0], 0.485f32 as f64);
    let ebqm = &config["resolved_pruning"]["method"];
    assert_eq!(
        (&ebqm["method"], &ebqm["alpha"], &ebqm["beta"], &ebqm["tau"]),
        (&"ebqm".into(), &2.0.into(), &5.0.into(), &0.25.into()),
        "{config}"
    );
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "{metrics}");
    let summary = ela_records::read_summary(&out).unwrap();
    assert!(summary.get("test_loss").unwrap().is_finite());

    // The error for a folder that is not ImageNet's layout names what is missing.
    let (ok, _, stderr) = ela(&[
        "train",
        "--dataset",
        "imagenet",
        "--depth",
        "18",
        "--data-dir",
        data.join("train").to_str().unwrap(),
        "--out",
        dir.path().join("run2").to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("train/train") && stderr.contains("image-folder layout"),
        "{stderr}"
    );
    // `--dataset imagenet` implies the ImageNet ResNets: depth 50 is valid without --arch, and
    // what stops the run is the missing dataset.
    let (ok, _, stderr) = ela(&[
        "train",
        "--dataset",
        "imagenet",
        "--depth",
        "50",
        "--attention",
        "ela",
        "--data-dir",
        dir.path().join("none").to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("fetch imagenet --from") && !stderr.contains("--depth"),
        "{stderr}"
    );
}

#[test]
fn bench_measures_every_variant_at_every_depth_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let (ok, stdout, stderr) = ela(&[
        "bench",
        "--depths",
        "20,29",
        "--batch-size",
        "2",
        "--input",
        "3,8,8",
        "--num-classes",
        "10",
        "--warmup",
        "0",
        "--rounds",
        "2",
        "--json",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("### CIFAR ResNet-29"), "{stdout}");
    let report = json(&out);
    assert!(!report["revision"].as_str().unwrap().is_empty());
    assert!(report["host"]["threads"].as_u64().unwrap() >= 1);
    let depths = report["depths"].as_array().unwrap();
    assert_eq!(depths.len(), 2);
    // Parameter counts: SPEC §1 (ResNet-20, 10 classes) plus Wq, Wk, Wv and bn_mrla of every
    // block (+9,908), plus MRLA-L's λ_t (+896 = 2·(64 + 128 + 256)).
    let params: Vec<u64> = depths[0]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["parameters"].as_u64().unwrap())
        .collect();
    assert_eq!(params, [220_378, 231_182, 230_286, 230_286, 230_286]);
    for (depth, skipped) in depths.iter().zip([vec![1, 3, 5], vec![1, 4, 7]]) {
        let variants = depth["variants"].as_array().unwrap();
        let names: Vec<&str> = variants
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["none", "mrla-l", "mrla-b", "ela-full", "ela-retrieval"]
        );
        for v in variants {
            let name = v["name"].as_str().unwrap();
            let expected_skips: &[u64] = if name.starts_with("ela") {
                &skipped
            } else {
                &[]
            };
            let got: Vec<u64> = v["skipped"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap())
                .collect();
            assert_eq!(got, expected_skips, "{name}");
            for kind in ["train", "inference"] {
                let t = &v[kind];
                let seconds = t["seconds"].as_array().unwrap();
                assert_eq!(seconds.len(), 2, "{name} {kind}");
                let (min, med, max) = (
                    t["min_seconds"].as_f64().unwrap(),
                    t["median_seconds"].as_f64().unwrap(),
                    t["max_seconds"].as_f64().unwrap(),
                );
                assert!(0.0 < min && min <= med && med <= max, "{name} {kind}: {t}");
                // Each variant is its own reference in its round.
                if name == "none" {
                    assert_eq!(t["ratio_to_plain"].as_f64(), Some(1.0));
                }
                if name == "mrla-b" {
                    assert_eq!(t["ratio_to_mrla_b"].as_f64(), Some(1.0));
                }
            }
            // Peak memory, each variant in a process of its own: the training peak includes the
            // inference pass that came first.
            let m = &v["memory"];
            let (rest, inference, train) = (
                m["resting_bytes"].as_u64().unwrap(),
                m["inference_bytes"].as_u64().unwrap(),
                m["train_bytes"].as_u64().unwrap(),
            );
            assert!(rest > 0 && train >= inference, "{name}: {m}");
            assert_eq!(m["kind"], "resident", "flex reports no device pools");
        }
    }

    // The ImageNet family: its own depths, layout and defaults (1,000 classes); the parameter
    // counts are `summary`'s, which the PyTorch reference's check matches.
    let out = dir.path().join("imagenet.json");
    let (ok, _, stderr) = ela(&[
        "bench",
        "--arch",
        "imagenet",
        "--depths",
        "18",
        "--batch-size",
        "2",
        "--input",
        "3,32,32",
        "--warmup",
        "0",
        "--rounds",
        "1",
        "--no-memory",
        "--json",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let report = json(&out);
    let depth = &report["depths"][0];
    assert_eq!(depth["arch"], "imagenet");
    let variants = depth["variants"].as_array().unwrap();
    let params: Vec<u64> = variants
        .iter()
        .map(|v| v["parameters"].as_u64().unwrap())
        .collect();
    assert_eq!(
        params,
        [11_689_512, 11_712_624, 11_729_936, 11_729_936, 11_729_936]
    );
    // ResNet-18's stages hold 2 blocks each: every second one is skipped.
    assert_eq!(variants[3]["skipped"], serde_json::json!([1, 3, 5, 7]));
    assert!(variants.iter().all(|v| v.get("memory").is_none()));
    let (ok, _, stderr) = ela(&["bench", "--arch", "imagenet", "--depths", "56"]);
    assert!(!ok && stderr.contains("--depths: 56"), "{stderr}");

    let (ok, _, stderr) = ela(&["bench", "--depths", "20,56", "--skip", "1"]);
    assert!(!ok && stderr.contains("--skip"), "{stderr}");
    let (ok, _, stderr) = ela(&["bench", "--depths", "20,21"]);
    assert!(!ok && stderr.contains("--depths: 21"), "{stderr}");
    let (ok, _, stderr) = ela(&["bench", "--depths", "20", "--skip", "0"]);
    assert!(!ok && stderr.contains("--skip"), "{stderr}");
}

#[test]
fn retrieval_bench_times_every_memory_length_and_every_value_map_pass() {
    let (ok, stdout, stderr) = ela(&[
        "bench-retrieval",
        "--channels",
        "16",
        "--size",
        "4",
        "--batch-size",
        "2",
        "--max-entries",
        "3",
        "--reps",
        "1",
    ]);
    assert!(ok, "{stderr}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| entries") && !l.starts_with("| pass"))
        .collect();
    let first: Vec<&str> = rows
        .iter()
        .map(|r| r.split('|').nth(1).unwrap().trim())
        .collect();
    // t = 1, 2, 3, then the value map's four passes (each with gradients of what it names).
    assert_eq!(
        first,
        [
            "1",
            "2",
            "3",
            "forward",
            "forward + backward (input and weights)",
            "forward + backward (input only)",
            "forward + backward (weights only)"
        ],
        "{stdout}"
    );
    for row in rows {
        let ms: f64 = row.split('|').nth(2).unwrap().trim().parse().unwrap();
        assert!(ms > 0.0, "{row}");
    }
}

/// `bench --task detect --pytorch PYTHON`: the reference gets the same size, batch, objects,
/// rounds, threads and seed, and its times are set beside ours with their ratio. (A stand-in
/// for Python records its arguments and answers as `bench/pytorch/detect.py` does.)
#[test]
fn the_detector_bench_sets_torchvision_beside_ours_on_the_same_setting() {
    let dir = tempfile::tempdir().unwrap();
    let args_file = dir.path().join("args.txt");
    let python = dir.path().join("python");
    std::fs::write(
        &python,
        format!(
            "#!/bin/sh\necho \"$@\" > {}\necho '{{\"framework\": \"pytorch test\", \"device\": \
             \"cpu, 2 threads\", \"parameters\": 41755286, \"train\": {{\"median\": 0.5, \
             \"steps\": [0.5]}}, \"inference\": {{\"median\": 0.25, \"steps\": [0.25]}}}}'\n",
            args_file.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (ok, stdout, stderr) = ela(&[
        "bench",
        "--task",
        "detect",
        "--depth",
        "18",
        "--size",
        "64,96",
        "--batch-size",
        "1",
        "--objects",
        "2",
        "--rounds",
        "1",
        "--warmup",
        "0",
        "--pytorch",
        python.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let passed = std::fs::read_to_string(&args_file).unwrap();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        passed.contains("bench/pytorch/detect.py")
            && passed.contains("--size 64,96 --batch-size 1 --objects 2 --rounds 1 --warmup 0")
            && passed.contains(&format!("--threads {threads} --seed 0")),
        "{passed}"
    );
    assert!(
        stdout.contains("| training step |")
            && stdout.contains("| inference |")
            && stdout
                .contains("torchvision: pytorch test (cpu, 2 threads); 41755286 parameters, ours"),
        "{stdout}"
    );
}
