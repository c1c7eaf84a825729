//! `ela reproduce`: which runs a table asks for, what a smoke run trains, that finished runs are
//! not trained again, and the results table computed from the runs' summaries.

use std::path::Path;

use ela_cli::reproduce::{
    PaperValue, ReproduceArgs, RunState, Scale, reproduce, rows, run_config, run_state,
};
use ela_records::{RunSummary, TaskKind, Value};
use ela_train::backend::Backend;
use ela_train::classify::{DatasetName, Method};

fn experiments(root: &Path) -> std::path::PathBuf {
    let dir = root.join("experiments");
    let table = dir.join("table4");
    std::fs::create_dir_all(&table).unwrap();
    std::fs::write(
        table.join("cifar100-resnet56-ebqm.toml"),
        "dataset = \"cifar100\"\ndepth = 56\nattention = \"ela\"\nprune-method = \"ebqm\"\n\
         [paper]\ntable = \"4\"\ntop1 = 74.31\ntop1_std = 0.24\n",
    )
    .unwrap();
    std::fs::write(
        table.join("cifar100-resnet20-fixed.toml"),
        "dataset = \"cifar100\"\ndepth = 20\nattention = \"ela\"\nprune-method = \"fixed\"\nk = 3\n\
         [paper]\ntable = \"4\"\ntop1 = 73.79\n",
    )
    .unwrap();
    std::fs::write(table.join("notes.md"), "not a config").unwrap();
    dir
}

fn args(root: &Path) -> ReproduceArgs {
    ReproduceArgs {
        table: "4".into(),
        task: None,
        rows: Vec::new(),
        runs: 3,
        seed: 10,
        scale: Scale::Smoke,
        backend: Backend::Cpu,
        experiments: experiments(root),
        runs_dir: root.join("runs"),
        results: root.join("results"),
        dry_run: false,
    }
}

fn finish(dir: &Path, seed: u64, acc: f64, skipped: Vec<usize>) {
    std::fs::create_dir_all(dir).unwrap();
    summary(
        dir,
        seed,
        TaskKind::Classify,
        vec![Value::new("test_acc", acc)],
        skipped,
    );
}

/// Writes the `summary.json` of a finished run of `task` with `values` at its last epoch.
fn summary(dir: &Path, seed: u64, task: TaskKind, values: Vec<Value>, skipped: Vec<usize>) {
    std::fs::create_dir_all(dir).unwrap();
    let s = RunSummary {
        task,
        run_dir: dir.to_path_buf(),
        git_revision: "test".into(),
        seed,
        device: "cpu".into(),
        parameters: 1,
        trainable_parameters: 1,
        epochs: 2,
        final_values: values,
        skipped,
        train_seconds: vec![2.0, 4.0],
        total_seconds: 7.0,
        resume_overrides: Vec::new(),
    };
    ela_records::write_json(&dir.join("summary.json"), &s).unwrap();
}

#[test]
fn smoke_runs_train_the_embedded_sample_at_capped_depth() {
    let tmp = tempfile::tempdir().unwrap();
    let a = args(tmp.path());
    let (table, rows) = rows(&a.experiments, "4").unwrap();
    assert_eq!(table, "table4");
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["cifar100-resnet20-fixed", "cifar100-resnet56-ebqm"]);
    let paper: PaperValue = rows[1].paper().unwrap();
    assert_eq!((paper.top1, paper.top1_std), (Some(74.31), Some(0.24)));

    let out = tmp.path().join("run");
    let smoke = run_config(&rows[1], 11, Scale::Smoke, Backend::Cpu, &out).unwrap();
    assert_eq!(smoke.dataset, DatasetName::Mnist);
    assert_eq!(
        smoke.resolve().unwrap().depth,
        29,
        "ResNet-56 is trained as ResNet-29 at smoke scale"
    );
    assert_eq!(smoke.attention, Method::Ela);
    assert_eq!(smoke.resolve().unwrap().epochs, 3);
    assert_eq!(smoke.seed, 11);
    assert_eq!(smoke.out.as_deref(), Some(out.as_path()));
    let smoke20 = run_config(&rows[0], 11, Scale::Smoke, Backend::Cpu, &out).unwrap();
    assert_eq!(smoke20.resolve().unwrap().depth, 20);
    assert_eq!(smoke20.prune.k, 3, "the row's own settings are kept");

    let full = run_config(&rows[1], 11, Scale::Full, Backend::Cpu, &out).unwrap();
    assert_eq!(full.dataset, DatasetName::Cifar100);
    assert_eq!(
        (
            full.resolve().unwrap().depth,
            full.resolve().unwrap().epochs
        ),
        (56, 180)
    );

    let err = format!("{:#}", rows_err(&a.experiments, "table9"));
    assert!(err.contains("no table 'table9'"), "{err}");
}

fn rows_err(dir: &Path, table: &str) -> anyhow::Error {
    rows(dir, table).unwrap_err()
}

#[test]
fn finished_runs_are_not_trained_again_and_the_table_is_computed_from_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = args(tmp.path());
    let root = a.runs_dir.join("smoke/table4");
    // Every run of the ebqm row is finished; the fixed row is not asked for.
    a.rows = vec!["cifar100-resnet56-ebqm".into()];
    for (seed, acc, skipped) in [
        (10, 90.0, vec![1, 4]),
        (11, 91.0, vec![4]),
        (12, 92.0, vec![]),
    ] {
        finish(
            &root.join(format!("cifar100-resnet56-ebqm/seed-{seed}")),
            seed,
            acc,
            skipped,
        );
    }
    let out = reproduce(&a).unwrap();
    assert_eq!(out, a.results.join("table4-smoke.md"));
    let md = std::fs::read_to_string(&out).unwrap();
    // Accuracy 91 ± 1 (sample std), skipped 1 ± 1 blocks, 3 s per epoch.
    assert!(
        md.contains("| cifar100-resnet56-ebqm | 74.31 ± 0.24 | 91.00 ± 1.00 | 3 | 1.0 ± 1.0 | 3.0 ± 0.0 | - |"),
        "{md}"
    );
    assert!(
        !md.contains("resnet20"),
        "rows not asked for are left out:\n{md}"
    );
    assert!(
        md.contains("seed 10: [1, 4]; seed 11: [4]; seed 12: []"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.with_extension("json")).unwrap())
            .unwrap();
    assert_eq!(json[0]["test_acc"], serde_json::json!([90.0, 91.0, 92.0]));

    // Unknown rows are refused before anything runs.
    a.rows = vec!["cifar100-resnet56-nope".into()];
    let err = format!("{:#}", reproduce(&a).unwrap_err());
    assert!(err.contains("has no row 'cifar100-resnet56-nope'"), "{err}");
}

#[test]
fn a_row_without_finished_runs_says_not_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = args(tmp.path());
    a.dry_run = true;
    let out = reproduce(&a).unwrap();
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(
        md.contains("| cifar100-resnet20-fixed | 73.79 | not run | 0 |"),
        "a dry run writes the table of what is finished: {md}"
    );
    let dir = a
        .runs_dir
        .join("smoke/table4/cifar100-resnet20-fixed/seed-10");
    assert!(matches!(run_state(&dir).unwrap(), RunState::New));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("summary.json"), b"{\"run_dir\":").unwrap();
    let err = format!("{:#}", run_state(&dir).unwrap_err());
    assert!(
        err.contains("summary.json") && err.contains("not a valid run summary"),
        "{err}"
    );

    let results = ela_cli::reproduce::results_markdown(
        "table4",
        Scale::Full,
        5,
        "cargo xtask reproduce table4",
        &[ela_cli::reproduce::RowResult {
            row: "cifar100-resnet56-ebqm".into(),
            paper: Default::default(),
            seeds: vec![],
            test_acc: vec![],
            skipped: vec![],
            epoch_seconds: vec![],
            failed: vec![],
        }],
    );
    assert!(
        results.contains("| cifar100-resnet56-ebqm | - | not run | 0 | not run | not run | - |"),
        "{results}"
    );
}

#[test]
fn imagenet_rows_run_full_on_imagenet_and_smoke_as_cifar_resnet29() {
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let (_, table3) = rows(&experiments, "3").unwrap();
    let names: Vec<&str> = table3.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.len(), 6, "{names:?}");
    let ela50 = table3
        .iter()
        .find(|r| r.name == "imagenet-resnet50-ela")
        .unwrap();
    let paper: PaperValue = ela50.paper().unwrap();
    assert_eq!(paper.train_hours, Some(2.6));
    let out = Path::new("unused");
    let full = run_config(ela50, 1, Scale::Full, Backend::Cpu, out).unwrap();
    assert_eq!(
        (
            full.dataset,
            full.resolve().unwrap().arch,
            full.resolve().unwrap().depth,
            full.attention
        ),
        (
            DatasetName::Imagenet,
            ela_model::Arch::Imagenet,
            50,
            Method::Ela
        )
    );
    assert_eq!(
        (
            full.resolve().unwrap().epochs,
            full.resolve().unwrap().batch_size
        ),
        (100, 256)
    );
    let smoke = run_config(ela50, 1, Scale::Smoke, Backend::Cpu, out).unwrap();
    assert_eq!(
        (
            smoke.dataset,
            smoke.resolve().unwrap().arch,
            smoke.resolve().unwrap().depth,
            smoke.attention
        ),
        (DatasetName::Mnist, ela_model::Arch::Cifar, 29, Method::Ela)
    );

    // A row naming a registered model: smoke keeps its attention on ResNet-29.
    let tmp = tempfile::tempdir().unwrap();
    let table = tmp.path().join("table3");
    std::fs::create_dir_all(&table).unwrap();
    std::fs::write(
        table.join("r50-mrlab.toml"),
        "model = \"resnet50_mrlab\"\ndataset = \"imagenet\"\n[paper]\ntrain_hours = 3.7\n",
    )
    .unwrap();
    let (_, named) = rows(tmp.path(), "3").unwrap();
    let smoke = run_config(&named[0], 1, Scale::Smoke, Backend::Cpu, out).unwrap();
    let smoke = smoke.resolve().unwrap();
    assert_eq!(
        (smoke.arch, smoke.depth, smoke.attention.name()),
        (ela_model::Arch::Cifar, 29, "mrla-b")
    );

    // The results table shows the paper's hours beside our per-epoch time.
    let md = ela_cli::reproduce::results_markdown(
        "table3",
        Scale::Full,
        1,
        "cmd",
        &[ela_cli::reproduce::RowResult {
            row: "imagenet-resnet50-ela".into(),
            paper,
            seeds: vec![1],
            test_acc: vec![77.0],
            skipped: vec![vec![1]],
            epoch_seconds: vec![100.0],
            failed: Vec::new(),
        }],
    );
    assert!(md.contains("paper training time (h) |"), "{md}");
    assert!(
        md.lines()
            .any(|l| l.starts_with("| imagenet-resnet50-ela |") && l.ends_with(" 2.6 |")),
        "{md}"
    );
}

/// Table 5's 28 checked-in rows all parse and resolve; at smoke scale the ResNet-50 and
/// ResNet-101 rows of a detector and attention share one run (14 runs per seed); a finished run
/// is read into both rows, beside the paper's values, and the rows without one say "not run".
#[test]
fn table5_rows_resolve_share_smoke_runs_and_report_beside_the_paper() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let (table, all) = rows(&repo, "5").unwrap();
    assert_eq!((table.as_str(), all.len()), ("table5", 28));
    let mut a = ReproduceArgs {
        table: "table5".into(),
        task: None,
        rows: vec![
            "mask-rcnn-r50-ela".into(),
            "mask-rcnn-r101-ela".into(),
            "faster-rcnn-r50-rla".into(),
        ],
        runs: 1,
        seed: 7,
        scale: Scale::Smoke,
        backend: Backend::Cpu,
        experiments: repo.clone(),
        runs_dir: dir.path().join("runs"),
        results: dir.path().join("results"),
        dry_run: true,
    };
    // Every row resolves (the dry run builds every run's flags first).
    let every = ReproduceArgs {
        rows: Vec::new(),
        ..a.clone()
    };
    reproduce(&every).unwrap();

    // One finished smoke run of Mask R-CNN with ELA: box AP 0.2, mask AP 0.1 at its last epoch.
    let run = dir.path().join("runs/smoke/table5/mask-rcnn-ela/seed-7");
    let stats = |prefix: &str, ap: f64| {
        ela_detect::CocoStats::KEYS
            .iter()
            .map(|k| {
                let v = match *k {
                    "AP" => ap,
                    "AP50" => 2.0 * ap,
                    "AP75" => ap / 2.0,
                    _ => 0.0,
                };
                Value::new(format!("{prefix}{k}"), v)
            })
            .collect::<Vec<_>>()
    };
    let mut values = stats("", 0.2);
    values.extend(stats("segm_", 0.1));
    summary(&run, 7, TaskKind::Detect, values, vec![7]);
    // A --task that is not the table's is refused.
    let err = format!(
        "{:#}",
        reproduce(&ReproduceArgs {
            task: Some(ela_train::runtime::TaskName(TaskKind::Classify)),
            ..a.clone()
        })
        .unwrap_err()
    );
    assert!(err.contains("table5's rows are detect configs"), "{err}");
    a.dry_run = false;
    // The RLA row has no run: a dry run lists it, a real one would train it; leave it out.
    a.rows.pop();
    let out = reproduce(&a).unwrap();
    let md = std::fs::read_to_string(&out).unwrap();
    assert_eq!(out, dir.path().join("results/table5-smoke.md"));
    // Box AP 20.0%, mask AP 10.0% from the last epoch, beside the paper's 41.4 and 37.3.
    for row in ["mask-rcnn-r50-ela", "mask-rcnn-r101-ela"] {
        let line = md
            .lines()
            .find(|l| l.starts_with(&format!("| {row} |")))
            .unwrap();
        assert!(
            line.contains("/ 20.0 |") && line.contains("/ 10.0 |"),
            "{line}"
        );
        assert!(!line.contains("not run"), "{line}");
    }
    let r50 = md
        .lines()
        .find(|l| l.starts_with("| mask-rcnn-r50-ela |"))
        .unwrap();
    assert!(
        r50.contains("| 44.3M | 44.3M / 44.6M |") && r50.contains("41.4 / 20.0"),
        "{r50}"
    );

    // With the RLA row, a dry run lists its run and reports it as not run.
    a.rows.push("faster-rcnn-r50-rla".into());
    a.dry_run = true;
    let md = std::fs::read_to_string(reproduce(&a).unwrap()).unwrap();
    let rla = md
        .lines()
        .find(|l| l.starts_with("| faster-rcnn-r50-rla |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        rla.contains("38.8 / not run") && rla.contains("| 0 |"),
        "{rla}"
    );
    assert!(
        md.contains("/ 20.0 |"),
        "the finished run is still read: {md}"
    );
}
