//! The tasks every run-directory test runs for: a short run of each on the CPU backend, and the
//! real `ela` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A task's short run and the files that hold its results.
pub struct Task {
    /// `classify` or `detect`.
    pub name: &'static str,
    /// `train …` flags of a short ELA run (one block skipped at each of its window ends with
    /// `fixed` pruning); a test adds `--out`.
    pub train: Vec<String>,
    /// The final weights' file.
    pub weights: &'static str,
    /// The task's own per-epoch records, besides `metrics.csv` and `pruning.json`.
    pub records: &'static [&'static str],
}

impl Task {
    /// `self.train` with more flags.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = self.train.clone();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// `self.train` with `extra` and `--out out`.
    pub fn run_args(&self, out: &Path, extra: &[&str]) -> Vec<String> {
        self.args(&[extra, &["--out", s(out)]].concat())
    }
}

/// The short run of the task called `name` (`classify` or `detect`), its data under `data`.
pub fn task(data: &Path, name: &str) -> Task {
    tasks(data)
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no task {name}"))
}

/// The tasks' short runs: 4 epochs of ELA with pruning windows 1–2 and 3. The detector reads
/// the digit set from `data` (made on first use, shared by the tests' runs).
pub fn tasks(data: &Path) -> Vec<Task> {
    let strings = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let common = [
        "--epochs",
        "4",
        "--windows",
        "1-2,3",
        "--prune-method",
        "fixed",
    ];
    vec![
        Task {
            name: "classify",
            train: strings(
                &[
                    &[
                        "train",
                        "--depth",
                        "20",
                        "--limit-train",
                        "160",
                        "--limit-test",
                        "64",
                        "--batch-size",
                        "32",
                        "--seed",
                        "3",
                    ][..],
                    &common,
                ]
                .concat(),
            ),
            weights: "model.safetensors",
            records: &["attention.json"],
        },
        Task {
            name: "detect",
            train: strings(
                &[
                    &[
                        "train",
                        "--task",
                        "detect",
                        "--data-dir",
                        s(&data.join("digits")),
                        "--limit-train",
                        "16",
                        "--limit-val",
                        "8",
                        "--batch-size",
                        "4",
                        "--seed",
                        "3",
                    ][..],
                    &common,
                ]
                .concat(),
            ),
            weights: "model.bpk",
            records: &["coco.json"],
        },
    ]
}

/// A path as a flag's value.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `ela` with output captured.
pub fn ela() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ela"));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Exit code, standard output and standard error of `ela args` with `env`.
pub fn run(args: &[String], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out: Output = ela().args(args).envs(env.iter().copied()).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ela args`, which must succeed; its standard output.
pub fn run_ok(args: &[String]) -> String {
    let (code, stdout, stderr) = run(args, &[]);
    assert_eq!(code, Some(0), "{args:?}\n{stdout}\n{stderr}");
    stdout
}

/// Strings from `&str`s.
pub fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// A JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `metrics.csv` of a run without its time columns.
pub fn metrics(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !header[i].ends_with("_seconds"))
        .collect();
    std::iter::once(header.join(","))
        .chain(lines.map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| f[i]).collect::<Vec<_>>().join(",")
        }))
        .collect()
}

/// The tensors of two safetensors files that are not bit-identical.
pub fn differing_tensors(a: &Path, b: &Path) -> Vec<String> {
    let (ba, bb) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    let (sa, sb) = (
        safetensors::SafeTensors::deserialize(&ba).unwrap(),
        safetensors::SafeTensors::deserialize(&bb).unwrap(),
    );
    let mut names: Vec<String> = sa.names().into_iter().map(|n| n.to_string()).collect();
    names.sort();
    let mut other: Vec<String> = sb.names().into_iter().map(|n| n.to_string()).collect();
    other.sort();
    assert_eq!(names, other, "same tensors");
    names
        .into_iter()
        .filter(|n| sa.tensor(n).unwrap().data() != sb.tensor(n).unwrap().data())
        .collect()
}

/// Whether two runs' final weights are the same: every tensor bit-identical (safetensors,
/// whose file layout may differ), or the same bytes (a Burn record).
pub fn same_weights(a: &Path, b: &Path) -> Result<(), String> {
    if a.extension().is_some_and(|e| e == "safetensors") {
        let differing = differing_tensors(a, b);
        return if differing.is_empty() {
            Ok(())
        } else {
            Err(format!("tensors differ: {differing:?}"))
        };
    }
    if std::fs::read(a).unwrap() == std::fs::read(b).unwrap() {
        Ok(())
    } else {
        Err(format!("{} and {} differ", a.display(), b.display()))
    }
}

/// A run directory path under `root`.
pub fn dir(root: &Path, name: &str) -> PathBuf {
    root.join(name)
}

/// One test per task: `per_task!(name, body)` makes the module `name` with a test for each
/// task, each calling `body(&task, tempdir)`.
macro_rules! per_task {
    ($name:ident, $body:path) => {
        mod $name {
            fn case(task: &str) {
                let root = tempfile::tempdir().unwrap();
                let task = crate::tasks::task(root.path(), task);
                $body(&task, root.path());
            }

            #[test]
            fn classify() {
                case("classify");
            }

            #[test]
            fn detect() {
                case("detect");
            }
        }
    };
}
