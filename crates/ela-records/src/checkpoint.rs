//! The checkpoint folder of a run directory, for every task.
//!
//! After every epoch K, `checkpoint/` receives, each file written atomically:
//! - `model-K.bpk`, `optim-K.bpk`, `scheduler-K.bpk`: Burn's records of the model (with its
//!   BatchNorm statistics), the optimizer's state (momentum buffers) and the learning-rate
//!   schedule (its position), written by the training runtime;
//! - `state-K.json`: a [`CheckpointState`], what Burn does not know: the skip mask, ELA's pending
//!   window sums and decisions, the epochs recorded so far, the time spent, what resumes changed.
//!
//! The checkpoint of epoch K is complete when all four files exist, so a crash at any moment
//! leaves the previous complete one intact; [`KEEP`] checkpoints are kept.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::epochs::EpochRecord;
use crate::files::write_json;
use crate::pruning::PruningRecord;
use crate::summary::ResumeOverride;

/// The checkpoint folder's name in a run directory.
pub const CHECKPOINT_DIR: &str = "checkpoint";

/// Checkpoints kept (older ones are deleted).
pub const KEEP: usize = 2;

/// Burn's records of a checkpoint, as file-name prefixes.
pub const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];

/// The checkpoint folder of the run in `run`.
pub fn checkpoint_dir(run: &Path) -> PathBuf {
    run.join(CHECKPOINT_DIR)
}

/// The Burn record `name` (one of [`RECORDS`]) of epoch `epoch` in the checkpoint folder `dir`.
pub fn record_path(dir: &Path, name: &str, epoch: usize) -> PathBuf {
    dir.join(format!("{name}-{epoch}.bpk"))
}

/// The state file of epoch `epoch` in the checkpoint folder `dir`.
pub fn state_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("state-{epoch}.json"))
}

/// ELA's pruning window in progress: the KL sums of its epochs so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowSums {
    /// Per block, the sum of its scores over the window's batches so far.
    pub sum: Vec<f64>,
    /// Batches summed.
    pub batches: usize,
}

/// What a checkpoint holds besides Burn's records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// The epoch this checkpoint follows (1-based).
    pub epoch: usize,
    /// The seed every random stream of the run derives from: the data order, augmentation and
    /// sampling of epoch k depend on (seed, k) alone, so the seed and the epoch are the whole
    /// random state a resumed run needs.
    pub seed: u64,
    /// Optimizer steps taken so far.
    pub steps: usize,
    /// The model's skip flags after the epoch.
    pub skip_flags: Vec<bool>,
    /// ELA's pending window (empty when none is in progress, or the run does not prune).
    pub window: WindowSums,
    /// ELA's decisions so far.
    pub pruning: Option<PruningRecord>,
    /// Every epoch so far.
    pub epochs: Vec<EpochRecord>,
    /// Wall seconds of the run up to this checkpoint, over every process that trained it.
    pub elapsed_seconds: f64,
    /// What resumes changed so far.
    #[serde(default)]
    pub resume_overrides: Vec<ResumeOverride>,
}

/// Writes `state` as the state of its epoch in the checkpoint folder `dir`, atomically, and
/// deletes the state [`KEEP`] epochs older (Burn's records go the same way through their
/// checkpointer).
pub fn save_state(dir: &Path, state: &CheckpointState) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_json(&state_path(dir, state.epoch), state)?;
    if state.epoch > KEEP {
        let old = state_path(dir, state.epoch - KEEP);
        match std::fs::remove_file(&old) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", old.display())),
        }
    }
    Ok(())
}

/// The newest epoch whose checkpoint in `dir` is complete (its state and every Burn record).
pub fn latest_complete(dir: &Path) -> Option<usize> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("state-")?
                .strip_suffix(".json")?
                .parse::<usize>()
                .ok()
        })
        .filter(|&k| RECORDS.iter().all(|r| record_path(dir, r, k).is_file()))
        .max()
}

/// Reads the state of epoch `epoch` from the checkpoint folder `dir`, naming the file in any
/// error.
pub fn load_state(dir: &Path, epoch: usize) -> Result<CheckpointState> {
    let path = state_path(dir, epoch);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let state: CheckpointState = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid training state", path.display()))?;
    if state.epoch != epoch {
        bail!(
            "{} says epoch {}, its name says {epoch}",
            path.display(),
            state.epoch
        );
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::write_atomic;

    fn state(epoch: usize) -> CheckpointState {
        CheckpointState {
            epoch,
            seed: 42,
            steps: 10 * epoch,
            skip_flags: vec![false, true],
            window: WindowSums {
                sum: vec![0.5, 0.25],
                batches: 3,
            },
            pruning: None,
            epochs: Vec::new(),
            elapsed_seconds: 1.5,
            resume_overrides: Vec::new(),
        }
    }

    #[test]
    fn only_complete_checkpoints_count_and_two_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(latest_complete(d), None);
        for k in 1..=3 {
            for r in RECORDS {
                std::fs::write(record_path(d, r, k), b"x").unwrap();
            }
            save_state(d, &state(k)).unwrap();
        }
        assert!(!state_path(d, 1).exists(), "older states are deleted");
        assert_eq!(latest_complete(d), Some(3));
        // A crash while epoch 4 was being saved: its state exists, a record is missing.
        save_state(d, &state(4)).unwrap();
        std::fs::write(record_path(d, "model", 4), b"x").unwrap();
        assert_eq!(latest_complete(d), Some(3), "the previous one is used");
        let s = load_state(d, 3).unwrap();
        assert_eq!(s, state(3));
        std::fs::write(state_path(d, 3), b"{ not json").unwrap();
        let err = format!("{:#}", load_state(d, 3).unwrap_err());
        assert!(
            err.contains("state-3.json") && err.contains("not a valid"),
            "{err}"
        );
        std::fs::write(state_path(d, 4), serde_json::to_vec(&state(2)).unwrap()).unwrap();
        let err = format!("{:#}", load_state(d, 4).unwrap_err());
        assert!(err.contains("says epoch 2, its name says 4"), "{err}");
    }

    /// A crash between writing a checkpoint's temporary file and renaming it leaves the previous
    /// file intact and no partial file under the final name.
    #[test]
    fn an_interrupted_write_leaves_the_previous_checkpoint_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model-1.bpk");
        write_atomic(&path, b"complete checkpoint").unwrap();
        let mut tmp = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        std::io::Write::write_all(&mut tmp, b"half").unwrap();
        let (_file, tmp_path) = tmp.keep().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"complete checkpoint");
        assert_ne!(tmp_path, path);
        assert_eq!(latest_complete(dir.path()), None, "no state, no checkpoint");
    }
}
