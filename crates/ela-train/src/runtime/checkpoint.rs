//! Burn's part of a checkpoint: its records of the model, the optimizer and the schedule, each
//! written atomically into the run's `checkpoint/` folder (the folder's layout and the state
//! beside them are `ela_records::checkpoint`'s).

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use burn_std::Bytes;
use ela_records::checkpoint::{RECORDS, record_path};
use ela_records::write_atomic;

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

/// Checks that the three Burn records of `epoch` in the checkpoint folder `dir` decode; a
/// corrupt file is named.
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
