//! A real training process of each task, killed with SIGKILL in the middle of an epoch and of a
//! pruning window, or in the middle of writing a checkpoint, then resumed with a plain `train
//! --resume DIR` (the run directory knows its task), ends exactly where an uninterrupted run
//! with the same seed ends: the same per-epoch records (timings aside), pruning decisions and
//! task records, and bit-identical weights.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::tasks::{Task, ela, json, metrics, run, run_ok, s, same_weights, strings};
use ela_records::checkpoint::{checkpoint_dir, latest_complete};

/// The two runs ended in the same place.
fn assert_same(task: &Task, a: &Path, b: &Path) {
    assert_eq!(metrics(a), metrics(b), "{}: metrics.csv", task.name);
    for file in ["pruning.json"].iter().chain(task.records) {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{}: {file}",
            task.name
        );
    }
    same_weights(&a.join(task.weights), &b.join(task.weights))
        .unwrap_or_else(|e| panic!("{}: {e}", task.name));
}

fn a_killed_run_resumes_to_the_same_result(task: &Task, root: &Path) {
    let whole = root.join("whole");
    run_ok(&task.run_args(&whole, &[]));

    // Killed during epoch 2: inside the window 1-2, whose KL sums of epoch 1 live only in the
    // checkpoint.
    let broken = root.join("broken");
    let mut child = ela().args(task.run_args(&broken, &[])).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while latest_complete(&checkpoint_dir(&broken)).is_none() {
        assert!(Instant::now() < deadline, "no checkpoint after epoch 1");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(latest_complete(&checkpoint_dir(&broken)), Some(1));
    assert!(!broken.join(task.weights).exists());
    run_ok(&strings(&["train", "--resume", s(&broken)]));
    assert_same(task, &whole, &broken);
    // The run's time counts both processes: at least every epoch's seconds.
    let epochs: f64 = ela_records::read_metrics(&broken.join("metrics.csv"))
        .unwrap()
        .iter()
        .map(|e| e.epoch_seconds)
        .sum();
    let total = json(&broken.join("summary.json"))["total_seconds"]
        .as_f64()
        .unwrap();
    assert!(total >= epochs, "total {total} s < the epochs' {epochs} s");

    // Killed in the middle of writing epoch 2's model record: its temporary file is left, the
    // checkpoint of epoch 1 is the newest complete one.
    let crashed = root.join("crashed");
    let (code, _, stderr) = run(
        &task.run_args(&crashed, &[]),
        &[(ela_records::files::CRASH_BEFORE_RENAME, "model-2.bpk")],
    );
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("aborting before"), "{stderr}");
    assert_eq!(latest_complete(&checkpoint_dir(&crashed)), Some(1));
    let stdout = run_ok(&strings(&["train", "--resume", s(&crashed)]));
    assert!(stdout.contains("unfinished temporary file(s)"), "{stdout}");
    assert_same(task, &whole, &crashed);

    // A finished run has nothing to resume.
    let (code, _, stderr) = run(&strings(&["train", "--resume", s(&whole)]), &[]);
    assert!(
        code == Some(1) && stderr.contains("already finished all 4 epochs"),
        "{stderr}"
    );
    // A run that stopped before its first checkpoint starts again from epoch 1 with its own
    // configuration, and ends where the uninterrupted run ends.
    let empty = root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::copy(whole.join("config.json"), empty.join("config.json")).unwrap();
    run_ok(&strings(&["train", "--resume", s(&empty)]));
    assert_same(task, &whole, &empty);
}

per_task!(
    a_killed_run_resumes_to_the_same_result,
    super::a_killed_run_resumes_to_the_same_result
);

/// A diverging run stops at the first non-finite loss, names the epoch and step, saves nothing
/// of that epoch, and says how to go on.
fn divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(task: &Task, root: &Path) {
    let out = root.join("nan");
    let args = task.run_args(&out, &["--lr", "1e30", "--epochs", "2", "--windows", "1"]);
    let (code, _, stderr) = run(&args, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("NaN or infinite at epoch 1, step")
            && stderr.contains("--resume starts the run again from epoch 1")
            && stderr.contains("--lr <lower>"),
        "{stderr}"
    );
    assert_eq!(latest_complete(&checkpoint_dir(&out)), None);
    assert!(!out.join(task.weights).exists());
    assert!(
        out.join("config.json").exists(),
        "the run directory keeps its record"
    );
}

per_task!(
    divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint,
    super::divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint
);
