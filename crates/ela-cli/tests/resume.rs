//! A real training process killed with SIGKILL in the middle of an epoch and of a pruning window,
//! then resumed, ends exactly where an uninterrupted run with the same seed ends: the same
//! metrics (timings aside), the same pruning decisions and mask, bit-identical weights.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ela_records::PruningRecord;
use ela_train::checkpoint::latest_complete;
use ela_train::train::checkpoint_dir;

const ARGS: [&str; 17] = [
    "train",
    "--depth",
    "20",
    "--limit-train",
    "160",
    "--limit-test",
    "64",
    "--batch-size",
    "32",
    "--epochs",
    "4",
    "--windows",
    "1-2,3",
    "--seed",
    "3",
    "--prune-method",
    "fixed",
];

fn ela() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ela"));
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn run_to_end(args: &[&str]) {
    let out = ela().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// metrics.csv without the two timing columns.
fn metrics(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            [&f[..6], &f[8..]].concat().join(",")
        })
        .collect()
}

/// Tensors of the two runs' `model.safetensors` that are not bit-identical, with their largest
/// difference.
fn differing_tensors(a: &Path, b: &Path) -> Vec<(String, f32)> {
    let (ba, bb) = (
        std::fs::read(a.join("model.safetensors")).unwrap(),
        std::fs::read(b.join("model.safetensors")).unwrap(),
    );
    let (sa, sb) = (
        safetensors::SafeTensors::deserialize(&ba).unwrap(),
        safetensors::SafeTensors::deserialize(&bb).unwrap(),
    );
    let mut names: Vec<String> = sa.names().into_iter().map(|n| n.to_string()).collect();
    names.sort();
    let mut nb: Vec<String> = sb.names().into_iter().map(|n| n.to_string()).collect();
    nb.sort();
    assert_eq!(names, nb, "same tensors");
    names
        .into_iter()
        .filter_map(|n| {
            let (x, y) = (sa.tensor(&n).unwrap(), sb.tensor(&n).unwrap());
            if x.data() == y.data() {
                return None;
            }
            let f = |d: &[u8]| -> Vec<f32> {
                d.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect()
            };
            let diff = f(x.data())
                .iter()
                .zip(f(y.data()))
                .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            Some((n, diff))
        })
        .collect()
}

#[test]
fn a_killed_run_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let broken = dir.path().join("broken");
    let with_out = |out: &Path| -> Vec<String> {
        ARGS.iter()
            .map(|s| s.to_string())
            .chain(["--out".to_string(), out.display().to_string()])
            .collect()
    };

    let args = with_out(&whole);
    run_to_end(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // Kill the second run during epoch 2: inside the window 1-2, whose KL sums of epoch 1 live
    // only in the checkpoint.
    let mut child = ela().args(with_out(&broken)).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while latest_complete(&checkpoint_dir(&broken)).is_none() {
        assert!(Instant::now() < deadline, "no checkpoint after epoch 1");
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the run ended ({status}) before it could be killed: {err}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Epoch 1's checkpoint is complete, so the process is now in epoch 2.
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(
        latest_complete(&checkpoint_dir(&broken)),
        Some(1),
        "killed during epoch 2"
    );
    assert!(!broken.join("model.safetensors").exists());

    run_to_end(&["train", "--resume", broken.to_str().unwrap()]);

    assert_eq!(metrics(&broken), metrics(&whole));
    let read = |run: &Path| -> PruningRecord {
        serde_json::from_str(&std::fs::read_to_string(run.join("pruning.json")).unwrap()).unwrap()
    };
    let (a, b) = (read(&whole), read(&broken));
    assert_eq!(a.final_mask, b.final_mask);
    assert_eq!(a.windows.len(), 2);
    for (wa, wb) in a.windows.iter().zip(&b.windows) {
        assert_eq!(wa.batches, wb.batches);
        assert_eq!(wa.newly_skipped, wb.newly_skipped);
        let kl = |w: &ela_records::WindowRecord| -> Vec<Option<f64>> {
            w.blocks.iter().map(|b| b.kl).collect()
        };
        assert_eq!(kl(wa), kl(wb), "window {}-{}", wa.start, wa.end);
    }
    let differing = differing_tensors(&whole, &broken);
    assert!(differing.is_empty(), "weights differ: {differing:?}");
    // The run's time counts both processes: at least every epoch's seconds, epoch 1 (trained by
    // the killed process) included.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(broken.join("summary.json")).unwrap())
            .unwrap();
    let epochs: f64 = std::fs::read_to_string(broken.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(7).unwrap().parse::<f64>().unwrap())
        .sum();
    let total = summary["total_seconds"].as_f64().unwrap();
    assert!(total >= epochs, "total {total} s < the epochs' {epochs} s");

    // A finished run has nothing to resume; a directory without checkpoints neither.
    let out = ela()
        .args(["train", "--resume", whole.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("already finished"),
        "{err}"
    );
    // A run that stopped before its first checkpoint starts again from epoch 1 with its own
    // configuration, and ends where the uninterrupted run ends.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::copy(whole.join("config.json"), empty.join("config.json")).unwrap();
    run_to_end(&["train", "--resume", empty.to_str().unwrap()]);
    assert_eq!(metrics(&empty), metrics(&whole));
    let differing = differing_tensors(&whole, &empty);
    assert!(differing.is_empty(), "weights differ: {differing:?}");
}

/// A diverging run stops at the first non-finite loss, names the epoch and step, saves nothing
/// of that epoch, and says how to go on.
#[test]
fn divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nan");
    let result = ela()
        .args([
            "train",
            "--attention",
            "none",
            "--limit-train",
            "96",
            "--limit-test",
            "32",
            "--batch-size",
            "32",
            "--epochs",
            "2",
            "--warmup-epochs",
            "0",
            "--lr",
            "1e30",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "{err}");
    assert!(
        err.contains("NaN or infinite at epoch 1, step")
            && err.contains("--resume starts the run again from epoch 1")
            && err.contains("--lr <lower>"),
        "{err}"
    );
    assert_eq!(latest_complete(&checkpoint_dir(&out)), None);
    assert!(!out.join("model.safetensors").exists());
    assert!(
        out.join("config.json").exists(),
        "the run directory keeps its record"
    );
}
