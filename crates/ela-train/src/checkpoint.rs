//! Checkpoints and resume.
//!
//! After every epoch the run directory's `checkpoint/` receives, each file written atomically
//! (temporary file, fsync, rename):
//! - `model-K.bpk`, `optim-K.bpk`, `scheduler-K.bpk`: Burn's records of the model (with its BN
//!   statistics), the SGD momentum buffers and the learning-rate schedule after epoch K;
//! - `state-K.json`: what Burn does not know: the skip mask, the pending KL sums of an unfinished
//!   pruning window, the pruning decisions and the metrics so far.
//!
//! The checkpoint of epoch K is complete when all four exist; a crash at any moment leaves the
//! previous complete one intact, and `ela train --resume DIR` continues from the newest complete
//! one. Two checkpoints are kept.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use burn_std::Bytes;
use serde::{Deserialize, Serialize};

use ela_records::{EpochMetrics, PruningRecord, write_atomic};

/// Checkpoint files kept (older ones are deleted).
pub const KEEP: usize = 2;

/// The record kinds, as file-name prefixes.
pub const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];

/// A Burn checkpointer whose files appear atomically.
#[derive(Debug, Clone)]
pub struct AtomicCheckpointer {
    dir: PathBuf,
    name: &'static str,
}

impl AtomicCheckpointer {
    /// Checkpoints named `<name>-<epoch>.bpk` in `dir`.
    pub fn new(dir: &Path, name: &'static str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            name,
        }
    }

    fn path(&self, epoch: usize) -> PathBuf {
        record_path(&self.dir, self.name, epoch)
    }
}

fn record_path(dir: &Path, name: &str, epoch: usize) -> PathBuf {
    dir.join(format!("{name}-{epoch}.bpk"))
}

fn state_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("state-{epoch}.json"))
}

impl<R: Checkpoint> Checkpointer<R> for AtomicCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        std::fs::create_dir_all(&self.dir).map_err(CheckpointerError::IOError)?;
        write_atomic(&self.path(epoch), &bytes)
            .map_err(|e| CheckpointerError::Unknown(format!("{e:#}")))
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        match std::fs::remove_file(self.path(epoch)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CheckpointerError::IOError(e)),
        }
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        let path = self.path(epoch);
        let bytes = std::fs::read(&path).map_err(CheckpointerError::IOError)?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes)).map_err(CheckpointerError::Record)
    }
}

/// What the training loop adds to Burn's records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingState {
    /// The epoch this state follows (1-based).
    pub epoch: usize,
    /// The model's skip flags after the epoch.
    pub skip_flags: Vec<bool>,
    /// KL sums of the pruning window in progress, per block.
    pub window_sum: Vec<f64>,
    /// Batches summed into `window_sum`.
    pub window_batches: usize,
    /// Decisions so far (ELA runs).
    pub pruning: Option<PruningRecord>,
    /// Metrics of every epoch so far.
    pub metrics: Vec<EpochMetrics>,
    /// Wall seconds of the run up to this checkpoint, over every process that trained it.
    #[serde(default)]
    pub elapsed_seconds: f64,
}

/// Writes the training state of `state.epoch` atomically and deletes states older than
/// [`KEEP`] epochs.
pub fn save_state(dir: &Path, state: &TrainingState) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = serde_json::to_vec_pretty(state).expect("serializable");
    write_atomic(&state_path(dir, state.epoch), &json)?;
    if state.epoch > KEEP {
        let old = state_path(dir, state.epoch - KEEP);
        if old.exists() {
            std::fs::remove_file(&old)
                .with_context(|| format!("cannot remove {}", old.display()))?;
        }
    }
    Ok(())
}

/// The newest epoch whose checkpoint is complete (state and all three records), if any.
pub fn latest_complete(dir: &Path) -> Option<usize> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut epochs: Vec<usize> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_prefix("state-")?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect();
    epochs.sort_unstable();
    epochs
        .into_iter()
        .rev()
        .find(|&k| RECORDS.iter().all(|r| record_path(dir, r, k).exists()))
}

/// Checks that the three Burn records of `epoch` decode; a corrupt file is named.
pub fn verify_records(dir: &Path, epoch: usize) -> Result<()> {
    fn check<R: Checkpoint>(dir: &Path, name: &'static str, epoch: usize) -> Result<()> {
        let path = record_path(dir, name, epoch);
        <AtomicCheckpointer as Checkpointer<R>>::restore(&AtomicCheckpointer::new(dir, name), epoch)
            .map(|_| ())
            .map_err(|e| {
                anyhow::anyhow!(
                    "checkpoint {} is corrupt ({e}); delete checkpoint files of epoch {epoch} to \
                     resume from the one before, or start the run again",
                    path.display()
                )
            })
    }
    check::<burn::store::ModuleRecord>(dir, RECORDS[0], epoch)?;
    check::<burn::optim::OptimizerRecord>(dir, RECORDS[1], epoch)?;
    check::<burn::optim::lr_scheduler::LrSchedulerRecord>(dir, RECORDS[2], epoch)
}

/// Reads the training state of `epoch`.
pub fn load_state(dir: &Path, epoch: usize) -> Result<TrainingState> {
    let path = state_path(dir, epoch);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let state: TrainingState = serde_json::from_str(&text)
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

    fn state(epoch: usize) -> TrainingState {
        TrainingState {
            epoch,
            skip_flags: vec![false, true],
            window_sum: vec![0.5, 0.25],
            window_batches: 3,
            pruning: None,
            metrics: Vec::new(),
            elapsed_seconds: 1.5,
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
        // A crash while epoch 4 was being saved: its state exists, one record is missing.
        save_state(d, &state(4)).unwrap();
        std::fs::write(record_path(d, "model", 4), b"x").unwrap();
        assert_eq!(
            latest_complete(d),
            Some(3),
            "the previous checkpoint is used"
        );
        let s = load_state(d, 3).unwrap();
        assert_eq!((s.window_batches, s.skip_flags), (3, vec![false, true]));
        let err = format!("{:#}", verify_records(d, 3).unwrap_err());
        assert!(
            err.contains("model-3.bpk") && err.contains("corrupt"),
            "a garbage record is named: {err}"
        );
        std::fs::write(state_path(d, 3), b"{ not json").unwrap();
        let err = format!("{:#}", load_state(d, 3).unwrap_err());
        assert!(
            err.contains("state-3.json") && err.contains("not a valid"),
            "{err}"
        );
    }

    /// A crash between writing a checkpoint's temporary file and renaming it leaves the previous
    /// file intact and no partial file under the final name.
    #[test]
    fn an_interrupted_write_leaves_the_previous_checkpoint_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model-1.bpk");
        write_atomic(&path, b"complete checkpoint").unwrap();
        // The first half of an atomic write: the temporary file is written and synced, then
        // the process dies before the rename.
        let mut tmp = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        std::io::Write::write_all(&mut tmp, b"half").unwrap();
        let (_file, tmp_path) = tmp.keep().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"complete checkpoint");
        assert_ne!(tmp_path, path);
        assert_eq!(latest_complete(dir.path()), None, "no state, no checkpoint");
    }
}
