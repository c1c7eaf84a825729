//! The run directory of any task: resolved config (with its task tag), per-epoch records
//! (`metrics.csv`), pruning decisions, attention maps, checkpoints, final weights and
//! `summary.json`. Every file is written atomically ([`crate::write_atomic`]), and the directory
//! is owned by one process ([`crate::lock`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;

use crate::attention::{ATTENTION_FILE, AttentionRecord, read_attention};
use crate::epochs::{EpochRecord, METRICS_FILE, metrics_csv};
use crate::files::{write_atomic, write_json};
use crate::lock::{RunLock, check_contents, check_new_run_dir};

/// The run directory and its files, owned by this process for as long as a clone of it lives
/// (see [`crate::lock`]).
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
    epochs: Vec<EpochRecord>,
    attention: Vec<AttentionRecord>,
    lock: Arc<RunLock>,
}

impl RunDir {
    /// Creates (or reuses, if empty) the directory and takes its lock; refuses one that already
    /// holds a run, one that holds files of anything else, and one that another process owns.
    pub fn create(root: &Path) -> Result<Self> {
        check_new_run_dir(root)?;
        let lock = RunLock::acquire(root)?;
        // Another process may have started a run here between the check and the lock.
        check_contents(root)?;
        Ok(Self {
            root: root.to_path_buf(),
            epochs: Vec::new(),
            attention: Vec::new(),
            lock: Arc::new(lock),
        })
    }

    /// Reopens the run directory that `lock` owns to continue it with its epochs so far (a
    /// resumed run, or none for a run started again); `metrics.csv` and `attention.json` are
    /// rewritten with exactly these epochs.
    pub fn reopen(lock: RunLock, epochs: Vec<EpochRecord>) -> Result<Self> {
        let root = lock.root().to_path_buf();
        if !root.join("config.json").exists() {
            anyhow::bail!("{} holds no run (no config.json)", root.display());
        }
        let last = epochs.last().map_or(0, |m| m.epoch);
        let path = root.join(ATTENTION_FILE);
        let mut attention = if path.exists() {
            read_attention(&path)?
        } else {
            Vec::new()
        };
        attention.retain(|a| a.epoch <= last);
        let run = Self {
            root,
            epochs,
            attention,
            lock: Arc::new(lock),
        };
        run.write_metrics()?;
        if path.exists() {
            write_json(&path, &run.attention)?;
        }
        Ok(run)
    }

    /// Appends a validation pass's attention maps and rewrites `attention.json` atomically.
    pub fn record_attention(&mut self, record: AttentionRecord) -> Result<()> {
        self.attention.push(record);
        write_json(&self.file(ATTENTION_FILE), &self.attention)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The directory's lock, to keep it owned after this value is gone.
    pub fn lock(&self) -> Arc<RunLock> {
        self.lock.clone()
    }

    /// Path of a file in the run directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Appends an epoch and rewrites `metrics.csv` atomically.
    pub fn record_epoch(&mut self, epoch: EpochRecord) -> Result<()> {
        self.epochs.push(epoch);
        self.write_metrics()
    }

    fn write_metrics(&self) -> Result<()> {
        write_atomic(
            &self.file(METRICS_FILE),
            metrics_csv(&self.epochs).as_bytes(),
        )
    }

    /// The epochs recorded so far.
    pub fn epochs(&self) -> &[EpochRecord] {
        &self.epochs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_files_and_run_dirs_are_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_json(&p, &vec![1, 2]).unwrap();
        write_json(&p, &vec![3]).unwrap();
        let v: Vec<i32> = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v, vec![3]);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files left behind");

        let run = dir.path().join("run");
        let mut r = RunDir::create(&run).unwrap();
        r.record_epoch(EpochRecord {
            epoch: 1,
            lr: 0.1,
            values: vec![crate::Value::new("test_acc", 60.0)],
            train_seconds: 1.0,
            epoch_seconds: 1.5,
            skipped: vec![1, 3],
        })
        .unwrap();
        let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 2);
        assert!(csv.lines().nth(1).unwrap().ends_with(",2,1;3"));
        write_json(&run.join("config.json"), &1).unwrap();
        // While its owner lives the directory is busy; after, it is a run.
        let err = RunDir::create(&run).unwrap_err().to_string();
        assert!(err.contains("in use by another ela process"), "{err}");
        drop(r);
        let err = RunDir::create(&run).unwrap_err().to_string();
        assert!(err.contains("already holds a run"), "{err}");
    }

    #[test]
    fn a_run_directory_that_cannot_be_created_is_named_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let err = format!("{:#}", RunDir::create(&file.join("run")).unwrap_err());
        assert!(
            err.contains("cannot create run directory") && err.contains("a-file/run"),
            "{err}"
        );
        let lock = RunLock::acquire(dir.path()).unwrap();
        let err = format!("{:#}", RunDir::reopen(lock, Vec::new()).unwrap_err());
        assert!(err.contains("holds no run"), "{err}");
    }
}
